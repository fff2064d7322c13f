"""`pioneer` command line: validates options, resolves presets, calls the library."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

import click
from click.core import ParameterSource

from .config import DECODER_NORMS, PRESET_HELP, PRESETS, RECIPES, RESOLUTIONS, SPEED_OPTIONS, ConfigError, TrainConfig
from .config import recipe_of, with_recipe
from .config import preset as _load_preset
from .image_pool import pool_size
from .schedule import describe, format_table


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _next_run_dir(outdir: Path, desc: str) -> Path:
    """runs/00000-desc, runs/00001-desc, ... (EDM style)."""
    ids = [int(m.group(1)) for p in outdir.glob("*") if (m := re.match(r"^(\d+)-", p.name))] if outdir.is_dir() else []
    return outdir / f"{max(ids, default=-1) + 1:05d}-{desc}"


def _apply_overrides(cfg: TrainConfig, *, data: str | None, holdout: str | None, kimg: float | None,
                     resolution: int | None, batch: int | None, seed: int | None, width: float | None, decoder_norm: str | None,
                     no_margin: bool, amp: bool | None, channels_last: bool | None, sn_cache: bool | None = None,
                     compile: bool | None = None, eager: bool = False, optimised: bool = False,
                     recipe: str | None = None) -> TrainConfig:
    # The speed bundles first; the single speed flags below still apply on top.
    cfg = cfg.eager() if eager else cfg.optimised() if optimised else cfg
    if recipe is not None:
        cfg = with_recipe(cfg, recipe)
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
    given = dict(data=data, holdout=holdout, seed=seed, amp=amp, channels_last=channels_last, sn_cache=sn_cache,
                 compile=compile)
    changes.update({k: v for k, v in given.items() if v is not None})
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
@click.option("--run-dir", "run_dir_opt", type=click.Path(file_okay=False),
              help="Train into exactly this folder: resume it if it holds a checkpoint, else start a new run "
                   "there (instead of --outdir/--name; what torchrun restarts need).")
@click.option("--kimg", type=float, help="Total length in thousands of images (overrides the preset).")
@click.option("--resolution", type=int, help="Stop growing at this resolution (drops later phases).")
@click.option("--batch", type=int, help="Global batch size at every resolution (overrides the preset).")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--width", type=float, help="Channel multiplier on the paper's channel table.")
@click.option("--decoder-norm", type=click.Choice(DECODER_NORMS), help="Decoder normalisation (ablation).")
@click.option("--no-margin", is_flag=True, help="Switch the KL margin off in every rule (ablation).")
@click.option("--recipe", type=click.Choice(RECIPES),
              help="How the networks are trained: 'authors' (the paper's losses; the paper presets) or 'small' "
                   "(what narrow networks on short runs need to learn; the default preset). See docs/collapse.md.")
@click.option("--device", default="auto", show_default=True, help='"auto", "cpu", "cuda" or "cuda:N".')
@click.option("--gpus", type=int, default=1, show_default=True,
              help="Processes on this machine (GPUs, or gloo CPU processes); launches torchrun for you.")
@click.option("--max-restarts", type=int, default=0, show_default=True,
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
@click.option("--metrics-kimg", "--metrics-every", "metrics_kimg", type=float,
              help="Interval of --metrics in kimg (default: at the end only).")
@click.option("--on-divergence", type=click.Choice(["rollback", "stop", "warn"]),
              help="On NaN, a runaway KL gap or a collapse: roll back to the last checkpoint (default), stop, or warn.")
@click.option("--collapse-rank", type=float,
              help="Code collapse: the effective rank of a batch of real codes below this for 5 records in a "
                   "row, from the 8x8 phase on, counts as divergence (default 4; 0 = off).")
@click.option("--dead-cycle", type=float,
              help="Dead latent cycle: 1 - cos(z, E(G(z))) of a batch above this for 5 records in a row, "
                   "from the 16x16 phase on, counts as divergence (default: the preset's, 0.98 for synthetic64, "
                   "off for the paper presets; 0 = off).")
@click.option("--checkpoint-kimg", type=float,
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
      pioneer train                                   # synthetic faces, ~15 min on 2 cores
      pioneer train --preset celebahq256 --data celebahq.zip --holdout image_list.txt --gpus 8
      pioneer train --resume runs/00003-celebahq256   # continue where it stopped
      pioneer train --run-dir runs/celeba --preset celebahq256 --data celebahq.zip --gpus 8 --max-restarts 3
      pioneer train --preset lsun256 --dry-run        # print the schedule
    """
    from . import distributed as dist

    ctx = click.get_current_context()
    # Options that fix a run's model, data and schedule, as given on the command line.
    fixed = {k: ctx.params[k] for k in _FIXED_BY_RUN if ctx.get_parameter_source(k) is not ParameterSource.DEFAULT}
    in_torchrun = "WORLD_SIZE" in os.environ
    if run_dir_opt is not None and resume_dir is not None:
        _fail("--run-dir and --resume both name the run folder: use one (--run-dir resumes too)")
    if run_dir_opt is not None and (name is not None or ctx.get_parameter_source("outdir") is not ParameterSource.DEFAULT):
        _fail("--run-dir names the run folder itself: drop --outdir and --name")
    if gpus < 1:
        _fail(f"--gpus {gpus} must be at least 1")
    if max_restarts < 0:
        _fail(f"--max-restarts {max_restarts} must be 0 or more")
    if max_restarts and in_torchrun:
        _fail("--max-restarts is for the launch by --gpus; under your own torchrun pass --max-restarts to torchrun")
    if checkpoint_kimg is not None and checkpoint_kimg <= 0:
        _fail(f"--checkpoint-kimg {checkpoint_kimg} must be positive")
    if collapse_rank is not None and not collapse_rank >= 0:
        _fail(f"--collapse-rank {collapse_rank} must be 0 (off) or positive")
    if dead_cycle is not None and not 0 <= dead_cycle < 2:
        _fail(f"--dead-cycle {dead_cycle} must be 0 (off) or between 0 and 2 (1 - cos ranges over 0..2)")
    launch = not in_torchrun and not dry_run and (gpus > 1 or max_restarts > 0)

    # Under torchrun the process group starts first, so that rank 0 alone decides below whether
    # the run folder is resumed and every rank follows that decision.
    dev = None if dry_run or launch else dist.init(None if device == "auto" else device)
    try:
        if optimised and eager:
            _fail("--optimised and --eager contradict each other: pick one")
        speed = dict(amp=amp, channels_last=channels_last, sn_cache=sn_cache, compile=compile_, eager=eager,
                     optimised=optimised)
        folder = Path(run_dir_opt or resume_dir) if (run_dir_opt or resume_dir) else None
        found = None if folder is None else _on_rank0(lambda: _find_run(folder, required=resume_dir is not None), dist)
        try:
            if found is not None:
                opts = found["options"]
                preset_name = opts.get("preset", "?")
                cfg = TrainConfig.from_dict(opts["config"])
                _check_fixed(folder, preset_name, cfg, fixed)
                cfg = _apply_overrides(cfg, **{**_NO_OVERRIDES, "kimg": kimg, **speed})
            else:
                preset_name = preset
                cfg = _apply_overrides(_load_preset(preset), data=data, holdout=holdout, kimg=kimg, resolution=resolution,
                                       batch=batch, seed=seed, width=width, decoder_norm=decoder_norm, no_margin=no_margin,
                                       recipe=recipe, **speed)
            metrics = None if metrics_list is None else tuple(m.strip() for m in metrics_list.split(",") if m.strip())
            run_opts = dict(metrics=metrics, metrics_kimg=metrics_kimg, on_divergence=on_divergence,
                            collapse_rank=collapse_rank, dead_cycle=dead_cycle, checkpoint_kimg=checkpoint_kimg)
            cfg = dataclasses.replace(cfg, **{k: v for k, v in run_opts.items() if v is not None})
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

        if launch:
            if max_restarts and folder is None:
                # Restarted workers re-run the same command: give them one folder to resume from.
                folder = _next_run_dir(Path(outdir), name or _describe_run(preset_name, cfg.data))
                folder.mkdir(parents=True, exist_ok=False)
                click.echo(f"run folder: {folder}  (restarts resume from its last checkpoint)", err=True)
                run_dir_opt = str(folder)
            _relaunch_with_torchrun(_torchrun_command(sys.argv[1:], gpus, max_restarts,
                                                      Path(run_dir_opt) if run_dir_opt else None), max_restarts)

        resuming = found is not None
        if folder is None:
            run_dir = _create_run_dir(Path(outdir), name or _describe_run(preset_name, cfg.data), dist)
        else:
            run_dir = folder
        if dist.is_main():
            from .checkpoint import atomic_write_text
            if not resuming:
                options = {"preset": preset_name, "command": sys.argv, "config": cfg.to_dict()}
                if folder is not None:
                    _start_in(folder)
                atomic_write_text(run_dir / "options.json", json.dumps(options, indent=2) + "\n")
            elif cfg.to_dict() != opts["config"]:  # e.g. a longer --kimg: options.json describes the run
                opts["config"] = cfg.to_dict()
                atomic_write_text(run_dir / "options.json", json.dumps(opts, indent=2) + "\n")
        if dist.is_main():
            _warn_shared_store()
        restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
        prefix = f"elastic restart {restart}: " if restart > 0 else ""
        if resuming and found["images_seen"] is not None:
            dist.print0(f"{prefix}resuming {run_dir} from {found['images_seen'] / 1000:g} kimg")
        elif prefix:
            dist.print0(f"{prefix}no checkpoint in {run_dir} yet, starting the run over")
        dist.print0(f"run folder: {run_dir}  (device {dev}, {dist.world_size()} process(es))")
        _train(cfg, run_dir, dev, resuming, cache_dir, not no_progress)
    finally:
        dist.shutdown()


