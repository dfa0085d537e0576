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
    """Create a workspace; returns what was created. Never overwrites without ``force``,
    and even then keeps the previous config as ``config.toml.bak``.

    ``web_host`` and ``osc_client_ip`` adapt the template to where it runs: an
    instrument's web UI must listen beyond localhost; in a container OSC goes to the
    host machine.
    """
    workspace = Workspace(Path(root))
    created: list[Path] = []
    config = workspace.config_path
    if config.exists() and not force:
        raise AntiphonError(
            f"{config} already exists; not overwriting it (use --force to replace it, "
            "the old file is kept as config.toml.bak)"
        )
    workspace.root.mkdir(parents=True, exist_ok=True)
    for name in FOLDERS:
        folder = workspace.root / name
        if not folder.is_dir():
            folder.mkdir()
            created.append(folder)
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
