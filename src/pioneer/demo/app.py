"""The demo's web page (Gradio): pick or upload a photo, see its reconstruction, edit it with
one slider per attribute vector, interpolate between two inputs, draw random samples.

Offline by construction: the default theme's fonts ship inside gradio (no Google Fonts), the
telemetry and version check are off, and no share link is made unless asked for. Every handler
turns bad input into a message on the page (`DemoError`); anything unexpected is logged on the
server and reported on the page in one line. Messages never show the server's temporary paths.
"""

# No `from __future__ import annotations`: gradio reads the handlers' annotations (gr.SelectData)
# as objects to decide which argument receives the event data.
import functools
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pioneer.demo.examples import Example
from pioneer.demo.session import DemoError, DemoSession

log = logging.getLogger(__name__)

# Status lines keep their height when their text changes, so nothing below them moves.
CSS = """
#notices {border-left: 4px solid #d97706; padding-left: 0.75em}
.status {min-height: 3em}
.status p {font-weight: 600}
"""
STRENGTH_RANGE = (-2.0, 2.0)
STRENGTH_STEP = 0.05
IMAGE = {"buttons": ["download", "fullscreen"], "format": "png", "interactive": False}
TILE = {**IMAGE, "height": 300}     # the edit tab's images: one height, empty or not, so nothing below moves
WAITING = "Upload a photo or pick an example."

Handler = Callable[..., Sequence[Any]]


def _temp_roots() -> list[str]:
    roots = {tempfile.gettempdir(), os.environ.get("GRADIO_TEMP_DIR", "")}
    return sorted((r.rstrip("/") for r in roots if r), key=len, reverse=True)


def scrub(text: str) -> str:
    """`text` with every path under the server's temporary folders reduced to its file name."""
    for root in _temp_roots():
        text = re.sub(re.escape(root) + r"/[^\s'\"]*", lambda m: os.path.basename(m.group(0)), text)
    return text


def _message(e: Exception) -> str:
    if isinstance(e, DemoError):
        return f"⚠️ {scrub(str(e))}"
    log.exception("demo handler failed")
    return f"⚠️ Something went wrong on the server ({type(e).__name__}: {scrub(str(e))}); the log has the details."


def _code(z: Any) -> np.ndarray:
    """A code as the page keeps it between calls (gr.State): a plain float array (D,)."""
    return np.asarray(z, dtype=np.float32)


def _guarded(gr: Any, n_outputs: int, status_index: int) -> Callable[[Handler], Callable[..., list[Any]]]:
    """Run a handler; on failure leave every output as it is and put the message in the status."""
    def wrap(fn: Handler) -> Callable[..., list[Any]]:
        def handler(*args: Any) -> list[Any]:
            try:
                return list(fn(*args))
            except Exception as e:                                  # noqa: BLE001 (the page must stay alive)
                out: list[Any] = [gr.update() for _ in range(n_outputs)]
                out[status_index] = _message(e)
                return out
        handler.__name__ = fn.__name__
        return handler
    return wrap


def build_app(session: DemoSession, examples: Sequence[Example], align_default: bool = False) -> Any:
    """The page as a gradio Blocks app (`server.serve` runs it)."""
    import gradio as gr

    with gr.Blocks(title="pioneer demo", analytics_enabled=False) as app:
        gr.Markdown(f"## pioneer: reconstruct, edit and interpolate faces\nModel: {session.describe()}.")
        gr.Markdown("\n".join(f"- {n}" for n in session.notices), visible=bool(session.notices), elem_id="notices")
        with gr.Tab("Reconstruct and edit"):
            _edit_tab(gr, session, examples, align_default)
        with gr.Tab("Interpolate"):
            _interpolate_tab(gr, session, examples, align_default)
        with gr.Tab("Random samples"):
            _samples_tab(gr, session)
    return app


