"""The web UI in headless Chromium against a real `antiphon run`.

Set ANTIPHON_SCREENSHOTS=DIR to keep a screenshot of every page (``make screenshots``
writes them to docs/screenshots/).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from peers import Instrument
from pythonosc.udp_client import SimpleUDPClient

from antiphon.data.performer import write_logs
from workspaces import edited, save_model

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
SHOTS = os.environ.get("ANTIPHON_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors  # no JavaScript errors on any page


def shot(page, name: str) -> None:
    if SHOTS:
        path = Path(SHOTS) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        shrink(path)


def shrink(path: Path) -> None:
    """The pages' flat colours fit a 256-colour palette: a third of the bytes, same look."""
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with matplotlib; without it the PNG stays as taken
        return
    with Image.open(path) as image:
        palette = image.convert("RGB").quantize(colors=256)
    palette.save(path, optimize=True)


def play(instrument: Instrument, seconds: float) -> threading.Thread:
    """A performer on OSC, in the background: slow sweeps of every control."""

    def perform() -> None:
        client = SimpleUDPClient("127.0.0.1", instrument.osc_port)
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < seconds:
            phase = (i % 50) / 50
            client.send_message("/interface", [phase, 1 - phase, abs(0.5 - phase) * 2])
            i += 1
            time.sleep(0.06)  # pacing: the performer's playing

    thread = threading.Thread(target=perform, daemon=True)
    thread.start()
    return thread


def wait_for_last_input(page) -> None:
    page.wait_for_function(
        "() => document.querySelector('[data-field=\"engine.last_input.values\"]')"
        ".textContent.includes(',')",
        timeout=10_000,
    )


def wait_for_browser_input(instrument, check=lambda values: True, timeout=10.0) -> list[float]:
    """Until the engine's last input came from the browser and passes ``check``."""
    deadline = time.monotonic() + timeout
    while True:
        last = instrument.http.get("/api/status").json()["engine"]["last_input"]
        if last and last["source"] == "browser" and check(last["values"]):
            return last["values"]
        assert time.monotonic() < deadline, last
        time.sleep(0.05)


def voice(page, name: str) -> dict:
    return page.evaluate(f"() => window.antiphonVoice.{name}()")


def test_playing_on_the_play_page_is_answered_heard_and_logged(page, instrument):
    page.goto(f"{instrument.url}/play")
    assert page.locator("nav a").first.inner_text() == "Play"
    assert page.locator(".ptrack").count() == 3 and page.locator(".pad").count() == 1
    page.wait_for_selector("text=connected")
    page.click('button:text-is("▶ Start sound")')  # as browsers require: sound after a click
    page.wait_for_function("() => window.antiphonVoice.state() === 'running'")
    track = page.locator(".ptrack").first.bounding_box()
    middle = track["y"] + track["height"] / 2
    page.mouse.move(track["x"] + 4, middle)
    page.mouse.down()
    for i in range(30):  # a drag across the first control: one input per move
        page.mouse.move(track["x"] + track["width"] * (0.1 + 0.02 * i), middle)
        time.sleep(0.02)  # pacing: the performer's playing
    page.mouse.up()
    wait_for_browser_input(instrument, lambda values: abs(values[0] - 0.68) < 0.03)
    # the model's answers reach the audio graph: the voice's pitch follows the last one
    page.wait_for_function("() => window.antiphonVoice.latencies.length >= 5", timeout=20_000)
    answer = page.locator(".pvalue").first.inner_text()
    assert "→" in answer  # the answer marker moved too
    page.wait_for_function(
        """() => {
          const v = window.antiphonVoice;
          const want = v.targets().model.pitch, now = v.now().model.pitch;
          const mapped = 110 * 2 ** (3 * v.lastOutput[0]);  // Voice.set's pitch mapping
          return Math.abs(now - want) < 0.01 * want && Math.abs(want - mapped) < 1e-6;
        }"""
    )
    assert "Sounding" in page.locator('[data-play="sounding"]').inner_text()
    page.locator(".ptrack").nth(2).focus()  # the keyboard plays too
    before = wait_for_browser_input(instrument)
    page.keyboard.press("End")
    wait_for_browser_input(instrument, lambda values: values[2] == 1.0 and values != before)
    page.click('[data-play="hear-me"]')
    page.locator(".ptrack").nth(2).press("PageDown")
    page.wait_for_function("() => window.antiphonVoice.targets().performer.loudness !== undefined")
    shot(page, "play")
    page.click('button:text-is("● Record a take")')
    page.wait_for_selector("text=recording")
    page.locator(".ptrack").nth(1).press("Home")
    wait_for_browser_input(instrument, lambda values: values[1] == 0.0)
    page.click('button:text-is("■ Stop the take")')
    page.wait_for_selector("text=take recorded in")
    played = list(instrument.workspace.logs.glob("*-browser-4d-mdrnn.log"))
    assert len(played) == 2  # the run's log, then the take
    page.goto(f"{instrument.url}/logs")
    assert page.locator("td:text-is('played in the browser')").count() == 2


