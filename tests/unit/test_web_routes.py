"""Web UI routes through Starlette's test client: pages, files, security, config."""

import html
import io
import re
import zipfile
from datetime import datetime

import pytest
import tomlkit
from starlette.testclient import TestClient

from antiphon import config as config_schema
from antiphon.web.app import create_app
from antiphon.web.config_file import KEEP, history
from webclient import HTML, LOCAL, token
from workspaces import edit_config, edited, save_model, write_log


@pytest.fixture
def workspace(workspace):
    """The shared fresh workspace, with two logs of dimension 9, a model of dimension 9
    (with training metadata) and one of dimension 4, and a dataset that is not one."""
    write_log(workspace.logs, datetime(2024, 5, 1, 14, 30), events=50)
    write_log(workspace.logs, datetime(2024, 5, 2, 9, 0), events=20)
    training = {"training": {"best_val_nll_scaled": -1.5, "dataset": "mine"}}
    save_model(workspace.models / "nine.safetensors", 9, "xs", metadata=training)
    save_model(workspace.models / "four.safetensors", 4, "xs")
    (workspace.datasets / "training-dataset-9d.npz").write_bytes(b"not really a dataset")
    return workspace


def test_every_page_renders(client):
    for url in (
        "/",
        "/logs",
        "/models",
        "/datasets",
        "/config",
        "/config/setup",
        "/logs/2024-05-01T14-30-00-9d-mdrnn.log",
    ):
        response = client.get(url, headers=HTML)
        assert response.status_code == 200, url
        assert "<nav>" in response.text and "antiphon" in response.text
        assert not re.search(r'(src|href)="(https?:)?//', response.text)  # nothing off-box


def test_an_unknown_page_says_which(client):
    response = client.get("/nowhere", headers=HTML)
    assert response.status_code == 404 and "there is no page at /nowhere" in response.text
    assert "<nav>" in response.text


def test_dashboard_counts_and_status_api(client):
    status = client.get("/api/status").json()
    assert status["workspace"] == {"logs": 2, "datasets": 1, "models": 2}
    assert status["engine"] is None and status["system"]["cpus"] >= 1


def test_logs_list_and_preview_data(client):
    page = client.get("/logs").text
    assert "2024-05-01 14:30" in page and "2024-05-01T14-30-00-9d-mdrnn.log" in page
    data = client.get("/logs/2024-05-01T14-30-00-9d-mdrnn.log/data").json()
    assert data["events"] == 50 and data["dimension"] == 9 and len(data["values"]) == 8
    assert data["t"][0] == 0.0 and data["t"][-1] == pytest.approx(4.9)
    assert data["values"][0][:3] == [0.0, 0.1, 0.2]


def test_download_one_selected_and_all_logs(client, workspace):
    one = client.get("/logs/2024-05-02T09-00-00-9d-mdrnn.log/download")
    assert one.content == (workspace.logs / "2024-05-02T09-00-00-9d-mdrnn.log").read_bytes()
    selected = client.post(
        "/logs/archive",
        data={"csrf_token": token(client), "name": ["2024-05-02T09-00-00-9d-mdrnn.log"]},
    )
    with zipfile.ZipFile(io.BytesIO(selected.content)) as z:
        assert z.namelist() == ["2024-05-02T09-00-00-9d-mdrnn.log"]
        assert z.read(z.namelist()[0]) == one.content
    everything = client.post("/logs/archive", data={"csrf_token": token(client), "all": "1"})
    with zipfile.ZipFile(io.BytesIO(everything.content)) as z:
        assert sorted(z.namelist()) == sorted(p.name for p in workspace.logs.iterdir())


def test_delete_asks_for_confirmation_first(client, workspace):
    name = "2024-05-02T09-00-00-9d-mdrnn.log"
    ask = client.post("/logs/delete", data={"csrf_token": token(client), "name": name})
    assert ask.status_code == 200 and "cannot be undone" in ask.text
    assert (workspace.logs / name).exists()
    done = client.post(
        "/logs/delete", data={"csrf_token": token(client), "name": name, "confirmed": "1"}
    )
    assert done.status_code == 200 and "Deleted 1 log." in done.text
    assert not (workspace.logs / name).exists()


