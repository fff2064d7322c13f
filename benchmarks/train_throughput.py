"""Training throughput per resolution: images/s of full PIONEER iterations (one encoder step
and the preset's decoder steps), measured on synthetic batches in the stable phase.

    python benchmarks/train_throughput.py                                   # default preset, CPU
    python benchmarks/train_throughput.py --preset celebahq256 --resolutions 32,64 --iters 2
    python benchmarks/train_throughput.py --preset celebahq256 --device cuda --amp --channels-last

Prints a table and, with --json, writes the numbers. Compare variants as ratios measured in
the same invocation: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import resource
import statistics
import time

import torch

from pioneer.config import RESOLUTIONS, preset
from pioneer.networks import Decoder, Encoder, sample_prior
from pioneer.schedule import TrainState
from pioneer.training_loop import training_iteration


def measure(cfg, resolution: int, batch: int, iters: int, warmup: int, device: torch.device,
            amp: bool, channels_last: bool) -> dict:
    level = RESOLUTIONS.index(resolution)
    torch.manual_seed(0)
    E, G = Encoder(cfg.model).to(device), Decoder(cfg.model).to(device)
    if channels_last:
        E, G = E.to(memory_format=torch.channels_last), G.to(memory_format=torch.channels_last)
    opt_E = torch.optim.Adam(E.parameters(), lr=1e-3, betas=cfg.lr_betas)
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-3, betas=cfg.lr_betas)
    st = TrainState(0, 0, level, resolution, 1.0, 1e-3, 0.2, batch, 1.5, 0.0)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()
    x = torch.rand(batch, 3, resolution, resolution, device=device) * 2 - 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(warmup + iters):
        z = sample_prior(batch, cfg.model.latent_dim).to(device)
        z_dec = [sample_prior(batch, cfg.model.latent_dim).to(device) for _ in range(cfg.loss.decoder_steps)]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        training_iteration(E, G, opt_E, opt_G, x, z, z_dec, st, cfg.loss, autocast, gather=lambda v: v)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - t)
    sec = statistics.median(times)
    out = {"resolution": resolution, "batch": batch, "ms_per_iter": 1000 * sec, "images_per_s": batch / sec,
           "params_M": (sum(p.numel() for p in E.parameters()) + sum(p.numel() for p in G.parameters())) / 1e6}
    if device.type == "cuda":
        out["peak_mem_GiB"] = torch.cuda.max_memory_allocated(device) / 2**30
    else:
        out["max_rss_GiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="synthetic64")
    ap.add_argument("--resolutions", help="comma-separated, default: every phase of the preset")
    ap.add_argument("--batch", type=int, help="override the preset's batch at every resolution")
    ap.add_argument("--width", type=float, help="override the channel multiplier")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="NHWC (default: the preset's setting)")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = preset(a.preset)
    if a.width:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, width=a.width))
    cl = cfg.channels_last if a.channels_last is None else a.channels_last
    res_list = ([int(r) for r in a.resolutions.split(",")] if a.resolutions
                else list(RESOLUTIONS[: cfg.schedule.final_phase + 1]))
    device = torch.device(a.device)
    rows = []
    print(f"preset {a.preset}, device {device}, threads {torch.get_num_threads()}, amp {a.amp}, channels_last {cl}, "
          f"torch {torch.__version__}")
    print(f"{'res':>5} {'batch':>5} {'ms/iter':>10} {'img/s':>9} {'params M':>9}")
    for r in res_list:
        batch = a.batch or cfg.schedule.batch_sizes[r]
        row = measure(cfg, r, batch, a.iters, a.warmup, device, a.amp, cl)
        rows.append(row)
        print(f"{r:>5} {batch:>5} {row['ms_per_iter']:>10.1f} {row['images_per_s']:>9.2f} {row['params_M']:>9.2f}",
              flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"preset": a.preset, "device": str(device), "amp": a.amp, "channels_last": cl,
                       "torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
