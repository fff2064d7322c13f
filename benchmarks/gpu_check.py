"""GPU check: one command, a few minutes, run whenever a GPU machine is lent.

    PYTHONPATH=src python3 benchmarks/gpu_check.py --out "$OUT"          # on the GPU machine
    python benchmarks/gpu_check.py --smoke --device cpu --out /tmp/check  # the same code, tiny, on CPU

1. Environment: torch, CUDA, cuDNN, the device.
2. The full-width paper architecture at 256x256 and the paper's batch (32): one training
   iteration (encoder step + 2 decoder steps) on the eager float32 path (TF32 convolutions
   where torch enables them) and on the optimised path (bf16 + channels_last + spectral norm
   once per step; + torch.compile with --compile): ms/iter, img/s, achieved TFLOP/s, MFU
   (against the bf16 or the float32 peak), peak memory; inference G(E(x)) likewise.
3. The optimised path at every resolution 4..128 at the paper's batch sizes, with the data
   loader's throughput beside it, and from these the whole CelebA-HQ schedule (25,480 kimg)
   estimated in hours, with its total FLOPs.
4. A short progressive run through all seven phases (4 -> 256 px) on synthetic faces with the
   full-width networks, through the real training loop (cache, checkpoints, EMA, grids): it
   must finish with finite losses; per-phase images/s and the held-out L1 are reported.

Prints a summary and writes gpu_check.json (and the short run's folder) under --out. Runs on
the machine's own torch (2.11 or newer) with nothing beyond this package's core imports.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from pioneer.training import speed as bm
from pioneer.config import RESOLUTIONS, Rule, ScheduleConfig, preset
from pioneer.run.stats import read_stats
from pioneer.training.loop import train


def environment(device: torch.device) -> dict[str, Any]:
    env = {"python": platform.python_version(), "torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env.update(name=p.name, memory_gib=round(p.total_memory / 2**30, 1), sm_count=p.multi_processor_count,
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   tf32_convolutions=torch.backends.cudnn.allow_tf32,
                   peak_bf16_tflops=bm.peak_tflops(device, True), peak_fp32_or_tf32_tflops=bm.peak_tflops(device, False))
    else:
        env.update(name=platform.processor() or "cpu", threads=torch.get_num_threads())
    return env


def full_size(args: argparse.Namespace, cfg: Any, device: torch.device, log: list[str]) -> dict[str, Any]:
    """Step 2: eager float32 vs optimised at the top resolution."""
    r = RESOLUTIONS[cfg.schedule.final_phase]
    batch = cfg.schedule.batch_sizes[r]
    variants = {"eager-fp32": cfg.eager(), "optimised-bf16": cfg.optimised()}
    if args.compile:
        variants["optimised-bf16-compile"] = cfg.optimised(compile=True)
    flops = bm.training_flops_per_image(cfg, r, device)
    infer_flops = bm.inference_flops_per_image(cfg, r, device)
    out: dict[str, Any] = {"resolution": r, "batch": batch, "train_gflop_per_image": flops / 1e9, "variants": {}}
    for name, vcfg in variants.items():
        t = time.perf_counter()
        m = bm.measure("train", vcfg, name, r, batch, device, args.iters, args.warmup, flops)
        mi = bm.measure("infer", vcfg, name, r, batch, device, args.iters, args.warmup, infer_flops)
        out["variants"][name] = {"train": m.to_dict(), "infer": mi.to_dict(), "seconds": time.perf_counter() - t}
        mfu = f", MFU {100 * m.mfu:.1f}%" if m.mfu is not None else ""
        _say(log, f"  {r}px b{batch} {name:>22}: train {m.images_per_s:8.1f} img/s ({m.ms_per_iter:.1f} ms/iter, "
                  f"{m.tflops:.1f} TFLOP/s{mfu}, peak {m.peak_mem_gib:.1f} GiB); infer {mi.images_per_s:.0f} img/s")
    e, o = out["variants"]["eager-fp32"]["train"], out["variants"]["optimised-bf16"]["train"]
    out["speedup"] = o["images_per_s"] / e["images_per_s"]
    _say(log, f"  optimised / eager: {out['speedup']:.2f}x")
    return out


def per_resolution(args: argparse.Namespace, cfg: Any, device: torch.device, top: dict[str, Any], work: Path,
                   log: list[str]) -> dict[str, Any]:
    """Step 3: eager and optimised training and the data loader at every resolution, and the
    whole schedule estimated from each."""
    from pioneer.data import open_dataset

    variants = {"eager-fp32": cfg.eager(), "optimised-bf16": cfg.optimised()}
    split = open_dataset(f"synthetic:{args.images}", RESOLUTIONS[cfg.schedule.final_phase], work / "cache",
                         progress=False)
    train_idx = torch.as_tensor(split.train, dtype=torch.long)
    ips: dict[str, dict[int, float]] = {v: {} for v in variants}
    flops: dict[int, float] = {}
    rows = []
    for r in RESOLUTIONS[:cfg.schedule.final_phase + 1]:
        batch = cfg.schedule.batch_sizes[r]
        flops[r] = top["train_gflop_per_image"] * 1e9 if r == top["resolution"] else \
            bm.training_flops_per_image(cfg, r, device)
        row: dict[str, Any] = {"resolution": r, "batch": batch, "gflop_per_image": flops[r] / 1e9}
        for name, vcfg in variants.items():
            if r == top["resolution"]:
                m = top["variants"][name]["train"]
            else:
                m = bm.measure("train", vcfg, name, r, batch, device, args.iters, args.warmup, flops[r]).to_dict()
            ips[name][r] = m["images_per_s"]
            row[name] = m
        row["loader_images_per_s"] = bm.loader_images_per_s(split.pyramid, train_idx, r, batch, device, True)
        rows.append(row)
        o = row["optimised-bf16"]
        mfu = f"{100 * o['mfu']:5.1f}%" if o["mfu"] is not None else "  n/a"
        _say(log, f"  {r:>4}px b{batch:<4} {ips['eager-fp32'][r]:>9.1f} -> {ips['optimised-bf16'][r]:>9.1f} img/s "
                  f"({ips['optimised-bf16'][r] / ips['eager-fp32'][r]:.2f}x), {o['ms_per_iter']:.1f} ms/iter, "
                  f"{flops[r] / 1e9:.1f} GFLOP/img, MFU {mfu}, peak {o['peak_mem_gib']:.1f} GiB; "
                  f"loader {row['loader_images_per_s']:.0f} img/s ({row['loader_images_per_s'] / ips['optimised-bf16'][r]:.0f}x)")
    total_flop = bm.schedule_flops(cfg, flops)
    est: dict[str, Any] = {"rows": rows, "schedule_kimg": cfg.schedule.total_kimg, "schedule_flop": total_flop}
    for name in variants:
        hours = bm.schedule_hours(cfg, ips[name])
        est[name] = {"hours_per_resolution": {str(k): v for k, v in hours.items()}, "schedule_hours": sum(hours.values())}
        _say(log, f"  whole schedule, {name} ({cfg.schedule.total_kimg:g} kimg, {total_flop:.2e} FLOP): "
                  f"{sum(hours.values()):.1f} h  (" + ", ".join(f"{r}px {h:.2f}" for r, h in hours.items()) + ")")
    return est


def progressive_run(args: argparse.Namespace, cfg: Any, device: torch.device, out_dir: Path, work: Path,
                    log: list[str]) -> dict[str, Any]:
    """Step 4: every phase, briefly, through the real training loop. The run folder (about 1 GB
    of checkpoints at full width) stays in `work`; its log and last grids are copied to out_dir."""
    final = cfg.schedule.final_phase
    k = args.phase_kimg
    # Margins as in the CelebA-HQ schedule from phase 4 on, so the hinge runs too.
    rules = tuple(Rule(k * p, p, 1e-3, 0.2 if p >= 4 else 0.0) for p in range(final + 1))
    run_cfg = dataclasses.replace(
        cfg.optimised(),
        data=f"synthetic:{args.images}",
        schedule=ScheduleConfig(rules=rules, fade_kimg=k / 2, batch_sizes=cfg.schedule.batch_sizes,
                                total_kimg=k * (final + 1)),
        grid_kimg=k, snapshot_kimg=1e9, checkpoint_kimg=k, log_every=5, ema_decay=0.99)
    run_dir = work / "progressive-run"
    t = time.perf_counter()
    result = train(run_cfg, run_dir, device=device, cache_dir=work / "cache", progress=False)
    seconds = time.perf_counter() - t
    keep = out_dir / "progressive-run"
    keep.mkdir(exist_ok=True)
    shutil.copy(run_dir / "stats.jsonl", keep)
    for grid in sorted((run_dir / "grids").glob("*.png"))[-2:]:
        shutil.copy(grid, keep)
    records = [r for r in read_stats(run_dir) if "loss_E" in r]
    per_phase: dict[int, list[float]] = {}
    for rec in records:
        per_phase.setdefault(rec["resolution"], []).append(rec["images_per_s"])
    finite = all(math.isfinite(rec[key]) for rec in records for key in ("loss_E", "loss_G"))
    res = {"seconds": seconds, "images_seen": result.images_seen, "heldout_l1": result.heldout_l1,
           "finite_losses": finite, "diverged": result.diverged,
           "images_per_s": {str(r): max(v) for r, v in per_phase.items()}}
    _say(log, f"  {result.images_seen / 1000:g} kimg through {len(per_phase)} phases in {seconds:.0f} s "
              f"(incl. cache and checkpoints); losses finite: {finite}; held-out L1 {result.heldout_l1 or float('nan'):.3f}")
    _say(log, "  img/s by phase (best log window): " + ", ".join(f"{r}px {v:.0f}" for r, v in res["images_per_s"].items()))
    return res


def _say(log: list[str], line: str) -> None:
    print(line, flush=True)
    log.append(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default="gpu-check", help="folder for gpu_check.json, the short run's log and grids")
    ap.add_argument("--work", help="scratch folder for the image cache and checkpoints (default: a temporary one)")
    ap.add_argument("--preset", default="celebahq256")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--phase-kimg", type=float, default=1.0, help="length of each phase of the short run")
    ap.add_argument("--images", type=int, default=600, help="synthetic faces for the short run")
    ap.add_argument("--compile", action="store_true", help="also time the optimised path with torch.compile")
    ap.add_argument("--skip", default="", help="comma-separated steps to skip: full, phases, run")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny networks up to 16px, for testing this script on a CPU in seconds")
    a = ap.parse_args()
    device = torch.device(a.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: run on the GPU machine, or pass --device cpu --smoke")
        torch.backends.cudnn.benchmark = True  # fixed shapes within a phase: let cuDNN pick kernels
    cfg = preset(a.preset)
    if a.smoke:
        small = {r: 4 for r in RESOLUTIONS}
        cfg = dataclasses.replace(
            cfg, model=dataclasses.replace(cfg.model, max_resolution=16, width=1 / 32, min_channels=8),
            schedule=dataclasses.replace(cfg.schedule, rules=tuple(r for r in cfg.schedule.rules if r.phase <= 2),
                                         batch_sizes=small))
        a.iters, a.warmup, a.phase_kimg, a.images = 2, 1, min(a.phase_kimg, 0.02), min(a.images, 40)
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(a.work or tempfile.mkdtemp(prefix="pioneer-gpu-check-"))
    skip = set(filter(None, a.skip.split(",")))
    log: list[str] = []
    t0 = time.perf_counter()
    report: dict[str, Any] = {"environment": environment(device), "preset": a.preset, "smoke": a.smoke,
                              "seconds": 0.0}
    _say(log, "environment: " + ", ".join(f"{k} {v}" for k, v in report["environment"].items()))
    steps = [  # (--skip name, report key, title, step)
        ("full", "full_size", "full-width architecture at the top resolution, paper batch:",
         lambda: full_size(a, cfg, device, log)),
        ("phases", "per_resolution", "eager and optimised at every resolution, and the whole schedule:",
         lambda: per_resolution(a, cfg, device, report["full_size"], work, log)),
        ("run", "progressive_run", "short progressive run through every phase on synthetic faces:",
         lambda: progressive_run(a, cfg, device, out_dir, work, log)),
    ]
    failed = []
    for key, out_key, title, step in steps:
        if key in skip or (key == "phases" and "full_size" not in report):
            continue
        _say(log, title)
        try:  # a failing step must not cost the others: the device time is short
            report[out_key] = step()
        except Exception as e:  # noqa: BLE001 - reported, and the exit status says so
            failed.append(key)
            _say(log, f"  FAILED: {type(e).__name__}: {e}")
            report.setdefault("errors", {})[key] = traceback.format_exc()
        report["seconds"] = time.perf_counter() - t0
        report["summary"] = log
        (out_dir / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")  # after every step
    print(f"done in {report['seconds']:.0f} s; wrote {out_dir / 'gpu_check.json'}")
    if failed:
        raise SystemExit(f"failed steps: {', '.join(failed)}")


if __name__ == "__main__":
    main()