def test_delete_all_lists_every_log_before_deleting_them(client, workspace):
    names = sorted(p.name for p in workspace.logs.glob("*.log"))
    ask = client.post("/logs/delete", data={"csrf_token": token(client), "all": "1"})
    assert f"Delete {len(names)} logs?" in ask.text and all(n in ask.text for n in names)
    assert sorted(p.name for p in workspace.logs.glob("*.log")) == names
    done = client.post(
        "/logs/delete", data={"csrf_token": token(client), "name": names, "confirmed": "1"}
    )
    assert f"Deleted {len(names)} logs." in done.text and not list(workspace.logs.glob("*.log"))
    nothing = client.post("/logs/delete", data={"csrf_token": token(client), "all": "1"})
    assert "There are no logs to delete." in nothing.text


@pytest.mark.parametrize(
    "name", ["../config.toml", "..", ".antiphon-web-secret", "a/b.log", "/etc/passwd", "x\x00.log"]
)
def test_traversal_through_form_fields_is_refused(client, workspace, name):
    response = client.post(
        "/logs/delete", data={"csrf_token": token(client), "name": name, "confirmed": "1"}
    )
    assert response.status_code in (400, 403)
    assert workspace.config_path.exists()


@pytest.mark.parametrize(
    "url",
    [
        "/logs/..%2Fconfig.toml/download",
        "/logs/%2e%2e/download",
        "/models/..%2F..%2Fetc%2Fpasswd/download",
        "/datasets/.hidden/download",
    ],
)
def test_traversal_through_urls_is_refused(client, url):
    response = client.get(url)
    assert 400 <= response.status_code < 500
    assert "root:" not in response.text


def test_symlinks_out_of_the_workspace_are_neither_listed_nor_served(client, workspace, tmp_path):
    secret = tmp_path / "secret.log"
    secret.write_text("2020-01-01T00:00:00,interface,0.1,0.2\n")
    (workspace.logs / "escape.log").symlink_to(secret)
    assert "escape.log" not in client.get("/logs").text
    assert client.get("/logs/escape.log/download").status_code == 403


def test_post_without_or_with_a_wrong_csrf_token_is_refused(client, workspace):
    name = "2024-05-02T09-00-00-9d-mdrnn.log"
    for data in (
        {"name": name, "confirmed": "1"},
        {"name": name, "confirmed": "1", "csrf_token": "x" * 43},
    ):
        response = client.post("/logs/delete", data=data)
        assert response.status_code == 403 and "CSRF" in response.text
    cross_site = client.post(
        "/logs/delete",
        headers={"origin": "http://evil.example"},
        data={"name": name, "confirmed": "1", "csrf_token": token(client)},
    )
    assert cross_site.status_code == 403 and "cross-site" in cross_site.text
    fresh = TestClient(client.app, base_url=LOCAL)  # a browser that never loaded a page: no cookie
    assert (
        fresh.post(
            "/logs/delete", data={"name": name, "confirmed": "1", "csrf_token": token(client)}
        ).status_code
        == 403
    )
    assert (workspace.logs / name).exists()


def upload(client, name, content):
    return client.post(
        f"/models/upload?csrf_token={token(client)}",
        files={"file": (name, content, "application/octet-stream")},
        headers=HTML,
    )


def test_model_upload_is_validated_before_it_is_kept(client, workspace, tmp_path):
    good = save_model(tmp_path / "new.safetensors", 9, "xxs", seed=1)
    response = upload(client, "new.safetensors", good.read_bytes())
    assert response.status_code == 200 and "Uploaded new.safetensors" in response.text
    assert (workspace.models / "new.safetensors").read_bytes() == good.read_bytes()
    again = upload(client, "new.safetensors", good.read_bytes())
    assert again.status_code == 200 and "already here, exactly the same" in again.text
    other = save_model(tmp_path / "other.safetensors", 9, "xxs", seed=2)
    different = upload(client, "new.safetensors", other.read_bytes())
    assert different.status_code == 409 and "never overwritten" in different.text
    assert (workspace.models / "new.safetensors").read_bytes() == good.read_bytes()
    assert not list(workspace.models.glob(".upload-*"))
    broken = upload(client, "broken.safetensors", good.read_bytes()[:500])
    assert broken.status_code == 400 and "broken.safetensors was not kept" in broken.text
    assert "Traceback" not in broken.text
    assert sorted(p.name for p in workspace.models.iterdir()) == [
        "four.safetensors",
        "new.safetensors",
        "nine.safetensors",
    ]
    assert upload(client, "notes.txt", b"hello").status_code == 400


def test_uploads_over_the_limit_are_refused(client, workspace, monkeypatch):
    from antiphon.web import app as app_module

    monkeypatch.setitem(app_module.UPLOAD_LIMITS, "/models/upload", 1000)
    response = upload(client, "big.safetensors", b"x" * 5000)
    assert response.status_code == 413 and "too large" in response.text
    assert not (workspace.models / "big.safetensors").exists()


