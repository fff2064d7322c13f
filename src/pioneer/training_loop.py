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
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize
from tqdm import tqdm

from . import distributed as dist
from .checkpoint import CheckpointError, atomic_write_text, load_training_state, save_snapshot, save_training_state
from .config import RESOLUTIONS, LossConfig, ModelConfig, TrainConfig
from .diagnostics import SIGNAL_KEYS, batch_signals
from .ema import EmaUpdate
from .grad_shares import gradient_shares
from .image_pool import ImagePool, PoolFn, global_pool, pool_size
from .images import interleave, make_grid, save_png, to_float
from .loss import DecoderLoss, EncoderLoss, decoder_loss, encoder_loss
from .networks import Decoder, Encoder, compile_blocks, native_bf16_cpu, sample_prior

from .schedule import TrainState, state_at
from .health import Action, DivergenceMonitor, last_good_state
from .stats import StatsWriter

STATE_FILE = "training-state.pt"
SNAPSHOT_FILE = "snapshot.safetensors"
OPTIONS_FILE = "options.json"


class IndexStream:
    """An endless stream of shuffled training indices: one permutation per epoch, seeded by
    (seed, epoch) so that only (epoch, position) needs saving for an exact resume."""

    def __init__(self, indices: torch.Tensor, seed: int) -> None:
        self.indices = indices
        self.seed = seed
        self.epoch = 0
        self.pos = 0
        self._perm = self._permutation()

    def _permutation(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return self.indices[torch.randperm(len(self.indices), generator=g)]

    def take(self, n: int) -> torch.Tensor:
        out = []
        while n > 0:
            if self.pos == len(self._perm):
                self.epoch, self.pos = self.epoch + 1, 0
                self._perm = self._permutation()
            k = min(n, len(self._perm) - self.pos)
            out.append(self._perm[self.pos:self.pos + k])
            self.pos, n = self.pos + k, n - k
        return torch.cat(out)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, s: dict[str, int]) -> None:
        self.epoch, self.pos = int(s["epoch"]), int(s["pos"])
        self._perm = self._permutation()


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


