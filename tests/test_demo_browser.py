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

pytest_plugins = ["model_fixtures"]

@pytest.fixture
def server(tiny_snapshot, tmp_path):
    missing = missing_tools()
    if missing:                         # CI installs them all (.ci/run): there a missing tool is a failure
        if os.environ.get("CI"):
            pytest.fail(f"the browser test needs {', '.join(missing)} (.ci/run installs them)")
        pytest.skip(f"needs {', '.join(missing)}: pip install -e '.[test]'; apt-get install chromium")
    srv = Server(tiny_snapshot, tmp_path, "--max-megapixels", "0.1", "--max-file-mb", "0.5")
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


@pytest.mark.slow
def test_upload_reconstruct_edit_and_bad_files(server, tmp_path):
    from playwright.sync_api import sync_playwright

    face = tmp_path / "face.png"
    Image.fromarray(SyntheticFaces().load(11000, 64)).save(face)
    text = tmp_path / "notes.txt"
    text.write_text("this is not a photo")
    wall = tmp_path / "wall.png"          # no face in it
    Image.fromarray(np.tile(np.linspace(0, 255, 160, dtype=np.uint8)[None, :, None], (160, 1, 3))).save(wall)
    wide = tmp_path / "wide.png"          # 0.16 MP in a small file: over the pixel limit
    Image.new("RGB", (800, 200), "gray").save(wide)
    heavy = tmp_path / "heavy.png"        # 0.6 MB: over the file-size limit (gradio refuses it before uploading)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 1000, 3), dtype=np.uint8)).save(heavy)

    requests: list[str] = []
    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(server.url)
            page.wait_for_selector("#photo input[type=file]", state="attached", timeout=30_000)

            page.set_input_files("#photo input[type=file]", str(face))
            page.wait_for_selector("#reconstruction img", timeout=30_000)
            assert "Ready in" in page.inner_text("#status")
            reconstruction = _image(page, "#reconstruction")
            assert reconstruction.shape == (256, 256, 3) and reconstruction.std() > 1.0
            before = _image(page, "#edited")
            assert np.array_equal(before, reconstruction)             # all sliders at 0

            src = page.get_attribute("#edited img", "src")
            page.locator("#slider-0 input[type=range]").fill("2")
            page.wait_for_function("s => document.querySelector('#edited img').src !== s", arg=src, timeout=30_000)
            assert np.abs(_image(page, "#edited") - before).mean() > 0.5

            page.set_input_files("#photo input[type=file]", str(text))
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('not an image')",
                                   timeout=30_000)
            assert "notes.txt is not an image this page can read" in page.inner_text("#status")
            assert np.array_equal(_image(page, "#reconstruction"), reconstruction)   # the page is still alive

            page.set_input_files("#photo input[type=file]", str(wide))
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('pixels')",
                                   timeout=30_000)
            assert "wide.png is 800x200 pixels (0.16 MP), more than the 0.1 MP" in page.inner_text("#status")
            page.set_input_files("#photo input[type=file]", str(heavy))
            page.get_by_text("exceed the maximum allowed size").filter(has_text="heavy.png").wait_for(timeout=30_000)

            page.set_input_files("#photo input[type=file]", str(wall))
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('Ready in')",
                                   timeout=30_000)
            if importable("dlib"):          # alignment on: the same photo now has no face to find
                page.locator("#align input[type=checkbox]").check()
                page.wait_for_function("() => document.querySelector('#status').innerText.includes('no face')",
                                       timeout=30_000)
                assert "no face was found in wall.png: turn alignment off" in page.inner_text("#status")
        finally:
            browser.close()

    local = ("http://127.0.0.1", "data:", "blob:")
    assert requests and all(u.startswith(local) for u in requests), [u for u in requests if not u.startswith(local)]
    assert "Traceback" not in "\n".join(server.lines)
    assert server.stop() == 0
    assert "demo stopped" in server.lines[-1]
    assert not any(server.cwd.iterdir()) and not any(server.tmp.iterdir()), "the demo left files behind"
    leftovers = [p for p in server.home.rglob("*")]
    assert not leftovers, leftovers
