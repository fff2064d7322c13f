"""`pioneer` command line: validates options, resolves presets, calls the library."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from pioneer import distributed as dist, interrupts
from pioneer.atomic import atomic_write_text
from pioneer.cli.common import fail
from pioneer.cli.launch import create_run_dir, on_rank0, relaunch_with_torchrun, torchrun_command, warn_shared_store
from pioneer.config import DECODER_NORMS, PRESET_HELP, PRESETS, RECIPES, RESOLUTIONS, SPEED_OPTIONS, ConfigError, TrainConfig
from pioneer.config import recipe_of, with_recipe
from pioneer.config import preset as _load_preset
from pioneer.training.image_pool import pool_size
from pioneer.run import lock, oserrors
from pioneer.run.files import RunFolder, describe_run, next_run_dir
from pioneer.run.resume import RunError, find_run, start_in
from pioneer.training.schedule import describe, format_table
from pioneer.validate import Number, check_batch_split, check_device, check_gpus


def _set_kimg(cfg: TrainConfig, kimg: float) -> TrainConfig:
    if kimg <= 0:
        fail(f"--kimg {kimg} must be positive")
    return dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, total_kimg=kimg))


def _set_resolution(cfg: TrainConfig, resolution: int) -> TrainConfig:
    if resolution not in RESOLUTIONS:
        fail(f"--resolution {resolution} is not a power of two from 4 to 1024")
    sched, last = cfg.schedule, RESOLUTIONS[cfg.schedule.final_phase]
    if resolution > last:
        fail(f"the schedule of this preset ends at {last}px: --resolution can only lower it")
    level = RESOLUTIONS.index(resolution)
    return dataclasses.replace(cfg, schedule=dataclasses.replace(sched, rules=tuple(r for r in sched.rules if r.phase <= level)),
                               model=dataclasses.replace(cfg.model, max_resolution=resolution))


def _set_batch(cfg: TrainConfig, batch: int) -> TrainConfig:
    if batch < 1:
        fail(f"--batch {batch} must be at least 1")
    return dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule,
                                                                 batch_sizes={r: batch for r in cfg.schedule.batch_sizes}))


def _no_margin(cfg: TrainConfig, on: bool) -> TrainConfig:
    rules = tuple(dataclasses.replace(r, margin=0.0) for r in cfg.schedule.rules)
    return dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, rules=rules)) if on else cfg


def _field(name: str) -> Callable[[TrainConfig, Any], TrainConfig]:
    """Set TrainConfig.name, or ModelConfig.x for "model.x"."""
    section, _, key = name.rpartition(".")
    if section:
        return lambda cfg, v: dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{key: v})})
    return lambda cfg, v: dataclasses.replace(cfg, **{key: v})


def _metric_list(cfg: TrainConfig, listed: str) -> TrainConfig:
    return dataclasses.replace(cfg, metrics=tuple(m.strip() for m in listed.split(",") if m.strip()))


@dataclass(frozen=True)
class _Override:
    """A command-line option that changes the preset's configuration."""

    param: str                                          # the click parameter
    flag: str                                           # as the user types it
    apply: Callable[[TrainConfig, Any], TrainConfig]    # the option's value into the config
    on_resume: bool                                     # may change a resumed run (else the run keeps its own)


