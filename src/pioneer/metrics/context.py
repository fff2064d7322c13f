"""What a metric gets to work with: the model, the data split, counts, seeds, the cache."""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pioneer.errors import PioneerError
from pioneer.run.files import RunFolder, cache_dir as resolve_cache_dir, run_of_snapshot

if TYPE_CHECKING:
    from pioneer.data import DataSplit
    from pioneer.inference.facade import Pioneer


class MetricError(PioneerError, ValueError):
    """A metric that cannot run as asked; the message says what to change."""


@dataclass
class MetricContext:
    """Everything a metric may use. Build with `from_snapshot`, `from_model` or `from_networks`.

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
    cache_dir: Path = field(default_factory=resolve_cache_dir)
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
        from pioneer.inference.facade import Pioneer

        return cls.from_model(Pioneer.load(path, device=device), data, cache_dir=cache_dir, holdout=holdout, **kwargs)

    @classmethod
    def from_model(cls, model: "Pioneer", data: str | None = None, *, cache_dir: str | os.PathLike | None = None,
                   holdout: str | None = None, **kwargs: Any) -> "MetricContext":
        """For a model already loaded (`open_model()`, `Pioneer.load`). Loaded from a run's
        snapshot, it gets the run's folder (metrics.jsonl) and, unless `data` is given, the run's
        data set and held-out list; otherwise the data set it was trained on."""
        run_dir = run_of_snapshot(model.source) if model.source else None
        if data is None and run_dir is not None:
            data, holdout = _run_data(run_dir, holdout)
        if data is None:                            # training records its data and held-out list in every snapshot
            data, holdout = model.extra.get("data"), holdout or model.extra.get("holdout")
        ctx = cls._with_data(model, data, holdout, cache_dir, run_dir=run_dir, **kwargs)
        recorded = model.extra.get("held_out")
        if ctx.data is not None and recorded and data == model.extra.get("data") and ctx.data.held_out() != recorded:
            warnings.warn(f"the held-out images differ from the {recorded['images']} the model was measured on "
                          "in training: held-out numbers are not comparable with its training records", stacklevel=2)
        return ctx

    @classmethod
    def from_networks(cls, encoder: torch.nn.Module, decoder: torch.nn.Module, level: int, alpha: float,
                      data: str | None = None, *, cache_dir: str | os.PathLike | None = None, holdout: str | None = None,
                      device: str | torch.device | None = None, images_seen: int = 0, **kwargs: Any) -> "MetricContext":
        """From networks in memory (e.g. the training loop's E and EMA G); they are copied, not changed."""
        from pioneer.inference.facade import Pioneer

        model = Pioneer(copy.deepcopy(encoder), copy.deepcopy(decoder), level, alpha, device=device,
                        source="(training)", images_seen=images_seen, extra={"data": data})
        return cls._with_data(model, data, holdout, cache_dir, **kwargs)

    @classmethod
    def _with_data(cls, model: "Pioneer", data: str | None, holdout: str | None, cache_dir: Any, **kwargs: Any) -> "MetricContext":
        cache = resolve_cache_dir(cache_dir)
        split = None
        if data is not None:
            from pioneer.data import open_dataset

            split = open_dataset(data, model.resolution, cache, holdout=holdout, progress=kwargs.get("progress", False))
        return cls(model=model, data=split, data_spec=str(data or ""), device=model.device, cache_dir=cache, **kwargs)


def _run_data(run_dir: Path, holdout: str | None) -> tuple[str | None, str | None]:
    """The data spec and held-out list a run was trained on (holdout: an explicit override)."""
    try:
        opts = RunFolder(run_dir).read_options()
    except (OSError, ValueError):
        return None, holdout
    cfg = opts.get("config", opts)
    return cfg.get("data"), holdout if holdout is not None else cfg.get("holdout")


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 (what a saved image holds); uint8 passes through."""
    if images.dtype == torch.uint8:
        return images
    from pioneer.images import to_uint8 as _to_uint8

    return _to_uint8(images)


