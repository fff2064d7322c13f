"""The training loop: one encoder step and `decoder_steps` decoder steps per iteration,
counting images seen; everything else (phase, resolution, alpha, lr, margin, batch) comes from
the schedule as a function of that count.

The same code runs on CPU, one GPU and many (torchrun): each rank draws the same global batch
(indices, flips, prior codes) from an identically seeded generator and keeps its slice, the KL
statistics are computed over the global batch, and gradients are averaged. So a run is
determined by its seed, not by the number of processes, and only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from pioneer import distributed as dist, interrupts
from pioneer.config import RESOLUTIONS, TrainConfig
from pioneer.data.batches import real_batch
from pioneer.model.loss import DecoderLoss, EncoderLoss
from pioneer.model.networks import native_bf16_cpu, sample_prior
from pioneer.atomic import atomic_write_text
from pioneer.run import integrity, lock
from pioneer.run.checkpoint import last_good_state, load_training_state, save_snapshot
from pioneer.run.checkpoint import save_training_state
from pioneer.run.files import RunFolder, cache_dir as resolve_cache_dir
from pioneer.run.oserrors import WriteGuard
from pioneer.run.resume import missing_final_outputs
from pioneer.run.stats import StatsWriter
from pioneer.training.ema import EmaUpdate
from pioneer.training.grad_shares import gradient_shares
from pioneer.training.health import Action, DivergenceMonitor, Verdict
from pioneer.training.image_pool import global_pool, pool_size
from pioneer.training.preview import Preview
from pioneer.training.records import RecordMeter, progress_text
from pioneer.training.schedule import SchedulePoint, state_at
from pioneer.training.signals import stop_requests
from pioneer.training.state import TrainingState
from pioneer.training.step import autocast_for, set_lr, training_iteration


@dataclass
class TrainResult:
    images_seen: int
    iterations: int
    heldout_l1: float | None
    interrupted: bool
    seconds: float
    last_stats: dict[str, Any] = field(default_factory=dict)
    encoder: torch.nn.Module | None = None        # the trained networks, for use from Python
    decoder: torch.nn.Module | None = None
    decoder_ema: torch.nn.Module | None = None
    diverged: str | None = None                   # why the monitor stopped the run, if it did
    rollbacks: int = 0
    write_error: str | None = None                # why checkpoints could not be written, when they could not


def train(cfg: TrainConfig, run_dir: str | Path, *, device: torch.device | str = "cpu", resume: bool = False,
          cache_dir: str | Path | None = None, progress: bool = True, stop_after: int | None = None) -> TrainResult:
    """Train (or continue training) into `run_dir`, holding its lock (run.lock.RunLockError when
    another process trains there); temporary files of killed writes are removed first.

    stop_after: stop after this many iterations of this call (a checkpoint is written), as if
    the run had been interrupted there; for tests and for splitting a long run.
    The caller's global RNG and cuDNN settings are left as they were.
    """
    device = torch.device(device)
    _check_run(cfg, device)
    main = dist.is_main()
    with lock.hold(run_dir, enabled=main, note=_note), torch.random.fork_rng(devices=[]), \
            _cudnn_benchmark(device.type == "cuda"):
        if main and (removed := integrity.remove_stale_temps(run_dir)):
            _note(integrity.describe_removed(removed))
        return _train(cfg, RunFolder(run_dir), device, resume, resolve_cache_dir(cache_dir), progress, stop_after)


def _note(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass
class _Session:
    """What the loop's upkeep works on, built once by `_train`'s setup. Only rank 0 (`main`)
    has `stats`: it writes every file."""

    cfg: TrainConfig
    run: RunFolder
    state: TrainingState
    split: Any                      # the DataSplit: .pyramid, .train, .test
    device: torch.device
    cache_dir: Path
    autocast: Any
    stats: StatsWriter | None
    monitor: DivergenceMonitor
    meter: RecordMeter
    preview: Preview
    guard: WriteGuard               # checkpoints: retried, the run stops after 3 failures
    bar: tqdm
    main: bool
    extra: dict[str, Any]           # what every snapshot records: data, held-out list, held-out digest


def _train(cfg: TrainConfig, run: RunFolder, device: torch.device, resume: bool, cache_dir: Path, progress: bool,
           stop_after: int | None) -> TrainResult:
    # Section: setup. Data, the training state (new, or resumed from the newest state that
    # verifies), the logs, the monitor and the fixed preview inputs.
    main, sched, lcfg = dist.is_main(), cfg.schedule, cfg.loss
    split = _open_data(cfg, cache_dir, progress)
    state = TrainingState.create(cfg, split.train, device)
    if resume:
        state.load_state_dict(integrity.load_with_fallback(run.path, load_training_state, _note), source=str(run.state))
    state.broadcast()
    # The last safe point for a start-up Ctrl-C (pioneer.interrupts) before files are opened;
    # one that arrives later is taken over by the loop's handlers below.
    interrupts.check()
    total = int(sched.total_kimg * 1000)
    bar = tqdm(total=total, initial=min(state.images_seen, total), unit="img", unit_scale=True, dynamic_ncols=True,
               disable=not (main and progress), smoothing=0.05)
    s = _Session(
        cfg, run, state, split, device, cache_dir, autocast_for(cfg, device),
        stats=StatsWriter(run.path, resume_images=state.images_seen if resume else None) if main else None,
        # Every rank runs the monitor on the same (all-reduced) records, so all reach the same verdict.
        monitor=DivergenceMonitor(gap_threshold=cfg.gap_threshold, policy=cfg.on_divergence,
                                  collapse_rank=cfg.collapse_rank, dead_cycle=cfg.dead_cycle),
        meter=RecordMeter(device, state.images_seen), preview=Preview(cfg, split.test, device, warn=bar.write),
        guard=WriteGuard(warn=bar.write), bar=bar, main=main,
        extra={"data": cfg.data, "holdout": cfg.holdout, "held_out": split.held_out()})
    update_ema = EmaUpdate(state.G_ema, state.G)  # G_ema's spectral-norm vectors fit its own weights
    t_start, start_iteration = time.perf_counter(), state.iteration
    heldout_l1: float | None = None
    last: dict[str, Any] = {}
    diverged: str | None = None
    interrupted = False
    st = state_at(sched, lcfg, state.images_seen)
    prev_phase = st.phase
    state.E.train(), state.G.train()

    with stop_requests() as stop:
        try:
            while state.images_seen < total:
                # Section: one iteration, at the schedule's point for the images seen before it.
                st = state_at(sched, lcfg, state.images_seen)
                if st.phase != prev_phase and main:
                    bar.write(f"phase {st.phase}: {st.resolution}x{st.resolution} from {state.images_seen / 1000:g} kimg")
                    prev_phase = st.phase
                set_lr((state.opt_E, state.opt_G), st.lr)
                x, z, z_dec, pooled, noise = _draw_batch(state, split.pyramid, st, device)
                le, lg = training_iteration(state.E, state.G, state.opt_E, state.opt_G, x, z, z_dec, st, lcfg,
                                            s.autocast, dist.gather_with_grad, cfg.sn_cache, pooled, noise)
                update_ema(cfg.ema_decay)
                before = state.images_seen
                state.images_seen += st.batch_size
                state.iteration += 1
                now = state.images_seen
                bar.update(min(now, total) - min(before, total))
                s.meter.add(le, lg)

                # Section: does the session end here? `done` at the schedule's end; `stopping`
                # after stop_after iterations or on a stop request, which every rank has agreed
                # on (within STOP_CHECK_EVERY iterations): all ranks leave at the same iteration.
                done = now >= total
                stopping = stop.agreed(state.iteration, device) or (
                    stop_after is not None and state.iteration - start_iteration >= stop_after)

                # Section: the record and the monitor. A record every log_every iterations and
                # at the session's last; a rollback restarts the loop from the restored state;
                # a diverged run stops here, before anything else is written.
                if s.meter.count >= cfg.log_every or done or stopping:
                    last = s.meter.record(now, state.iteration, st, le)
                    verdict, rolled_back = _judge(s, last)
                    if rolled_back:
                        continue
                    if verdict.diverged:
                        diverged = verdict.reason
                        break

                # Section: a phase ends. The image pool is emptied before this iteration's
                # checkpoint, so a resumed run starts the new phase with an empty pool too.
                st_next = state_at(sched, lcfg, now)
                phase_end = st_next.phase != st.phase
                if phase_end and state.pool is not None:
                    state.pool.reset(pool_size(cfg.image_pool, st_next.resolution))

                # Section: grids and metrics (rank 0). Grids at every grid_kimg, at each phase's
                # end and at the run's end; metrics at every metrics_kimg and at the end.
                if main and (_crossed(before, now, cfg.grid_kimg) or phase_end or done):
                    heldout_l1 = _grid(s, st, x)
                if main and cfg.metrics and (_crossed(before, now, cfg.metrics_kimg) or done):
                    _run_metrics(s, st)

                # Section: the checkpoint (rank 0): at every checkpoint_kimg, with every numbered
                # snapshot, at each phase's end and whenever the session ends. Never of a state
                # the monitor would not roll back to; after 3 failed writes the run stops.
                numbered = _crossed(before, now, cfg.snapshot_kimg) or done
                due = _crossed(before, now, cfg.checkpoint_kimg) or numbered or phase_end or done or stopping
                if due and main and s.monitor.healthy and _finite(le, lg):
                    if not s.guard.attempt(lambda: _checkpoint(state, st, run, numbered, s.extra),
                                           f"checkpoint at {now / 1000:g} kimg"):
                        stop.requested = stop.requested or s.guard.exhausted  # the others learn it at the next check

                # Section: leaving. No rank leaves before rank 0 has written; an interrupted
                # session says how to continue.
                if done or stopping:
                    dist.barrier()
                if stopping and not done:
                    interrupted = True
                    if main:
                        bar.write(f"stopped at {now / 1000:g} kimg; continue with: pioneer train --resume {run.path}")
                    break
            if main and resume and state.iteration == start_iteration and state.images_seen >= total:
                heldout_l1 = _complete_finished_run(s, st)
        finally:  # also on errors: close the bar and the logs
            bar.close()
            if main:
                s.stats.close()

    # Section: the session's summary (rank 0).
    seconds = time.perf_counter() - t_start
    if main:
        atomic_write_text(run.summary, json.dumps({
            "images_seen": state.images_seen, "iterations": state.iteration, "heldout_l1": heldout_l1,
            "seconds_this_session": seconds, "iterations_this_session": state.iteration - start_iteration,
            "finished": state.images_seen >= total, "diverged": diverged, "rollbacks": s.monitor.rollbacks},
            indent=2) + "\n")
    return TrainResult(state.images_seen, state.iteration, heldout_l1, interrupted, seconds, last, state.E, state.G,
                       state.G_ema, diverged, s.monitor.rollbacks, s.guard.last_error)


# ------------------------------------------------------------------------------------------------
# The pieces of the loop


def _check_run(cfg: TrainConfig, device: torch.device) -> None:
    """Errors a run would otherwise meet late: a schedule beyond the model, a batch that does not
    split over the processes. Warns when bf16 would be emulated."""
    final_res = RESOLUTIONS[cfg.schedule.final_phase]
    if final_res > cfg.model.max_resolution:
        raise ValueError(f"the schedule reaches {final_res}px but the model stops at {cfg.model.max_resolution}px")
    world = dist.world_size()
    for res, b in cfg.schedule.batch_sizes.items():
        if res <= final_res and b % world:
            raise ValueError(f"batch size {b} at {res}px does not split over {world} processes: "
                             f"use a multiple of {world}")
    if cfg.amp and device.type == "cpu" and not native_bf16_cpu():
        warnings.warn("bf16 is emulated on this CPU (no AVX512-BF16/AMX) and slower than float32: "
                      "train with --no-amp", stacklevel=3)


@contextlib.contextmanager
def _cudnn_benchmark(on: bool) -> Iterator[None]:
    """Let cuDNN pick kernels (shapes are fixed within a phase) for the run only."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on or before
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def _open_data(cfg: TrainConfig, cache_dir: Path, progress: bool) -> Any:
    """The data split at the schedule's final resolution: rank 0 builds the cache, the others
    open it afterwards."""
    from pioneer.data import open_dataset  # data pulls in PIL/numpy helpers; keep import light

    kwargs = dict(spec=cfg.data, resolution=RESOLUTIONS[cfg.schedule.final_phase], cache_dir=cache_dir,
                  holdout=cfg.holdout)
    split = open_dataset(progress=progress, **kwargs) if dist.is_main() else None
    dist.barrier()
    return split if split is not None else open_dataset(progress=False, **kwargs)


