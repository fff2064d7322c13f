"""`pioneer demo` end to end in a real browser: Debian's chromium driven by Playwright (never
`playwright install`, which downloads a browser). The server runs as the command a person
types, on a free localhost port, in an empty working folder with its own TMPDIR and HOME, so
the test also sees that it writes nothing outside its temporary folder and removes that."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from demo_server import Server, importable, launch_browser, missing_tools
from PIL import Image

from pioneer.data import SyntheticFaces
from pioneer.demo.session import human_bytes

pytest_plugins = ["model_fixtures"]

@pytest.fixture(scope="module")
def server(tiny_snapshot, tmp_path_factory):
    missing = missing_tools()
    if missing:                         # CI installs them all (.ci/run): there a missing tool is a failure
        if os.environ.get("CI"):
            pytest.fail(f"the browser test needs {', '.join(missing)} (.ci/run installs them)")
        pytest.skip(f"needs {', '.join(missing)}: pip install -e '.[test]'; apt-get install chromium")
    srv = Server(tiny_snapshot, tmp_path_factory.mktemp("demo"), "--max-megapixels", "3", "--max-file-mb", "0.5")
    try:
        srv.wait()
        yield srv
    finally:
        srv.stop()


def _image(page, selector: str) -> np.ndarray:
    """The pixels an <img> shows, fetched as the browser fetched them."""
    src = page.get_attribute(f"{selector} img", "src")
    response = page.request.get(src)
    assert response.ok, src
    return np.asarray(Image.open(io.BytesIO(response.body())).convert("RGB"), dtype=np.int16)


def _wait_text(page, selector: str, text: str) -> str:
    page.wait_for_function("([s, t]) => document.querySelector(s).innerText.includes(t)", arg=[selector, text],
                           timeout=30_000)
    return page.inner_text(selector)


def _top(page, selector: str) -> float:
    """Where an element starts on the page (not in the viewport, which scrolls)."""
    return page.eval_on_selector(selector, "e => e.getBoundingClientRect().top + window.scrollY")


@pytest.mark.slow
def test_upload_reconstruct_edit_and_bad_files(server, tmp_path):
    from playwright.sync_api import sync_playwright

    face = tmp_path / "face.png"
    Image.fromarray(SyntheticFaces().load(11000, 64)).save(face)
    text = tmp_path / "notes.txt"
    text.write_text("this is not a photo")
    wall = tmp_path / "wall.png"          # no face in it
    Image.fromarray(np.tile(np.linspace(0, 255, 160, dtype=np.uint8)[None, :, None], (160, 1, 3))).save(wall)
    wide = tmp_path / "wide.png"          # 3.75 MP in a small file: over the pixel limit
    Image.new("RGB", (2500, 1500), "gray").save(wide)
    large = tmp_path / "large.jpg"        # 1.92 MP: accepted, shown downscaled
    Image.fromarray(SyntheticFaces().load(11001, 64)).resize((1600, 1200)).save(large, quality=60)
    heavy = tmp_path / "heavy.png"        # 0.6 MB: over the 0.5 MB limit, within what gradio lets through
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 1000, 3), dtype=np.uint8)).save(heavy)
    huge = tmp_path / "huge.png"          # over 4x the limit: gradio refuses it in the browser
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (800, 1000, 3), dtype=np.uint8)).save(huge)

    requests: list[str] = []
    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(server.url)
            page.wait_for_selector("#photo input[type=file]", state="attached", timeout=30_000)
            slider_top = _top(page, "#slider-0")
            assert "Upload a photo" in page.inner_text("#status")

            page.set_input_files("#photo input[type=file]", str(face))
            page.wait_for_selector("#reconstruction img", timeout=30_000)
            assert "Ready in" in page.inner_text("#status")
            assert _top(page, "#slider-0") == slider_top              # the status line keeps its height
            reconstruction = _image(page, "#reconstruction")
            assert reconstruction.shape == (256, 256, 3) and reconstruction.std() > 1.0
            before = _image(page, "#edited")
            assert np.array_equal(before, reconstruction)             # all sliders at 0

            src = page.get_attribute("#edited img", "src")
            page.locator("#slider-0 input[type=range]").fill("2")
            page.wait_for_function("s => document.querySelector('#edited img').src !== s", arg=src, timeout=30_000)
            assert np.abs(_image(page, "#edited") - before).mean() > 0.5
            assert "Ready in" in page.inner_text("#status")           # a slider move keeps the status line

            page.set_input_files("#photo input[type=file]", str(text))
            shown = _wait_text(page, "#status", "not an image")
            assert "notes.txt is not an image this page can read" in shown
            assert str(server.tmp) not in shown and "gradio" not in shown, shown    # no server paths
            assert np.array_equal(_image(page, "#reconstruction"), reconstruction)   # the page is still alive
            assert _top(page, "#slider-0") == slider_top

            page.set_input_files("#photo input[type=file]", str(wide))
            shown = _wait_text(page, "#status", "pixels")
            assert "wide.png is 2500x1500 pixels (3.75 MP), more than the 3 MP" in shown
            page.set_input_files("#photo input[type=file]", str(heavy))  # the previous error must not stay
            assert (f"heavy.png is {human_bytes(heavy.stat().st_size)}, more than the 512 kB this page accepts"
                    in _wait_text(page, "#status", "heavy"))
            page.set_input_files("#photo input[type=file]", str(huge))
            page.get_by_text("exceed the maximum allowed size").filter(has_text="huge.png").wait_for(timeout=30_000)

            page.set_input_files("#photo input[type=file]", str(large))
            shown = _wait_text(page, "#status", "Ready in")
            assert "1600x1200 input (shown at 1024x768)" in shown
            assert _image(page, "#input").shape == (768, 1024, 3)       # the preview, not the whole photo

            page.set_input_files("#photo input[type=file]", str(wall))
            _wait_text(page, "#status", "160x160 input")
            if importable("dlib"):          # alignment on: the same photo now has no face to find
                page.locator("#align input[type=checkbox]").check()
                assert "no face was found in wall.png: turn alignment off" in _wait_text(page, "#status", "no face")
        finally:
            browser.close()

    local = ("http://127.0.0.1", "data:", "blob:")
    assert requests and all(u.startswith(local) for u in requests), [u for u in requests if not u.startswith(local)]
    assert "Traceback" not in "\n".join(server.lines)


@pytest.mark.slow
def test_interpolate_tab_follows_its_ends_steps_and_alignment(server, tmp_path):
    from playwright.sync_api import sync_playwright

    face = tmp_path / "end.png"
    Image.fromarray(SyntheticFaces().load(11002, 64)).save(face)
    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_page()
            page.goto(server.url)
            page.get_by_role("tab", name="Interpolate").click()
            page.wait_for_selector("#strip img", timeout=30_000)
            strip = _image(page, "#strip")
            assert "8 steps" in page.inner_text("#interp-status")

            src = page.get_attribute("#strip img", "src")
            page.locator("#steps input[type=number]").fill("4")
            page.locator("#steps input[type=number]").press("Enter")
            page.wait_for_function("s => document.querySelector('#strip img').src !== s", arg=src, timeout=30_000)
            assert _image(page, "#strip").shape[1] / strip.shape[1] == pytest.approx(0.5, abs=0.01)   # 4 cells, not 8
            assert "4 steps" in page.inner_text("#interp-status")

            assert page.input_value("#end-A input") != ""
            recon_a = _image(page, "#recon-A")
            page.set_input_files("#file-A input[type=file]", str(face))
            page.wait_for_function("() => document.querySelector('#end-A input').value === ''", timeout=30_000)
            page.wait_for_function("s => document.querySelector('#strip img').src !== s",
                                   arg=page.get_attribute("#strip img", "src"), timeout=30_000)
            assert not np.array_equal(_image(page, "#recon-A"), recon_a)           # A is the upload now

            if importable("dlib"):          # the synthetic faces are drawn: dlib finds no face in them
                page.locator("#interp-align input[type=checkbox]").check()
                assert "no face was found" in _wait_text(page, "#interp-status", "no face")
        finally:
            browser.close()
    assert "Traceback" not in "\n".join(server.lines)


@pytest.mark.slow
def test_the_server_leaves_nothing_behind(server):
    """Runs after the browser tests (file order): the demo stops cleanly and removes its files."""
    assert server.stop() == 0
    assert "demo stopped" in server.lines[-1]
    assert not any(server.cwd.iterdir()) and not any(server.tmp.iterdir()), "the demo left files behind"
    leftovers = [p for p in server.home.rglob("*")]
    assert not leftovers, leftovers