# Applied in this order to options given (not None): the speed bundles before the single speed
# flags, so these still apply on top; the recipe before anything a run may set after it.
_OVERRIDES: tuple[_Override, ...] = (
    _Override("eager", "--eager", lambda cfg, on: cfg.eager() if on else cfg, True),
    _Override("optimised", "--optimised", lambda cfg, on: cfg.optimised() if on else cfg, True),
    _Override("recipe", "--recipe", with_recipe, False),
    _Override("kimg", "--kimg", _set_kimg, True),       # a resumed run may be extended (_check_not_shorter)
    _Override("resolution", "--resolution", _set_resolution, False),
    _Override("batch", "--batch", _set_batch, False),
    _Override("no_margin", "--no-margin", _no_margin, False),
    _Override("width", "--width", _field("model.width"), False),
    _Override("decoder_norm", "--decoder-norm", _field("model.decoder_norm"), False),
    _Override("data", "--data", _field("data"), False),
    _Override("holdout", "--holdout", _field("holdout"), False),
    _Override("seed", "--seed", _field("seed"), False),
    _Override("amp", "--amp", _field("amp"), True),
    _Override("channels_last", "--channels-last", _field("channels_last"), True),
    _Override("sn_cache", "--sn-cache", _field("sn_cache"), True),
    _Override("compile_", "--compile", _field("compile"), True),
    _Override("metrics_list", "--metrics", _metric_list, True),
    _Override("metrics_kimg", "--metrics-kimg", _field("metrics_kimg"), True),
    _Override("on_divergence", "--on-divergence", _field("on_divergence"), True),
    _Override("collapse_rank", "--collapse-rank", _field("collapse_rank"), True),
    _Override("dead_cycle", "--dead-cycle", _field("dead_cycle"), True),
    _Override("checkpoint_kimg", "--checkpoint-kimg", _field("checkpoint_kimg"), True),
)


def _apply(cfg: TrainConfig, values: dict[str, Any], resumed: bool = False) -> TrainConfig:
    """cfg with the options in `values` (click parameter -> value; None = not given) applied in
    the table's order; for a resumed run only those that may change on resume."""
    for o in _OVERRIDES:
        if values.get(o.param) is not None and (o.on_resume or not resumed):
            cfg = o.apply(cfg, values[o.param])
    return cfg


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
        f"recipe      {recipe_of(cfg)}: code gain {m.code_gain:.4g} into the decoder, decoder L1 "
        f"x{cfg.loss.decoder_recon_weight:g}, encoder (1-cos) x{cfg.loss.encoder_cycle_weight:g}",
        f"optimiser   Adam betas {cfg.lr_betas}, eps {cfg.adam_eps:g}; EMA {cfg.ema_decay}",
        "image pool  " + (f"{cfg.image_pool} fakes below 256px, {pool_size(cfg.image_pool, 256)} from 256px, "
                          "once alpha = 1, emptied each phase" if cfg.image_pool else "off"),
        f"length      {cfg.schedule.total_kimg:g} kimg, fade-in {cfg.schedule.fade_kimg:g} kimg per phase",
        f"health      {cfg.on_divergence} on NaN, |KL gap| > {cfg.gap_threshold:g}"
        + (f", real-code rank < {cfg.collapse_rank:g}" if cfg.collapse_rank > 0 else "")
        + (f", cycle > {cfg.dead_cycle:g}" if cfg.dead_cycle > 0 else ""),
        "speed       " + (", ".join(k for k in SPEED_OPTIONS if getattr(cfg, k)) or "eager float32 (all options off)"),
    ]
    return "\n".join(lines)


@click.command(epilog="Presets:\n\n" + "\n\n".join(f"{k}: {v}" for k, v in PRESET_HELP.items()))
@click.option("--preset", default="synthetic64", show_default=True, type=click.Choice(list(PRESETS)),
              help="Named configuration (schedule, batch sizes, architecture).")