def test_the_phone_plays_with_its_motion(page, instrument):
    page.goto(f"{instrument.url}/play")
    page.wait_for_selector("text=connected")
    assert page.locator('[data-play="insecure"]').is_hidden()  # localhost: a secure context
    page.click('button:text-is("Play with motion")')
    page.wait_for_selector("text=tilt the device")
    page.evaluate(
        """() => window.dispatchEvent(new DeviceOrientationEvent("deviceorientation",
             {alpha: 90, beta: 45, gamma: -45}))"""
    )
    values = wait_for_browser_input(instrument)
    assert values == [0.25, 0.75, 0.25]  # left-right, front-back, turning


def test_auditions_sound_with_a_moving_cursor(page, instrument):
    page.goto(f"{instrument.url}/play")
    page.fill('input[name="seconds"]', "3")
    page.click('button:text-is("Generate and play")')
    page.wait_for_selector(".audition .cursor:not([hidden])")
    state = page.locator('[data-play="audition-state"]')
    assert "a.safetensors at sigmatemp" in state.inner_text()
    page.wait_for_function("() => window.antiphonVoice.targets().model.pitch > 0", timeout=10_000)
    page.wait_for_function(
        "() => document.querySelector('[data-play=audition-state]').textContent.includes('played')",
        timeout=20_000,
    )
    write_logs(instrument.workspace.logs, 4, performances=1, minutes=0.1, seed=3)
    (log,) = instrument.workspace.logs.glob("*-synthetic-4d-mdrnn.log")
    page.goto(f"{instrument.url}/logs/{log.name}")
    assert "synthetic (data synth)" in page.locator(".page-head").inner_text()
    page.click('button:text-is("▶ Play this log")')
    page.wait_for_selector(".plot-wrap .cursor:not([hidden])")
    page.wait_for_function("() => window.antiphonVoice.targets().performer.pitch > 0")


def test_dashboard_shows_what_is_playing(page, instrument):
    page.goto(instrument.url)
    assert page.locator(".state.on").inner_text() == "playing"
    assert page.get_by_text("a.safetensors").first.is_visible()
    assert page.get_by_text("polyphony").first.is_visible()
    assert page.locator('[data-field="engine.last_input.values"]').inner_text() == "—"
    performer = play(instrument, 3)
    wait_for_last_input(page)  # the page refreshes itself
    performer.join()
    shot(page, "dashboard")


def test_live_values_arrive_from_osc(page, instrument):
    page.goto(f"{instrument.url}/live")
    performer = play(instrument, 4)
    page.wait_for_function(
        "() => document.querySelector('.bar .value').textContent.includes('→ 0')"
        " || /\\d\\.\\d\\d → \\d/.test(document.querySelector('.bar .value').textContent)",
        timeout=10_000,
    )
    width = page.locator(".bar .in").first.evaluate("el => el.style.width")
    assert width.endswith("%") and width != "0.0%"
    assert "in ·" in page.locator("[data-live=rates]").inner_text()
    performer.join()
    shot(page, "live")


