"""RUN/report.md: the latest value of every metric, the KL plot, training health, image grids."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import Pioneer
    from .data import DataSplit


def _latest(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        out[r["metric"]] = r              # later lines win
    return out


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _grids(run_dir: Path, model: "Pioneer | None", data: "DataSplit | None", out_dir: Path) -> list[tuple[str, str]]:
    """(caption, relative path) of a sample grid and a reconstruction grid."""
    from .images import interleave, make_grid, save_png

    items = []
    if model is not None:
        save_png(out_dir / "samples.png", make_grid(model.sample(64, seed=0), 8))
        items.append(("64 samples (seed 0)", f"{out_dir.name}/samples.png"))
        if data is not None:
            x = data.pyramid.images(data.test[:32], model.resolution)
            rec = model.reconstruct(x)
            save_png(out_dir / "reconstructions.png", make_grid(interleave(x.float() / 127.5 - 1, rec), 8))
            items.append(("held-out inputs and reconstructions (pairs)", f"{out_dir.name}/reconstructions.png"))
        return items
    grids = sorted((run_dir / "grids").glob("*.png"))
    for prefix in ("samples", "reconstructions"):
        latest = [g for g in grids if g.name.startswith(prefix)]
        if latest:
            items.append((f"{prefix} from training ({latest[-1].stem})", f"grids/{latest[-1].name}"))
    return items


def write_report(run_dir: str | Path, model: "Pioneer | None" = None, data: "DataSplit | None" = None) -> Path:
    """Write RUN/report.md (and RUN/report/*.png); returns its path. With a model, the grids are
    fresh samples (and reconstructions of `data`'s test images); without, the run's latest grids."""
    from .health import DivergenceMonitor, plot_kl
    from .metrics import read_jsonl

    run_dir = Path(run_dir)
    out_dir = run_dir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# Evaluation report: {run_dir.name}", "", f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."]
    if model is not None:
        lines.append(f"Model: `{model.source}`, {model.resolution}x{model.resolution}, "
                     f"{model.images_seen / 1000:g} kimg.")
    lines += ["", "## Metrics (latest value of each)", ""]
    latest = _latest(read_jsonl(run_dir / "metrics.jsonl"))
    if latest:
        lines += ["| metric | value | kimg | details |", "|---|---|---|---|"]
        for name, r in sorted(latest.items()):
            res = dict(r["results"])
            value = res.pop(name, None)
            details = ", ".join(f"{k}={_fmt(v)}" for k, v in res.items() if not isinstance(v, (dict, list)))
            lines.append(f"| {name} | {_fmt(value)} | {_fmt(r.get('kimg'))} | {details} |")
        per = latest.get("attr_edit", {}).get("results", {}).get("per_attribute")
        if per:
            lines += ["", "Attribute edits (synthetic faces): share of edits that gain the attribute, share of the "
                      "other attributes kept.", "", "| attribute | gain | kept | edits | vector norm |", "|---|---|---|---|---|"]
            lines += [f"| {a} | {p['gain']:.2f} | {p['kept']:.2f} | {p['edits']} | {p['vector_norm']:.3f} |"
                      for a, p in per.items()]
    else:
        lines.append("No metrics yet: run `pioneer evaluate --model RUN`.")
    stats = read_jsonl(run_dir / "stats.jsonl")
    lines += ["", "## Training health", ""]
    if stats:
        try:
            plot = plot_kl(run_dir, out_dir / "kl.png")
            lines += [f"![KL terms]({out_dir.name}/{plot.name})", ""]
        except (ValueError, ImportError) as e:
            lines.append(f"(no KL plot: {e})")
        verdicts = DivergenceMonitor(policy="stop").scan(stats)
        bad = [v for v in verdicts if v.action.value != "ok"]
        last = next((r for r in reversed(stats) if "kl_real" in r), None)
        if last is not None:
            lines.append(f"Last record: {last['images_seen'] / 1000:g} kimg, KL real {last['kl_real']:.3f}, "
                         f"KL generated {last['kl_fake']:.3f}, gap {last.get('gap', 0):+.3f}.")
        lines.append(f"Divergence monitor: {'no warnings' if not bad else f'{len(bad)} warnings; first: {bad[0].reason}'}.")
    else:
        lines.append("No stats.jsonl in this folder.")
    lines += ["", "## Images", ""]
    for caption, rel in _grids(run_dir, model, data, out_dir):
        lines += [f"**{caption}**", "", f"![{caption}]({rel})" if rel else "", ""]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