# Options that define a run (its model, data and schedule); a resumed run keeps its own.
_FIXED_BY_RUN = ("preset", "data", "holdout", "resolution", "batch", "seed", "width", "decoder_norm", "no_margin",
                 "recipe")
_NO_OVERRIDES: dict[str, Any] = dict(data=None, holdout=None, kimg=None, resolution=None, batch=None, seed=None,
                                     width=None, decoder_norm=None, no_margin=False, amp=None, channels_last=None,
                                     recipe=None)


def _check_fixed(folder: Path, preset_name: str, cfg: TrainConfig, given: dict[str, Any]) -> None:
    """Fail when an option given on the command line would change the resumed run. Values that
    agree with the run pass, so that a restarted command (the same argv) resumes."""
    for key, value in given.items():
        if key == "preset":
            same = value == preset_name
        else:
            try:
                same = _apply_overrides(cfg, **{**_NO_OVERRIDES, key: value}) == cfg
            except click.ClickException:  # e.g. a --resolution beyond the run's schedule
                same = False
        if not same:
            flag = "--" + key.replace("_", "-")
            shown = flag if isinstance(value, bool) else f"{flag} {value}"
            _fail(f"{shown} does not match the run in {folder} (see its options.json): "
                  f"a resumed run keeps its model, data and schedule; drop {flag} or train into a new folder")


