"""Does a trained model generate? Every number of issue 19's targets, from one script.

    python benchmarks/generation.py runs/00000-synthetic64                 # one run, 1k samples
    python benchmarks/generation.py RUN0 RUN1 RUN2 --json gen.jsonl         # seeds, then their mean
    python benchmarks/generation.py RUN --num 256 --no-attributes          # a quick look (proxies)
    python benchmarks/generation.py --from-json gen.jsonl --plot curve.png # table and budget plot of earlier runs

For each model (a run folder or a snapshot, measured at its own resolution):
  precision, recall   of `num` prior samples G_ema(z) against as many training images
                      (Kynkaenniemi et al. 2019, k = 3, Inception: the `pr1k` metric)
  fid_samples         FID of those samples against those training images (`fid1k` at num = 1000)
  fid_rec             FID of as many held-out reconstructions against the held-out images
  fid_ratio           fid_samples / fid_rec: 1 means samples as good as reconstructions
  cycle               1 - cos(z, E(G_ema(z))) over 256 prior codes (the `collapse` metric)
  rank_real           effective rank of E(x) over the first 256 held-out images
  heldout_l1          mean |G_ema(E(x)) - x| over those images (mean face: mean_face_l1)
  prior_fit           MMD^2 of 1000 held-out E(x) against prior codes (floor: mmd_floor), and
  cycle_kept          the share of prior codes whose decoded image's code comes back within cos 0.9
  attr_gain / attr_kept / attr_agreement   the attr_edit benchmark (synthetic faces only)
  fitted_*        with --fitted: precision, recall and FID of as many samples from the fitted
                  sampler (`pioneer sample --sampler fitted`); an extra, not one of the targets
and whether each target of the issue is met. The samples' Inception features are computed once
and shared by precision / recall and FID; the real features are cached.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pioneer.metrics import MetricContext, compute  # noqa: E402
from pioneer.metrics.fid import feature_stats, fid_to_stats, inception_of, sample_features  # noqa: E402
from pioneer.metrics.precision_recall import precision_recall, real_features  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import learning  # noqa: E402  (benchmarks/learning.py)

LEARNING_KEYS = ("resolution", "heldout_l1", "mean_face_l1", "cycle", "rank_real", "rank_fake", "attr_gain",
                 "attr_kept", "attr_agreement", "attr_error")

# (measure, comparison, target) of issue 19; fid_ratio's target is fid1k <= 1.5 x fid_rec.
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("precision", ">=", 0.50),
    ("recall", ">=", 0.30),
    ("fid_ratio", "<=", 1.5),
    ("cycle", "<=", 0.35),
    ("rank_real", ">=", 80.0),
    ("heldout_l1", "<=", 0.12),
    ("attr_gain", ">=", 0.80),
    ("attr_kept", ">=", 0.90),
)
COLUMNS = ("precision", "recall", "fid_samples", "fid_rec", "fid_ratio", "cycle", "rank_real", "heldout_l1",
           "prior_fit", "cycle_kept", "attr_gain", "attr_kept", "attr_agreement", "fitted_precision", "fitted_recall",
           "fitted_fid")


def measure(model: str | Path, num: int = 1000, attributes: bool = True, cache_dir: str | None = None,
            progress: bool = False, fitted: bool = False) -> dict:
    """Every number of the module docstring for one run folder or snapshot."""
    path = Path(model)
    snapshot = path / "snapshot.safetensors" if path.is_dir() else path
    # held-out L1, cycle, ranks and the attribute benchmark: issue 9's numbers, as learning.py measures them
    learned = learning.measure(snapshot, n=256, attributes=attributes, cache_dir=cache_dir)
    out: dict = {"model": str(model), **{k: v for k, v in learned.items() if k in LEARNING_KEYS}}
    ctx = MetricContext.from_snapshot(snapshot, cache_dir=cache_dir, device="cpu", seed=12345, progress=progress)
    out["kimg"] = ctx.model.images_seen / 1000
    ctx.num = 1000
    f = compute("prior_fit", ctx)
    out.update(prior_fit=f["prior_fit"], mmd_floor=f["mmd_floor"], cycle_kept=f["cycle_kept"])

    inception = inception_of(ctx)
    n = min(num, len(ctx.data.train))
    reals = real_features(ctx, n, inception)                       # (n, 2048), FID's training subset
    fakes = sample_features(ctx, n, inception)                     # (n, 2048), seeded prior codes
    out["precision"], out["recall"] = precision_recall(reals, fakes)
    out["fid_samples"] = fid_to_stats(fakes, *feature_stats(reals))
    ctx.num = n
    out["fid_rec"] = compute("fid_rec", ctx)["fid_rec"]
    out["fid_ratio"] = out["fid_samples"] / out["fid_rec"]
    out["num"] = n
    if fitted:
        feats = sample_features(ctx, n, inception, sampler=ctx.model.fit_sampler(cache_dir=cache_dir))
        out["fitted_precision"], out["fitted_recall"] = precision_recall(reals, feats)
        out["fitted_fid"] = fid_to_stats(feats, *feature_stats(reals))
    return out


def verdicts(row: dict) -> dict[str, bool]:
    """Target name -> met, for the targets the row has a number for."""
    ok = {}
    for name, op, target in TARGETS:
        if name in row:
            ok[name] = row[name] >= target if op == ">=" else row[name] <= target
    return ok


def _fmt(v: object) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def table(rows: list[dict]) -> str:
    """Markdown table: one row per model, then the mean when there are several, then the targets."""
    cols = [c for c in COLUMNS if any(c in r for r in rows)]
    lines = ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in rows:
        lines.append(f"| {Path(r['model']).name} | " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    if len(rows) > 1:
        mean = {c: statistics.fmean(r[c] for r in rows) for c in cols if all(c in r for r in rows)}
        lines.append("| mean | " + " | ".join(_fmt(mean.get(c, "")) for c in cols) + " |")
    goal = {name: f"{op} {t:g}" for name, op, t in TARGETS}
    lines.append("| target | " + " | ".join(goal.get(c, "") for c in cols) + " |")
    return "\n".join(lines)


PLOTTED = ("precision", "recall", "fid_samples", "fid_ratio", "cycle", "rank_real", "heldout_l1", "prior_fit",
           "attr_gain", "attr_kept")


def plot_budget(rows: list[dict], path: str | Path) -> Path:
    """One panel per measure against kimg (log scale), the target as a dashed line: what more
    images buy. Rows of one recipe at several budgets (several seeds at one budget: their mean)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    goal = {name: t for name, _, t in TARGETS}
    budgets = sorted({r["kimg"] for r in rows})
    cols = [c for c in PLOTTED if any(c in r for r in rows)]
    fig, axes = plt.subplots(2, (len(cols) + 1) // 2, figsize=(2.6 * ((len(cols) + 1) // 2), 5.2), squeeze=False)
    for ax, col in zip(axes.flat, cols):
        pts = [(r["kimg"], r[col]) for r in rows if col in r]
        ax.plot(*zip(*pts), "o", color="tab:blue", alpha=0.5)
        means = [(k, statistics.fmean(v for kk, v in pts if kk == k)) for k in budgets if any(kk == k for kk, _ in pts)]
        ax.plot(*zip(*means), "-", color="tab:blue")
        if col in goal:
            ax.axhline(goal[col], ls="--", color="tab:red", lw=1)
        ax.set_xscale("log")
        ax.set_xticks(budgets, [f"{k:g}" for k in budgets])
        ax.minorticks_off()
        ax.set_title(col, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    fig.supxlabel("kimg (images seen, thousands)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="run folders or snapshots")
    p.add_argument("--num", type=int, default=1000, help="prior samples and training images (1000: pr1k, fid1k)")
    p.add_argument("--no-attributes", action="store_true", help="skip the attribute benchmark")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--json", default=None, help="also append each model's numbers as a JSON line to this file")
    p.add_argument("--progress", action="store_true", help="progress bars for the Inception passes")
    p.add_argument("--fitted", action="store_true", help="also score the fitted sampler's samples (an extra)")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="also plot every measure against kimg (a budget curve: the same recipe at several lengths)")
    p.add_argument("--from-json", action="store_true",
                   help="MODELS are JSON-lines files of earlier --json output: table and plot only, nothing measured")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    rows = []
    for model in a.models if not a.from_json else ():
        t = time.perf_counter()
        row = measure(model, a.num, not a.no_attributes, a.cache_dir, a.progress, a.fitted)
        row["seconds"] = round(time.perf_counter() - t, 1)
        row["met"] = verdicts(row)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")
    if a.from_json:
        rows = [json.loads(line) for f in a.models for line in Path(f).read_text().splitlines() if line.strip()]
        rows = [dict(r, met=r.get("met") or verdicts(r)) for r in rows]
    print(table(rows))
    if a.plot:
        print(f"wrote {plot_budget(rows, a.plot)}")
    met = [name for name, ok in rows[-1]["met"].items() if ok] if len(rows) == 1 else \
        [name for name in rows[0]["met"] if all(r["met"].get(name) for r in rows)]
    print(f"targets met by every model: {', '.join(met) or 'none'}")


if __name__ == "__main__":
    main()
