"""RUN/report.md: the latest value of every metric, the KL plot, training health (divergence and
collapse signals), image grids."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pioneer.text import fmt
from pioneer.run.files import KL_PLOT, RunFolder
from pioneer.run.jsonl import read_jsonl
from pioneer.run.plots import plot_kl

if TYPE_CHECKING:
    from pioneer.inference.facade import Pioneer
    from pioneer.data import DataSplit
    from pioneer.training.health import DivergenceMonitor


def latest_metrics(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        out[r["metric"]] = r              # later lines win
    return out


def _collapse_table(res: dict[str, Any]) -> list[str]:
    """The `collapse` metric as a table: each number next to what it is compared with."""
    rows = [
        ("held-out L1 of G(E(x))", res.get("heldout_l1"), f"mean face: {fmt(res.get('mean_face_l1'))}"),
        ("effective rank of E(x)", res.get("rank_real"), f"random unit codes: {fmt(res.get('rank_random'))}"),
        ("effective rank of E(G(z))", res.get("rank_fake"), f"random unit codes: {fmt(res.get('rank_random'))}"),
        ("code variance of E(x)", res.get("var_real"), f"isotropic: {fmt(res.get('var_isotropic'))}"),
        ("code variance of E(G(z))", res.get("var_fake"), f"isotropic: {fmt(res.get('var_isotropic'))}"),
        ("latent cycle 1 - cos(z, E(G(z)))", res.get("cycle"), "perfect: 0, dead: about 1"),
    ]
    lines = ["", f"Collapse check on {res.get('num', '?')} held-out faces and prior codes "
             f"(rank ratio {fmt(res.get('collapse'))}; near 0 = collapsed).", "",
             "| signal | value | compare with |", "|---|---|---|"]
    return lines + [f"| {name} | {fmt(v)} | {ref} |" for name, v, ref in rows if v is not None]


def _collapse_signals(stats: list[dict[str, Any]]) -> list[str]:
    """The last logged collapse signals and gradient shares of stats.jsonl."""
    last = next((r for r in reversed(stats) if "rank_real" in r), None)
    if last is None:
        return []
    lines = ["", "### Collapse signals", "",
             f"Last record ({last['images_seen'] / 1000:g} kimg, phase {last.get('phase', '?')}, batch "
             f"{last.get('batch', '?')}): effective rank of real codes {fmt(last['rank_real'])}, of generated codes "
             f"{fmt(last.get('rank_fake'))}; code variance {fmt(last.get('var_real'))} / {fmt(last.get('var_fake'))}; "
             f"latent cycle 1 - cos {fmt(last.get('cycle'))}."]
    shares = next((r for r in reversed(stats) if any(k.startswith("gshare_") for k in r)), None)
    if shares is not None:
        for net in ("E", "G"):
            parts = [f"{k.split('_', 2)[2]} {v:.0%}" for k, v in shares.items() if k.startswith(f"gshare_{net}_")]
            lines.append(f"Gradient of {net} at {shares['images_seen'] / 1000:g} kimg by loss term: {', '.join(parts)}.")
    return lines


def _run_monitor(run_dir: Path) -> "DivergenceMonitor":
    """A monitor with the run's own thresholds (options.json), stopping at the first divergence."""
    from pioneer.training.health import DivergenceMonitor

    kwargs: dict[str, Any] = {}
    try:
        cfg = RunFolder(run_dir).read_options().get("config", {})
        kwargs = {k: cfg[k] for k in ("gap_threshold", "collapse_rank", "dead_cycle") if k in cfg}
    except (OSError, ValueError, AttributeError):
        pass
    return DivergenceMonitor(policy="stop", **kwargs)


def report_grids(run_dir: Path, model: "Pioneer | None", data: "DataSplit | None", out_dir: Path) -> list[tuple[str, str]]:
    """(caption, relative path) of a sample grid and a reconstruction grid."""
    from pioneer.images import interleave, make_grid, save_png

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
    grids = sorted(RunFolder(run_dir).grids.glob("*.png"))
    for prefix in ("samples", "reconstructions"):
        latest = [g for g in grids if g.name.startswith(prefix)]
        if latest:
            items.append((f"{prefix} from training ({latest[-1].stem})", f"grids/{latest[-1].name}"))
    return items


def write_report(run_dir: str | Path, model: "Pioneer | None" = None, data: "DataSplit | None" = None) -> Path:
    """Write RUN/report.md (and RUN/report/*.png); returns its path. With a model, the grids are
    fresh samples (and reconstructions of `data`'s test images); without, the run's latest grids."""
    run_dir = Path(run_dir)
    run = RunFolder(run_dir)
    out_dir = run_dir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# Evaluation report: {run_dir.name}", "", f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."]
    if model is not None:
        lines.append(f"Model: `{model.source}`, {model.resolution}x{model.resolution}, "
                     f"{model.images_seen / 1000:g} kimg.")
    lines += ["", "## Metrics (latest value of each)", ""]
    latest = latest_metrics(read_jsonl(run.metrics))
    if latest:
        lines += ["| metric | value | kimg | details |", "|---|---|---|---|"]
        for name, r in sorted(latest.items()):
            res = dict(r["results"])
            value = res.pop(name, None)
            details = ", ".join(f"{k}={fmt(v)}" for k, v in res.items() if not isinstance(v, (dict, list)))
            lines.append(f"| {name} | {fmt(value)} | {fmt(r.get('kimg'))} | {details} |")
        per = latest.get("attr_edit", {}).get("results", {}).get("per_attribute")
        if per:
            lines += ["", "Attribute edits (synthetic faces): share of edits that gain the attribute, share of the "
                      "other attributes kept.", "", "| attribute | gain | kept | edits | vector norm |", "|---|---|---|---|---|"]
            lines += [f"| {a} | {p['gain']:.2f} | {p['kept']:.2f} | {p['edits']} | {p['vector_norm']:.3f} |"
                      for a, p in per.items()]
        if "collapse" in latest:
            lines += _collapse_table(latest["collapse"]["results"])
    else:
        lines.append("No metrics yet: run `pioneer evaluate --model RUN`.")
    stats = read_jsonl(run.stats)
    lines += ["", "## Training health", ""]
    if stats:
        try:
            plot = plot_kl(run_dir, out_dir / KL_PLOT)
            lines += [f"![KL terms]({out_dir.name}/{plot.name})", ""]
        except (ValueError, ImportError) as e:
            lines.append(f"(no KL plot: {e})")
        verdicts = _run_monitor(run_dir).scan(stats)
        bad = [v for v in verdicts if v.action.value != "ok"]
        last = next((r for r in reversed(stats) if "kl_real" in r), None)
        if last is not None:
            lines.append(f"Last record: {last['images_seen'] / 1000:g} kimg, KL real {last['kl_real']:.3f}, "
                         f"KL generated {last['kl_fake']:.3f}, gap {last.get('gap', 0):+.3f}.")
        lines.append(f"Divergence monitor: {'no warnings' if not bad else f'{len(bad)} warnings; first: {bad[0].reason}'}.")
        lines += _collapse_signals(stats)
    else:
        lines.append("No stats.jsonl in this folder.")
    lines += ["", "## Images", ""]
    for caption, rel in report_grids(run_dir, model, data, out_dir):
        lines += [f"**{caption}**", "", f"![{caption}]({rel})" if rel else "", ""]
    run.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run.report
