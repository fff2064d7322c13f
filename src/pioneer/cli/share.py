"""`pioneer publish` (a pretrained folder in the Hugging Face Hub layout, optionally pushed) and
`pioneer export` (ONNX / TorchScript). Thin: they resolve --model, call pioneer.hub /
pioneer.export and report; `register(main)` adds them to the `pioneer` group."""

from __future__ import annotations

from pathlib import Path

import click

from pioneer.cli.common import fail, load_model, model_option, user_errors


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(),
              help="Run folder (or its snapshot.safetensors) to publish; a pretrained folder is published again.")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=True, file_okay=False),
              help="Folder to write (new, empty, or an earlier publish of a model).")
@click.option("--push", "repo_id", metavar="OWNER/NAME",
              help="Also upload the folder to this Hugging Face Hub model repo (created if missing; "
                   "uses HF_TOKEN or `hf auth login`).")
@click.option("--private", is_flag=True, help="Create the Hub repo as private (with --push).")
@click.option("--vector", "vectors", multiple=True, type=click.Path(dir_okay=False),
              help="Attribute vector file to include (repeatable). Vectors of this model found in the run "
                   "folder (RUN/*.safetensors, RUN/vectors/) are included anyway.")
@click.option("--no-synthetic-vectors", is_flag=True,
              help="Without vectors of its own, a model trained on the synthetic faces gets one per attribute "
                   "from their labels (as `pioneer attributes --synthetic`); this leaves them out.")
@click.option("--data", help="Data set whose held-out images the card reconstructs (default: the run's).")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Data pyramids (default ~/.cache/pioneer).")
@click.option("--device", default="auto", show_default=True, help='"auto", "cpu", "cuda" or "cuda:N".')
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def publish(model_path: str, out: str, repo_id: str | None, private: bool, vectors: tuple[str, ...],
            no_synthetic_vectors: bool, data: str | None, cache_dir: str | None, device: str, no_progress: bool) -> None:
    """Write a trained model as a Hugging Face Hub model folder: config.json, model.safetensors
    (spectral norm folded into plain weights), attribute vectors, and a model card (README.md)
    with the training options, images seen, the latest metrics, a sample grid and a
    reconstruction grid. Load it with `Pioneer.from_pretrained(OUT)` (or the repo id once pushed).

    \b
    Examples:
      pioneer publish --model runs/00000-synthetic64 -o published/
      pioneer publish --model runs/00000-synthetic64 -o published/ --push me/pioneer-faces64
    """
    from pioneer.inference.selection import synthetic_vectors, trained_on_synthetic
    from pioneer.share import hub

    run = Path(model_path)
    if not run.exists():
        fail(f"--model {model_path} does not exist: pass a run folder or its snapshot.safetensors")
    with user_errors():
        model = load_model(model_path, device)
        run_dir = hub.run_of_model(model)
        found = hub.vector_files(run_dir, model.fingerprint) if run_dir is not None else []
        files = [*dict.fromkeys([*map(Path, vectors), *found]), *model.vectors.values()]   # no repeats
        if not files and not no_synthetic_vectors and (spec := trained_on_synthetic(model)) is not None:
            files = synthetic_vectors(model, spec)         # what the demo would compute at every start
            click.echo(f"attribute vectors from the synthetic faces' labels: {', '.join(v.attribute for v in files)}",
                       err=True)
        click.echo(f"publishing {model.source} ({model.resolution}x{model.resolution}, {model.images_seen / 1000:g} kimg"
                   f"{f', attribute vectors: {len(files)}' if files else ''})", err=True)
        folder = hub.save_pretrained(model, out, run_dir=run_dir or False, vectors=files, data=data,
                                     cache_dir=cache_dir, repo_id=repo_id, progress=not no_progress)
        click.echo(f"wrote {folder}: " + ", ".join(sorted(p.name for p in folder.iterdir())))
        if repo_id:
            url = hub.push_folder(folder, repo_id, private=private)
            click.echo(f"pushed to {repo_id}: {url}")


@click.command("export")
@model_option()
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript"]), default="onnx", show_default=True,
              help="onnx: for onnxruntime and other ONNX runtimes (needs pioneer[export]); torchscript: "
                   "torch.jit.load without pioneer (torch deprecates TorchScript; prefer onnx).")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--opset", default=18, show_default=True, type=click.IntRange(min=18),
              help="ONNX opset version (the dynamo exporter writes 18 and later).")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Run the exported networks on a batch of another size and compare them with PyTorch "
                   "(largest absolute difference at most 1e-4).")
@click.option("--device", default="auto", show_default=True, help="Where the model is loaded; export runs on the CPU.")
def export_command(model_path: str | None, fmt: str, out: str, opset: int, verify: bool, device: str) -> None:
    """Export the encoder and decoder at the trained resolution with a dynamic batch size:
    OUT/encoder.onnx (images (B, 3, r, r) in [-1, 1] -> codes (B, D)), OUT/decoder.onnx (codes ->
    images in [-1, 1]) and OUT/export.json describing them (.pt files for torchscript).

    \b
    Examples:
      pioneer export --model runs/00000-synthetic64 --format onnx -o onnx/
      pioneer export --model published/ --format torchscript -o torchscript/
    """
    from pioneer.share.export import export

    with user_errors():
        model = load_model(model_path, device)
        click.echo(f"exporting {model.resolution}x{model.resolution} encoder and decoder ({fmt})", err=True)
        result = export(model, out, fmt, opset=opset, verify=verify)
    for name, path in result.files.items():
        diff = result.max_abs_diff.get(name)
        check = f", max |difference| from PyTorch {diff:.2g}" if diff is not None else ""
        click.echo(f"{name}: {path} ({path.stat().st_size / 1e6:.2f} MB{check})")


COMMANDS = (publish, export_command)