@click.option("--data", help='"synthetic", "synthetic:N", an image folder, a .zip of images or an LMDB folder.')
@click.option("--holdout", type=click.Path(dir_okay=False), help="Held-out list file, or CelebA-HQ image_list.txt.")
@click.option("--outdir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Parent folder of the numbered run folders.")
@click.option("--name", help="Suffix of the run folder name (default: the preset).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              help="Continue the run in this folder from its last checkpoint.")
@click.option("--run-dir", "run_dir_opt", type=click.Path(file_okay=False),
              help="Train into exactly this folder: resume it if it holds a checkpoint, else start a new run "
                   "there (instead of --outdir/--name; what torchrun restarts need).")
@click.option("--kimg", type=Number(0.001, 1e8), help="Total length in thousands of images (overrides the preset).")
@click.option("--resolution", type=int, help="Stop growing at this resolution (drops later phases).")
@click.option("--batch", type=Number(1, 1 << 20, integer=True), help="Global batch size at every resolution (overrides the preset).")
@click.option("--seed", type=Number(0, 2**31 - 1, integer=True), help="Random seed (default 0).")
@click.option("--width", type=Number(0, 64, open_low=True), help="Channel multiplier on the paper's channel table.")
@click.option("--decoder-norm", type=click.Choice(DECODER_NORMS), help="Decoder normalisation (ablation).")
@click.option("--no-margin", is_flag=True, help="Switch the KL margin off in every rule (ablation).")
@click.option("--recipe", type=click.Choice(RECIPES),
              help="How the networks are trained: 'authors' (the paper's losses; the paper presets) or 'small' "
                   "(what narrow networks on short runs need to learn; the default preset). See docs/collapse.md.")
@click.option("--device", default="auto", show_default=True, help='"auto", "cpu", "cuda" or "cuda:N".')
@click.option("--gpus", type=Number(1, 1024, integer=True), default=1, show_default=True,
              help="Processes on this machine (GPUs, or gloo CPU processes); launches torchrun for you.")
@click.option("--max-restarts", type=Number(0, 1000, integer=True), default=0, show_default=True,
              help="With the torchrun launch: restart all processes up to this many times after a failure, "
                   "resuming from the last checkpoint (picks a --run-dir if none is given).")
@click.option("--amp/--no-amp", default=None,
              help="bf16 autocast; KL and losses stay float32 (GPU, or CPUs with AVX512-BF16/AMX).")
@click.option("--channels-last/--no-channels-last", default=None, help="NHWC memory format (faster convolutions).")
@click.option("--sn-cache/--no-sn-cache", default=None,
              help="Spectral-norm weights once per optimiser step instead of once per forward.")
@click.option("--compile/--no-compile", "compile_", default=None,
              help="torch.compile the conv blocks (off by default: no gain measured on CPU; try it on GPU).")
@click.option("--optimised", "--optimized", "optimised", is_flag=True,
              help="bf16 autocast + channels_last + spectral norm once per step (flags above still apply).")
@click.option("--eager", is_flag=True,
              help="The plain float32 path of the authors' code: every speed option off (flags above still apply).")
@click.option("--metrics", "metrics_list", help="Metrics to compute during training, comma-separated (e.g. fid1k,lpips_rec).")
@click.option("--metrics-kimg", "--metrics-every", "metrics_kimg", type=Number(0, 1e8, open_low=True),
              help="Interval of --metrics in kimg (default: at the end only).")
@click.option("--on-divergence", type=click.Choice(["rollback", "stop", "warn"]),
              help="On NaN, a runaway KL gap or a collapse: roll back to the last checkpoint (default), stop, or warn.")
@click.option("--collapse-rank", type=Number(0, 4096),
              help="Code collapse: the effective rank of a batch of real codes below this for 5 records in a "
                   "row, from the 8x8 phase on, counts as divergence (default 4; 0 = off).")
@click.option("--dead-cycle", type=Number(0, 2, open_high=True),
              help="Dead latent cycle: 1 - cos(z, E(G(z))) of a batch above this for 5 records in a row, "
                   "from the 16x16 phase on, counts as divergence (default: the preset's, 0.98 for synthetic64, "
                   "off for the paper presets; 0 = off).")
@click.option("--checkpoint-kimg", type=Number(0, 1e8, open_low=True),
              help="Interval of the training-state checkpoint in kimg (overrides the preset).")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Where decoded image pyramids are cached (default ~/.cache/pioneer).")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and schedule, then exit.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs still go to the run folder).")