def test_use_this_model_updates_the_config_and_keeps_comments(client, workspace):
    response = client.post(
        "/models/use", data={"csrf_token": token(client), "name": "nine.safetensors"}, headers=HTML
    )
    assert response.status_code == 200
    assert "config.toml now plays nine.safetensors" in response.text
    text = workspace.config_path.read_text()
    assert 'file = "models/nine.safetensors"' in text
    assert "# callresponse: the model listens" in text  # comments survive
    assert config_schema.load(workspace.config_path).model_path == (
        workspace.models / "nine.safetensors"
    )
    assert "playing" in client.get("/models").text


def test_use_refuses_a_model_of_another_dimension(client, workspace):
    before = workspace.config_path.read_text()
    response = client.post(
        "/models/use", data={"csrf_token": token(client), "name": "four.safetensors"}
    )
    assert response.status_code == 409 and "dimension 4" in response.text
    assert workspace.config_path.read_text() == before


def test_config_editor_rejects_invalid_text_and_leaves_the_file(client, workspace):
    before = workspace.config_path.read_text()
    bad = edited(before, {"interaction.mode": "solo"})
    response = client.post(
        "/config", data={"csrf_token": token(client), "text": bad, "action": "save"}, headers=HTML
    )
    assert response.status_code == 422
    assert "interaction.mode" in response.text and "solo" in response.text
    assert workspace.config_path.read_text() == before


def test_config_editor_saves_and_keeps_the_previous_config(client, workspace):
    before = workspace.config_path.read_text()
    changed = edited(before, {"interaction.threshold": 0.25})
    response = client.post(
        "/config",
        data={"csrf_token": token(client), "text": changed, "action": "save"},
        headers=HTML,
    )
    assert response.status_code == 200 and "Saved config.toml" in response.text
    assert workspace.config_path.read_text() == changed
    [kept] = history(workspace.config_path)
    assert kept.read_text() == before and kept.name in response.text  # offered to restore
    assert config_schema.load(workspace.config_path).interaction.threshold == 0.25


def test_an_earlier_config_can_be_restored(client, workspace):
    first = workspace.config_path.read_text()
    for threshold in (0.2, 0.3):
        text = edited(first, {"interaction.threshold": threshold})
        saved = client.put("/api/config", content=text, headers={"x-csrf-token": token(client)})
        assert saved.status_code == 200, saved.text
    oldest = history(workspace.config_path)[-1]
    assert oldest.read_text() == first
    response = client.post(
        "/config/restore", data={"csrf_token": token(client), "name": oldest.name}, headers=HTML
    )
    assert response.status_code == 200 and f"Restored {oldest.name}" in response.text
    assert workspace.config_path.read_text() == first
    assert len(history(workspace.config_path)) == 3
    refused = client.post(
        "/config/restore", data={"csrf_token": token(client), "name": "../config.toml"}
    )
    assert refused.status_code == 400


def test_the_history_keeps_the_last_few_configs(client, workspace):
    text = workspace.config_path.read_text()
    for i in range(KEEP + 3):
        changed = edited(text, {"interaction.threshold": round(0.2 + i / 100, 2)})
        response = client.put(
            "/api/config", content=changed, headers={"x-csrf-token": token(client)}
        )
        assert response.status_code == 200
    assert len(history(workspace.config_path)) == KEEP


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        ("models/four.safetensors", "dimension-4 model"),
        ("models/missing.safetensors", "no such model file"),
    ],
)
def test_a_config_that_cannot_play_is_never_saved(client, workspace, model, reason):
    before = workspace.config_path.read_text()
    broken = edited(before, adding={"model.file": model})
    csrf = {"x-csrf-token": token(client)}
    response = client.put("/api/config?apply=1", content=broken, headers=csrf)
    assert response.status_code == 422 and reason in response.json()["error"]
    form = {"csrf_token": token(client), "text": broken, "action": "apply"}
    response = client.post("/config", data=form, headers=HTML)
    assert response.status_code == 422 and reason in html.unescape(response.text)
    assert workspace.config_path.read_text() == before
    assert history(workspace.config_path) == []


def test_example_configs_load_into_the_editor_without_saving(client, workspace):
    before = workspace.config_path.read_text()
    response = client.get("/config?example=antiphon default (OSC)")
    assert response.status_code == 200 and "is unchanged until you do" in response.text
    assert client.get("/config?example=nope").status_code == 404
    assert workspace.config_path.read_text() == before


