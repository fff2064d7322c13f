"""`pioneer demo`: serve a local web page to try a model in a browser."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from pioneer.cli.common import fail, model_option


@click.command()
@model_option()
@click.option("--vectors", "vectors_dir", type=click.Path(),
              help="Folder of attribute vectors (.safetensors from `pioneer attributes`), one slider each. "
                   "Default: those a pretrained folder ships with, else computed at start from the synthetic "
                   "faces' labels when the model was trained on them.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 makes the page reachable from other machines.")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--align/--no-align", default=False, show_default=True,
              help="Whether the page's face-alignment box starts ticked (needs dlib: pip install 'pioneer[align]').")
@click.option("--max-megapixels", default=40.0, show_default=True, type=click.FloatRange(min=0.01),
              help="Largest photo accepted, in millions of pixels.")
@click.option("--max-file-mb", default=20.0, show_default=True, type=click.FloatRange(min=0.01),
              help="Largest upload accepted, in MB.")
@click.option("--device", default="auto", show_default=True, help='"auto", "cpu", "cuda" or "cuda:N".')
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1),
              help="CPU threads for the networks (more helps large models on an idle machine).")
@click.option("--share", is_flag=True, help="Also make a public gradio.live link (needs the internet; off by default).")
def demo(model_path: str | None, vectors_dir: str | None, host: str, port: int, align: bool, max_megapixels: float,
         max_file_mb: float, device: str, threads: int, share: bool) -> None:
    """Serve a web page to try a model: upload a photo or pick an example, see its reconstruction,
    edit it with one slider per attribute vector, interpolate between two inputs, draw samples.

    Works offline (no fonts or scripts from the internet, no telemetry); uploads and results
    live in a temporary folder that is removed when the server stops.

    \b
    Examples:
      pioneer demo                                   # the model that ships with pioneer
      pioneer demo --model runs/00000-synthetic64
      pioneer demo --model snapshot.safetensors --vectors vectors/ --port 8080
    """
    from pioneer.demo.server import ServeConfig, serve
    from pioneer.demo.session import DemoConfig
    from pioneer.errors import PioneerError

    if vectors_dir is not None and not Path(vectors_dir).is_dir():
        fail(f"--vectors {vectors_dir} is not a folder: give the folder of .safetensors files "
                                   "that `pioneer attributes` wrote")
    if importlib.util.find_spec("gradio") is None:     # not imported here: serve() sets its temp folder first
        fail("the demo needs gradio: pip install 'pioneer[demo]' (or pip install gradio)")
    config = ServeConfig(host=host, port=port, share=share, align=align, device=None if device == "auto" else device,
                         threads=threads,
                         demo=DemoConfig(max_pixels=int(max_megapixels * 1e6), max_file_bytes=int(max_file_mb * 2**20)))
    try:
        serve(model_path, vectors_dir, config, echo=lambda m: click.echo(m, err=True))
    except (PioneerError, ValueError, OSError) as e:
        fail(str(e))


COMMANDS = (demo,)