def train(preset: str, data: str | None, holdout: str | None, outdir: str, name: str | None, resume_dir: str | None,
          run_dir_opt: str | None, kimg: float | None, resolution: int | None, batch: int | None, seed: int | None,
          width: float | None, decoder_norm: str | None, no_margin: bool, recipe: str | None, device: str, gpus: int,
          max_restarts: int,
          amp: bool | None, channels_last: bool | None, sn_cache: bool | None, compile_: bool | None,
          optimised: bool, eager: bool,
          metrics_list: str | None, metrics_kimg: float | None,
          on_divergence: str | None, collapse_rank: float | None, dead_cycle: float | None,
          checkpoint_kimg: float | None, cache_dir: str | None, dry_run: bool,
          no_progress: bool) -> None:
    """Train Balanced PIONEER (default: the built-in synthetic faces, sized for a CPU).

    \b
    Examples:
      pioneer train                                   # synthetic faces, ~11 min on 2 cores
      pioneer train --preset celebahq256 --data celebahq.zip --holdout image_list.txt --gpus 8
      pioneer train --resume runs/00003-celebahq256   # continue where it stopped
      pioneer train --run-dir runs/celeba --preset celebahq256 --data celebahq.zip --gpus 8 --max-restarts 3
      pioneer train --preset lsun256 --dry-run        # print the schedule
    """
    ctx = click.get_current_context()
    # Options that fix a run's model, data and schedule, as given on the command line.
    fixed = {o.param: ctx.params[o.param] for o in _OVERRIDES if not o.on_resume
             and ctx.get_parameter_source(o.param) is not ParameterSource.DEFAULT}
    if ctx.get_parameter_source("preset") is not ParameterSource.DEFAULT:
        fixed["preset"] = preset
    in_torchrun = "WORLD_SIZE" in os.environ
    _check_options(ctx, in_torchrun)
    launch = not in_torchrun and not dry_run and (gpus > 1 or max_restarts > 0)
    if not dry_run:
        check_device(device)
        if launch:
            check_gpus(gpus, device)

    # Under torchrun the process group starts first, so that rank 0 alone decides below whether
    # the run folder is resumed and every rank follows that decision.
    dev = None if dry_run or launch else dist.init(None if device == "auto" else device)
    stack = contextlib.ExitStack()  # the run folder's lock and the cleanup of a failed start
    started = [False]               # training returned (finished, stopped or diverged)
    try:
        folder = Path(run_dir_opt or resume_dir) if (run_dir_opt or resume_dir) else None
        created = folder is not None and not folder.exists()
        if folder is not None and dist.is_main() and not dry_run and not launch and (run_dir_opt or folder.is_dir()):
            stack.enter_context(lock.hold(folder, note=_note))  # before reading it
        found = None if folder is None else on_rank0(lambda: _find_run(folder, required=resume_dir is not None))
        cfg, preset_name = _resolve_config(ctx, found, folder, fixed)
        if dry_run:
            click.echo(_summary(cfg, preset_name))
            click.echo()
            click.echo(format_table(describe(cfg.schedule)))
            return
        if cfg.data is None:
            fail(f"preset {preset_name} has no built-in data: pass --data PATH (folder, .zip or LMDB)")

        from pioneer.data import DataError, open_source
        try:
            open_source(cfg.data)  # fail before creating a run folder (listing only, no decoding)
        except DataError as e:
            fail(str(e))
        check_batch_split(cfg.schedule.batch_sizes, RESOLUTIONS[cfg.schedule.final_phase],
                          gpus if launch else dist.world_size())

        if launch:
            if max_restarts and folder is None:
                # Restarted workers re-run the same command: give them one folder to resume from.
                folder = next_run_dir(Path(outdir), name or describe_run(preset_name, cfg.data))
                folder.mkdir(parents=True, exist_ok=False)
                click.echo(f"run folder: {folder}  (restarts resume from its last checkpoint)", err=True)
                run_dir_opt = str(folder)
            interrupts.check()  # exec drops the recorder: a request recorded so far is acted on here
            relaunch_with_torchrun(torchrun_command(sys.argv[1:], gpus, max_restarts,
                                                      Path(run_dir_opt) if run_dir_opt else None), max_restarts)

        resuming = found is not None
        if folder is None:
            run_dir = create_run_dir(Path(outdir), name or describe_run(preset_name, cfg.data))
            created = True
            if dist.is_main():
                stack.enter_context(lock.hold(run_dir, note=_note))
        else:
            run_dir = folder
        if not resuming and dist.is_main():  # a new run that fails before its first checkpoint leaves no folder
            from pioneer.run.integrity import discard_unstarted_run
            stack.callback(lambda: None if started[0] else discard_unstarted_run(run_dir, created))
        if dist.is_main():
            _write_options(RunFolder(run_dir), found, cfg, preset_name, fresh_folder=folder is not None)
            warn_shared_store()
        _announce(run_dir, found, dev)
        interrupts.check()  # before the image cache is built (the loop checks again before its first iteration)
        _train(cfg, run_dir, dev, resuming, cache_dir, not no_progress)
        started[0] = True
    except lock.RunLockError as e:
        fail(str(e))
    except BrokenPipeError:  # output piped into `head`: pioneer.entry exits quietly
        raise
    except OSError as e:  # disk full, read-only or unwritable folders: the message names the path
        fail(oserrors.one_line(e, where=locals().get("run_dir")))
    finally:
        stack.close()
        dist.shutdown()