def _draw_batch(state: TrainingState, pyramid: Any, st: SchedulePoint, device: torch.device
                ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], Any, torch.Tensor | None]:
    """This rank's slice of the global batch: real images x (b, 3, r, r), the encoder step's
    prior codes z (b, D), one code batch per decoder step, the image pool's query function, and
    the code noise (b, D) when LossConfig.code_noise is on (else None: no draw, same stream).

    The global draws are identical on every rank. They are drawn on the CPU (one generator for
    every device) and uploaded with non_blocking=True: a blocking copy would wait for the GPU to
    finish the previous iteration."""
    cfg, gen, B, world = state.cfg, state.gen, st.batch_size, dist.world_size()
    lo, hi = dist.rank() * B // world, (dist.rank() + 1) * B // world
    D = cfg.model.latent_dim
    idx = state.stream.take(B)[lo:hi]
    flip = (torch.rand(B, generator=gen) < 0.5)[lo:hi].to(device, non_blocking=True)
    z = sample_prior(B, D, gen)[lo:hi].to(device, non_blocking=True)
    x = real_batch(pyramid, idx, st.resolution, device, cfg.channels_last, st.alpha, flip)
    z_dec = [sample_prior(B, D, gen)[lo:hi].to(device, non_blocking=True) for _ in range(cfg.loss.decoder_steps)]
    use_pool = state.pool is not None and st.alpha >= 1
    pooled = global_pool(state.pool, gen, dist.gather_with_grad, lo, hi) if use_pool else None
    noise = torch.randn(B, D, generator=gen)[lo:hi].to(device, non_blocking=True) if cfg.loss.code_noise > 0 else None
    return x, z, z_dec, pooled, noise


