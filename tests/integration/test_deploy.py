"""Deployment: the Raspberry Pi installer in a throwaway root, the systemd unit, the
Docker build script and compose file, and wheels for a Pi's CPU."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

from antiphon import config as config_schema

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """antiphon as a wheel. Building it asks PyPI for the build backend, and installing
    it for the dependencies: the tests that use it are marked ``network``."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
    )
    return next(out.glob("antiphon-*.whl"))


def run_script(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheel):
    """install.sh run once into a throwaway root, as on a Pi (twice: it is idempotent)."""
    root = tmp_path_factory.mktemp("pi-root")
    (root / "boot" / "firmware").mkdir(parents=True)
    (root / "boot" / "firmware" / "config.txt").write_text("[all]\narm_64bit=1\n")
    (root / "boot" / "firmware" / "cmdline.txt").write_text(
        "console=tty1 root=PARTUUID=1234-02 rootfstype=ext4 fsck.repair=yes rootwait\n"
    )
    (root / "etc").mkdir()
    (root / "etc" / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n")
    args = [
        DEPLOY / "rpi" / "install.sh",
        "--root",
        root,
        "--no-apt",
        "--from",
        wheel,
        "--python",
        sys.executable,
        "--hostname",
        "box-1",
        "--usb-gadget",
    ]
    first = run_script(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_script(*args)
    assert second.returncode == 0, second.stdout + second.stderr
    return root, first.stdout, second.stdout


@pytest.mark.network
def test_install_creates_venv_workspace_and_service(installed):
    root, out, again = installed
    antiphon = root / "opt" / "antiphon" / "venv" / "bin" / "antiphon"
    version = subprocess.run([antiphon, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("antiphon, version")
    workspace = root / "home" / "antiphon" / "workspace"
    loaded = config_schema.load(workspace / "config.toml")
    assert loaded.webui.host == "0.0.0.0"  # reachable from the laptop
    assert {p.name for p in workspace.iterdir()} >= {"config.toml", "logs", "datasets", "models"}
    unit = (root / "etc" / "systemd" / "system" / "antiphon.service").read_text()
    assert "@" not in unit.replace("antiphon@", "")
    assert (
        "ExecStart=/opt/antiphon/venv/bin/antiphon run --config "
        "/home/antiphon/workspace/config.toml" in unit
    )
    assert "User=antiphon" in unit and "Restart=on-failure" in unit
    assert "SupplementaryGroups=audio dialout" in unit
    for command in (
        "useradd --system",
        "systemctl enable antiphon.service",
        "systemctl restart antiphon.service",
        "hostnamectl set-hostname box-1",
    ):
        assert f"would run: {command}" in out
    assert "keeping the existing /home/antiphon/workspace/config.toml" in again


@pytest.mark.network
def test_install_sets_up_the_hostname_and_usb_gadget_once(installed):
    root, out, _ = installed
    assert (root / "etc" / "hostname").read_text().strip() == "box-1"
    assert "127.0.1.1\tbox-1" in (root / "etc" / "hosts").read_text()
    boot = root / "boot" / "firmware"
    assert (boot / "config.txt").read_text().count("dtoverlay=dwc2") == 1
    cmdline = (boot / "cmdline.txt").read_text()
    assert cmdline.count("modules-load=dwc2,g_ether") == 1 and cmdline.count("\n") == 1
    assert cmdline.startswith("console=tty1") and "rootwait modules-load" in cmdline
    connection = (
        root / "etc" / "NetworkManager" / "system-connections" / "antiphon-usb0.nmconnection"
    )
    assert "address1=10.55.0.1/24" in connection.read_text()
    assert oct(connection.stat().st_mode & 0o777) == "0o600"
    assert "http://box-1.local:4000" in out and "http://10.55.0.1:4000" in out


@pytest.mark.network
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_installed_unit_passes_systemd_analyze_verify(installed, tmp_path):
    root, _, _ = installed
    unit = (root / "etc" / "systemd" / "system" / "antiphon.service").read_text()
    # Point the unit at the files in the throwaway root, which exist here.
    unit = unit.replace("/opt/antiphon", str(root / "opt" / "antiphon"))
    (tmp_path / "antiphon.service").write_text(unit)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "antiphon.service")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.network
def test_uninstall_keeps_the_workspace_unless_purged(installed, tmp_path):
    root, _, _ = installed
    copy = tmp_path / "root"
    shutil.copytree(root, copy, symlinks=True)
    kept = run_script(DEPLOY / "rpi" / "uninstall.sh", "--root", copy)
    assert kept.returncode == 0, kept.stderr
    assert not (copy / "etc" / "systemd" / "system" / "antiphon.service").exists()
    assert not (copy / "opt" / "antiphon").exists()
    assert (copy / "home" / "antiphon" / "workspace" / "config.toml").exists()
    assert "dtoverlay=dwc2" not in (copy / "boot" / "firmware" / "config.txt").read_text()
    assert "g_ether" not in (copy / "boot" / "firmware" / "cmdline.txt").read_text()
    assert "would run: systemctl disable --now antiphon.service" in kept.stdout
    purged = run_script(DEPLOY / "rpi" / "uninstall.sh", "--root", copy, "--purge")
    assert purged.returncode == 0 and not (copy / "home" / "antiphon" / "workspace").exists()


def test_install_refuses_bad_arguments(tmp_path):
    bad_name = run_script(DEPLOY / "rpi" / "install.sh", "--root", tmp_path, "--hostname", "a b")
    assert bad_name.returncode == 2 and "not a valid hostname" in bad_name.stderr
    unknown = run_script(DEPLOY / "rpi" / "install.sh", "--frobnicate")
    assert unknown.returncode == 2 and "--help" in unknown.stderr


def shell_scripts() -> list[Path]:
    scripts = [*DEPLOY.rglob("*.sh"), REPO / ".ci" / "run"]
    return sorted(p for p in scripts if p.is_file())


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="needs shellcheck")
def test_every_shell_script_passes_shellcheck():
    result = subprocess.run(
        ["shellcheck", "--shell=bash", *map(str, shell_scripts())], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


@pytest.fixture(scope="module")
def docker_env(tmp_path_factory, wheel) -> Path:
    """What the Dockerfile's build stage runs, run once into a throwaway folder."""
    env = tmp_path_factory.mktemp("docker") / "antiphon"
    result = run_script(DEPLOY / "docker" / "build.sh", env, wheel)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"antiphon, version {wheel.name.split('-')[1]}")
    return env


@pytest.mark.network
def test_the_docker_environment_has_no_ml_framework(docker_env):
    check = subprocess.run(
        [
            docker_env / "bin" / "python",
            "-c",
            "import sys, antiphon.cli, antiphon.web.app; print('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.strip() == "False"  # the image's base install


@pytest.mark.network
def test_the_docker_environment_reads_impsy_models(docker_env, impsy_dir):
    """An IMPSY model uploaded to the instrument plays: h5py is there."""
    h5 = next((impsy_dir / "models").glob("*dim4*.h5"))
    info = subprocess.run(
        [docker_env / "bin" / "antiphon", "model", "info", h5], capture_output=True, text=True
    )
    assert info.returncode == 0 and "dimension 4" in info.stdout, info.stderr


@pytest.mark.network
def test_the_docker_entrypoint_makes_a_workspace_for_the_container(docker_env, tmp_path):
    workspace = tmp_path / "workspace"
    entry = run_script(
        DEPLOY / "docker" / "entrypoint.sh",
        "antiphon",
        "config",
        "check",
        env={
            "ANTIPHON_WORKSPACE": str(workspace),
            "PATH": f"{docker_env / 'bin'}:{os.environ['PATH']}",
        },
    )
    assert entry.returncode == 0, entry.stderr
    loaded = config_schema.load(workspace / "config.toml")
    assert loaded.webui.host == "0.0.0.0" and loaded.osc.client_ip == "host.docker.internal"


def test_dockerfile_copies_what_exists_and_has_both_targets():
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)", text, re.M)
    assert {"base", "train"} <= set(stages)
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for source in sources.split():
            assert (REPO / source).exists(), source
    assert "USER antiphon" in text and "HEALTHCHECK" in text and "/healthz" in text
    assert re.search(r"EXPOSE .*6000/udp", text)


def test_compose_file_publishes_ports_and_mounts_the_workspace():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text())
    service = compose["services"]["antiphon"]
    assert service["build"]["target"] == "base"
    assert (
        REPO / "deploy" / "docker" / service["build"]["context"] / service["build"]["dockerfile"]
    ).is_file()
    assert {"4000:4000", "5001:5001", "6000:6000/udp"} <= set(service["ports"])
    assert "./workspace:/workspace" in service["volumes"]
    assert "host.docker.internal:host-gateway" in service["extra_hosts"]
    assert compose["services"]["train"]["build"]["target"] == "train"


def instrument_requirements() -> list[str]:
    """What install.sh installs: the base dependencies and the impsy extra."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "[impsy]" in (DEPLOY / "rpi" / "install.sh").read_text()
    return project["dependencies"] + project["optional-dependencies"]["impsy"]


AARCH64 = ["manylinux2014_aarch64"] + [
    f"manylinux_2_{v}_aarch64" for v in (17, 24, 26, 27, 28, 31, 34, 35, 36)
]


@pytest.mark.network
@pytest.mark.parametrize("python", ["3.11", "3.13"])
def test_every_instrument_dependency_has_a_wheel_for_a_raspberry_pi(python, tmp_path):
    """64-bit Raspberry Pi OS: aarch64, glibc 2.36; Bookworm has Python 3.11, Trixie 3.13.

    python-rtmidi publishes no 3.13 wheels: there it is built from source, and the
    installer adds the Debian packages that build needs (checked below)."""
    requirements = instrument_requirements()
    if python == "3.13":
        rtmidi = [r for r in requirements if r.startswith("python-rtmidi")]
        requirements = [r for r in requirements if r not in rtmidi]
        assert _resolve(python, rtmidi, tmp_path).returncode != 0, "rtmidi now has wheels"
        installer = (DEPLOY / "rpi" / "install.sh").read_text()
        assert "build-essential python3-dev pkg-config libasound2-dev" in installer
    result = _resolve(python, requirements, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Would install" in result.stdout


def _resolve(python: str, requirements: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    platforms = [arg for tag in AARCH64 for arg in ("--platform", tag)]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--only-binary=:all:",
            *platforms,
            "--python-version",
            python,
            "--implementation",
            "cp",
            "--abi",
            f"cp{python.replace('.', '')}",
            "--target",
            str(tmp_path / "target"),
            *requirements,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.skipif(
    shutil.which("setpriv") is None or os.geteuid() != 0, reason="needs setpriv and root"
)
def test_the_container_explains_a_workspace_it_cannot_write():
    """Docker creates a missing bind-mounted folder owned by root; the container's user
    cannot write there, and must say so rather than fail somewhere inside antiphon."""
    reachable = Path(tempfile.mkdtemp())  # a checkout or pytest's folders may be closed to others
    reachable.chmod(0o755)
    workspace = reachable / "workspace"
    workspace.mkdir(mode=0o755)
    entrypoint = shutil.copy(DEPLOY / "docker" / "entrypoint.sh", reachable)
    result = subprocess.run(
        ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "sh",
         entrypoint, "true"],
        env={**os.environ, "ANTIPHON_WORKSPACE": str(workspace)},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"cannot write to {workspace} (owned by uid 0" in result.stderr
    assert "sudo chown 1000 workspace" in result.stderr
    shutil.rmtree(reachable)