def _note(message: str) -> None:
    click.echo(message, err=True)


def _check_options(ctx: click.Context, in_torchrun: bool) -> None:
    """One-line errors for options that contradict each other or are out of range."""
    p = ctx.params
    run_dir_opt, resume_dir, max_restarts = p["run_dir_opt"], p["resume_dir"], p["max_restarts"]
    if run_dir_opt is not None and resume_dir is not None:
        fail("--run-dir and --resume both name the run folder: use one (--run-dir resumes too)")
    for flag, folder_opt in (("--run-dir", run_dir_opt), ("--resume", resume_dir)):
        if folder_opt is not None and (p["name"] is not None
                                       or ctx.get_parameter_source("outdir") is not ParameterSource.DEFAULT):
            fail(f"{flag} names the run folder itself: drop --outdir and --name")
    if max_restarts and in_torchrun:
        fail("--max-restarts is for the launch by --gpus; under your own torchrun pass --max-restarts to torchrun")
    if p["optimised"] and p["eager"]:
        fail("--optimised and --eager contradict each other: pick one")


def _resolve_config(ctx: click.Context, found: dict[str, Any] | None, folder: Path | None,
                    fixed: dict[str, Any]) -> tuple[TrainConfig, str]:
    """The run's configuration and preset name: the resumed run's own (only the options that
    may change on resume apply: its length, speed and run options), or the preset with the
    command line's overrides."""
    p = ctx.params
    try:
        if found is not None:
            opts = found["options"]
            preset_name = opts.get("preset", "?")
            cfg = TrainConfig.from_dict(opts["config"])
            _check_fixed(folder, preset_name, cfg, fixed)
            _check_not_shorter(folder, cfg, p["kimg"], found["images_seen"])
            cfg = _apply(cfg, p, resumed=True)
        else:
            preset_name = p["preset"]
            cfg = _apply(_load_preset(preset_name), p)
    except ConfigError as e:
        fail(str(e))
    if cfg.metrics:
        from pioneer.metrics import list_metrics
        unknown = [m for m in cfg.metrics if m not in list_metrics()]
        if unknown:
            fail(f"unknown metric {unknown[0]!r}: use one of {', '.join(list_metrics())}")
    return cfg, preset_name


