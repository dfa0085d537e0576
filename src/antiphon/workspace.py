"""The folder a musician works in: ``config.toml``, ``logs/``, ``datasets/``, ``models/``.

The same layout as IMPSY's, so an IMPSY folder is already an antiphon workspace.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from antiphon.errors import AntiphonError

CONFIG_NAME = "config.toml"
FOLDERS = ("logs", "datasets", "models")


@dataclass(frozen=True)
class Workspace:
    root: Path
    config_file: Path | None = None
    """The config being played, when it is not ``root/config.toml`` (``run -c other.toml``)."""

    @property
    def config_path(self) -> Path:
        return self.config_file or self.root / CONFIG_NAME

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def models(self) -> Path:
        return self.root / "models"


def root_for(config_path: Path | None) -> tuple[Path, str | None]:
    """The workspace a config plays in (where logs are written, datasets and models
    listed), and a note when it is not the config's own folder.

    A config's folder is its workspace, unless that folder has none of ``logs/``,
    ``datasets/``, ``models/`` and the working directory has: then the working
    directory is, as it is for IMPSY, whose configs live in ``configs/`` of the
    project folder it runs in.
    """
    here = Path.cwd()
    if config_path is None:
        return here, None
    folder = config_path.parent
    if folder.resolve() == here.resolve() or _has_folders(folder) or not _has_folders(here):
        return folder, None
    return here, (
        f"{folder} has no {', '.join(f + '/' for f in FOLDERS)} folder but the working "
        f"directory does: using the workspace {here} (as IMPSY does)"
    )


def _has_folders(root: Path) -> bool:
    return any((root / name).is_dir() for name in FOLDERS)


def config_template() -> str:
    """The commented config.toml every new workspace starts from."""
    return resources.files("antiphon").joinpath("templates", CONFIG_NAME).read_text("utf-8")


def init(
    root: str | Path,
    *,
    force: bool = False,
    web_host: str | None = None,
    osc_client_ip: str | None = None,
) -> list[Path]:
    """Create a workspace; returns what was created. An existing config.toml is kept
    as it is (as IMPSY's ``init`` keeps it: running it in an IMPSY folder adds the
    missing folders); ``force`` replaces it, keeping it as ``config.toml.bak``.

    ``web_host`` and ``osc_client_ip`` adapt the template to where it runs: an
    instrument's web UI must listen beyond localhost; in a container OSC goes to the
    host machine.
    """
    workspace = Workspace(Path(root))
    created: list[Path] = []
    config = workspace.config_path
    if workspace.root.exists() and not workspace.root.is_dir():
        raise AntiphonError(f"{workspace.root} is a file, not a folder for a workspace")
    workspace.root.mkdir(parents=True, exist_ok=True)
    for name in FOLDERS:
        folder = workspace.root / name
        if not folder.is_dir():
            folder.mkdir()
            created.append(folder)
    if config.exists() and not force:
        return created
    if config.exists():
        shutil.copy2(config, config.with_name(CONFIG_NAME + ".bak"))
    config.write_text(_adapted_template(web_host, osc_client_ip), encoding="utf-8")
    created.append(config)
    return created


def _adapted_template(web_host: str | None, osc_client_ip: str | None) -> str:
    text = config_template()
    if web_host is None and osc_client_ip is None:
        return text
    import tomlkit

    document = tomlkit.parse(text)
    if web_host is not None:
        document["webui"]["host"] = web_host  # type: ignore[index]
    if osc_client_ip is not None:
        document["osc"]["client_ip"] = osc_client_ip  # type: ignore[index]
    return tomlkit.dumps(document)