def test_switching_mode_from_the_control_page(page, instrument):
    page.goto(f"{instrument.url}/control")
    page.click('button[data-arg="battle"]')
    page.wait_for_function(
        "() => document.querySelector('[data-control-result]').textContent.includes('battle')"
    )
    assert instrument.http.get("/api/status").json()["engine"]["mode"] == "battle"
    assert "active" in page.get_attribute('button[data-arg="battle"]', "class")
    page.fill('input[data-slider-number="/impsy/timescale"]', "2")
    page.dispatch_event('input[data-slider-number="/impsy/timescale"]', "change")
    page.wait_for_function(
        "() => document.querySelector('[data-control-result]').textContent.includes('timescale')"
    )
    assert instrument.http.get("/api/status").json()["engine"]["timescale"] == 2.0
    shot(page, "control")


def test_upload_a_model_and_use_it(page, instrument, tmp_path):
    model = save_model(tmp_path / "fresh.safetensors", 4, "xs", seed=7)
    page.goto(f"{instrument.url}/models")
    page.set_input_files('input[type="file"]', str(model))
    page.click('button:text-is("Upload")')
    page.wait_for_selector("text=Uploaded fresh.safetensors")
    page.click('tr:has-text("fresh.safetensors") button:text-is("Use")')
    page.wait_for_selector("text=The engine reloaded it")
    assert (
        instrument.http.get("/api/status").json()["engine"]["model"]["name"] == "fresh.safetensors"
    )
    assert page.locator('tr.current:has-text("fresh.safetensors")').count() == 1


def test_a_config_with_an_error_is_rejected(page, instrument):
    before = instrument.workspace.config_path.read_text()
    page.goto(f"{instrument.url}/config")
    shot(page, "config")
    text = page.input_value("textarea")
    page.fill("textarea", edited(text, {"interaction.threshold": -3}))
    page.click('button[value="apply"]')
    page.wait_for_selector("text=Not saved")
    assert "interaction.threshold" in page.locator(".problem").inner_text()
    assert instrument.workspace.config_path.read_text() == before
    shot(page, "config-error")
    page.fill("textarea", edited(text, {"interaction.threshold": 0.4}))
    page.click('button[value="apply"]')
    page.wait_for_selector("text=The engine reloaded it")
    assert instrument.http.get("/api/status").json()["engine"]["threshold"] == 0.4


def test_the_setup_form_makes_a_config(page, instrument):
    page.goto(f"{instrument.url}/config/setup")
    page.fill('input[name="title"]', "Knob box")
    page.fill('input[name="dimension"]', "4")
    page.check('input[name="midi"]')
    page.click('button:text-is("Update the form")')  # one mapping row per control
    assert page.locator('select[name^="midi_in_0_"][name$="_kind"]').count() == 3
    page.fill('input[name="midi_in_0_name"]', "nanoKONTROL")
    page.fill('input[name="midi_in_0_1_control"]', "14")
    shot(page, "setup")
    page.click('button:text-is("Make the config")')
    page.wait_for_selector("text=Here is your config with the setup form")
    text = page.input_value("textarea")
    assert 'title = "Knob box"' in text and 'in_device = ["nanoKONTROL"]' in text
    assert '["control_change", 1, 14]' in text  # the second control's mapping


def test_a_password_asks_for_a_login(page, instrument):
    instrument.http.get("/")  # the CSRF cookie
    text = instrument.workspace.config_path.read_text()
    saved = instrument.http.put(
        "/api/config",
        content=edited(text, adding={"webui.password": "s3cret"}),
        headers={"x-csrf-token": instrument.http.cookies["antiphon_csrf"]},
    )
    assert saved.status_code == 200, saved.text
    page.goto(f"{instrument.url}/logs")
    assert page.url.endswith("/login?next=/logs")
    shot(page, "login")
    page.fill('input[name="password"]', "guess")
    page.click('button:text-is("Log in")')
    page.wait_for_selector("text=That password is not right")
    page.fill('input[name="password"]', "s3cret")
    page.click('button:text-is("Log in")')
    page.wait_for_url(f"{instrument.url}/logs")
    assert page.locator("h1").inner_text() == "Logs"