def fade_images(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Real images during fade-in: alpha * x + (1 - alpha) * upsample(downsample(x))."""
    if alpha >= 1.0:
        return x
    low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="nearest")
    return torch.lerp(low, x, alpha)


def _crossed(before: int, after: int, every_kimg: float) -> bool:
    """True when [before, after) crossed a multiple of every_kimg (in images)."""
    step = every_kimg * 1000
    return step > 0 and int(after // step) > int(before // step)


def build_networks(cfg: TrainConfig, device: torch.device, seed: int) -> tuple[Encoder, Decoder]:
    """Encoder and decoder initialised from `seed`, on `device`, in the config's memory format,
    their conv blocks compiled when the config asks for it."""
    torch.manual_seed(seed)
    E, G = Encoder(cfg.model).to(device), Decoder(cfg.model).to(device)
    if cfg.channels_last:
        E, G = E.to(memory_format=torch.channels_last), G.to(memory_format=torch.channels_last)
    if cfg.compile:
        compile_blocks(E), compile_blocks(G)
    return E, G


def real_batch(pyramid: Any, idx: torch.Tensor, resolution: int, device: torch.device, channels_last: bool,
               alpha: float = 1.0, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Real images `idx` at `resolution` as the networks take them: (B, 3, r, r) float in
    [-1, 1] on `device`, mirrored where `flip` (B,) is true, faded by `alpha`."""
    images = pyramid.images(idx, resolution)                  # (B, 3, r, r) uint8 from the cache
    if device.type == "cuda":
        # Upload uint8 (4x fewer bytes) from pinned memory without blocking the host, so the
        # host queues the next kernels while the copy runs; convert on the GPU.
        images = images.pin_memory()
    x = to_float(images.to(device, non_blocking=True))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    if flip is not None:
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return fade_images(x, alpha)


def autocast_for(cfg: TrainConfig, device: torch.device) -> torch.autocast:
    """bf16 autocast when the config asks for it, else a disabled one."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp)


def make_optimizer(net: torch.nn.Module, cfg: TrainConfig, lr: float) -> torch.optim.Adam:
    """Adam as in the paper; on GPU the fused kernel (one launch per step, not one per tensor)."""
    fused = next(net.parameters()).device.type == "cuda"
    return torch.optim.Adam(net.parameters(), lr=lr, betas=cfg.lr_betas, eps=cfg.adam_eps, fused=fused or None)


def training_iteration(E: torch.nn.Module, G: torch.nn.Module, opt_E: torch.optim.Optimizer,
                       opt_G: torch.optim.Optimizer, x: torch.Tensor, z: torch.Tensor, z_dec: list[torch.Tensor],
                       st: TrainState, lcfg: LossConfig, autocast: Any, gather: Any = dist.gather_with_grad,
                       sn_cache: bool = False, pool: PoolFn | None = None) -> tuple[EncoderLoss, DecoderLoss]:
    """One PIONEER iteration: an encoder step on real images x (B, 3, r, r) with prior codes z
    (B, D) for its fake term, then one decoder step per code batch in z_dec. Gradients are
    averaged over ranks before each optimiser step.

    sn_cache: compute each spectral-normalised weight once per step instead of once per
    forward. The encoder step runs E and G twice each with unchanged weights, so this halves
    the power iterations and weight divisions there (one power iteration per step, not two).
    pool: passes the encoder step's fakes through the image pool (see encoder_loss).
    """
    cached = parametrize.cached if sn_cache else contextlib.nullcontext
    # Encoder step: E's parameters only; gradients flow through G.
    E.requires_grad_(True), G.requires_grad_(False)
    with autocast, cached():
        le = encoder_loss(E, G, x, z, st.phase, st.alpha, st.margin, st.recon_weight, lcfg, gather, pool)
    opt_E.zero_grad(set_to_none=True)
    le.total.backward()
    dist.average_gradients(E.parameters())
    opt_E.step()

    # Decoder steps: G's parameters only; gradients flow through E.
    E.requires_grad_(False), G.requires_grad_(True)
    for i, zg in enumerate(z_dec):
        with autocast:
            # The first step also reconstructs the encoder step's real batch (decoder_recon_weight).
            lg = decoder_loss(E, G, zg, st.phase, st.alpha, lcfg, gather, real=(le.real_z, x) if i == 0 else None)
        opt_G.zero_grad(set_to_none=True)
        lg.total.backward()
        dist.average_gradients(G.parameters())
        opt_G.step()
    return le, lg


def train(cfg: TrainConfig, run_dir: str | Path, *, device: torch.device | str = "cpu", resume: bool = False,
          cache_dir: str | Path | None = None, progress: bool = True, stop_after: int | None = None) -> TrainResult:
    """Train (or continue training) into `run_dir`.

    stop_after: stop after this many iterations of this call (a checkpoint is written), as if
    the run had been interrupted there; for tests and for splitting a long run.
    """
    from .data import open_dataset  # data pulls in PIL/numpy helpers; keep import light

    run_dir = Path(run_dir)
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # shapes are fixed within a phase: let cuDNN pick kernels
    main = dist.is_main()
    world = dist.world_size()
    sched, lcfg, mcfg = cfg.schedule, cfg.loss, cfg.model
    final_res = RESOLUTIONS[sched.final_phase]
    if final_res > mcfg.max_resolution:
        raise ValueError(f"the schedule reaches {final_res}px but the model stops at {mcfg.max_resolution}px")
    for res, b in sched.batch_sizes.items():
        if res <= final_res and b % world:
            raise ValueError(f"batch size {b} at {res}px does not split over {world} processes: "
                             f"use a multiple of {world}")

    # ------------------------------------------------------------------ data
    cache_dir = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "pioneer"
    kwargs = dict(spec=cfg.data, resolution=final_res, cache_dir=cache_dir, holdout=cfg.holdout)
    if main:  # rank 0 builds the cache, the others open it afterwards
        split = open_dataset(progress=progress, **kwargs)
    dist.barrier()
    if not main:
        split = open_dataset(progress=False, **kwargs)
    pyramid = split.pyramid

    # ------------------------------------------------------------------ networks and optimisers
    E, G = build_networks(cfg, device, cfg.seed)
    G_ema = Decoder(mcfg).to(device).eval().requires_grad_(False)
    G_ema.load_state_dict(G.state_dict())
    if cfg.channels_last:
        G_ema = G_ema.to(memory_format=torch.channels_last)
    if cfg.amp and device.type == "cpu" and not native_bf16_cpu():
        warnings.warn("bf16 is emulated on this CPU (no AVX512-BF16/AMX) and slower than float32: "
                      "train with --no-amp", stacklevel=2)
    opt_E, opt_G = make_optimizer(E, cfg, sched.rules[0].lr), make_optimizer(G, cfg, sched.rules[0].lr)
    pool = ImagePool(pool_size(cfg.image_pool, RESOLUTIONS[0])) if cfg.image_pool else None

    gen = torch.Generator().manual_seed(cfg.seed)  # batch order lives in `stream`; flips and codes here
    stream = IndexStream(torch.as_tensor(split.train, dtype=torch.long), cfg.seed)
    images_seen, iteration = 0, 0

    def restore(state: dict[str, Any]) -> None:
        """Put the run back to a saved training state (resume and rollback)."""
        nonlocal images_seen, iteration
        try:
            E.load_state_dict(state["encoder"])
            G.load_state_dict(state["decoder"])
            G_ema.load_state_dict(state["decoder_ema"])
            opt_E.load_state_dict(state["opt_encoder"])
            opt_G.load_state_dict(state["opt_decoder"])
            if pool is not None and "image_pool" in state:
                pool.load_state_dict(state["image_pool"])
            elif pool is not None:  # an older state, or the pool newly switched on: start empty
                pool.reset(pool_size(cfg.image_pool, state_at(sched, lcfg, int(state["images_seen"])).resolution))
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"{run_dir / STATE_FILE} does not fit the networks: {e}") from e
        gen.set_state(state["generator"])
        stream.load_state_dict(state["stream"])
        torch.set_rng_state(state["torch_rng"])
        images_seen, iteration = int(state["images_seen"]), int(state["iteration"])

    if resume:
        state = load_training_state(run_dir / STATE_FILE)
        if ModelConfig(**state["config"]["model"]) != mcfg:  # fields added since fill in their defaults
            raise CheckpointError(f"{run_dir / STATE_FILE} was written for another model configuration "
                                  f"than {run_dir / OPTIONS_FILE} describes")
        restore(state)
    for m in (E, G, G_ema):
        dist.broadcast_module(m)

    # Fixed inputs for the image grids: prior codes and held-out images, never drawn from `gen`.
    n_grid = cfg.grid_size * cfg.grid_size
    grid_z = sample_prior(n_grid, mcfg.latent_dim, torch.Generator().manual_seed(cfg.seed + 7))
    n_pairs = n_grid // 2  # reconstruction grid: input, reconstruction, input, ...
    heldout_idx = torch.as_tensor(split.test[:256], dtype=torch.long)

    autocast = autocast_for(cfg, device)
    gather = dist.gather_with_grad
    stats = StatsWriter(run_dir, resume_images=images_seen if resume else None) if main else None
    # Every rank runs the monitor on the same (all-reduced) records, so all reach the same verdict.
    monitor = DivergenceMonitor(gap_threshold=cfg.gap_threshold, policy=cfg.on_divergence,
                                collapse_rank=cfg.collapse_rank, dead_cycle=cfg.dead_cycle)
    diverged: str | None = None
    total = int(sched.total_kimg * 1000)
    bar = tqdm(total=total, initial=min(images_seen, total), unit="img", unit_scale=True, dynamic_ncols=True,
               disable=not (main and progress), smoothing=0.05)

    stop = {"flag": False}

    def request_stop(signum: int, frame: Any) -> None:  # finish the iteration, checkpoint, exit
        stop["flag"] = True

    old_handlers = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, request_stop)
    except ValueError:  # not the main thread: leave signals alone
        pass

    def checkpoint(st: TrainState) -> None:
        # Never save a state the monitor would not roll back to.
        if not main or not monitor.healthy or not bool(torch.isfinite(le.total) & torch.isfinite(lg.total)):
            return
        save_training_state(run_dir / STATE_FILE, {
            "config": cfg.to_dict(), "images_seen": images_seen, "iteration": iteration,
            "encoder": E.state_dict(), "decoder": G.state_dict(), "decoder_ema": G_ema.state_dict(),
            "opt_encoder": opt_E.state_dict(), "opt_decoder": opt_G.state_dict(),
            "generator": gen.get_state(), "stream": stream.state_dict(), "torch_rng": torch.get_rng_state(),
            "world_size": world, **({"image_pool": pool.state_dict()} if pool is not None else {}),
        })
        save_snapshot(run_dir / SNAPSHOT_FILE, G_ema, E, mcfg, st.phase, st.alpha, images_seen,
                      extra={"data": cfg.data})

    @torch.no_grad()
    def evaluate(st: TrainState, write_grids: bool) -> float:
        """Held-out L1 of G_ema(E(x)) and, optionally, the sample and reconstruction grids.
        Networks run in eval mode, so spectral-norm vectors are not advanced: the training
        trajectory does not depend on when we look at it."""
        E.eval()
        with autocast:
            x = real_batch(pyramid, heldout_idx, st.resolution, device, cfg.channels_last, st.alpha)
            rec = G_ema(E(x, st.phase, st.alpha), st.phase, st.alpha).float()
            l1 = (rec - x).abs().mean().item()
            if write_grids:
                kimg = images_seen // 1000
                samples = G_ema(grid_z.to(device), st.phase, st.alpha)
                grid = make_grid(samples, cfg.grid_size)
                save_png(run_dir / "grids" / f"samples-{kimg:06d}.png", grid)
                pairs = interleave(x[:n_pairs], rec[:n_pairs])
                rgrid = make_grid(pairs, cfg.grid_size)
                save_png(run_dir / "grids" / f"reconstructions-{kimg:06d}.png", rgrid)
                stats.add_image("samples", grid, images_seen)
                stats.add_image("reconstructions", rgrid, images_seen)
        E.train()
        return l1

    def run_metrics(st: TrainState) -> None:
        from . import metrics  # heavy (Inception, LPIPS): only when asked for

        try:
            for rec in metrics.evaluate_during_training(cfg.metrics, E, G_ema, st.phase, st.alpha, images_seen,
                                                        run_dir, cfg.data, cache_dir=cache_dir, holdout=cfg.holdout,
                                                        device=device):
                bar.write(f"{images_seen / 1000:g} kimg: " + ", ".join(
                    f"{k} {v:.4g}" for k, v in rec.items() if isinstance(v, float) and k != "seconds"))
        except (ValueError, RuntimeError, OSError, ImportError) as e:  # a metric must not end a long run
            bar.write(f"warning: metrics failed at {images_seen / 1000:g} kimg: {e}")

    # ------------------------------------------------------------------ the loop
    keys = ("loss_E", "loss_G", "kl_real", "kl_fake", "gap", "recon_l1", "latent_cos", "cycle")
    acc = torch.zeros(len(keys), device=device)
    acc_n, t_log, img_log = 0, time.perf_counter(), images_seen
    t_start, start_iteration = time.perf_counter(), iteration
    heldout_l1: float | None = None
    last: dict[str, Any] = {}
    st = state_at(sched, lcfg, images_seen)
    prev_phase = st.phase
    interrupted = False
    E.train(), G.train()
    update_ema = EmaUpdate(G_ema, G)  # G_ema's spectral-norm vectors fit its own weights

    try:
        while images_seen < total:
            st = state_at(sched, lcfg, images_seen)
            if st.phase != prev_phase and main:
                bar.write(f"phase {st.phase}: {st.resolution}x{st.resolution} from {images_seen / 1000:g} kimg")
                prev_phase = st.phase
            for opt in (opt_E, opt_G):
                for group in opt.param_groups:
                    group["lr"] = st.lr
            B = st.batch_size
            lo, hi = dist.rank() * B // world, (dist.rank() + 1) * B // world

            # Global batch draws, identical on every rank; each keeps its slice. They are drawn on
            # the CPU (one generator for every device) and uploaded with non_blocking=True: a
            # blocking copy would wait for the GPU to finish the previous iteration.
            idx = stream.take(B)[lo:hi]
            flip = (torch.rand(B, generator=gen) < 0.5)[lo:hi].to(device, non_blocking=True)
            z = sample_prior(B, mcfg.latent_dim, gen)[lo:hi].to(device, non_blocking=True)
            x = real_batch(pyramid, idx, st.resolution, device, cfg.channels_last, st.alpha, flip)
            z_dec = [sample_prior(B, mcfg.latent_dim, gen)[lo:hi].to(device, non_blocking=True)
                     for _ in range(lcfg.decoder_steps)]
            pooled = global_pool(pool, gen, gather, lo, hi) if pool is not None and st.alpha >= 1 else None
            le, lg = training_iteration(E, G, opt_E, opt_G, x, z, z_dec, st, lcfg, autocast, gather, cfg.sn_cache,
                                        pooled)

            update_ema(cfg.ema_decay)

            before = images_seen
            images_seen += B
            iteration += 1
            bar.update(min(images_seen, total) - min(before, total))
            acc += torch.stack([le.total.detach().float(), lg.total.detach().float(), le.kl_real, le.kl_fake,
                                le.kl_real - le.kl_fake, le.recon_l1, lg.latent_cos, le.cycle])
            acc_n += 1

            done = images_seen >= total
            stopping = stop_after is not None and iteration - start_iteration >= stop_after
            if acc_n >= cfg.log_every or done or stopping:
                # Collapse signals of this iteration's encoder batch only (one SVD per record), on the
                # global batch: a local slice of a few codes would look collapsed. Every rank computes
                # them from the same gathered codes, so all reach the same monitor verdict.
                signals = batch_signals(dist.gather_with_grad(le.real_z), dist.gather_with_grad(le.fake_z))
                vals = dist.all_reduce_mean(torch.cat([acc / acc_n, signals])).tolist()  # the one host sync per record
                now = time.perf_counter()
                last = {"images_seen": images_seen, "kimg": images_seen / 1000, "iteration": iteration,
                        "phase": st.phase, "resolution": st.resolution, "alpha": st.alpha, "lr": st.lr,
                        "margin": st.margin, "batch": B, "images_per_s": (images_seen - img_log) / max(now - t_log, 1e-9),
                        **dict(zip(keys + SIGNAL_KEYS, vals))}
                acc.zero_()
                acc_n, t_log, img_log = 0, now, images_seen
                if main:
                    stats.write(last)
                    bar.set_postfix_str(f"phase {st.phase} {st.resolution}px a={st.alpha:.2f} E={vals[0]:.3f} G={vals[1]:.3f} "
                                        f"kl={vals[2]:.2f}/{vals[3]:.2f} L1={vals[5]:.3f}", refresh=False)
                # Every rank must agree to stop, or the others would wait forever in a collective.
                flag = torch.tensor([float(stop["flag"])], device=device)
                stopping = stopping or dist.all_reduce_mean(flag).item() > 0

                verdict = monitor.update(last)
                if verdict.action is not Action.OK and main:
                    bar.write(f"{verdict.action.value}: {verdict.reason}")
                good = last_good_state(run_dir) if verdict.action is Action.ROLLBACK else None
                if verdict.action is Action.ROLLBACK and good is not None:
                    detected_at = images_seen
                    restore(good)
                    gen.manual_seed(cfg.seed + 7919 * (monitor.rollbacks + 1))  # not the same batches again
                    monitor.rolled_back(images_seen)
                    acc.zero_()
                    acc_n, t_log, img_log = 0, time.perf_counter(), images_seen
                    bar.n = min(images_seen, total)
                    if main:
                        bar.write(f"rolled back to {images_seen / 1000:g} kimg")
                        stats.close()  # drop the records after the rollback point, then note the event
                        stats = StatsWriter(run_dir, resume_images=images_seen)
                        stats.write({"images_seen": images_seen, "event": "rollback", "reason": verdict.reason,
                                     "detected_at": detected_at})
                    continue
                if verdict.action is not Action.OK and main:
                    stats.write({"images_seen": images_seen, "event": verdict.action.value, "reason": verdict.reason})
                if verdict.diverged:
                    diverged = verdict.reason
                    if main:
                        bar.write(f"stopped: training diverged ({verdict.reason}); no checkpoint written")
                    break

            st_after = state_at(sched, lcfg, images_seen)
            phase_end = st_after.phase != st.phase
            if phase_end and pool is not None:  # emptied here, so the checkpoint below holds the new phase's pool
                pool.reset(pool_size(cfg.image_pool, st_after.resolution))
            grids = _crossed(before, images_seen, cfg.grid_kimg) or phase_end or done
            if main and grids:
                heldout_l1 = evaluate(st, write_grids=True)
                # Which loss term drives E and G, on the last real batch (trajectory unchanged).
                shares = gradient_shares(E, G, x, st.phase, st.alpha, st.margin, st.recon_weight, lcfg,
                                         seed=cfg.seed * 1_000_003 + images_seen, autocast=autocast)
                stats.write({"images_seen": images_seen, "kimg": images_seen / 1000, "heldout_l1": heldout_l1, **shares})
            if main and cfg.metrics and (_crossed(before, images_seen, cfg.metrics_kimg) or done):
                run_metrics(st)
            if _crossed(before, images_seen, cfg.checkpoint_kimg) or done or stopping or phase_end:
                checkpoint(st)
            if main and (_crossed(before, images_seen, cfg.snapshot_kimg) or done):
                save_snapshot(run_dir / "snapshots" / f"snapshot-{images_seen // 1000:06d}.safetensors",
                              G_ema, E, mcfg, st.phase, st.alpha, images_seen, extra={"data": cfg.data})
            if done or stopping:
                dist.barrier()  # rank 0 may still be writing; nobody leaves before it is done
            if stopping and not done:
                interrupted = True
                if main:
                    bar.write(f"stopped at {images_seen / 1000:g} kimg; continue with: pioneer train --resume {run_dir}")
                break
    finally:  # also on errors: give the signals back, close the bar and the logs
        bar.close()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        if main:
            stats.close()
    seconds = time.perf_counter() - t_start
    if main:
        summary = {"images_seen": images_seen, "iterations": iteration, "heldout_l1": heldout_l1,
                   "seconds_this_session": seconds, "iterations_this_session": iteration - start_iteration,
                   "finished": images_seen >= total, "diverged": diverged, "rollbacks": monitor.rollbacks}
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return TrainResult(images_seen, iteration, heldout_l1, interrupted, seconds, last, E, G, G_ema, diverged,
                       monitor.rollbacks)