def _edit_tab(gr: Any, session: DemoSession, examples: Sequence[Example], align_default: bool) -> None:
    """Upload or pick a photo, see it reconstructed, move one slider per attribute vector."""
    guarded = functools.partial(_guarded, gr)

    @guarded(8, 6)
    def load_input(source: str | None, align: bool, *strengths: float) -> Sequence[Any]:
        """(source, input, crop, reconstruction, edited, code, status, ready)"""
        if not source:
            raise DemoError("no input yet: upload a photo or pick an example first")
        start = time.perf_counter()
        p = session.prepare(source, align)
        recon, edited = session.reconstruction(p.code), session.edit(p.code, strengths)
        preview = session.preview(p.photo)
        crop = gr.update(value=p.crop, visible=p.crop is not None)
        ms = (time.perf_counter() - start) * 1000
        shown = "" if preview is p.photo else f" (shown at {preview.width}x{preview.height})"
        ready = (f"Ready in {ms:.0f} ms: {p.photo.width}x{p.photo.height} input{shown}. Its code is kept: "
                 "each slider move only decodes.")
        return source, preview, crop, recon, edited, _code(p.code), ready, ready

    @guarded(2, 1)
    def edit(code: np.ndarray | None, ready: str | None, *strengths: float) -> Sequence[Any]:
        """(edited, status): the status goes back to the input's ready line."""
        return session.edit(code, strengths), ready or WAITING

    def upload(file: str | None, align: bool, *strengths: float) -> list[Any]:
        """load_input's outputs, then the upload box emptied (ready for the next file)."""
        if file is None:
            return [gr.update() for _ in range(8)] + [None]
        return load_input(file, align, *strengths) + [None]

    def pick(evt: gr.SelectData, align: bool, *strengths: float) -> list[Any]:
        return load_input(str(examples[evt.index].path), align, *strengths)

    source, code, ready = gr.State(None), gr.State(None), gr.State(None)
    with gr.Row():
        with gr.Column(scale=1, min_width=200):
            upload_box = gr.File(label="Upload a photo", file_count="single", elem_id="photo", height=140)
            align = gr.Checkbox(value=align_default, label="Align the face first (FFHQ-style, dlib)", elem_id="align")
        input_image = gr.Image(label="Input", elem_id="input", **TILE)
        crop_image = gr.Image(label="Aligned crop (what the model sees)", visible=False, elem_id="crop", **TILE)
        recon_image = gr.Image(label="Reconstruction G(E(x))", elem_id="reconstruction", **TILE)
        edited_image = gr.Image(label="Edited", elem_id="edited", **TILE)
    gallery = gr.Gallery(value=[(str(e.path), e.name) for e in examples], label="... or pick an example",
                         columns=8, height=150, object_fit="cover", allow_preview=False, interactive=False,
                         elem_id="examples")
    status = gr.Markdown(WAITING, elem_id="status", elem_classes="status")
    sliders = []
    if session.vectors:
        gr.Markdown("Attribute vectors: z + sum of lambda x vector, back on the sphere (lambda from -2 to 2).")
        with gr.Row():
            for i, v in enumerate(session.vectors):
                sliders.append(gr.Slider(*STRENGTH_RANGE, value=0.0, step=STRENGTH_STEP, label=v.attribute,
                                         elem_id=f"slider-{i}", min_width=160))
        reset = gr.Button("Reset the sliders", size="sm")
    else:
        gr.Markdown("No attribute vectors: start the demo with `--vectors DIR` (files from `pioneer attributes`).")

    load_outputs = [source, input_image, crop_image, recon_image, edited_image, code, status, ready]
    upload_box.upload(upload, [upload_box, align, *sliders], [*load_outputs, upload_box])
    gallery.select(pick, [align, *sliders], load_outputs)
    align.change(load_input, [source, align, *sliders], load_outputs)
    for s in sliders:
        s.input(edit, [code, ready, *sliders], [edited_image, status], trigger_mode="always_last",
                show_progress="hidden")
    if sliders:
        zeros = [0.0] * len(sliders)
        reset.click(lambda c, r: zeros + edit(c, r, *zeros), [code, ready], [*sliders, edited_image, status])


