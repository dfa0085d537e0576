"""Datasets and training from the browser: background jobs, uploads, the Train page.

Jobs run for real here: a dataset build in a worker process of the app, a training run
as an `antiphon train` process (size xxs, a couple of epochs on a few seconds of data).
"""

import asyncio
import contextlib
import io
import os
import pickle
import re
import signal
import sys
import time
import zipfile
from datetime import datetime

import numpy as np
import pytest

from antiphon.data import dataset as datasets
from antiphon.data.performer import Performer, write_logs
from antiphon.model import files
from antiphon.web.pages import train as train_page
from webclient import HTML, token

DATASET = "training-dataset-3d.npz"


@pytest.fixture
def workspace(workspace):
    """The shared fresh workspace, with three synthetic performances of dimension 3."""
    write_logs(
        workspace.logs, 3, performances=3, minutes=0.15, seed=1, started=datetime(2024, 5, 1)
    )
    return workspace


def newest_job(page: str) -> str:
    """The id of the first job card on a page, as the page's script finds it."""
    found = re.search(r'data-job="([0-9a-f]+)"', page)
    assert found, "no job on the page"
    return found[1]


def wait_for(client, job_id: str, until=lambda job: job["state"] != "running", timeout=120):
    """Poll the job API as the page does, until ``until(job)``: the job then."""
    deadline = time.monotonic() + timeout
    while not until(job := client.get(f"/api/jobs/{job_id}").json()):
        assert time.monotonic() < deadline, f"not reached in {timeout} s: {job}"
        time.sleep(0.2)
    return job


def build(client, dimension, **fields):
    """Build from the workspace's logs, synthetic ones included (the box ticked)."""
    form = {"csrf_token": token(client), "dimension": str(dimension), "synthetic": "1"}
    return client.post("/datasets/build", data=form | fields, headers=HTML)


def upload(client, name, content):
    return client.post(
        f"/datasets/upload?csrf_token={token(client)}",
        files={"file": (name, content, "application/octet-stream")},
        headers=HTML,
    )