def test_setup_form_makes_a_runnable_config(client):
    form = {
        "csrf_token": token(client),
        "title": "Box",
        "mode": "polyphony",
        "dimension": "4",
        "osc": "on",
        "osc_server_port": "7000",
        "midi": "on",
        "midi_in_count": "1",
        "midi_out_count": "1",
        "midi_in_0_name": "nanoKONTROL",
        "midi_out_0_name": "Volca",
        "serial": "on",
        "serial_port": "/dev/ttyACM0",
        "websocket": "on",
        "action": "generate",
    }
    for k in range(3):
        form[f"midi_in_0_{k}_kind"] = "control_change"
        form[f"midi_in_0_{k}_control"] = str(20 + k)
        form[f"midi_out_0_{k}_kind"] = "note_on" if k == 0 else "control_change"
    response = client.post("/config/setup", data=form, headers=HTML)
    assert response.status_code == 200
    text = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", response.text, re.S)[1])
    loaded = config_schema.parse(text)
    assert loaded.interaction.mode == "polyphony" and loaded.model.dimension == 4
    assert loaded.osc.server_port == 7000
    assert loaded.midi.in_device == ["nanoKONTROL"]
    assert [m.control for m in loaded.midi.input["nanoKONTROL"]] == [20, 21, 22]
    assert loaded.midi.output["Volca"][0].kind == "note_on"
    assert loaded.serial.port == "/dev/ttyACM0" and len(loaded.websocket.input) == 3


def test_setup_form_starts_from_the_config_and_keeps_what_it_does_not_ask(client, workspace):
    edit_config(
        workspace.config_path,
        {"model.sigmatemp": 0.33, "webui.command_port": 4402, "interaction.mode": "battle"},
        adding={"model.file": "models/nine.safetensors"},
    )
    shown = client.get("/config/setup").text
    assert "<option selected>battle</option>" in shown  # the config's mode
    form = {"csrf_token": token(client), "mode": "polyphony", "dimension": "9", "osc": "on"}
    response = client.post("/config/setup", data=form | {"action": "generate"}, headers=HTML)
    text = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", response.text, re.S)[1])
    made = tomlkit.parse(text)
    assert made["interaction"]["mode"] == "polyphony"  # what the form asked
    assert made["model"]["file"] == "models/nine.safetensors"  # what it did not ask
    assert made["model"]["sigmatemp"] == 0.33 and made["webui"]["command_port"] == 4402
    assert "# callresponse: the model listens" in text  # comments survive


def test_setup_form_grows_mapping_rows_with_the_dimension(client):
    response = client.post(
        "/config/setup",
        data={
            "csrf_token": token(client),
            "dimension": "6",
            "midi": "on",
            "midi_in_count": "2",
            "action": "refresh",
        },
    )
    assert response.text.count('name="midi_in_1_4_kind"') == 1
    assert 'name="midi_in_1_5_kind"' not in response.text


def test_password_protects_every_page(workspace):
    edit_config(workspace.config_path, adding={"webui.password": "s3cret"})
    with TestClient(create_app(workspace), base_url=LOCAL) as c:
        page = c.get("/logs", headers=HTML, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/logs"
        assert c.get("/api/status").status_code == 401
        assert c.get("/logs/2024-05-01T14-30-00-9d-mdrnn.log/download").status_code == 401
        login_page = c.get("/login")
        assert login_page.status_code == 200 and 'type="password"' in login_page.text
        wrong = c.post("/login", data={"csrf_token": token(c), "password": "guess"})
        assert wrong.status_code == 401 and c.get("/api/status").status_code == 401
        right = c.post(
            "/login",
            data={"csrf_token": token(c), "password": "s3cret", "next": "/logs"},
            follow_redirects=False,
        )
        assert right.status_code == 303 and right.headers["location"] == "/logs"
        assert c.get("/api/status").status_code == 200
        c.post("/logout", data={"csrf_token": token(c)})
        assert c.get("/api/status").status_code == 401


def test_changing_the_password_logs_everyone_out(workspace):
    path = workspace.config_path
    edit_config(path, adding={"webui.password": "one"})
    with TestClient(create_app(workspace), base_url=LOCAL) as c:
        c.get("/login")
        c.post("/login", data={"csrf_token": token(c), "password": "one"})
        assert c.get("/api/status").status_code == 200
        new = edited(path.read_text(), {"webui.password": "two"})
        saved = c.post("/config", data={"csrf_token": token(c), "text": new, "action": "save"})
        assert saved.status_code in (200, 401)
        assert c.get("/api/status").status_code == 401
        c.get("/login")
        again = c.post("/login", data={"csrf_token": token(c), "password": "two"})
        assert again.status_code == 200 and c.get("/api/status").status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("post", "/models/upload", {}),
        ("post", "/models/use", {"data": {"name": "missing.safetensors"}}),
        ("post", "/logs/archive", {"data": {"name": "missing.log"}}),
        ("post", "/logs/delete", {"data": {}}),
        ("get", "/logs/missing.log", {}),
        ("get", "/logs/missing.log/data", {}),
        ("get", "/models/missing.safetensors/download", {}),
        ("post", "/config", {"data": {"text": "[[["}}),
    ],
)
def test_malformed_requests_get_a_4xx_not_a_500(client, method, url, kwargs):
    if method == "post":
        kwargs.setdefault("data", {})
        kwargs["data"]["csrf_token"] = token(client)
        if url == "/models/upload":
            url += f"?csrf_token={token(client)}"
    response = getattr(client, method)(url, **kwargs)
    assert 400 <= response.status_code < 500, response.text


