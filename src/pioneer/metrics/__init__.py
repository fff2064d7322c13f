"""Named metrics, shared by training and `pioneer evaluate` (as StyleGAN2-ADA's metric_main).

    from pioneer.metrics import MetricContext, compute, list_metrics
    ctx = MetricContext.from_snapshot("runs/00000-synthetic64/snapshot.safetensors")
    compute("fid1k", ctx)          # {"fid1k": 41.2, "num_gen": 1000, "num_real": 1000, ...}

A metric is a function `fn(ctx) -> dict` registered under a name with `@register(name)`. The
dict holds the headline value under the metric's own name plus details (counts, which network
was used). `compute` adds the seconds it took. `evaluate` runs several, appends one JSON line
per metric to `RUN/metrics.jsonl`, and `format_table` prints them.

Metrics and their weights (all offline unless said):
  fid1k, fid10k, fid50k  FID of generated samples vs the training set (Inception 2015-12-05)
  fid_rec                FID of reconstructions of the test set vs the test set
  lpips_rec              LPIPS between test images and their reconstructions, face crop at 128
  ppl                    perceptual path length on the sphere (eps 1e-4), face crop at 128
  identity               median L2 of dlib face embeddings, input vs reconstruction
  attr_edit              attribute-edit benchmark on the synthetic faces (ground-truth labels)
  collapse               code rank vs random codes, latent cycle, held-out L1 vs the mean face
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from ..api import Pioneer
    from ..data import DataSplit

MetricFn = Callable[["MetricContext"], dict[str, Any]]


class MetricError(ValueError):
    """A metric that cannot run as asked; the message says what to change."""


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


def default_cache_dir() -> Path:
    """Where reference statistics and trained helpers are cached ($PIONEER_CACHE or ~/.cache/pioneer)."""
    return Path(os.environ.get("PIONEER_CACHE", Path.home() / ".cache" / "pioneer"))


@dataclass
class MetricContext:
    """Everything a metric may use. Build with `from_snapshot` or `from_networks`.

    model:       the model under test (a `pioneer.Pioneer`: encode / decode / sample)
    data:        the data split at the model's resolution (None for metrics that need no data)
    data_spec:   the data set spec ("synthetic", a folder, ...) for messages and cache keys
    num:         overrides each metric's own sample count (fid10k with num=64 uses 64 images)
    seed:        seeds every random choice (codes, pairs, image subsets)
    options:     per-metric options, e.g. {"ppl_pairs": 1000, "face_crop": False, "inception": PATH,
                 "perceptual": "auto" | "lpips" | "stlpips"}
    """

    model: "Pioneer"
    data: "DataSplit | None" = None
    data_spec: str = ""
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_size: int = 32
    num: int | None = None
    seed: int = 0
    cache_dir: Path = field(default_factory=default_cache_dir)
    run_dir: Path | None = None
    progress: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def resolution(self) -> int:
        return self.model.resolution

    def count(self, default: int, available: int | None = None) -> int:
        """The sample count to use: `num` when given, else `default`, capped at `available`."""
        n = self.num if self.num is not None else default
        if available is not None:
            n = min(n, available)
        if n < 1:
            raise MetricError(f"no images to evaluate (count {n}): pass --num at least 1 or a larger data set")
        return n

    def require_data(self, metric: str) -> "DataSplit":
        if self.data is None:
            raise MetricError(f"metric {metric} needs the data set: pass --data (or evaluate a run folder)")
        return self.data

    def real_images(self, indices: np.ndarray) -> Iterable[torch.Tensor]:
        """uint8 batches (B, 3, r, r) of data-set images at the model's resolution."""
        data = self.require_data("this metric")
        for i in range(0, len(indices), self.batch_size):
            yield data.pyramid.images(indices[i:i + self.batch_size], self.resolution)

    @classmethod
    def from_snapshot(cls, path: str | os.PathLike, data: str | None = None, *, cache_dir: str | os.PathLike | None = None,
                      holdout: str | None = None, device: str | torch.device | None = None, **kwargs: Any) -> "MetricContext":
        """Load a snapshot and, when `data` is given or the snapshot's run folder names it, the data set."""
        from ..api import Pioneer

        model = Pioneer.load(path, device=device)
        run_dir = find_run_dir(path)
        if data is None and run_dir is not None:
            data, holdout = _run_data(run_dir, holdout)
        if data is None:
            data = model.extra.get("data")          # training records its data spec in every snapshot
        return cls._with_data(model, data, holdout, cache_dir, run_dir=run_dir, **kwargs)

    @classmethod
    def from_networks(cls, encoder: torch.nn.Module, decoder: torch.nn.Module, level: int, alpha: float,
                      data: str | None = None, *, cache_dir: str | os.PathLike | None = None, holdout: str | None = None,
                      device: str | torch.device | None = None, images_seen: int = 0, **kwargs: Any) -> "MetricContext":
        """From networks in memory (e.g. the training loop's E and EMA G); they are copied, not changed."""
        from ..api import Pioneer

        model = Pioneer(copy.deepcopy(encoder), copy.deepcopy(decoder), level, alpha, device=device,
                        source="(training)", images_seen=images_seen, extra={"data": data})
        return cls._with_data(model, data, holdout, cache_dir, **kwargs)

    @classmethod
    def _with_data(cls, model: "Pioneer", data: str | None, holdout: str | None, cache_dir: Any, **kwargs: Any) -> "MetricContext":
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        split = None
        if data is not None:
            from ..data import open_dataset

            split = open_dataset(data, model.resolution, cache, holdout=holdout, progress=kwargs.get("progress", False))
        return cls(model=model, data=split, data_spec=str(data or ""), device=model.device, cache_dir=cache, **kwargs)


def find_run_dir(path: str | os.PathLike) -> Path | None:
    """The run folder of a snapshot (RUN/snapshot.safetensors or RUN/snapshots/x.safetensors)."""
    p = Path(path).resolve()
    for folder in (p.parent, p.parent.parent):
        if any((folder / name).is_file() for name in ("options.json", "stats.jsonl", "training-state.pt")):
            return folder
    return None


def _run_data(run_dir: Path, holdout: str | None) -> tuple[str | None, str | None]:
    if not (run_dir / "options.json").is_file():
        return None, holdout
    try:
        opts = json.loads((run_dir / "options.json").read_text())
        cfg = opts.get("config", opts)
        return cfg.get("data"), holdout if holdout is not None else cfg.get("holdout")
    except (OSError, ValueError):
        return None, holdout


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
    path = Path(jsonl) if jsonl is not None else (ctx.run_dir / "metrics.jsonl" if ctx.run_dir else None)
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


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one record as one line (a single write, flushed)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=_json_default) + "\n")


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue            # a torn last line
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """Plain-text table: metric, headline value, details, seconds."""
    rows = [("metric", "value", "details", "seconds")]
    for rec in records:
        res = dict(rec["results"])
        name = rec["metric"]
        value = res.pop(name, None)
        secs = res.pop("seconds", "")
        details = ", ".join(f"{k}={_fmt(v)}" for k, v in res.items() if not isinstance(v, (dict, list)))
        rows.append((name, _fmt(value), details, _fmt(secs)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 (what a saved image holds); uint8 passes through."""
    if images.dtype == torch.uint8:
        return images
    from ..images import to_uint8 as _to_uint8

    return _to_uint8(images)


# Register the metrics (each module decorates its functions with @register).
from . import fid, perceptual, ppl, identity, attributes, collapse  # noqa: E402,F401
