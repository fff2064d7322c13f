"""Run the demo page: load the model and its vectors, write the examples into a temporary
folder (gradio's uploads and results go there too), serve until Ctrl-C or SIGTERM, then remove
the folder. Nothing is written anywhere else."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pioneer.demo.examples import build_examples
from pioneer.demo.session import DemoConfig, DemoSession
from pioneer.demo.vectors import load_vector_dir, synthetic_vectors, trained_on_synthetic
from pioneer.share.models import open_model


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"             # localhost only unless asked
    port: int = 7860
    share: bool = False                 # a public gradio.live link (needs the internet)
    align: bool = False                 # the alignment box's initial state
    device: str | None = None           # None: the GPU when there is one
    threads: int = 1                    # torch CPU threads: one image per call gains little from more, and
                                        # loses much when the cores are busy (the README's latencies use 1)
    demo: DemoConfig = field(default_factory=DemoConfig)


def make_session(model_spec: str | os.PathLike | None, vectors_dir: str | os.PathLike | None, config: ServeConfig,
                 echo: Callable[[str], None] = print) -> DemoSession:
    """The model (any spec of pioneer.share.models; None: the shipped one) and its attribute
    vectors: from `vectors_dir`, else those its pretrained folder holds, else from the
    synthetic faces' labels when the model was trained on them, else none."""
    model = open_model(model_spec, device=config.device)
    echo(f"model: {model.source} ({model.resolution}x{model.resolution}, {model.images_seen / 1000:g} kimg)")
    notices: list[str] = []
    if vectors_dir is not None:
        vectors, notices = load_vector_dir(vectors_dir, model)
        echo(f"{len(vectors)} attribute vector(s) from {vectors_dir}")
    elif model.vectors:
        vectors = list(model.vectors.values())
        echo(f"{len(vectors)} attribute vectors from the pretrained folder: {', '.join(v.attribute for v in vectors)}")
    elif (data := trained_on_synthetic(model)) is not None:
        echo(f"computing attribute vectors from the labels of the synthetic faces ({data}) ...")
        vectors = synthetic_vectors(model, data, config.demo.vector_count, config.demo.vector_pool)
        echo(f"{len(vectors)} attribute vectors: {', '.join(v.attribute for v in vectors)}")
    else:
        vectors = []
        notices.append("no attribute vectors: start the demo with --vectors DIR (files from `pioneer attributes`)")
    for n in notices:
        echo(f"warning: {n}")
    return DemoSession(model, vectors, config.demo, notices)


# gradio refuses an upload over its own limit in the browser, before any handler runs, so the
# status line would still show the previous file's message. Up to this many times our limit the
# file reaches DemoSession.read_image, which says in the status line what is wrong with it.
UPLOAD_SLACK = 4


def serve(model_spec: str | os.PathLike | None, vectors_dir: str | os.PathLike | None, config: ServeConfig,
          echo: Callable[[str], None] = print) -> None:
    """Serve the page until Ctrl-C or SIGTERM. Meant for a process of its own (`pioneer demo`):
    it sets gradio's and matplotlib's folders in the environment before gradio is imported, and
    torch's thread count."""
    torch.set_num_threads(config.threads)       # this process serves the page and nothing else
    with tempfile.TemporaryDirectory(prefix="pioneer-demo-") as tmp:
        # gradio reads its upload folder from the environment when it is imported; matplotlib
        # (imported by gradio while serving) would otherwise write a font cache into the home folder
        os.environ["GRADIO_TEMP_DIR"] = str(Path(tmp) / "gradio")
        os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
        os.environ["MPLCONFIGDIR"] = str(Path(tmp) / "matplotlib")
        session = make_session(model_spec, vectors_dir, config, echo)   # a bad --model fails before gradio loads
        from pioneer.demo.app import CSS, build_app

        examples = build_examples(Path(tmp) / "examples")
        app = build_app(session, examples, align_default=config.align)
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        launched = False
        try:
            try:
                app.launch(server_name=config.host, server_port=config.port, share=config.share,
                           prevent_thread_lock=True, quiet=True, footer_links=[], allowed_paths=[tmp], css=CSS,
                           max_file_size=UPLOAD_SLACK * config.demo.max_file_bytes, show_error=False, pwa=False,
                           mcp_server=False, ssr_mode=False, run_history=False)
            except OSError as e:
                raise OSError(f"cannot serve on {config.host}:{config.port} ({e.strerror or 'in use'}): "
                              "pass another --port or --host") from e
            launched = True
            share = f" and {app.share_url}" if app.share_url else ""
            echo(f"pioneer demo on {app.local_url}{share} (Ctrl-C stops it)")
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            app.close()
            if launched:
                echo("demo stopped")