def _judge(s: _Session, rec: dict[str, Any]) -> tuple[Verdict, bool]:
    """Write the record (rank 0) and take the monitor's verdict on it: (verdict, rolled back).
    A ROLLBACK verdict puts the run back here when it can; any other verdict that is not OK is
    noted in stats.jsonl, and a divergence says that nothing more will be written."""
    if s.main:
        s.stats.write(rec)
        s.bar.set_postfix_str(progress_text(rec), refresh=False)
    verdict = s.monitor.update(rec)
    if verdict.action is not Action.OK and s.main:
        s.bar.write(f"{verdict.action.value}: {verdict.reason}")
    if verdict.action is Action.ROLLBACK and _roll_back(s, verdict):
        return verdict, True
    if verdict.action is not Action.OK and s.main:
        s.stats.write({"images_seen": rec["images_seen"], "event": verdict.action.value, "reason": verdict.reason})
    if verdict.diverged and s.main:
        s.bar.write(f"stopped: training diverged ({verdict.reason}); no checkpoint written")
    return verdict, False


def _roll_back(s: _Session, verdict: Verdict) -> bool:
    """Put the run back to its last good checkpoint with fresh batches; False when there is none
    (then the run stops)."""
    state = s.state
    good = last_good_state(s.run.state)
    if good is None:
        return False
    detected_at = state.images_seen
    state.load_state_dict(good, source=str(s.run.state))
    state.gen.manual_seed(state.cfg.seed + 7919 * (s.monitor.rollbacks + 1))  # not the same batches again
    s.monitor.rolled_back(state.images_seen)
    s.meter.reset(state.images_seen)
    s.bar.n = min(state.images_seen, s.bar.total)
    if s.stats is not None:
        s.bar.write(f"rolled back to {state.images_seen / 1000:g} kimg")
        s.stats.rewind(state.images_seen)  # drop the records after the rollback point, then note the event
        s.stats.write({"images_seen": state.images_seen, "event": "rollback", "reason": verdict.reason,
                       "detected_at": detected_at})
    return True


