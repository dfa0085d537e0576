"""Shared fixtures. IMPSY sample files live beside the project, never inside it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

# Test modules import NumPy before antiphon does: give them antiphon's one BLAS thread.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest
from starlette.testclient import TestClient

from antiphon.workspace import Workspace, init
from samples import IMPSY
from webclient import LOCAL
from workspaces import model_in


@pytest.fixture
def impsy_dir() -> Path:
    if not IMPSY.is_dir():
        pytest.skip(
            f"IMPSY sample files ({IMPSY}) are not available; ANTIPHON_IMPSY_SAMPLES names them"
        )
    return IMPSY


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fresh workspace, as `antiphon init` makes it. A test module that needs more in
    it (logs, models) overrides this fixture with one that asks for it and adds them."""
    init(tmp_path / "ws")
    return Workspace(tmp_path / "ws")


@pytest.fixture
def client(workspace: Workspace) -> Iterator[TestClient]:
    """The web UI of ``workspace`` (as `antiphon web` serves it) in this process, having
    loaded a page once as a browser does: it holds the CSRF cookie."""
    from antiphon.web.app import create_app

    app = create_app(workspace)
    with TestClient(app, base_url=LOCAL) as browser:
        browser.get("/")
        yield browser
        for job in app.state.web.jobs:  # a failed test must not leave training running
            if job.process is not None and job.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    job.process.kill()


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    """An untrained model of dimension 4 (size xs) in ``tmp_path``."""
    return model_in(tmp_path)