def _check_not_shorter(folder: Path, cfg: TrainConfig, kimg: float | None, images_seen: int | None) -> None:
    """--kimg may extend or shorten a resumed run, but not below what it has already seen."""
    if kimg is not None and images_seen is not None and int(kimg * 1000) < images_seen:
        if kimg < cfg.schedule.total_kimg:
            fail(f"--kimg {kimg:g} is below the {images_seen / 1000:g} kimg the run in {folder} has already seen: "
                 f"give a larger --kimg to extend it, or drop --kimg")


def _write_options(run: RunFolder, found: dict[str, Any] | None, cfg: TrainConfig, preset_name: str,
                   fresh_folder: bool) -> None:
    """options.json of a new run; for a resumed one, rewritten when e.g. a longer --kimg changed it."""
    if found is None:
        if fresh_folder:
            start_in(run.path)
        options = {"preset": preset_name, "command": sys.argv, "config": cfg.to_dict()}
        atomic_write_text(run.options, json.dumps(options, indent=2) + "\n")
    elif cfg.to_dict() != found["options"]["config"]:
        opts = {**found["options"], "config": cfg.to_dict()}
        atomic_write_text(run.options, json.dumps(opts, indent=2) + "\n")


def _announce(run_dir: Path, found: dict[str, Any] | None, dev: Any) -> None:
    restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    prefix = f"elastic restart {restart}: " if restart > 0 else ""
    if found is not None and found["images_seen"] is not None:
        dist.print0(f"{prefix}resuming {run_dir} from {found['images_seen'] / 1000:g} kimg")
    elif prefix:
        dist.print0(f"{prefix}no checkpoint in {run_dir} yet, starting the run over")
    dist.print0(f"run folder: {run_dir}  (device {dev}, {dist.world_size()} process(es))")


def _check_fixed(folder: Path, preset_name: str, cfg: TrainConfig, given: dict[str, Any]) -> None:
    """Fail when an option given on the command line would change the resumed run. Values that
    agree with the run pass, so that a restarted command (the same argv) resumes."""
    flags = {o.param: o.flag for o in _OVERRIDES}
    for key, value in given.items():
        if key == "preset":
            same = value == preset_name
        else:
            try:
                same = _apply(cfg, {key: value}) == cfg
            except click.ClickException:  # e.g. a --resolution beyond the run's schedule
                same = False
        if not same:
            flag = flags.get(key, "--preset")
            shown = flag if isinstance(value, bool) else f"{flag} {value}"
            fail(f"{shown} does not match the run in {folder} (see its options.json): "
                  f"a resumed run keeps its model, data and schedule; drop {flag} or train into a new folder")


def _find_run(folder: Path, required: bool) -> dict[str, Any] | None:
    try:
        return find_run(folder, required)
    except RunError as e:
        fail(str(e))


def _train(cfg: TrainConfig, run_dir: Path, device: Any, resume: bool, cache_dir: str | None, progress: bool) -> None:
    from pioneer.errors import PioneerError
    from pioneer.training.loop import train as train_loop

    try:
        result = train_loop(cfg, run_dir, device=device, resume=resume, cache_dir=cache_dir, progress=progress)
    except PioneerError as e:
        fail(str(e))
    if result.write_error:
        fail(f"checkpoints could not be written ({result.write_error}); the last good checkpoint is in {run_dir}: "
             f"fix that, then resume with: pioneer train --resume {run_dir}")
    if result.interrupted:
        sys.exit(130)
    if result.diverged:
        fail(f"training diverged: {result.diverged}; the last good checkpoint is in {run_dir}")
    l1 = "n/a" if result.heldout_l1 is None else f"{result.heldout_l1:.4f}"
    dist.print0(f"done: {result.images_seen / 1000:g} kimg, {result.seconds / 60:.1f} min this session; "
                f"held-out L1 {l1}; snapshot {RunFolder(run_dir).snapshot}")


COMMANDS = (train,)