def _grid(s: _Session, st: SchedulePoint, x: torch.Tensor) -> float:
    """The grids (PNG and TensorBoard) and the grid record: the preview's measures (held-out L1,
    prior fit) and which loss term drives E and G on the last real batch x (gradient shares; the
    training trajectory is unchanged). Returns the held-out L1."""
    state, now = s.state, s.state.images_seen
    measures = s.preview(state, s.split.pyramid, st, s.autocast, s.run, s.stats)
    shares = gradient_shares(state.E, state.G, x, st.phase, st.alpha, st.margin, st.recon_weight, s.cfg.loss,
                             seed=s.cfg.seed * 1_000_003 + now, autocast=s.autocast)
    s.stats.write({"images_seen": now, "kimg": now / 1000, **measures, **shares})
    return measures["heldout_l1"]


def _checkpoint(state: TrainingState, st: SchedulePoint, run: RunFolder, numbered: bool, extra: dict[str, Any]) -> None:
    """The inference snapshots, then the training state (rank 0). Snapshots first: a state never
    claims more images than the snapshots beside it, so a write killed half-way is redone on resume."""
    _snapshots(state, st, run, numbered, extra)
    save_training_state(run.state, state.state_dict())


def _snapshots(state: TrainingState, st: SchedulePoint, run: RunFolder, numbered: bool, extra: dict[str, Any]) -> None:
    """The latest snapshot and, when `numbered`, the numbered one of this many images."""
    paths = [run.snapshot] + ([run.numbered_snapshot(state.images_seen)] if numbered else [])
    for path in paths:
        save_snapshot(path, state.G_ema, state.E, state.cfg.model, st.phase, st.alpha, state.images_seen,
                      extra=extra)