def performances(dimension, lengths, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        events = rng.random((n, dimension)).astype(np.float32)
        events[:, 0] = rng.exponential(0.02, n)
        out.append(events)
    return out


# -- building a dataset -------------------------------------------------------------------


def test_a_dataset_leaves_out_logs_no_one_played_unless_asked(client, workspace):
    job = wait_for(client, newest_job(build(client, 3, synthetic="").text))
    assert job["state"] == "failed" and "all synthetic or generated" in job["message"], job
    assert not (workspace.datasets / DATASET).exists()


def test_a_dataset_is_built_from_logs_as_a_job(client, workspace):
    page = build(client, 3)
    assert page.status_code == 200 and f"Building {DATASET} from logs/" in page.text
    job = wait_for(client, newest_job(page.text))
    assert job["kind"] == "dataset" and job["state"] == "done", job
    assert job["progress"] == 1.0 and job["result"] == DATASET
    expected = datasets.from_logs(workspace.logs, 3, made=True).dataset
    assert job["message"] == (
        f"Built {DATASET}: 3 performances, {len(expected.events):,} events from 3 logs"
    )
    built = datasets.load(workspace.datasets / DATASET)
    np.testing.assert_array_equal(built.events, expected.events)

    listing = client.get("/datasets").text
    row = re.search(rf"<tr>.*?{DATASET}.*?</tr>", listing, re.S)[0]
    cells = re.findall(r'<td class="num[^"]*">([^<]*)</td>', row)
    assert cells[:3] == ["3", "3", f"{len(expected.events):,}"]  # dimension, perfs, events
    preview = client.get(f"/datasets/{DATASET}").text
    assert "performances 3" in preview and "Train on it" in preview
    plot = client.get(f"/datasets/{DATASET}/data").json()
    assert plot["dimension"] == 3 and len(plot["values"]) == 2
    assert len(plot["boundaries"]) == 2  # where the 2nd and 3rd performances start


def test_a_dataset_can_be_built_in_impsys_format(client, workspace):
    job = wait_for(client, newest_job(build(client, 3, format="impsy").text))
    assert job["state"] == "done", job
    with zipfile.ZipFile(workspace.datasets / DATASET) as archive:
        assert archive.namelist() == ["perfs.npy"]  # what IMPSY reads
    assert datasets.load(workspace.datasets / DATASET).summary().performances == 3


@pytest.mark.parametrize(
    ("dimension", "message"),
    [
        ("", "choose the dimension"),
        ("three", "choose the dimension"),
        ("1", "at least 2"),
        ("5", "there are no 5d logs in logs/ (logs there: 3d)"),
    ],
)
def test_a_bad_dimension_is_refused_before_any_job_starts(client, workspace, dimension, message):
    response = build(client, dimension)
    assert response.status_code == 400 and message in response.text
    assert list(client.app.state.web.jobs) == []
    assert not any(workspace.datasets.iterdir())


def test_logs_without_performer_events_fail_the_job_with_a_clear_message(client, workspace):
    (workspace.logs / "2024-06-01T10-00-00-4d-mdrnn.log").write_text(
        "2024-06-01T10:00:00.000000,rnn,0.1,0.2,0.3\nnot a log line\n"
    )
    page = build(client, 4)
    job = wait_for(client, newest_job(page.text))
    assert job["state"] == "failed"
    assert job["message"].startswith("the 1 4d logs in logs/ hold no performer events")
    assert str(workspace.root) not in job["message"]
    assert not (workspace.datasets / "training-dataset-4d.npz").exists()
    shown = client.get("/datasets")
    assert shown.status_code == 200 and 'data-state="failed"' in shown.text
    assert "hold no performer events" in shown.text


def test_an_unknown_job_is_a_404_with_a_message(client):
    response = client.get("/api/jobs/feedbeef")
    assert response.status_code == 404 and "no such job" in response.json()["error"]


# -- uploading, downloading and deleting datasets -----------------------------------------


def test_an_antiphon_dataset_upload_is_kept(client, workspace, tmp_path):
    path = datasets.save(
        tmp_path / "mine-3d.npz", datasets.Dataset.from_performances(performances(3, [80, 60]))
    )
    response = upload(client, "mine-3d.npz", path.read_bytes())
    assert response.status_code == 200
    assert "Uploaded mine-3d.npz: 2 performances, 140 events, dimension 3." in response.text
    assert (workspace.datasets / "mine-3d.npz").read_bytes() == path.read_bytes()
    again = upload(client, "mine-3d.npz", b"something else")
    assert again.status_code == 409 and "already exists" in again.text
    assert (workspace.datasets / "mine-3d.npz").read_bytes() == path.read_bytes()


def test_an_impsy_dataset_upload_is_read_safely_and_kept(client, workspace, tmp_path):
    perfs = performances(4, [50, 70, 30], seed=2)
    path = tmp_path / "training-dataset-4d.npz"
    np.savez_compressed(path, perfs=np.array(perfs, dtype=object))  # as IMPSY writes it
    response = upload(client, path.name, path.read_bytes())
    assert response.status_code == 200 and "3 performances, 150 events, dimension 4" in (
        response.text
    )
    plot = client.get(f"/datasets/{path.name}/data").json()
    assert plot["dimension"] == 4 and plot["events"] == 150
    assert plot["values"][0][:2] == pytest.approx(perfs[0][:2, 1], abs=1e-4)


class _RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_dataset_is_refused_and_runs_nothing(client, workspace, tmp_path):
    marker = tmp_path / "pwned"
    npy = io.BytesIO()
    np.lib.format.write_array(npy, np.empty(1, dtype=object), allow_pickle=True)
    header = npy.getvalue()[: npy.getvalue().index(b"\n") + 1]
    payload = pickle.dumps(np.array([_RunsAShellCommand(marker)], dtype=object))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("perfs.npy", header + payload)
    response = upload(client, "training-dataset-4d.npz", archive.getvalue())
    assert response.status_code == 400
    assert "training-dataset-4d.npz was not kept" in response.text
    assert "refusing to load" in response.text and "Traceback" not in response.text
    assert not marker.exists()
    assert list(workspace.datasets.iterdir()) == []  # nor its staging copy


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"hello", "datasets are .npz files"),
        ("broken.npz", b"not a zip at all", "broken.npz was not kept"),
        ("../escape.npz", b"PK", "escape.npz was not kept"),  # only the base name counts
    ],
)
def test_bad_dataset_uploads_are_refused(client, workspace, name, content, message):
    response = upload(client, name, content)
    assert 400 <= response.status_code < 500 and message in response.text
    assert list(workspace.datasets.iterdir()) == []
    assert not (workspace.root / "escape.npz").exists()


