"""How fast `pioneer demo` answers a slider move, and a screenshot of the page.

    python benchmarks/demo_latency.py --model runs/00000-synthetic64/snapshot.safetensors
    python benchmarks/demo_latency.py --model ... --moves 40 --screenshot docs/demo.png
    python benchmarks/demo_latency.py --model ... --no-browser         # the session layer only

Two numbers per run, both medians (and 90th percentiles) over --moves slider moves:

* session: `DemoSession.edit` in this process (one decoder call, the image enlarged for the
  page) plus its PNG encoding, at 1 and 2 torch threads: the work a move costs;
* browser: the demo started as a person starts it (`pioneer demo`, its default --threads 1),
  in headless chromium driven by Playwright: from setting a slider's value in the page to the
  new edited image decoded in the page (`performance.now()` in the browser, so Playwright's
  own round trips are not counted). This includes gradio's queue, HTTP, the PNG written to and
  fetched from the server's temporary folder, and the browser's decoding.

* large photo: a 36 MP camera JPEG from upload to the page's images (read, encode, decode, the
  input's preview and its PNG), with the demo's reduced decode and 1024 px preview and without.

The machines are shared and noisy: all are measured in the same run, the median is reported.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))   # the browser test's server helper

from pioneer import Pioneer  # noqa: E402
from pioneer.demo import DemoSession  # noqa: E402
from pioneer.demo.examples import build_examples  # noqa: E402
from pioneer.demo.vectors import synthetic_vectors, trained_on_synthetic  # noqa: E402

# Set a slider's value as a drag does, then wait for the edited image to change and finish
# decoding; returns milliseconds (or -1 after 10 s).
MOVE_JS = """
async ([selector, value]) => {
  const img = () => document.querySelector('#edited img');
  const before = img() ? img().src : null;
  const input = document.querySelector(selector);
  const t0 = performance.now();
  input.value = value;
  input.dispatchEvent(new Event('input', {bubbles: true}));
  for (;;) {
    await new Promise(r => setTimeout(r, 1));
    const i = img();
    if (i && i.src !== before && i.complete && i.naturalWidth > 0) {
      await i.decode();
      return performance.now() - t0;
    }
    if (performance.now() - t0 > 10000) return -1;
  }
}
"""


def _summary(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {"median_ms": round(statistics.median(ms), 1), "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1),
            "n": len(ms)}


def session_latency(snapshot: str, moves: int) -> dict:
    """The work of one move in this process, at 1 and 2 threads."""
    model = Pioneer.load(snapshot, device="cpu")
    data = trained_on_synthetic(model) or "synthetic"
    session = DemoSession(model, synthetic_vectors(model, data))
    with tempfile.TemporaryDirectory() as tmp:
        example = build_examples(tmp, synthetic=1)[0]
        t = time.perf_counter()
        code = session.prepare(example.path).code
        encode_ms = (time.perf_counter() - t) * 1000
    out = {"encode_once_ms": round(encode_ms, 1), "vectors": len(session.vectors)}
    k = len(session.vectors)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        times = []
        for i in range(moves + 3):
            strengths = [0.0] * k
            strengths[i % k] = (-2.0, -1.0, 1.0, 2.0)[i % 4]
            t = time.perf_counter()
            img = session.edit(code, strengths)
            img.save(io.BytesIO(), format="PNG")         # what gradio does with the result
            if i >= 3:                                   # warm-up
                times.append((time.perf_counter() - t) * 1000)
        out[f"threads_{threads}"] = _summary(times)
    return out


def large_photo(snapshot: str, megapixels: float = 36.0, repeats: int = 3) -> dict:
    """A camera photo (a JPEG of `megapixels`) from upload to what the page gets: read, encode,
    decode, the preview and its PNG (as gradio writes it), with the demo's reduced JPEG decode and
    preview, and with both switched off (the page before them): medians over `repeats`."""
    import dataclasses

    from PIL import Image

    model = Pioneer.load(snapshot, device="cpu")
    w = int((megapixels * 1e6 * 3 / 2) ** 0.5)
    out: dict = {"megapixels": round(w * (w * 2 // 3) / 1e6, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        face = build_examples(tmp, synthetic=1)[0].path
        photo = Path(tmp) / "camera.jpg"
        Image.open(face).convert("RGB").resize((w, w * 2 // 3)).save(photo, quality=90)
        out["file_mb"] = round(photo.stat().st_size / 2**20, 1)
        base = DemoSession(model).config
        configs = {"reduced": base, "full": dataclasses.replace(base, decode_size=10**6, preview_size=10**6)}
        for name, config in configs.items():
            session = DemoSession(model, config=config)
            times, png = [], 0
            for _ in range(repeats):
                session._codes.clear()                   # every repeat encodes, as a new upload does
                t = time.perf_counter()
                p = session.prepare(photo)
                session.reconstruction(p.code)
                buf = io.BytesIO()
                session.preview(p.photo).save(buf, format="PNG")
                times.append((time.perf_counter() - t) * 1000)
                png = buf.tell()
            out[name] = {**_summary(times), "preview_png_mb": round(png / 2**20, 2)}
    out["speedup"] = round(out["full"]["median_ms"] / out["reduced"]["median_ms"], 1)
    return out


def browser_latency(snapshot: str, moves: int, screenshot: str | None) -> dict:
    from demo_server import Server, launch_browser
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(snapshot).resolve(), Path(tmp))
        try:
            t = time.perf_counter()
            server.wait()
            start_s = time.perf_counter() - t
            with sync_playwright() as p:
                browser = launch_browser(p)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                t = time.perf_counter()
                page.goto(server.url)
                page.wait_for_selector("#examples img", timeout=60_000)
                load_s = time.perf_counter() - t
                page.locator("#examples img").first.click()
                page.wait_for_selector("#reconstruction img", timeout=60_000)
                sliders = page.locator("[id^=slider-] input[type=range]").count()   # one per attribute vector
                times = []
                for i in range(moves + 3):
                    selector = f"#slider-{i % max(1, min(sliders, 4))} input[type=range]"
                    value = str((-2.0, -1.0, 1.0, 2.0, 0.5)[i % 5])
                    ms = page.evaluate(MOVE_JS, [selector, value])
                    if ms < 0:
                        raise RuntimeError(f"no new image 10 s after setting {selector} to {value}")
                    if i >= 3:
                        times.append(ms)
                if screenshot:
                    _screenshot(page, screenshot)
                browser.close()
        finally:
            server.stop()
    return {"server_start_s": round(start_s, 1), "page_load_s": round(load_s, 2), **_summary(times)}


def _screenshot(page, path: str) -> None:
    """The edit tab with a held-out face and two sliders moved."""
    page.get_by_role("button", name="Reset the sliders").click()
    page.wait_for_timeout(1000)
    for i, value in ((0, "1.5"), (7, "-1.5")):
        if page.locator(f"#slider-{i} input[type=range]").count():
            page.evaluate(MOVE_JS, [f"#slider-{i} input[type=range]", value])
    page.wait_for_timeout(500)
    page.screenshot(path=path, full_page=True)
    print(f"wrote {path}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="snapshot.safetensors of a run")
    ap.add_argument("--moves", type=int, default=30, help="slider moves measured (after 3 warm-up moves)")
    ap.add_argument("--no-browser", action="store_true", help="only the session layer")
    ap.add_argument("--screenshot", help="also save a screenshot of the page here (PNG)")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    result = {"model": args.model, "torch": torch.__version__, "session": session_latency(args.model, args.moves),
              "large_photo": large_photo(args.model)}
    if not args.no_browser:
        result["browser"] = browser_latency(args.model, args.moves, args.screenshot)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