def _complete_finished_run(s: _Session, st: SchedulePoint) -> float:
    """A finished run resumed without training: write what a write killed after the state left
    behind (the final snapshots or grids); returns the held-out L1 (the run keeps its score)."""
    state, run = s.state, s.run
    missing = missing_final_outputs(run.path, state.images_seen)
    if missing:
        s.bar.write(f"the finished run lacks its final {' and '.join(missing)}: writing them")
        s.guard.attempt(lambda: _snapshots(state, st, run, "numbered snapshot" in missing, s.extra),
                        "the final snapshots")
    return s.preview(state, s.split.pyramid, st, s.autocast, run if "grids" in missing else None, s.stats)["heldout_l1"]


def _run_metrics(s: _Session, st: SchedulePoint) -> None:
    from pioneer import metrics  # heavy (Inception, LPIPS): only when asked for

    cfg, now = s.cfg, s.state.images_seen
    try:
        for rec in metrics.evaluate_during_training(cfg.metrics, s.state.E, s.state.G_ema, st.phase, st.alpha, now,
                                                    s.run.path, cfg.data, cache_dir=s.cache_dir, holdout=cfg.holdout,
                                                    device=s.device):
            s.bar.write(f"{now / 1000:g} kimg: " + ", ".join(
                f"{k} {v:.4g}" for k, v in rec.items() if isinstance(v, float) and k != "seconds"))
    except (ValueError, RuntimeError, OSError, ImportError) as e:  # a metric must not end a long run
        s.bar.write(f"warning: metrics failed at {now / 1000:g} kimg: {e}")


def _finite(le: EncoderLoss, lg: DecoderLoss) -> bool:
    return bool(torch.isfinite(le.total) & torch.isfinite(lg.total))


def _crossed(before: int, after: int, every_kimg: float) -> bool:
    """True when [before, after) crossed a multiple of every_kimg (in images)."""
    step = every_kimg * 1000
    return step > 0 and int(after // step) > int(before // step)
