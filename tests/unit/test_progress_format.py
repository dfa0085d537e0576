"""The progress file: what `antiphon train` writes is what the web UI reads."""

import dataclasses
import json
import subprocess
import sys
import typing

import pytest

from antiphon.training import progress_format
from antiphon.training.progress_format import Batch, Done, Epoch, Note, Start, decode, encode
from antiphon.web.jobs import Job

EXAMPLES = {
    Start: Start("/ws/models/m.safetensors", 3),
    Batch: Batch(2, 3, 5, 10, -1.25),
    Epoch: Epoch(2, 3, -1.5, -1.25, True, 4.5, 2e-3),
    Note: Note("interrupted: keeping the best model so far"),
    Done: Done("/ws/models/m.safetensors", "reached 3 epochs", "reached 3 epochs; best …"),
}


def test_every_record_has_an_example_here():
    assert set(EXAMPLES) == set(progress_format.RECORDS.values())
    assert set(typing.get_args(progress_format.Event)) == set(EXAMPLES)


@pytest.mark.parametrize("record", EXAMPLES.values(), ids=lambda r: r.name)
def test_every_record_survives_a_line(record):
    line = encode(record, when=1.5)
    assert line.endswith("\n") and line.count("\n") == 1
    fields = json.loads(line)
    assert fields["event"] == record.name and fields["time"] == 1.5
    assert decode(line) == record


@pytest.mark.parametrize("record", EXAMPLES.values(), ids=lambda r: r.name)
def test_a_record_missing_a_field_is_an_error_not_silence(record):
    for name in (f.name for f in dataclasses.fields(record)):
        fields = json.loads(encode(record))
        del fields[name]
        with pytest.raises(ValueError, match=repr(name)):
            decode(json.dumps(fields))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"event": "lap"}', "unknown progress record 'lap'"),
        (
            '{"event": "batch", "epoch": "2", "epochs": 3, "done": 1, "total": 2, "train_nll": 1}',
            "batch.epoch should be int",
        ),
        ('{"event": "note", "message": 7}', "note.message should be str"),
        (
            '{"event": "batch", "epoch": true, "epochs": 3, "done": 1, "total": 2, "train_nll": 1}',
            "batch.epoch should be int",
        ),
    ],
)
def test_malformed_lines_say_what_is_wrong(line, message):
    with pytest.raises(ValueError, match=message):
        decode(line)


def test_the_reader_follows_the_writer_line_by_line(tmp_path):
    """The training process's reporter writes; the web UI's job reads as lines arrive."""
    pytest.importorskip("torch")
    from antiphon.training.progress import JsonLinesReporter
    from antiphon.training.train import EpochRecord

    path = tmp_path / "run" / "progress.jsonl"
    writer = JsonLinesReporter(path, epochs=2, min_interval=0.0)
    job = Job("train", "test", progress_file=path)
    model = tmp_path / "models" / "m.safetensors"

    writer.begin_run(model)
    assert job.to_dict()["message"] == "Training m.safetensors"
    writer.begin_epoch(1, batches=4)
    writer.advance(3.0)
    writer.advance(2.0)
    state = job.to_dict()
    assert state["progress"] == pytest.approx(0.25) and state["message"] == "Epoch 1 of 2"
    writer.advance(2.0)
    writer.advance(1.0)
    writer.end_epoch(EpochRecord(1, 2.0, 1.5, 3.0, 2e-3, 64), best=True)
    state = job.to_dict()
    assert state["progress"] == pytest.approx(0.5)
    assert state["epochs"] == [
        {
            "epoch": 1,
            "epochs": 2,
            "train_nll": 2.0,
            "val_nll": 1.5,
            "best": True,
            "seconds": 3.0,
            "learning_rate": 2e-3,
        }
    ]
    writer.note("interrupted: keeping the best model so far")
    writer.end_run(model, "interrupted", "interrupted; best validation NLL 1.500 at epoch 1")
    writer.close()
    state = job.to_dict()
    assert state["result"] == "m.safetensors"
    assert state["message"] == "Interrupted; best validation NLL 1.500 at epoch 1"


def test_lines_the_reader_cannot_read_are_counted_on_the_page(tmp_path):
    path = tmp_path / "progress.jsonl"
    good = encode(Batch(1, 2, 1, 2, 0.5))
    renamed = good.replace('"done"', '"finished"')  # a writer out of step with the reader
    path.write_text(good + renamed + renamed)
    state = Job("train", "test", progress_file=path).to_dict()
    assert state["progress"] == pytest.approx(0.25)
    assert state["message"] == "Epoch 1 of 2 (2 progress lines could not be read)"


def test_a_half_written_line_waits_for_its_end(tmp_path):
    path = tmp_path / "progress.jsonl"
    line = encode(Batch(1, 2, 1, 2, 0.5))
    path.write_text(line[:10])
    job = Job("train", "test", progress_file=path)
    assert job.to_dict()["progress"] == 0.0
    path.write_text(line)
    assert job.to_dict()["progress"] == pytest.approx(0.25)
    assert job.unreadable == 0


def test_the_web_ui_reads_progress_without_an_ml_framework():
    code = (
        "import sys; import antiphon.web.jobs; "
        "print([m for m in ('torch', 'rich', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