def loss_pixels(page) -> int:
    """Pixels of the validation curve's colour on the training run's loss plot."""
    return page.locator("canvas.loss").first.evaluate(
        """canvas => {
          const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4)
            if (d[i] > 200 && d[i + 1] > 100 && d[i + 1] < 160 && d[i + 2] < 120) n++;
          return n;
        }"""
    )


@pytest.mark.slow
def test_build_a_dataset_and_train_a_model(page, instrument):
    pytest.importorskip("torch")
    write_logs(instrument.workspace.logs, 4, performances=3, minutes=0.3, seed=5)
    page.goto(f"{instrument.url}/logs")
    assert page.locator("table.files tbody tr").count() >= 3
    shot(page, "logs")

    page.goto(f"{instrument.url}/datasets")
    page.select_option('select[name="dimension"]', "4")
    page.check('input[name="synthetic"]')  # the logs here are synthetic: no one played them
    page.click('button:text-is("Build the dataset")')
    page.wait_for_selector('table.files a:text-is("training-dataset-4d.npz")', timeout=30_000)
    assert page.locator('[data-job][data-state="done"]').count() == 1
    shot(page, "datasets")

    page.click('a:text-is("training-dataset-4d.npz")')
    page.click('a:text-is("Train on it")')
    assert page.input_value('select[name="dataset"]') == "training-dataset-4d.npz"
    page.select_option('select[name="size"]', "xxs")
    page.fill('input[name="epochs"]', "3")
    page.click('button:text-is("Start training")')
    page.wait_for_selector('.job[data-state="running"]')
    page.wait_for_url(f"{instrument.url}/train", timeout=120_000)  # reloads when it ends
    assert page.locator(".job").first.get_attribute("data-state") == "done"
    assert "reached 3 epochs" in page.locator(".job-message").first.inner_text().lower()
    assert loss_pixels(page) > 50  # the validation curve was drawn
    model = page.locator(".job form.actions input[name=name]").first.get_attribute("value")
    assert model and (instrument.workspace.models / model).exists()
    shot(page, "train")

    page.click('a:text-is("See it in Models")')
    row = page.locator(f'tr:has-text("{model}")')
    assert row.count() == 1 and "training-dataset-4d.npz" in row.inner_text()
    shot(page, "models")


@pytest.mark.slow
def test_pages_fit_a_phone(browser, instrument):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    for path in (
        "/play",
        "/",
        "/live",
        "/control",
        "/logs",
        "/datasets",
        "/models",
        "/train",
        "/config",
        "/config/setup",
        "/login",
    ):
        page.goto(f"{instrument.url}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (path, overflow)
    performer = play(instrument, 4)
    page.goto(instrument.url)
    wait_for_last_input(page)
    shot(page, "phone-dashboard")
    page.goto(f"{instrument.url}/live")
    page.wait_for_function(
        "() => /\\d\\.\\d\\d → /.test(document.querySelector('.bar .value').textContent)",
        timeout=10_000,
    )
    performer.join()
    shot(page, "phone-live")
    page.goto(f"{instrument.url}/play")
    page.wait_for_selector("text=connected")
    page.locator(".pad").first.scroll_into_view_if_needed()
    pad = page.locator(".pad").first.bounding_box()
    page.touchscreen.tap(pad["x"] + pad["width"] * 0.3, pad["y"] + pad["height"] * 0.2)
    wait_for_browser_input(instrument, lambda values: abs(values[0] - 0.3) < 0.05)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar where it belongs
    shot(page, "phone-play")
    page.click("label.menu-button")
    assert page.locator("nav a:text-is('Logs')").is_visible()
    context.close()
