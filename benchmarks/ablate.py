"""The paper's ablations at small scale: a named grid of variants, several seeds, one run folder
each, one table and one KL plot for all of them.

    python benchmarks/ablate.py paper --out abl/paper --seeds 0,1,2 --jobs 2    # Table 2: norm x margin
    python benchmarks/ablate.py margin --out abl/margin --seeds 0,1,2           # Fig. 3: the KL gap
    python benchmarks/ablate.py last-activation --out abl/act --seeds 0,1,2     # appendix A
    python benchmarks/ablate.py norm --out abl/full --base default --seeds 0    # full default-size runs
    python benchmarks/ablate.py margin --out abl/m --set loss.kl_weight=0.3     # any field on top
    python benchmarks/ablate.py --table abl/paper                               # table and plot again

Grids (GRIDS below): `norm` (the decoder's normalisation: SN, PN, EQLR, EQLR+PN, none), `margin`
(the KL hinge on / off), `paper` (norm x margin, the layout of the paper's Table 2) and
`last-activation` (the LeakyReLU after the encoder's last layer off / on). Each variant is the
base configuration with a few fields changed:
  base proxy    the default preset (its small recipe) cut to 4-16 px and 32 kimg, about a
                minute on 2 cores; margin variants hold the margin from 20 kimg (the 16 px
                phase) on, as the default holds it once its last phase is stable
  base default  the default preset itself (`pioneer train`, 86 kimg, 64 px)
  base tiny     the tests' tiny configuration (16 px, 1.2 kimg, margin from 0.4 kimg): seconds

Every (variant, seed) trains into OUT/VARIANT/seed-S and is measured there (benchmarks/
learning.py's numbers: held-out L1, cycle, effective rank, attribute agreement / edit gain; with
--fid also precision / recall and FID of 1000 prior samples). A killed ablation continues where
it stopped: finished runs are skipped (their result.json), a run with a training state resumes.
--jobs N trains N runs as parallel processes (each with cores / N torch threads).

Outputs: OUT/results.jsonl (one line per run), OUT/table.md (mean and spread over seeds per
variant, and the KL gap's largest and final size), OUT/kl.png (kl_real, kl_fake and their gap
over images seen for every variant, seed 0: the paper's Fig. 3 layout).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))   # the tiny config (--base tiny)

from learning import apply_overrides, measure, proxy_config  # noqa: E402
from pioneer.config import TrainConfig, preset  # noqa: E402
from pioneer.run.jsonl import read_jsonl  # noqa: E402
from pioneer.run.plots import kl_series  # noqa: E402

MARGIN = 0.2                     # the default preset's margin (paper units)
MARGIN_FROM_KIMG = 20.0          # proxy: the margin from its 16 px phase on

NORMS = {"SN": "sn", "PN": "pn", "EQLR": "eqlr", "EQLR+PN": "eqlr+pn", "none": "none"}
GRIDS: dict[str, dict[str, dict[str, Any]]] = {
    "norm": {name: {"norm": norm, "margin": True} for name, norm in NORMS.items()},
    "margin": {"margin": {"margin": True}, "no margin": {"margin": False}},
    "paper": {f"{name}{' + margin' if m else ''}": {"norm": norm, "margin": m}
              for name, norm in NORMS.items() for m in (False, True)},
    "last-activation": {"no last LReLU": {"margin": True, "last_activation": False},
                        "last LReLU": {"margin": True, "last_activation": True}},
}
COLUMNS = ("heldout_l1", "cycle", "rank_real", "attr_agreement", "attr_gain", "gap_min", "gap_max", "gap_final",
           "precision", "recall", "fid_samples")


def variant_config(base: str, variant: dict[str, Any], seed: int, sets: list[str]) -> TrainConfig:
    """The base configuration with the variant's changes, then --set on top."""
    if base == "proxy":
        cfg = proxy_config([], seed, recipe="small")
        if variant.get("margin"):
            rules = tuple(r for r in cfg.schedule.rules if r.start_kimg < MARGIN_FROM_KIMG)
            phase2 = [r for r in cfg.schedule.rules if r.phase == 2][0]
            rules += (dataclasses.replace(phase2, start_kimg=max(MARGIN_FROM_KIMG, phase2.start_kimg), margin=MARGIN),)
            cfg = dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, rules=rules))
    elif base == "tiny":                          # tests/conftest.py's tiny config, 1.2 kimg (seconds)
        from conftest import tiny_config

        cfg = tiny_config(seed=seed, schedule=dataclasses.replace(tiny_config().schedule, total_kimg=1.2))
        if not variant.get("margin", True):
            rules = tuple(dataclasses.replace(r, margin=0.0) for r in cfg.schedule.rules)
            cfg = dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, rules=rules))
    elif base == "default":
        cfg = dataclasses.replace(preset("synthetic64"), seed=seed)
        if not variant.get("margin", True):
            rules = tuple(dataclasses.replace(r, margin=0.0) for r in cfg.schedule.rules)
            cfg = dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, rules=rules))
    else:
        raise SystemExit(f"unknown --base {base!r}: use proxy, default or tiny")
    model = cfg.model
    if "norm" in variant:
        model = dataclasses.replace(model, decoder_norm=variant["norm"])
    if "last_activation" in variant:
        model = dataclasses.replace(model, encoder_last_activation=variant["last_activation"])
    # Divergences are findings here: record them and go on (no rollback to hide them).
    cfg = dataclasses.replace(cfg, model=model, on_divergence="stop")
    return apply_overrides(cfg, sets)


