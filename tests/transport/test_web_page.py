"""The web page at ``/``, in headless Chromium (Debian's ``chromium`` driven by Playwright): upload a real COCO
photo, wait for the drawing, check that the canvas shows the returned persons; a screenshot is kept as an
artifact under ``test-artifacts/``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("POSESVC_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium not found at {CHROMIUM} (CI installs Debian's chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_upload_draws_returned_persons(browser, server, data_dir):
    photo = data_dir / "coco_samples" / "000000040083.jpg"
    ann = json.loads((data_dir / "coco_samples" / "test_coco.json").read_text())
    img_id = 40083
    boxes = [a["bbox"] for a in ann["annotations"] if a["image_id"] == img_id and not a.get("iscrowd")][:3]
    assert boxes
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.http + "/")
    page.wait_for_function("document.getElementById('model').textContent.includes('darkpose_small_fixture')")
    assert page.locator("#untrained").is_hidden()  # the fixture weights are real (trained=true)
    page.fill("#boxes", json.dumps(boxes))
    page.uncheck("#flip")
    page.set_input_files("#file", str(photo))
    page.wait_for_function("document.getElementById('canvas').dataset.done === '1'", timeout=120_000)
    drawn = int(page.get_attribute("#canvas", "data-drawn-persons") or -1)
    returned = int(page.get_attribute("#canvas", "data-returned-persons") or -1)
    size = page.evaluate(
        "[document.getElementById('canvas').width, document.getElementById('canvas').height]"
    )
    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    page.screenshot(path=str(out / "web_page.png"), full_page=True)
    assert returned >= 1 and drawn == returned
    assert size == [640, 480] or size[0] > 0
    assert page.locator("#persons tbody tr").count() == returned
    assert "person(s) drawn" in (page.text_content("#status") or "")
    assert not errors, errors
    page.close()


def test_untrained_banner(browser, tmp_path_factory, small_card_path):
    """A server running random weights says so on the page."""
    from .conftest import start_server, stop_server

    srv = start_server(tmp_path_factory.mktemp("untrained"), small_card_path, None)
    try:
        page = browser.new_page()
        page.goto(srv.http + "/")
        page.wait_for_function(
            "document.getElementById('model').textContent.includes('darkpose_small_fixture')"
        )
        assert page.locator("#untrained").is_visible()
        assert "Untrained weights" in (page.text_content("#untrained") or "")
        page.close()
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def two_model_server(tmp_path_factory, small_card_path, fixtures_dir):
    """``posesvc serve --card A --card B`` (two cards of the fixture family, seeded untrained weights)."""
    from tests.conftest import small_card_toml

    from .conftest import start_server, stop_server

    tmp = tmp_path_factory.mktemp("two-models")
    second = tmp / "darkpose_small_fixture_b.toml"
    second.write_text(small_card_toml(fixtures_dir, name="darkpose_small_fixture_b"))
    srv = start_server(tmp, small_card_path, None, extra_args=["--card", str(second)])
    yield srv
    stop_server(srv)


def test_serve_two_cards_routes_and_the_page_selects(browser, two_model_server, data_dir):
    import httpx

    models = httpx.get(two_model_server.http + "/v1/models", timeout=30).json()["models"]
    assert [(m["name"], m["default"]) for m in models] == [
        ("darkpose_small_fixture", True), ("darkpose_small_fixture_b", False)
    ]
    photo = data_dir / "coco_samples" / "000000040083.jpg"
    page = browser.new_page()
    page.goto(two_model_server.http + "/")
    page.wait_for_function("document.querySelectorAll('#modelsel option').length === 2")
    page.select_option("#modelsel", "darkpose_small_fixture_b")
    assert "darkpose_small_fixture_b" in (page.text_content("#model") or "")
    page.fill("#boxes", json.dumps([[100, 50, 200, 300]]))
    page.uncheck("#flip")
    with page.expect_response(lambda r: r.url.endswith("/v1/pose")) as answer:
        page.set_input_files("#file", str(photo))
    assert answer.value.json()["model"]["name"] == "darkpose_small_fixture_b"
    page.wait_for_function("document.getElementById('canvas').dataset.done === '1'", timeout=120_000)
