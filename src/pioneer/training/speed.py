"""Speed measurement shared by benchmarks/ and the GPU check: training and inference throughput
per resolution, model FLOPs per image, achieved FLOP/s and MFU, peak memory, loader throughput.

Everything here measures the library's own code paths (`training_iteration`, the encoder and
decoder, the uint8 pyramid) so that a number in a table is a number of the real thing.
Compare variants as ratios measured in the same process: shared machines are noisy.
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch

from pioneer.config import RESOLUTIONS, TrainConfig
from pioneer.model.networks import sample_prior
from pioneer.training.schedule import SchedulePoint, state_at
from pioneer.data.batches import real_batch
from pioneer.training.step import autocast_for, build_networks, make_optimizer, training_iteration

# Dense peak TFLOP/s per device name fragment: (bf16, TF32, float32), from the vendors' sheets.
PEAK_TFLOPS: dict[str, tuple[float, float, float]] = {
    "H200": (989.0, 494.7, 67.0),
    "H100": (989.0, 494.7, 67.0),
    "A100": (312.0, 156.0, 19.5),
    "L40S": (362.0, 183.0, 91.6),
    "A10": (125.0, 62.5, 31.2),
    "V100": (125.0, 15.7, 15.7),  # fp16 tensor cores; no bf16, no TF32
}

def peak_tflops(device: torch.device, bf16: bool) -> float | None:
    """The device's dense peak for the precision the convolutions run in (bf16; else TF32 when
    cuDNN may use it, torch's default; else float32), or None when unknown (CPUs)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, (p_bf16, p_tf32, p_fp32) in PEAK_TFLOPS.items():
        if key in name:
            return p_bf16 if bf16 else p_tf32 if torch.backends.cudnn.allow_tf32 else p_fp32
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _stable_state(resolution: int, batch: int) -> SchedulePoint:
    level = RESOLUTIONS.index(resolution)
    return SchedulePoint(images_seen=0, rule_index=0, phase=level, resolution=resolution, alpha=1.0, lr=1e-3,
                      margin=0.2, batch_size=batch, recon_weight=1.5, phase_start_kimg=0.0)