def test_an_upload_without_a_file_is_a_400(client):
    response = client.post(
        f"/datasets/upload?csrf_token={token(client)}", files={"other": ("x", b"")}
    )
    assert response.status_code == 400 and "choose a dataset file" in response.text


def test_a_dataset_downloads_and_deletes_after_confirmation(client, workspace, tmp_path):
    path = datasets.save(
        workspace.datasets / DATASET, datasets.Dataset.from_performances(performances(3, [60]))
    )
    content = path.read_bytes()
    download = client.get(f"/datasets/{DATASET}/download")
    assert download.status_code == 200 and download.content == content
    assert DATASET in download.headers["content-disposition"]
    ask = client.post("/datasets/delete", data={"csrf_token": token(client), "name": DATASET})
    assert ask.status_code == 200 and "cannot be undone" in ask.text and path.exists()
    done = client.post(
        "/datasets/delete",
        data={"csrf_token": token(client), "name": DATASET, "confirmed": "1"},
        headers=HTML,
    )
    assert done.status_code == 200 and "Deleted 1 dataset." in done.text
    assert not path.exists()
    assert client.get(f"/datasets/{DATASET}/download").status_code == 404


def test_a_corrupt_dataset_is_listed_with_its_problem(client, workspace):
    (workspace.datasets / "odd.npz").write_bytes(b"garbage")
    listing = client.get("/datasets")
    assert listing.status_code == 200 and "odd.npz is not a readable .npz dataset" in listing.text
    assert client.get("/datasets/odd.npz/data").status_code == 400
    assert "odd.npz" not in client.get("/train").text  # nothing to train on


# -- the Train page -----------------------------------------------------------------------


def test_without_torch_the_train_page_says_how_to_train(client, workspace, monkeypatch):
    monkeypatch.setattr(train_page, "torch_available", lambda: False)
    datasets.save(
        workspace.datasets / DATASET, datasets.Dataset.from_performances(performances(3, [60]))
    )
    page = client.get("/train").text
    assert "This computer cannot train" in page
    assert "pip install -e '.[train]'" in page
    assert "upload the model" in page and 'action="/train/start"' not in page
    refused = client.post(
        "/train/start", data={"csrf_token": token(client), "dataset": DATASET, "size": "xxs"}
    )
    assert refused.status_code == 409 and "training needs PyTorch" in refused.text
    assert list(client.app.state.web.jobs) == []


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"dataset": "missing.npz"}, 404, "no dataset called missing.npz"),
        ({"dataset": "../config.toml"}, 400, "not a plain file name"),
        ({"size": "huge"}, 400, "unknown size 'huge'"),
        ({"epochs": "many"}, 400, "epochs and minutes must be numbers"),
    ],
)
def test_bad_training_requests_are_refused(client, workspace, monkeypatch, fields, status, message):
    monkeypatch.setattr(train_page, "torch_available", lambda: True)
    datasets.save(
        workspace.datasets / DATASET, datasets.Dataset.from_performances(performances(3, [60]))
    )
    form = {"csrf_token": token(client), "dataset": DATASET, "size": "xxs", **fields}
    response = client.post("/train/start", data=form)
    assert response.status_code == status and message in response.text
    assert list(client.app.state.web.jobs) == []