def _interpolate_tab(gr: Any, session: DemoSession, examples: Sequence[Example], align_default: bool) -> None:
    """Two ends (an example or an upload each), the image at t and a strip of `steps` images."""
    guarded = functools.partial(_guarded, gr)
    names = [e.name for e in examples]
    paths = {e.name: str(e.path) for e in examples}

    @guarded(3, 2)
    def endpoint(side: str, choice: str | None, file: str | None, align: bool) -> Sequence[Any]:
        """One end from an upload or an example: (code, reconstruction, status)."""
        source = file or paths.get(choice or "")
        if source is None:
            raise DemoError(f"{side}: pick an example or upload a photo")
        p = session.prepare(source, align)
        name = os.path.basename(file) if file else choice
        return _code(p.code), session.reconstruction(p.code), f"{side}: {name}" + (", aligned" if align else "")

    @guarded(3, 2)
    def interpolate(code_a: np.ndarray | None, code_b: np.ndarray | None, t: float, steps: float) -> Sequence[Any]:
        """(image at t, strip, status)"""
        if code_a is None or code_b is None:
            raise DemoError("pick an example or upload a photo for each end")
        return (session.interpolation(code_a, code_b, t), session.strip(code_a, code_b, int(steps)),
                f"{int(steps)} steps from A to B")

    start = [endpoint(side, names[i] if len(names) > i else None, None, False) for i, side in enumerate("AB")]
    ready = all(isinstance(s[0], np.ndarray) for s in start)
    first = interpolate(start[0][0], start[1][0], 0.5, 8) if ready else [None, None, WAITING]
    ends = []
    with gr.Row():
        for i, (side, (z0, img0, _)) in enumerate(zip("AB", start)):
            with gr.Column(min_width=220):
                pick_end = gr.Dropdown(names, value=names[i] if ready else None, label=f"{side}: an example",
                                       elem_id=f"end-{side}")
                file_end = gr.File(label=f"... or upload {side}", height=100, elem_id=f"file-{side}")
                recon_end = gr.Image(value=img0 if ready else None, label=f"{side} reconstructed",
                                     elem_id=f"recon-{side}", **IMAGE)
                ends.append((side, pick_end, file_end, gr.State(z0 if ready else None), recon_end))
        with gr.Column(scale=2):
            middle = gr.Image(value=first[0], label="Slerp at t", elem_id="interpolated", **IMAGE)
            t = gr.Slider(0.0, 1.0, value=0.5, step=0.01, label="t (0 = A, 1 = B)", elem_id="t")
            steps = gr.Slider(2, 16, value=8, step=1, label="steps in the strip", elem_id="steps")
            align = gr.Checkbox(value=align_default, label="Align the faces first (FFHQ-style, dlib)",
                                elem_id="interp-align")
    strip = gr.Image(value=first[1], label="Slerp from A to B", elem_id="strip", **IMAGE)
    status = gr.Markdown(first[2], elem_classes="status", elem_id="interp-status")
    interp_in, interp_out = [ends[0][3], ends[1][3], t, steps], [middle, strip, status]
    for side, pick_end, file_end, state, recon_end in ends:
        outs = [state, recon_end, status]
        # An example clears the upload and an upload clears the example, so the labels say which is used.
        pick_end.input(lambda c, a, s=side: [*endpoint(s, c, None, a), None], [pick_end, align],
                       [*outs, file_end]).then(interpolate, interp_in, interp_out)
        file_end.upload(lambda f, a, s=side: [*endpoint(s, None, f, a), None], [file_end, align],
                        [*outs, pick_end]).then(interpolate, interp_in, interp_out)
    a_in, b_in = [ends[0][1], ends[0][2], align], [ends[1][1], ends[1][2], align]
    align.change(lambda c, f, a: endpoint("A", c, f, a), a_in, [ends[0][3], ends[0][4], status]).then(
        lambda c, f, a: endpoint("B", c, f, a), b_in, [ends[1][3], ends[1][4], status]).then(
        interpolate, interp_in, interp_out)
    t.input(interpolate, interp_in, interp_out, trigger_mode="always_last", show_progress="hidden")
    steps.change(interpolate, interp_in, interp_out, trigger_mode="always_last", show_progress="hidden")


def _samples_tab(gr: Any, session: DemoSession) -> None:
    """A grid of samples from the prior for a seed."""
    @_guarded(gr, 2, 1)
    def sample(seed: float, n: float) -> Sequence[Any]:
        if seed is None:
            raise DemoError("give a seed (a whole number)")
        return session.samples(int(seed), int(n)), ""

    with gr.Row():
        seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, elem_id="seed")
        count = gr.Slider(1, 32, value=8, step=1, label="How many")
        draw = gr.Button("Sample", variant="primary")
    grid = gr.Image(value=sample(0, 8)[0], label="Samples G(z), z from the prior", elem_id="samples", **IMAGE)
    sample_status = gr.Markdown(elem_classes="status")
    draw.click(sample, [seed, count], [grid, sample_status])