def kl_gap(run_dir: Path) -> dict[str, float]:
    """The KL gap over the run's last phase (where every margin variant holds its margin): its
    largest |value|, its lowest value (the hinge bounds it from below, at -margin) and its mean
    |value| over the last fifth of the run."""
    records = [r for r in read_jsonl(run_dir / "stats.jsonl") if "gap" in r]
    last = max((r.get("phase", 0) for r in records), default=0)
    gaps = [float(r["gap"]) for r in records if r.get("phase", 0) == last]
    if not gaps:
        return {}
    tail = kl_series(records)["gap"][-max(1, len(records) // 5):]
    return {"gap_max": max(abs(g) for g in gaps), "gap_min": min(gaps),
            "gap_final": statistics.fmean(abs(g) for g in tail)}


def run_one(out: Path, base: str, name: str, variant: dict[str, Any], seed: int, sets: list[str], fid: bool,
            cache_dir: str | None) -> dict[str, Any]:
    """Train (or resume) one variant and seed into `out`, measure it, write out/result.json."""
    from pioneer.training.loop import train

    cfg = variant_config(base, variant, seed, sets)
    out.mkdir(parents=True, exist_ok=True)
    options = out / "options.json"
    if not options.exists():
        options.write_text(json.dumps({"preset": f"ablation:{base}", "config": cfg.to_dict()}, indent=2))
    t = time.perf_counter()
    res = train(cfg, out, cache_dir=cache_dir, progress=False, resume=(out / "training-state.pt").exists())
    record: dict[str, Any] = {"variant": name, "seed": seed, "base": base, "sets": sets, **variant,
                              "train_seconds": round(time.perf_counter() - t, 1), "diverged": res.diverged,
                              "kimg": res.images_seen / 1000, **kl_gap(out)}
    if (out / "snapshot.safetensors").exists():
        record.update(measure(out / "snapshot.safetensors", cache_dir=cache_dir))
        if fid:
            record.update(_generation(out, cache_dir))
    (out / "result.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _generation(out: Path, cache_dir: str | None) -> dict[str, float]:
    from pioneer.metrics import MetricContext, compute

    ctx = MetricContext.from_snapshot(out / "snapshot.safetensors", cache_dir=cache_dir, device="cpu", seed=12345)
    pr, fid = compute("pr1k", ctx), compute("fid1k", ctx)
    return {"precision": pr["precision"], "recall": pr["recall"], "fid_samples": fid["fid1k"]}


def _folder(out: Path, name: str, seed: int) -> Path:
    safe = name.replace(" + ", "+").replace(" ", "-")
    return out / safe / f"seed-{seed}"


def run_grid(grid: str, out: Path, seeds: list[int], base: str, sets: list[str], jobs: int, fid: bool,
             cache_dir: str | None) -> None:
    """Every (variant, seed) of the grid not finished yet, `jobs` at a time, each in its own process."""
    todo = [(name, seed) for name in GRIDS[grid] for seed in seeds
            if not (_folder(out, name, seed) / "result.json").exists()]
    print(f"{grid}: {len(GRIDS[grid]) * len(seeds) - len(todo)} of {len(GRIDS[grid]) * len(seeds)} runs done, "
          f"{len(todo)} to go", file=sys.stderr)
    threads = max(1, (os.cpu_count() or 2) // jobs)
    running: list[tuple[subprocess.Popen, str, int, float]] = []
    while todo or running:
        while todo and len(running) < jobs:
            name, seed = todo.pop(0)
            command = [sys.executable, __file__, "--one", grid, name, str(seed), "--out", str(out), "--base", base,
                       *(f"--set={s}" for s in sets), *(["--fid"] if fid else []),
                       *(["--cache-dir", cache_dir] if cache_dir else [])]
            env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
            running.append((subprocess.Popen(command, env=env), name, seed, time.perf_counter()))
        time.sleep(1.0)
        for item in [r for r in running if r[0].poll() is not None]:
            proc, name, seed, started = item
            running.remove(item)
            status = "done" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
            print(f"  {name}, seed {seed}: {status} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    write_outputs(out)


def _results(out: Path) -> list[dict[str, Any]]:
    """Every finished run's result, its KL gap numbers read again from its stats.jsonl."""
    names = {_folder(out, n, 0).parent.name: n for grid in GRIDS.values() for n in grid}
    results = []
    for p in sorted(out.glob("*/seed-*/result.json")):
        r = {**json.loads(p.read_text()), **kl_gap(p.parent)}
        r["variant"] = names.get(p.parent.parent.name, r["variant"])   # a run linked in from another grid
        results.append(r)
    return results


def _mean_sd(values: list[float]) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{statistics.fmean(values):.3g} ± {statistics.stdev(values):.2g}"


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: one row per variant, mean ± sd over its seeds of every column present."""
    variants = list(dict.fromkeys(r["variant"] for r in results))
    cols = [c for c in COLUMNS if any(c in r for r in results)]
    lines = ["| variant | seeds | diverged | " + " | ".join(cols) + " |", "|---" * (len(cols) + 3) + "|"]
    for v in variants:
        rs = [r for r in results if r["variant"] == v]
        diverged = sum(1 for r in rs if r.get("diverged"))
        cells = [_mean_sd([float(r[c]) for r in rs if r.get(c) is not None]) for c in cols]
        lines.append(f"| {v} | {len(rs)} | {diverged} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(out: Path, results: list[dict[str, Any]], path: Path) -> Path:
    """kl_real, kl_fake and the gap over kimg, one panel per variant (its lowest seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(r["variant"] for r in results))
    cols = min(len(variants), 5)
    rows = -(-len(variants) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False, sharey=True)
    for ax, v in zip(axes.flat, variants):
        seed = min(r["seed"] for r in results if r["variant"] == v)
        s = kl_series(read_jsonl(_folder(out, v, seed) / "stats.jsonl"))
        kimg = [i / 1000 for i in s["images_seen"]]
        ax.plot(kimg, s["kl_real"], label="KL(E(x))", lw=0.8)
        ax.plot(kimg, s["kl_fake"], label="KL(E(G(z)))", lw=0.8)
        ax.plot(kimg, s["gap"], label="gap", lw=0.8, color="k")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(f"{v} (seed {seed})", fontsize=9)
        ax.set_xlabel("kimg", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(variants):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(out: Path) -> None:
    results = _results(out)
    if not results:
        print(f"no finished runs in {out}", file=sys.stderr)
        return
    with open(out / "results.jsonl", "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    (out / "table.md").write_text(table(results))
    plot(out, results, out / "kl.png")
    print(table(results))
    print(f"wrote {out / 'table.md'}, {out / 'results.jsonl'}, {out / 'kl.png'}", file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grid", nargs="?", choices=list(GRIDS), help="the named grid of variants")
    p.add_argument("--out", help="the ablation's folder (one run folder per variant and seed inside)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--base", default="proxy", choices=["proxy", "default", "tiny"], help="what each variant changes")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a config field for every variant, e.g. loss.kl_weight=0.3 (benchmarks/learning.py)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    p.add_argument("--fid", action="store_true", help="also precision / recall and FID of 1000 prior samples")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--table", metavar="OUT", help="only write the table and plot of the finished runs in OUT")
    p.add_argument("--one", nargs=3, metavar=("GRID", "VARIANT", "SEED"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.table:
        write_outputs(Path(a.table))
    elif a.one:
        grid, name, seed = a.one
        run_one(_folder(Path(a.out), name, int(seed)), a.base, name, GRIDS[grid][name], int(seed), a.set, a.fid,
                a.cache_dir)
    elif a.grid and a.out:
        run_grid(a.grid, Path(a.out), [int(s) for s in a.seeds.split(",")], a.base, a.set, a.jobs, a.fid,
                 a.cache_dir)
    else:
        p.error("give a grid and --out, or --table OUT")


if __name__ == "__main__":
    main()