@pytest.fixture
def trainable(workspace):
    """A small real dataset: a few seconds of the performer's sensor style."""
    pytest.importorskip("torch")
    performer = Performer(3, seed=3)
    data = datasets.Dataset.from_performances([performer.performance(20) for _ in range(3)])
    return datasets.save(workspace.datasets / DATASET, data)


def start_training(client, epochs):
    return client.post(
        "/train/start",
        data={"csrf_token": token(client), "dataset": DATASET, "size": "xxs", "epochs": epochs},
        headers=HTML,
    )


@pytest.mark.slow
def test_a_training_run_from_the_train_page_ends_with_a_model(client, workspace, trainable):
    form = client.get(f"/train?dataset={DATASET}").text
    assert f'<option value="{DATASET}" selected>' in form and "<option>xxs</option>" in form
    page = start_training(client, 2)
    assert page.status_code == 200
    assert f"Training started: Model size xxs on {DATASET}." in page.text
    job = wait_for(client, newest_job(page.text))
    assert job["kind"] == "train" and job["state"] == "done", job
    assert job["message"].startswith("Reached 2 epochs; best validation NLL")
    assert [e["epoch"] for e in job["epochs"]] == [1, 2]
    assert all(np.isfinite([e["train_nll"], e["val_nll"]]).all() for e in job["epochs"])

    model = workspace.models / job["result"]
    loaded = files.load(model)
    assert loaded.weights.architecture.dimension == 3
    assert loaded.metadata["training"]["dataset"]["file"] == DATASET
    assert min(e["val_nll"] for e in job["epochs"]) == pytest.approx(
        loaded.metadata["training"]["best_val_nll_scaled"], abs=1e-4
    )
    assert not list(workspace.models.glob("*.checkpoint.pt"))  # a finished run tidies up
    assert job["result"] in client.get("/models").text
    done = client.get("/train").text
    assert 'data-state="done"' in done and f"models/{job['result']}" in done
    assert f'<input type="hidden" name="name" value="{job["result"]}">' in done  # "Play it now"


@pytest.mark.slow
def test_stopping_a_run_keeps_the_best_model_so_far(client, workspace, trainable):
    job_id = newest_job(start_training(client, 50).text)
    job = wait_for(client, job_id, until=lambda j: j["epochs"] or j["state"] != "running")
    assert job["state"] == "running" and len(job["epochs"]) >= 1, job
    progress = client.app.state.web.jobs.get(job_id).progress_file
    assert progress.is_file()

    second = start_training(client, 2)
    assert second.status_code == 409 and "already running" in second.text

    stopping = client.post("/train/stop", data={"csrf_token": token(client), "job": job_id})
    assert stopping.status_code == 200 and "the best model so far is kept" in stopping.text
    job = wait_for(client, job_id)
    assert job["state"] == "stopped", job
    assert job["message"].startswith("Interrupted; best validation NLL")
    assert len(job["epochs"]) < 50
    model = workspace.models / job["result"]
    assert files.load(model).metadata["training"]["best_val_nll_scaled"] == pytest.approx(
        min(e["val_nll"] for e in job["epochs"]), abs=1e-4
    )
    assert list(workspace.models.glob("*.checkpoint.pt"))  # kept, to resume from
    assert not progress.parent.exists()  # the progress file's temporary folder is tidied
    assert client.post(
        "/train/stop", data={"csrf_token": token(client), "job": "feedbeef"}
    ).status_code == (404)


# -- one job of each kind; jobs end with the web UI ---------------------------------------


def blocking_log(logs, dimension=3):
    """A log that is a named pipe: a build reading it waits until the test writes."""
    path = logs / f"2024-05-02T10-00-00-{dimension}d-mdrnn.log"
    os.mkfifo(path)
    return path


