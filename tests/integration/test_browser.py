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

from antiphon.model import files
from antiphon.model.mdrnn import Weights
from antiphon.model.presets import Architecture

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
def instrument(tmp_path):
    playing = Instrument(tmp_path / "ws")
    playing.wait_ready()
    yield playing
    playing.stop()


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
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


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
            time.sleep(0.06)

    thread = threading.Thread(target=perform, daemon=True)
    thread.start()
    return thread


def test_dashboard_shows_what_is_playing(page, instrument):
    page.goto(instrument.url)
    assert page.locator(".state.on").inner_text() == "playing"
    assert page.get_by_text("a.safetensors").first.is_visible()
    assert page.get_by_text("polyphony").first.is_visible()
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
    model = files.save(
        tmp_path / "fresh.safetensors",
        files.ModelFile(Weights.random(Architecture.from_size(4, "xs"), 7)),
    )
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
    shot(page, "models")


def test_a_config_with_an_error_is_rejected(page, instrument):
    before = instrument.workspace.config_path.read_text()
    page.goto(f"{instrument.url}/config")
    text = page.input_value("textarea")
    page.fill("textarea", text.replace("threshold = 0.1 ", "threshold = -3 "))
    page.click('button[value="apply"]')
    page.wait_for_selector("text=Not saved")
    assert "interaction.threshold" in page.locator(".problem").inner_text()
    assert instrument.workspace.config_path.read_text() == before
    shot(page, "config-error")
    page.fill("textarea", text.replace("threshold = 0.1 ", "threshold = 0.4 "))
    page.click('button[value="apply"]')
    page.wait_for_selector("text=The engine reloaded it")
    assert instrument.http.get("/api/status").json()["engine"]["threshold"] == 0.4


def test_pages_fit_a_phone(browser, instrument):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    for path in ("/", "/live", "/control", "/logs", "/models", "/config"):
        page.goto(f"{instrument.url}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (path, overflow)
    page.click("label.menu-button")
    assert page.locator("nav a:text-is('Logs')").is_visible()
    shot(page, "phone-menu")
    context.close()