def test_the_api_lists_the_logs(client, workspace):
    logs = client.get("/api/logs").json()
    assert {e["name"] for e in logs} == {p.name for p in workspace.logs.iterdir()}
    assert all(e["size"] > 0 and "mtime" in e for e in logs)


def test_a_model_uploaded_through_the_api_can_be_played(client, tmp_path):
    headers = {"x-csrf-token": token(client)}
    model = save_model(tmp_path / "api.safetensors", 9, "xxs", seed=2)
    refused = client.post("/api/models", files={"file": ("x.safetensors", model.read_bytes())})
    assert refused.status_code == 403  # no CSRF token
    created = client.post(
        "/api/models", headers=headers, files={"file": ("api.safetensors", model.read_bytes())}
    )
    assert created.status_code == 201 and created.json()["dimension"] == 9
    used = client.post("/api/models/use", headers=headers, json={"name": "api.safetensors"})
    assert used.status_code == 200 and "api.safetensors" in used.json()["flash"]
    assert 'file = "models/api.safetensors"' in client.get("/api/config").text


def test_the_api_saves_only_a_config_that_loads(client, workspace):
    headers = {"x-csrf-token": token(client)}
    bad = client.put("/api/config", headers=headers, content="[model]\ndimension = 0\n")
    assert bad.status_code == 422 and "model.dimension" in bad.json()["error"]
    assert config_schema.load(workspace.config_path).model.dimension == 9
    good = client.put("/api/config", headers=headers, content="[model]\ndimension = 4\n")
    assert good.status_code == 200
    assert config_schema.load(workspace.config_path).model.dimension == 4


def test_health_check_answers_without_a_login(workspace):
    path = workspace.config_path
    edit_config(path, adding={"webui.password": "p"})
    with TestClient(create_app(workspace), base_url=LOCAL) as c:
        assert c.get("/healthz").json() == {"ok": True, "playing": False}
        assert c.get("/api/logs").status_code == 401


def test_a_config_that_would_lock_out_the_laptop_is_refused(workspace):
    """From a laptop over USB, saving a config whose web UI answers only on the Pi
    itself would cut the laptop off at the next restart."""
    text = workspace.config_path.read_text()
    assert 'host = "127.0.0.1"' in text
    with TestClient(create_app(workspace), base_url=LOCAL, client=("10.55.0.2", 50000)) as laptop:
        laptop.get("/config", headers=HTML)
        refused = laptop.post(
            "/config",
            data={"csrf_token": token(laptop), "text": text + "\n", "action": "save"},
            headers=HTML,
        )
        assert refused.status_code == 422 and "would let only this computer" in refused.text
        assert workspace.config_path.read_text() == text
        reachable = edited(text, {"webui.host": "0.0.0.0"})
        put = laptop.put("/api/config", content=reachable, headers={"x-csrf-token": token(laptop)})
        assert put.status_code == 200 and workspace.config_path.read_text() == reachable
    with TestClient(
        create_app(workspace), base_url=LOCAL, client=("127.0.0.1", 50000)
    ) as on_the_pi:
        on_the_pi.get("/config", headers=HTML)
        put = on_the_pi.put("/api/config", content=text, headers={"x-csrf-token": token(on_the_pi)})
        assert put.status_code == 200 and workspace.config_path.read_text() == text
