"""`pioneer` command line: validates options, resolves presets, calls the library."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from .config import DECODER_NORMS, PRESET_HELP, PRESETS, RESOLUTIONS, ConfigError, TrainConfig
from .config import preset as _load_preset
from .schedule import describe, format_table


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _next_run_dir(outdir: Path, desc: str) -> Path:
    """runs/00000-desc, runs/00001-desc, ... (EDM style)."""
    ids = [int(m.group(1)) for p in outdir.glob("*") if (m := re.match(r"^(\d+)-", p.name))] if outdir.is_dir() else []
    return outdir / f"{max(ids, default=-1) + 1:05d}-{desc}"


def _apply_overrides(cfg: TrainConfig, *, data: str | None, holdout: str | None, kimg: float | None,
                     resolution: int | None, batch: int | None, seed: int | None, width: float | None, decoder_norm: str | None,
                     no_margin: bool, amp: bool | None, channels_last: bool | None) -> TrainConfig:
    sched = cfg.schedule
    if kimg is not None:
        if kimg <= 0:
            _fail(f"--kimg {kimg} must be positive")
        sched = dataclasses.replace(sched, total_kimg=kimg)
    model = cfg.model
    if resolution is not None:
        if resolution not in RESOLUTIONS:
            _fail(f"--resolution {resolution} is not a power of two from 4 to 1024")
        last = RESOLUTIONS[sched.final_phase]
        if resolution > last:
            _fail(f"the schedule of this preset ends at {last}px: --resolution can only lower it")
        level = RESOLUTIONS.index(resolution)
        sched = dataclasses.replace(sched, rules=tuple(r for r in sched.rules if r.phase <= level))
        model = dataclasses.replace(model, max_resolution=resolution)
    if batch is not None:
        if batch < 1:
            _fail(f"--batch {batch} must be at least 1")
        sched = dataclasses.replace(sched, batch_sizes={r: batch for r in sched.batch_sizes})
    if no_margin:
        sched = dataclasses.replace(sched, rules=tuple(dataclasses.replace(r, margin=0.0) for r in sched.rules))
    if width is not None:
        model = dataclasses.replace(model, width=width)
    if decoder_norm is not None:
        model = dataclasses.replace(model, decoder_norm=decoder_norm)
    changes: dict[str, Any] = {"schedule": sched, "model": model}
    if data is not None:
        changes["data"] = data
    if holdout is not None:
        changes["holdout"] = holdout
    if seed is not None:
        changes["seed"] = seed
    if amp is not None:
        changes["amp"] = amp
    if channels_last is not None:
        changes["channels_last"] = channels_last
    return dataclasses.replace(cfg, **changes)


def _summary(cfg: TrainConfig, name: str) -> str:
    m = cfg.model
    res = [m.resolution(i) for i in range(m.num_levels)]
    chans = ", ".join(f"{r}:{m.channels(r)}" for r in res)
    lines = [
        f"preset      {name}",
        f"data        {cfg.data or '(none: pass --data)'}",
        f"model       up to {m.max_resolution}px, latent {m.latent_dim}, decoder norm {m.decoder_norm}, "
        f"encoder last activation {'on' if m.encoder_last_activation else 'off'}",
        f"channels    {chans}",
        f"losses      kl x{cfg.loss.kl_weight:g}, L1 x{cfg.loss.recon_weight_fade:g}/{cfg.loss.recon_weight_stable:g} "
        f"(fade/stable), (1-cos) x{cfg.loss.latent_weight:.4f}, {cfg.loss.decoder_steps} decoder steps",
        f"optimiser   Adam betas {cfg.lr_betas}, eps {cfg.adam_eps:g}; EMA {cfg.ema_decay}",
        f"length      {cfg.schedule.total_kimg:g} kimg, fade-in {cfg.schedule.fade_kimg:g} kimg per phase",
    ]
    return "\n".join(lines)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="pioneer")
def main() -> None:
    """Balanced PIONEER: train progressively growing generative autoencoders, then encode,
    reconstruct, interpolate and edit images through their latent space."""


@main.command(epilog="Presets:\n\n" + "\n\n".join(f"{k}: {v}" for k, v in PRESET_HELP.items()))
@click.option("--preset", default="synthetic64", show_default=True, type=click.Choice(list(PRESETS)),
              help="Named configuration (schedule, batch sizes, architecture).")
@click.option("--data", help='"synthetic", "synthetic:N", an image folder, a .zip of images or an LMDB folder.')
@click.option("--holdout", type=click.Path(dir_okay=False), help="Held-out list file, or CelebA-HQ image_list.txt.")
@click.option("--outdir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Parent folder of the numbered run folders.")
@click.option("--name", help="Suffix of the run folder name (default: the preset).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              help="Continue the run in this folder from its last checkpoint.")
@click.option("--kimg", type=float, help="Total length in thousands of images (overrides the preset).")
@click.option("--resolution", type=int, help="Stop growing at this resolution (drops later phases).")
@click.option("--batch", type=int, help="Global batch size at every resolution (overrides the preset).")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--width", type=float, help="Channel multiplier on the paper's channel table.")
@click.option("--decoder-norm", type=click.Choice(DECODER_NORMS), help="Decoder normalisation (ablation).")
@click.option("--no-margin", is_flag=True, help="Switch the KL margin off in every rule (ablation).")
@click.option("--device", default="auto", show_default=True, help='"auto", "cpu", "cuda" or "cuda:N".')
@click.option("--gpus", type=int, default=1, show_default=True,
              help="Processes on this machine (GPUs, or gloo CPU processes); launches torchrun for you.")
@click.option("--amp/--no-amp", default=None, help="bf16 autocast (GPU).")
@click.option("--channels-last/--no-channels-last", default=None, help="NHWC memory format (GPU).")
@click.option("--metrics", "metrics_list", help="Metrics to compute during training, comma-separated (e.g. fid1k,lpips_rec).")
@click.option("--metrics-kimg", "--metrics-every", "metrics_kimg", type=float,
              help="Interval of --metrics in kimg (default: at the end only).")
@click.option("--on-divergence", type=click.Choice(["rollback", "stop", "warn"]),
              help="On NaN or a runaway KL gap: roll back to the last checkpoint (default), stop, or warn.")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Where decoded image pyramids are cached (default ~/.cache/pioneer).")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and schedule, then exit.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs still go to the run folder).")
def train(preset: str, data: str | None, holdout: str | None, outdir: str, name: str | None, resume_dir: str | None,
          kimg: float | None, resolution: int | None, batch: int | None, seed: int | None, width: float | None, decoder_norm: str | None,
          no_margin: bool, device: str, gpus: int, amp: bool | None, channels_last: bool | None,
          metrics_list: str | None, metrics_kimg: float | None, on_divergence: str | None,
          cache_dir: str | None, dry_run: bool, no_progress: bool) -> None:
    """Train Balanced PIONEER (default: the built-in synthetic faces, sized for a CPU).

    \b
    Examples:
      pioneer train                                   # synthetic faces, ~15 min on 2 cores
      pioneer train --preset celebahq256 --data celebahq.zip --holdout image_list.txt --gpus 8
      pioneer train --resume runs/00003-celebahq256   # continue where it stopped
      pioneer train --preset lsun256 --dry-run        # print the schedule
    """
    from . import distributed as dist

    if gpus > 1 and "WORLD_SIZE" not in os.environ and not dry_run:
        _relaunch_with_torchrun(gpus)
    try:
        if resume_dir is not None:
            run_dir = Path(resume_dir)
            opts_path = run_dir / "options.json"
            if not opts_path.is_file():
                _fail(f"{run_dir} is not a run folder (no options.json): pass the folder that training created")
            try:
                opts = json.loads(opts_path.read_text())
                cfg = TrainConfig.from_dict(opts["config"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                _fail(f"{opts_path} is damaged ({e}); restore it or start a new run")
            preset_name = opts.get("preset", "?")
            cfg = _apply_overrides(cfg, data=None, holdout=None, kimg=kimg, resolution=None, batch=None, seed=None, width=None,
                                   decoder_norm=None, no_margin=False, amp=amp, channels_last=channels_last)
        else:
            preset_name = preset
            cfg = _apply_overrides(_load_preset(preset), data=data, holdout=holdout, kimg=kimg, resolution=resolution, batch=batch, seed=seed,
                                   width=width, decoder_norm=decoder_norm, no_margin=no_margin, amp=amp,
                                   channels_last=channels_last)
        run_opts: dict[str, Any] = {}
        if metrics_list is not None:
            run_opts["metrics"] = tuple(m.strip() for m in metrics_list.split(",") if m.strip())
        if metrics_kimg is not None:
            run_opts["metrics_kimg"] = metrics_kimg
        if on_divergence is not None:
            run_opts["on_divergence"] = on_divergence
        cfg = dataclasses.replace(cfg, **run_opts)
        if cfg.metrics:
            from .metrics import list_metrics
            unknown = [m for m in cfg.metrics if m not in list_metrics()]
            if unknown:
                _fail(f"unknown metric {unknown[0]!r}: use one of {', '.join(list_metrics())}")
    except ConfigError as e:
        _fail(str(e))

    if dry_run:
        click.echo(_summary(cfg, preset_name))
        click.echo()
        click.echo(format_table(describe(cfg.schedule)))
        return
    if cfg.data is None:
        _fail(f"preset {preset_name} has no built-in data: pass --data PATH (folder, .zip or LMDB)")

    from .data import DataError, open_source
    try:
        open_source(cfg.data)  # fail before creating a run folder (listing only, no decoding)
    except DataError as e:
        _fail(str(e))

    dev = dist.init(None if device == "auto" else device)
    try:
        if resume_dir is None:
            run_dir = _create_run_dir(Path(outdir), name or _describe_run(preset_name, cfg.data), dist)
            if dist.is_main():
                options = {"preset": preset_name, "command": sys.argv, "config": cfg.to_dict()}
                from .checkpoint import atomic_write_text
                atomic_write_text(run_dir / "options.json", json.dumps(options, indent=2) + "\n")
        elif dist.is_main() and kimg is not None:
            from .checkpoint import atomic_write_text
            opts["config"] = cfg.to_dict()
            atomic_write_text(run_dir / "options.json", json.dumps(opts, indent=2) + "\n")
        dist.print0(f"run folder: {run_dir}  (device {dev}, {dist.world_size()} process(es))")
        _train(cfg, run_dir, dev, resume_dir is not None, cache_dir, not no_progress)
    finally:
        dist.shutdown()


def _train(cfg: TrainConfig, run_dir: Path, device: Any, resume: bool, cache_dir: str | None, progress: bool) -> None:
    from . import distributed as dist
    from .checkpoint import CheckpointError
    from .data import DataError
    from .training_loop import train as train_loop

    try:
        result = train_loop(cfg, run_dir, device=device, resume=resume, cache_dir=cache_dir, progress=progress)
    except (DataError, CheckpointError, ConfigError) as e:
        _fail(str(e))
    if result.interrupted:
        sys.exit(130)
    if result.diverged:
        _fail(f"training diverged: {result.diverged}; the last good checkpoint is in {run_dir}")
    l1 = "n/a" if result.heldout_l1 is None else f"{result.heldout_l1:.4f}"
    dist.print0(f"done: {result.images_seen / 1000:g} kimg, {result.seconds / 60:.1f} min this session; "
                f"held-out L1 {l1}; snapshot {run_dir / 'snapshot.safetensors'}")


def _describe_run(preset_name: str, data: str) -> str:
    """Run folder suffix: the preset, plus the data set's name when it is not the built-in one."""
    if data.startswith("synthetic"):
        return preset_name
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(data.rstrip("/")).stem) or "data"
    return f"{preset_name}-{stem}"


def _create_run_dir(outdir: Path, desc: str, dist: Any) -> Path:
    """Rank 0 picks the next numbered folder and tells the other ranks."""
    import torch.distributed as tdist

    path = [str(_next_run_dir(outdir, desc))] if dist.is_main() else [""]
    if dist.world_size() > 1:
        tdist.broadcast_object_list(path, src=0)
    run_dir = Path(path[0])
    if dist.is_main():
        run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def _relaunch_with_torchrun(nproc: int) -> None:
    """Re-run this very command under torchrun with `nproc` processes on this machine."""
    args = [a for a in sys.argv[1:]]
    # drop "--gpus N" / "--gpus=N" so the children run as plain workers
    cleaned: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--gpus":
            skip = True
            continue
        if a.startswith("--gpus="):
            continue
        cleaned.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "pioneer", *cleaned]
    click.echo("launching: " + " ".join(cmd), err=True)
    os.execv(sys.executable, cmd)


# The other commands live in their own modules and attach themselves to the group.
from .cli_eval import register as _register_eval  # noqa: E402
from .cli_tools import register as _register_tools  # noqa: E402

_register_tools(main)
_register_eval(main)

if __name__ == "__main__":
    main()
