"""The metric registry: metrics registered by name, run one by one or in a list whose records
go to RUN/metrics.jsonl, and printed as a table."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pioneer.text import fmt, table
from pioneer.run.files import METRICS
from pioneer.run.jsonl import append_jsonl
from pioneer.metrics.context import MetricContext, MetricError

MetricFn = Callable[["MetricContext"], dict[str, Any]]



@dataclass
class Metric:
    name: str
    fn: MetricFn
    description: str
    needs_data: bool = True


_REGISTRY: dict[str, Metric] = {}


def register(name: str, description: str = "", needs_data: bool = True) -> Callable[[MetricFn], MetricFn]:
    """Decorator: make `fn(ctx) -> dict` available as metric `name`."""
    def wrap(fn: MetricFn) -> MetricFn:
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is registered twice")
        _REGISTRY[name] = Metric(name, fn, description or (fn.__doc__ or "").strip().split("\n")[0], needs_data)
        return fn
    return wrap


def list_metrics() -> dict[str, str]:
    """Registered metric names -> one-line descriptions."""
    return {name: m.description for name, m in sorted(_REGISTRY.items())}


def compute(name: str, ctx: MetricContext) -> dict[str, Any]:
    """Run one registered metric: its result dict plus `seconds`."""
    if name not in _REGISTRY:
        raise MetricError(f"unknown metric {name!r}: use one of {', '.join(sorted(_REGISTRY))}")
    metric = _REGISTRY[name]
    if metric.needs_data:
        ctx.require_data(name)
    start = time.perf_counter()
    result = dict(metric.fn(ctx))
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def evaluate(names: Sequence[str], ctx: MetricContext, jsonl: str | os.PathLike | None = None,
             extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run metrics in order; each record {"metric", "results", snapshot info, time} is appended to
    `jsonl` (default RUN/metrics.jsonl when the context knows the run folder) as soon as it is done."""
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise MetricError(f"unknown metric(s) {', '.join(unknown)}: use {', '.join(sorted(_REGISTRY))}")
    path = Path(jsonl) if jsonl is not None else (ctx.run_dir / METRICS if ctx.run_dir else None)
    records = []
    for name in names:
        results = compute(name, ctx)
        rec = {
            "metric": name,
            "results": results,
            "snapshot": ctx.model.source,
            "images_seen": ctx.model.images_seen,
            "kimg": ctx.model.images_seen / 1000,
            "resolution": ctx.resolution,
            "data": ctx.data_spec,
            "num": ctx.num,
            "seed": ctx.seed,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(extra or {}),
        }
        records.append(rec)
        if path is not None:
            append_jsonl(path, rec)
    return records


def evaluate_during_training(names: Sequence[str], encoder: torch.nn.Module, decoder_ema: torch.nn.Module, level: int,
                             alpha: float, images_seen: int, run_dir: str | os.PathLike, data: str | None,
                             cache_dir: str | os.PathLike | None = None, holdout: str | None = None,
                             device: str | torch.device | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """What the training loop calls every `--metrics-every` kimg (rank 0 only): copies the networks,
    runs the metrics and appends them to RUN/metrics.jsonl. Training networks are left untouched."""
    ctx = MetricContext.from_networks(encoder, decoder_ema, level, alpha, data, cache_dir=cache_dir, holdout=holdout,
                                      device=device, images_seen=images_seen, run_dir=Path(run_dir), **kwargs)
    return evaluate(names, ctx)


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """Plain-text table: metric, headline value, details, seconds."""
    rows = [("metric", "value", "details", "seconds")]
    for rec in records:
        res = dict(rec["results"])
        name = rec["metric"]
        value = res.pop(name, None)
        secs = res.pop("seconds", "")
        details = ", ".join(f"{k}={fmt(v)}" for k, v in res.items() if not isinstance(v, (dict, list)))
        rows.append((name, fmt(value), details, fmt(secs)))
    return table(rows, "lrll")


