"""Training and inference throughput per resolution, eager float32 vs the optimised path,
side by side in one process: images/s, ms per iteration, model FLOPs per image, achieved
TFLOP/s, MFU (GPU), peak memory, the loader's throughput, and the preset's whole schedule
estimated from the measured per-resolution throughput.

    python benchmarks/throughput.py                                   # default preset on CPU
    python benchmarks/throughput.py --preset celebahq256 --resolutions 8,16 --iters 4 --warmup 1 --threads 2
    python benchmarks/throughput.py --preset celebahq256 --device cuda --infer --loader --json gpu.json

Variants: "eager" is the plain float32 NCHW path, spectral norm once per forward (what the
authors' code does); "opt-fp32" is channels_last + spectral norm once per step, still float32;
"optimised" adds bf16 autocast (+ torch.compile in both with --compile). The machines are
shared and noisy: compare ratios measured in the same run; medians of --iters are reported.
The authors' code is compared only side by side, run back to back on one machine (see
docs/performance.md): this script prints nothing it did not measure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from pioneer.training import speed as bm
from pioneer.config import RESOLUTIONS, preset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="synthetic64")
    ap.add_argument("--resolutions", help="comma-separated (default: every phase of the preset)")
    ap.add_argument("--batch", type=int, help="one batch at every resolution (default: the preset's)")
    ap.add_argument("--width", type=float, help="override the channel multiplier")
    ap.add_argument("--variants", default="eager,opt-fp32,optimised",
                    help="comma-separated: eager, opt-fp32 (channels_last + SN once per step), optimised (+ bf16)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the blocks in the optimised variant")
    ap.add_argument("--infer", action="store_true", help="also time reconstruction G(E(x)) (inference)")
    ap.add_argument("--loader", action="store_true", help="also time the data path on synthetic faces")
    ap.add_argument("--loader-images", type=int, default=2000, help="synthetic faces in the loader's cache")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--json", help="write every number here")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    cfg = preset(a.preset)
    if a.width:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, width=a.width))
    variants = {"eager": cfg.eager(), "opt-fp32": cfg.optimised(compile=a.compile, amp=False),
                "optimised": cfg.optimised(compile=a.compile)}
    variants = {v: variants[v] for v in a.variants.split(",")}
    final = RESOLUTIONS[cfg.schedule.final_phase]
    res_list = [int(r) for r in a.resolutions.split(",")] if a.resolutions else list(RESOLUTIONS[:cfg.schedule.final_phase + 1])
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"preset {a.preset}, {name}, torch {torch.__version__}")

    pyramid = indices = None
    if a.loader:
        from pioneer.data import open_dataset
        split = open_dataset(f"synthetic:{a.loader_images}", final, Path.home() / ".cache" / "pioneer")
        pyramid, indices = split.pyramid, torch.as_tensor(split.train, dtype=torch.long)

    head = f"{'res':>4} {'batch':>5} {'variant':>9} {'ms/iter':>9} {'img/s':>9} {'GFLOP/img':>9} {'TFLOP/s':>8} " \
           f"{'MFU':>6} {'mem GiB':>8}"
    print(head)
    rows: list[dict] = []
    summary: dict[int, dict] = {}
    for r in res_list:
        batch = a.batch or cfg.schedule.batch_sizes[r]
        flops = bm.training_flops_per_image(cfg, r)
        infer_flops = bm.inference_flops_per_image(cfg, r) if a.infer else None
        s = summary.setdefault(r, {"batch": batch})
        for v, vcfg in variants.items():
            m = bm.measure("train", vcfg, v, r, batch, device, a.iters, a.warmup, flops)
            rows.append({"kind": "train", **m.to_dict()})
            s[v] = m.images_per_s
            mfu = f"{100 * m.mfu:5.1f}%" if m.mfu is not None else "   n/a"
            print(f"{r:>4} {batch:>5} {v:>9} {m.ms_per_iter:>9.1f} {m.images_per_s:>9.2f} {m.gflop_per_image:>9.2f} "
                  f"{m.tflops:>8.3f} {mfu:>6} {m.peak_mem_gib:>8.2f}", flush=True)
            if a.infer:
                mi = bm.measure("infer", vcfg, v, r, batch, device, a.iters, a.warmup, infer_flops)
                rows.append({"kind": "infer", **mi.to_dict()})
                s[f"{v}_infer"] = mi.images_per_s
                print(f"{'':>4} {'':>5} {'infer':>9} {mi.ms_per_iter:>9.1f} {mi.images_per_s:>9.2f} "
                      f"{mi.gflop_per_image:>9.2f} {mi.tflops:>8.3f}", flush=True)
        if a.loader:
            s["loader"] = bm.loader_images_per_s(pyramid, indices, r, batch, device, cfg.channels_last)
            print(f"{'':>4} {'':>5} {'loader':>9} {'':>9} {s['loader']:>9.0f}", flush=True)

    print("\nsummary (img/s; ratios measured in this run)")
    cols = ["res", "batch", *variants]
    faster = [v for v in variants if v != "eager"] if "eager" in variants else []
    cols += [f"{v}/eager" for v in faster]
    if a.loader:
        cols.append("loader/train")
    print(" ".join(f"{c:>12}" for c in cols))
    for r, s in summary.items():
        vals = [str(r), str(s["batch"]), *(f"{s[v]:.2f}" for v in variants)]
        best = max(s[v] for v in variants)
        for v in faster:
            s[f"{v}_speedup"] = s[v] / s["eager"]
            vals.append(f"{s[v] / s['eager']:.2f}x")
        if a.loader:
            s["loader_over_train"] = s["loader"] / best
            vals.append(f"{s['loader_over_train']:.0f}x")
        print(" ".join(f"{v:>12}" for v in vals))

    estimate = {}
    if set(summary) >= set(bm.images_per_resolution(cfg)) and not a.batch:
        for v in variants:
            hours = bm.schedule_hours(cfg, {r: summary[r][v] for r in summary})
            estimate[v] = sum(hours.values())
        line = ", ".join(f"{v} {h:.3g} h" + (f" ({estimate['eager'] / h:.2f}x)" if v in faster else "")
                         for v, h in estimate.items())
        print(f"\nwhole {a.preset} schedule ({cfg.schedule.total_kimg:g} kimg) at these rates: {line}")
    if a.json:
        Path(a.json).write_text(json.dumps({
            "preset": a.preset, "device": name, "torch": torch.__version__, "rows": rows,
            "summary": {str(k): v for k, v in summary.items()}, "schedule_hours": estimate}, indent=2) + "\n")


if __name__ == "__main__":
    main()