def _find_run(folder: Path, required: bool) -> dict[str, Any] | None:
    """The saved options and images seen of the run to resume in `folder`, or None when a new run
    starts there. required (--resume): the folder must be a run folder."""
    from .checkpoint import CheckpointError, load_training_state

    opts_path, state_path = folder / "options.json", folder / "training-state.pt"
    if required and not opts_path.is_file():
        _fail(f"{folder} is not a run folder (no options.json): pass the folder that training created")
    if not required and not state_path.is_file():
        if folder.is_dir() and not opts_path.is_file() and any(folder.iterdir()):
            _fail(f"{folder} is neither empty nor a run folder: pass a new or empty folder to --run-dir")
        return None  # new, empty, or a run that stopped before its first checkpoint
    if not opts_path.is_file():
        _fail(f"{folder} has a training-state.pt but no options.json: restore it or start a new run")
    try:
        opts = json.loads(opts_path.read_text())
        TrainConfig.from_dict(opts["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ConfigError) as e:
        _fail(f"{opts_path} is damaged ({e}); restore it or start a new run")
    images_seen = None
    if state_path.is_file():
        try:
            images_seen = int(load_training_state(state_path, mmap=True)["images_seen"])
        except (CheckpointError, KeyError) as e:
            _fail(str(e))
    return {"options": opts, "images_seen": images_seen}


def _start_in(folder: Path) -> None:
    """Prepare `folder` for a new run: create it, and drop the logs of an attempt that stopped
    before its first checkpoint (they would otherwise be appended to)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "options.json").is_file():
        for stale in ("stats.jsonl", "summary.json"):
            (folder / stale).unlink(missing_ok=True)
        shutil.rmtree(folder / "tensorboard", ignore_errors=True)


def _on_rank0(fn: Callable[[], Any], dist: Any) -> Any:
    """fn() on rank 0, its result (or its error) on every rank: one decision for all ranks, even
    when the nodes see a shared folder differently (NFS caches)."""
    box: list[Any] = [None]
    if dist.is_main():
        try:
            box[0] = ("ok", fn())
        except click.ClickException as e:
            box[0] = ("error", e.message)
    if dist.world_size() > 1:
        import torch.distributed as tdist
        tdist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        _fail(value)
    return value


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


def _torchrun_command(argv: list[str], nproc: int, max_restarts: int, run_dir: Path | None) -> list[str]:
    """The torchrun command that re-runs `pioneer argv` with `nproc` processes on this machine.

    --gpus and --max-restarts go to torchrun; with run_dir the workers get --run-dir instead of
    --outdir/--name, so that a restarted worker resumes the run instead of starting a new one.
    """
    drop = {"--gpus", "--max-restarts"} | ({"--outdir", "--name", "--run-dir"} if run_dir is not None else set())
    cleaned: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in drop:
            skip = True  # and its value
            continue
        if a.split("=", 1)[0] in drop:
            continue
        cleaned.append(a)
    if run_dir is not None:
        cleaned += ["--run-dir", str(run_dir)]
    restarts = [f"--max-restarts={max_restarts}"] if max_restarts else []
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *restarts,
            "-m", "pioneer", *cleaned]


def _relaunch_with_torchrun(cmd: list[str], max_restarts: int) -> None:
    """Replace this process by the torchrun launch `cmd`."""
    env = dict(os.environ)
    if max_restarts:
        env.setdefault(*_OWN_STORE)
    click.echo("launching: " + " ".join(cmd), err=True)
    os.execve(sys.executable, cmd, env)


# torchrun's c10d rendezvous shares one store with the workers of every attempt, and restarted
# workers then read the previous attempt's addresses and cannot connect (pytorch/pytorch#135712;
# still so in torch 2.14). With this set, each attempt's rank 0 starts a fresh store.
_OWN_STORE = ("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")


def _warn_shared_store() -> None:
    """Under torchrun with restarts and a shared store: say how to make the restarts work."""
    if (os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
            and int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0")) > 0):
        click.echo(f"warning: restarted workers may fail to reconnect through torchrun's shared store; "
                   f"set {_OWN_STORE[0]}={_OWN_STORE[1]} in torchrun's environment", err=True)


# The other commands live in their own modules and attach themselves to the group.
from .cli_eval import register as _register_eval  # noqa: E402
from .cli_share import register as _register_share  # noqa: E402
from .cli_tools import register as _register_tools  # noqa: E402

_register_tools(main)
_register_eval(main)
_register_share(main)

if __name__ == "__main__":
    main()
