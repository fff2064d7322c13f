"""The paper's Fig. 3 for a run: both KL terms over images seen (stats.jsonl), their gap, and
FID points (metrics.jsonl) on a second axis -> RUN/kl.png."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pioneer.run.files import KL_PLOT, RunFolder
from pioneer.run.jsonl import read_jsonl


def kl_series(records: Iterable[dict[str, Any]]) -> dict[str, list[float]]:
    """images_seen, kl_real, kl_fake, gap from stats records that carry the KL terms."""
    out: dict[str, list[float]] = {"images_seen": [], "kl_real": [], "kl_fake": [], "gap": []}
    for r in records:
        if "kl_real" in r and "kl_fake" in r:
            out["images_seen"].append(float(r["images_seen"]))
            out["kl_real"].append(float(r["kl_real"]))
            out["kl_fake"].append(float(r["kl_fake"]))
            out["gap"].append(float(r.get("gap", r["kl_real"] - r["kl_fake"])))
    return out


def fid_points(metric_records: Iterable[dict[str, Any]]) -> list[tuple[float, float, str]]:
    """(images_seen, value, metric) for every FID record of metrics.jsonl."""
    pts = []
    for r in metric_records:
        name = r.get("metric", "")
        value = r.get("results", {}).get(name)
        if name.startswith("fid") and value is not None and r.get("images_seen") is not None:
            pts.append((float(r["images_seen"]), float(value), name))
    return pts


def plot_kl(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Plot the KL terms of RUN/stats.jsonl (and FID of RUN/metrics.jsonl) into RUN/kl.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    run = RunFolder(run_dir)
    series = kl_series(read_jsonl(run.stats))
    if not series["images_seen"]:
        raise ValueError(f"{run.stats} has no KL records to plot")
    x = [i / 1e6 for i in series["images_seen"]]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.plot(x, series["kl_real"], label="KL of real codes  E(x)", lw=1.2)
    ax.plot(x, series["kl_fake"], label="KL of generated codes  E(G(z))", lw=1.2)
    ax.plot(x, series["gap"], label="gap (real - generated)", lw=0.8, color="grey", alpha=0.7)
    ax.set_xlabel("images seen (millions)")
    ax.set_ylabel("KL divergence")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    pts = fid_points(read_jsonl(run.metrics))
    if pts:
        ax2 = ax.twinx()
        colors = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")
        for j, name in enumerate(sorted({p[2] for p in pts})):
            sel = sorted((p[0] / 1e6, p[1]) for p in pts if p[2] == name)
            h = ax2.plot([s[0] for s in sel], [s[1] for s in sel], "o--", ms=5, label=name.upper(),
                         color=colors[j % len(colors)])
            handles += h
            labels += [name.upper()]
        ax2.set_ylabel("FID")
    ax.legend(handles, labels, loc="upper right", fontsize=8)
    ax.set_title(f"{run_dir.name}: KL terms over training")
    fig.tight_layout()
    path = Path(out) if out is not None else run_dir / KL_PLOT
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
