"""The web UI's files from strangers: uploads checked in a child process (bombs, malformed
and malicious files refused with a message, nothing left behind), odd log names listed,
a dataset build naming what it left out, and kept files readable by everyone."""

import os
import pickle
import stat
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import bombs
from antiphon.data.logs import write_events
from workspaces import save_model


def upload(client, url: str, path: Path, name: str | None = None):
    with path.open("rb") as f:
        return client.post(
            url,
            files={"file": (name or path.name, f)},
            headers={"x-csrf-token": client.cookies.get("antiphon_csrf")},
            follow_redirects=False,
        )


def left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_dataset_bomb_is_refused_and_nothing_is_left(client, workspace, tmp_path):
    bomb = bombs.dataset_bomb(tmp_path / "bomb.npz")
    response = upload(client, "/datasets/upload", bomb)
    assert response.status_code == 400
    assert response.text.startswith("bomb.npz was not kept: bomb.npz: events.npy unpacks to")
    assert left_in(workspace.datasets) == []
    assert client.get("/datasets").status_code == 200


def test_a_keras_bomb_is_refused_and_nothing_is_left(client, workspace, tmp_path):
    bomb = bombs.keras_bomb(tmp_path / "bomb.keras")
    before = left_in(workspace.models)
    response = upload(client, "/models/upload", bomb)
    assert response.status_code == 400 and "model.weights.h5 unpacks to 1,024 MB" in response.text
    assert left_in(workspace.models) == before


def test_a_malformed_dataset_is_a_clear_400_and_nothing_is_left(client, workspace, tmp_path):
    """It used to be a 500 and a leftover .upload-*.npz."""
    path = tmp_path / "odd.npz"
    np.savez(path, events=np.zeros((8, 4), np.float32), offsets=[0, 8], info=np.arange(3))
    response = upload(client, "/datasets/upload", path)
    assert response.status_code == 400
    assert response.text == "odd.npz was not kept: odd.npz: info should be a text, not int64"
    assert left_in(workspace.datasets) == []


