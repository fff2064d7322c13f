"""`pioneer evaluate`: run named metrics on a model, append them to RUN/metrics.jsonl (or --out), print a table."""

from __future__ import annotations

import click

from pioneer.cli.common import fail, load_model, model_option
from pioneer.run.files import METRICS


@click.command()
@model_option(help="Run folder or its snapshot.safetensors (the results go into the run's metrics.jsonl), "
                   "pretrained folder or Hub repo id.")
@click.option("--metrics", "metric_names", default="fid1k,lpips_rec,ppl", show_default=True,
              help="Comma-separated metric names (see --list).")
@click.option("--data", help="Data set to compare with (default: the one the run was trained on).")
@click.option("--holdout", type=click.Path(dir_okay=False), help="Held-out list (default: the run's).")
@click.option("--num", type=click.IntRange(min=2), help="Overrides every metric's sample count (e.g. a quick check).")
@click.option("--ppl-pairs", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="PPL pairs when --num is not given (the paper: 100k).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--device", default="auto", show_default=True, help='"auto", "cpu", "cuda" or "cuda:N".')
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Data pyramids, FID reference statistics and classifiers (default ~/.cache/pioneer).")
@click.option("--inception", type=click.Path(dir_okay=False), help="Another copy of the FID Inception TorchScript file.")
@click.option("--perceptual", type=click.Choice(["auto", "lpips", "stlpips"]), default="auto", show_default=True,
              help="LPIPS network: standard AlexNet LPIPS v0.1 (needs torchvision's AlexNet weights) or "
                   "shift-tolerant LPIPS (ships in stlpips-pytorch, offline); auto = standard when available.")
@click.option("--face-crop/--no-face-crop", default=True, show_default=True,
              help="Crop the face area (rows 3/8..7/8, cols 2/8..6/8) at 128x128 for LPIPS and PPL.")
@click.option("--download", is_flag=True, help="Allow downloading missing weights (online users).")
@click.option("--out", type=click.Path(dir_okay=False), help="JSONL file to append to (default RUN/metrics.jsonl).")
@click.option("--report/--no-report", default=True, show_default=True, help="Write RUN/report.md with plots.")
@click.option("--list", "list_only", is_flag=True, help="List the metrics and exit.")
@click.option("--no-progress", is_flag=True)
def evaluate(model_path: str | None, metric_names: str, data: str | None, holdout: str | None, num: int | None, ppl_pairs: int,
             seed: int, batch_size: int, device: str, cache_dir: str | None, inception: str | None, perceptual: str,
             face_crop: bool, download: bool, out: str | None, report: bool, list_only: bool, no_progress: bool) -> None:
    """Measure a model as the paper does: FID, LPIPS of reconstructions, PPL, identity, attribute edits.

    \b
    Examples:
      pioneer evaluate --model runs/00000-synthetic64 --metrics fid1k,lpips_rec --num 256
      pioneer evaluate --model runs/00003-celebahq256 --metrics fid50k,lpips_rec,ppl,identity
      pioneer evaluate --metrics collapse,prior_fit       # the model that ships with pioneer
    """
    from pioneer.metrics import MetricContext, evaluate as run_metrics, format_table, list_metrics

    if list_only:
        for name, desc in list_metrics().items():
            click.echo(f"{name:<10} {desc}")
        return
    names = [n.strip() for n in metric_names.split(",") if n.strip()]
    known = list_metrics()
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        fail(f"unknown metric(s) {', '.join(unknown) or '(none given)'}: use {', '.join(known)}")

    from pioneer.errors import PioneerError

    kwargs = dict(cache_dir=cache_dir, holdout=holdout, batch_size=batch_size, num=num, seed=seed,
                  progress=not no_progress, options={"inception": inception, "perceptual": perceptual,
                                                     "face_crop": face_crop, "download": download, "ppl_pairs": ppl_pairs})
    try:
        ctx = MetricContext.from_model(load_model(model_path, device), data, **kwargs)
        click.echo(f"evaluating {ctx.model.source} ({ctx.resolution}x{ctx.resolution}, {ctx.model.images_seen / 1000:g} kimg) "
                   f"on {ctx.data_spec or '(no data)'}", err=True)
        records = run_metrics(names, ctx, jsonl=out)
    except PioneerError as e:
        fail(str(e))
    click.echo(format_table(records))
    target = out or (ctx.run_dir / METRICS if ctx.run_dir else None)
    if target:
        click.echo(f"appended to {target}", err=True)
    if report and ctx.run_dir is not None:
        from pioneer.share.report import write_report

        path = write_report(ctx.run_dir, model=ctx.model, data=ctx.data)
        click.echo(f"report: {path}", err=True)



COMMANDS = (evaluate,)
