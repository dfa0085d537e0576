"""Fixtures shared by the integration tests."""

import pytest
from peers import Instrument


@pytest.fixture
def instrument(tmp_path):
    """`antiphon run` playing in a fresh workspace, with its web UI, until the test ends."""
    playing = Instrument(tmp_path / "ws")
    playing.wait_ready()
    yield playing
    playing.stop()