class _Touch:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_malicious_impsy_dataset_runs_nothing(client, workspace, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "training-dataset-4d.npz"
    perfs = np.array([_Touch(marker)], dtype=object)
    with zipfile.ZipFile(path, "w") as archive, archive.open("perfs.npy", "w") as npy:
        np.lib.format.write_array_header_1_0(npy, np.lib.format.header_data_from_array_1_0(perfs))
        npy.write(pickle.dumps(perfs, protocol=2))
    response = upload(client, "/datasets/upload", path)
    assert response.status_code == 400 and "refusing to load posix.system" in response.text
    assert not marker.exists() and left_in(workspace.datasets) == []


def test_kept_uploads_are_readable_by_everyone(client, workspace, tmp_path):
    """Uploads are saved with the process's umask; kept ones become 0644 like every file
    antiphon writes (Docker bind mounts)."""
    rng = np.random.default_rng(0)
    dataset_file = tmp_path / "mine.npz"
    perfs = np.empty(3, dtype=object)
    for i, n in enumerate((60, 0, 70)):
        perfs[i] = rng.random((n, 3)).astype(np.float32)
    np.savez_compressed(dataset_file, perfs=perfs)
    model_file = save_model(tmp_path / "mine.safetensors", 4, "xxs")
    old = os.umask(0o077)
    try:
        kept = upload(client, "/datasets/upload", dataset_file)
        api = upload(client, "/api/models", model_file)
    finally:
        os.umask(old)
    assert kept.status_code == 303, kept.text
    assert "3+performances" in kept.headers["location"]
    assert api.status_code == 201 and api.json()["dimension"] == 4
    for path in (workspace.datasets / "mine.npz", workspace.models / "mine.safetensors"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_file_that_arrives_while_an_upload_is_checked_is_never_replaced(
    client, workspace, tmp_path, monkeypatch
):
    """Two pushes of one name at once: the first kept stays, the second is refused."""
    from antiphon.web import uploads

    checked = uploads.check
    first = b"the first one kept"

    async def meanwhile(kind, staging, name):
        answer = await checked(kind, staging, name)
        (workspace.models / name).write_bytes(first)  # another upload finished first
        return answer

    monkeypatch.setattr(uploads, "check", meanwhile)
    second = upload(client, "/api/models", save_model(tmp_path / "same.safetensors", 4, "xxs"))
    assert second.status_code == 409 and "arrived while it was checked" in second.text
    assert (workspace.models / "same.safetensors").read_bytes() == first
    assert [p.name for p in workspace.models.iterdir() if p.name.startswith(".")] == []


def _checker_pids() -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"antiphon.web.uploads" in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_a_checker_that_dies_costs_only_the_upload(client, workspace, tmp_path):
    """What the kernel's out-of-memory killer would do to a checker: the upload is
    refused with a message and the web UI goes on serving."""
    big = bombs.dataset_bomb(tmp_path / "big.npz", unpacked=250 * bombs.MB)  # valid, slow
    answer = {}
    sender = threading.Thread(
        target=lambda: answer.update(response=upload(client, "/datasets/upload", big))
    )
    sender.start()
    deadline = time.monotonic() + 60
    while not (pids := _checker_pids()):
        assert time.monotonic() < deadline and sender.is_alive(), "no checker seen"
        time.sleep(0.005)
    os.kill(pids[0], 9)
    sender.join(60)
    response = answer["response"]
    assert response.status_code == 400
    assert (
        response.text == "big.npz was not kept: checking it ran out of memory (a compressed bomb?)"
    )
    assert left_in(workspace.datasets) == []
    assert client.get("/healthz").json()["ok"]


@pytest.mark.parametrize(
    "name",
    [
        "2024-01-01T00-00-00-1d-mdrnn.log",
        "2024-01-01T00-00-00-0d-mdrnn.log",
        "2024-01-01T00-00-00-99999999999999999999d-mdrnn.log",
        "2024-13-45T99-00-00-4d-mdrnn.log",
        "performance.log",
    ],
)
def test_logs_of_any_name_are_listed_previewed_and_plotted(client, workspace, name):
    """A log named …-1d-mdrnn.log made the Logs page answer 500."""
    (workspace.logs / name).write_text(
        "2024-01-01T00:00:00,interface,0.1,0.2,0.3\n2024-01-01T00:00:01,interface,0.3,0.4,0.5\n"
    )
    (workspace.logs / "2024-01-01T00-00-01-4d-mdrnn.log").symlink_to(workspace.root / "gone.log")
    page = client.get("/logs", headers={"accept": "text/html"})
    assert page.status_code == 200 and name in page.text
    assert client.get(f"/logs/{name}", headers={"accept": "text/html"}).status_code == 200
    data = client.get(f"/logs/{name}/data").json()
    assert data["dimension"] == 4 and data["events"] == 2


def test_a_build_names_the_log_whose_rows_it_skipped(client, workspace):
    rng = np.random.default_rng(0)
    for _ in range(2):
        write_events(workspace.logs, rng.random((80, 4), np.float32))
    odd = workspace.logs / "2020-01-01T00-00-00-4d-mdrnn.log"
    odd.write_text(
        "2020-01-01T00:00:00,interface,0.1,0.2,0.3\n"
        "2020-01-01T00:00:01,interface,0.1,1e39,0.3\n"
        "2020-01-01T00:00:02,interface,0.1,0.2,0.3\n"
    )
    built = client.post(
        "/datasets/build",
        data={"dimension": "4", "csrf_token": client.cookies.get("antiphon_csrf")},
        follow_redirects=False,
    )
    assert built.status_code == 303
    job = next(iter(client.app.state.web.jobs))
    deadline = time.monotonic() + 120
    while (state := client.get(f"/api/jobs/{job.id}").json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state["state"] == "done", state
    assert f"skipped rows in {odd.name}: 1 out of range" in state["message"]
    kept = workspace.datasets / "training-dataset-4d.npz"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o644