def _images(batch: int, resolution: int, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = torch.rand(batch, 3, resolution, resolution, device=device) * 2 - 1      # (B, 3, r, r)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def training_step_fn(cfg: TrainConfig, resolution: int, batch: int, device: torch.device) -> Callable[[], Any]:
    """A closure running one full training iteration (encoder step + decoder steps) at
    `resolution` in the stable phase, on fixed random images and fresh prior codes."""
    E, G = build_networks(cfg, device, seed=0)
    opt_E, opt_G = make_optimizer(E, cfg, 1e-3), make_optimizer(G, cfg, 1e-3)
    st = _stable_state(resolution, batch)
    x = _images(batch, resolution, device, cfg.channels_last)
    autocast = autocast_for(cfg, device)
    dim = cfg.model.latent_dim

    def step() -> Any:
        z = sample_prior(batch, dim, device=device)
        z_dec = [sample_prior(batch, dim, device=device) for _ in range(cfg.loss.decoder_steps)]
        return training_iteration(E, G, opt_E, opt_G, x, z, z_dec, st, cfg.loss, autocast,
                                  gather=lambda v: v, sn_cache=cfg.sn_cache)
    return step


def inference_fn(cfg: TrainConfig, resolution: int, batch: int, device: torch.device) -> Callable[[], Any]:
    """A closure reconstructing a batch, G(E(x)), in eval mode without gradients."""
    E, G = build_networks(cfg, device, seed=0)
    E.eval(), G.eval()
    level = RESOLUTIONS.index(resolution)
    x = _images(batch, resolution, device, cfg.channels_last)
    autocast = autocast_for(cfg, device)

    @torch.no_grad()
    def run() -> torch.Tensor:
        with autocast:
            return G(E(x, level), level)
    return run


def time_fn(fn: Callable[[], Any], device: torch.device, iters: int, warmup: int) -> list[float]:
    """Seconds per call of `fn` after `warmup` calls (synchronised on GPU)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times


def training_flops_per_image(cfg: TrainConfig, resolution: int, device: torch.device | str = "cpu") -> float:
    """Model FLOPs of one training iteration per image (both steps, forward and backward),
    counted by torch's FlopCounterMode on a batch of 2 in float32 eager mode."""
    from torch.utils.flop_counter import FlopCounterMode

    device = torch.device(device)
    step = training_step_fn(cfg.eager(), resolution, 2, device)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / 2


def inference_flops_per_image(cfg: TrainConfig, resolution: int, device: torch.device | str = "cpu") -> float:
    """FLOPs of one reconstruction G(E(x)) per image."""
    from torch.utils.flop_counter import FlopCounterMode

    run = inference_fn(cfg.eager(), resolution, 2, torch.device(device))
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops() / 2


@dataclass
class Measurement:
    variant: str
    resolution: int
    batch: int
    ms_per_iter: float
    images_per_s: float
    gflop_per_image: float          # model FLOPs of one training iteration (or one reconstruction)
    tflops: float                   # achieved
    mfu: float | None               # achieved / device peak, GPU only
    peak_mem_gib: float             # GPU: peak allocated; CPU: the process's peak RSS so far

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _memory_start(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _memory_peak(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def measure(kind: str, cfg: TrainConfig, variant: str, resolution: int, batch: int, device: torch.device,
            iters: int = 5, warmup: int = 2, flops_per_image: float | None = None) -> Measurement:
    """Time `kind` ("train" or "infer") for one variant of the config at one resolution."""
    _memory_start(device)
    make = training_step_fn if kind == "train" else inference_fn
    fn = make(cfg, resolution, batch, device)
    sec = statistics.median(time_fn(fn, device, iters, warmup))
    if flops_per_image is None:
        flops_per_image = (training_flops_per_image if kind == "train" else inference_flops_per_image)(
            cfg, resolution, device)
    ips = batch / sec
    tflops = flops_per_image * ips / 1e12
    peak = peak_tflops(device, cfg.amp)
    m = Measurement(variant, resolution, batch, 1000 * sec, ips, flops_per_image / 1e9, tflops,
                    tflops / peak if peak else None, _memory_peak(device))
    del fn
    return m


def loader_images_per_s(pyramid: Any, indices: torch.Tensor, resolution: int, batch: int, device: torch.device,
                        channels_last: bool, iters: int = 20, seed: int = 0) -> float:
    """Images/s of the training loop's data path: random batch from the uint8 pyramid, (pinned)
    upload, conversion to float, flips and fade-in blending (`pioneer.data.batches.real_batch`)."""
    g = torch.Generator().manual_seed(seed)
    times = []
    for i in range(iters + 2):
        idx = indices[torch.randint(len(indices), (batch,), generator=g)]
        flip = torch.rand(batch, generator=g) < 0.5
        _sync(device)
        t = time.perf_counter()
        real_batch(pyramid, idx, resolution, device, channels_last, 0.5, flip.to(device, non_blocking=True))
        _sync(device)
        if i >= 2:
            times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def images_per_resolution(cfg: TrainConfig) -> dict[int, float]:
    """Images the config's schedule trains at each resolution (fade-in included)."""
    total = cfg.schedule.total_kimg * 1000
    edges = sorted({r.start_kimg * 1000 for r in cfg.schedule.rules if r.start_kimg * 1000 < total} | {total})
    out: dict[int, float] = {}
    for a, b in zip(edges, edges[1:]):
        res = state_at(cfg.schedule, cfg.loss, int(a)).resolution
        out[res] = out.get(res, 0.0) + (b - a)
    return out


def schedule_hours(cfg: TrainConfig, images_per_s: dict[int, float]) -> dict[int, float]:
    """Hours the schedule spends at each resolution at the given training throughputs
    (img/s per resolution); fade-in iterations cost about as much as stable ones."""
    return {r: n / images_per_s[r] / 3600 for r, n in images_per_resolution(cfg).items()}


def schedule_flops(cfg: TrainConfig, flops_per_image: dict[int, float]) -> float:
    """Total FLOPs of the schedule, given FLOPs per image of one iteration at each resolution."""
    return sum(n * flops_per_image[r] for r, n in images_per_resolution(cfg).items())