def worker_processes():
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):  # ended meanwhile, or a zombie
            if "multiprocessing.spawn" in " ".join(child.cmdline()):
                found.append(child)
    return found


def test_one_dataset_build_runs_at_a_time_and_others_are_refused(client, workspace):
    ending = {p.pid for p in worker_processes()}  # an earlier test's, maybe still ending
    fifo = blocking_log(workspace.logs)
    first = newest_job(build(client, 3).text)
    wait_for(client, first, until=lambda j: j["message"].startswith("Reading the 3d logs"))
    for _ in range(3):
        again = build(client, 3)
        assert again.status_code == 409
        assert f"a dataset build is already running ({DATASET} from logs/)" in again.text
    assert [j.id for j in client.app.state.web.jobs] == [first]
    assert len([p for p in worker_processes() if p.pid not in ending]) == 1

    with open(fifo, "w") as f:  # let the build read its last log (one performer event)
        f.write("2024-05-02T10:00:00.000000,interface,0.1,0.2\n")
    fifo.unlink()
    assert wait_for(client, first)["state"] == "done"
    second = newest_job(build(client, 3).text)  # the next one may start
    assert wait_for(client, second)["state"] == "done"


def _on_antiphons_loop(scenario):
    """Run on the select()-based loop `antiphon run` uses: a descriptor closed while
    the loop still watches it fails the whole loop there (EBADF)."""
    from antiphon.engine.schedule import new_event_loop

    loop = new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(scenario, 60))
    finally:
        loop.close()


def test_closing_the_jobs_ends_a_build_and_its_process(workspace):
    import psutil

    from antiphon.web.jobs import Jobs
    from antiphon.web.pages.datasets import build_dataset

    blocking_log(workspace.logs)

    async def scenario():
        jobs = Jobs()
        job = jobs.in_worker(
            "dataset", "test", build_dataset, workspace.logs, workspace.datasets / DATASET, 3, False
        )
        while not job.message.startswith("Reading"):
            await asyncio.sleep(0.05)
        worker = psutil.Process(job.worker.pid)  # not a list: another test's may be ending
        await jobs.close()
        await asyncio.sleep(0.1)  # the loop goes on selecting: no closed descriptor in it
        return job, worker

    job, worker = _on_antiphons_loop(scenario())
    assert job.state == "stopped" and "antiphon was stopping" in job.message
    assert not job.worker.is_alive() and not worker.is_running()
    assert not (workspace.datasets / DATASET).exists()


def test_a_job_process_that_does_not_stop_is_killed_after_the_grace(workspace, tmp_path):
    from antiphon.web.jobs import Jobs

    deaf = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"  # noqa: E501
    progress = tmp_path / "progress" / "progress.jsonl"
    progress.parent.mkdir()

    async def scenario():
        jobs = Jobs()
        job = jobs.in_process(
            "train", "deaf", [sys.executable, "-c", deaf], workspace.root, progress
        )
        while not job.output:
            await asyncio.sleep(0.05)
        started = time.monotonic()
        await jobs.close(grace=0.5)
        return job, time.monotonic() - started

    job, took = _on_antiphons_loop(scenario())
    assert job.process.returncode == -signal.SIGKILL
    assert job.state == "stopped" and "before it saved a model" in job.message
    assert took < 30  # it did not wait for the process's own minute


def test_a_worker_that_cannot_start_fails_its_job_with_the_reason(workspace):
    from antiphon.web.jobs import Jobs

    async def scenario():
        jobs = Jobs()
        job = jobs.in_worker("dataset", "test", lambda progress: ("never", None))
        while job.state == "running":
            await asyncio.sleep(0.05)
        return job, jobs.running("dataset")

    job, running = _on_antiphons_loop(scenario())
    assert job.state == "failed" and job.message.startswith("could not start a worker process")
    assert running is None  # the next build may start
