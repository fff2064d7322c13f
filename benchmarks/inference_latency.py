"""Inference speed of `pioneer.Pioneer`: encode + decode latency of one image and the
throughput of a batch, per architecture.

    python benchmarks/inference_latency.py                                  # 64x64 default and 256x256 full width, CPU
    python benchmarks/inference_latency.py --snapshot runs/00000-synthetic64/snapshot.safetensors
    python benchmarks/inference_latency.py --models full256 --iters 3 --batch 16 --batch-iters 1   # CPU: ~2 s/image
    python benchmarks/inference_latency.py --models full256 --device cuda --batch 64 --json out.json

Weights are random unless --snapshot is given: speed does not depend on them. Inputs are
float tensors already at the model's resolution, so the numbers are the networks' (plus the
facade's batching); decoding image files adds about 1 ms per small PNG. The machines are
shared and noisy: the median of --iters runs is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import torch

from pioneer import Pioneer
from pioneer.config import ModelConfig, preset
from pioneer.model.networks import Decoder, Encoder

MODELS: dict[str, Callable[[], ModelConfig]] = {
    "synthetic64": lambda: preset("synthetic64").model,   # the default run's architecture
    "full256": lambda: ModelConfig(max_resolution=256),    # the paper's networks at 256x256
}


def _median_seconds(fn: Callable[[], object], iters: int, warmup: int, device: torch.device) -> float:
    times = []
    for i in range(warmup + iters):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(model: Pioneer, batch: int, iters: int, warmup: int, batch_iters: int) -> dict:
    r = model.resolution
    one = torch.rand(1, 3, r, r) * 2 - 1
    many = torch.rand(batch, 3, r, r) * 2 - 1
    z1 = model.encode(one)
    dev = model.device
    enc = _median_seconds(lambda: model.encode(one), iters, warmup, dev)
    dec = _median_seconds(lambda: model.decode(z1), iters, warmup, dev)
    both = _median_seconds(lambda: model.decode(model.encode(one)), iters, warmup, dev)
    batched = _median_seconds(lambda: model.decode(model.encode(many, batch_size=batch), batch_size=batch),
                              batch_iters, min(warmup, 1), dev)
    params = sum(p.numel() for net in (model.encoder, model.decoder) for p in net.parameters())
    return {"resolution": r, "params_m": params / 1e6, "encode_ms": enc * 1e3, "decode_ms": dec * 1e3,
            "encode_decode_ms": both * 1e3, "batch": batch, "batch_images_per_s": batch / batched,
            "batch_ms_per_image": batched / batch * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="synthetic64,full256", help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--snapshot", help="measure this snapshot too (trained weights)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=64, help="batch size of the throughput measurement")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch-iters", type=int, default=3, help="timed runs of the batch (after one warm-up)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--no-channels-last", action="store_true", help="NCHW convolutions (the facade's default is NHWC)")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    for name in [m for m in args.models.split(",") if m]:
        if name not in MODELS:
            ap.error(f"unknown model {name!r}: use {', '.join(MODELS)}")
        cfg = MODELS[name]()
        torch.manual_seed(0)
        model = Pioneer(Encoder(cfg), Decoder(cfg), level=cfg.num_levels - 1, device=args.device,
                        channels_last=not args.no_channels_last)
        rows.append({"model": name, **measure(model, args.batch, args.iters, args.warmup, args.batch_iters)})
    if args.snapshot:
        model = Pioneer.load(args.snapshot, device=args.device, channels_last=not args.no_channels_last)
        rows.append({"model": args.snapshot, **measure(model, args.batch, args.iters, args.warmup, args.batch_iters)})

    layout = "NCHW" if args.no_channels_last else "channels_last"
    print(f"device {args.device}, {torch.get_num_threads()} threads, {layout}, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}")
    header = (f"{'model':<24} {'res':>4} {'params':>8} {'encode':>9} {'decode':>9} {'enc+dec':>9} "
              f"{'batch':>6} {'img/s':>8} {'ms/img':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['model'][-24:]:<24} {r['resolution']:>4} {r['params_m']:>7.1f}M {r['encode_ms']:>7.1f}ms "
              f"{r['decode_ms']:>7.1f}ms {r['encode_decode_ms']:>7.1f}ms {r['batch']:>6} "
              f"{r['batch_images_per_s']:>8.1f} {r['batch_ms_per_image']:>8.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": args.device, "threads": torch.get_num_threads(), "channels_last": not args.no_channels_last,
                       "torch": torch.__version__, "load_average": os.getloadavg()[0], "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
