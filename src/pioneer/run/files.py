"""The run folder: what its files are called, how folders are numbered and recognised, and where
the image cache lives. Every other module asks here instead of spelling a file name.

    runs/00003-celebahq256/
      options.json                 resolved configuration and the command (OPTIONS)
      stats.jsonl, tensorboard/    training records (STATS, TENSORBOARD)
      metrics.jsonl, report.md     `pioneer evaluate` results (METRICS, REPORT)
      grids/KIND-KKKKKK.png        samples / reconstructions during training
      snapshot.safetensors         latest inference snapshot (SNAPSHOT)
      snapshots/snapshot-KKKKKK.safetensors
      training-state.pt            full state for exact resume (STATE)
      training-state.prev.pt       the one before, kept in case the newest is damaged (PREVIOUS_STATE)
      .lock                        held by the training process (run/lock.py)
      summary.json                 the last session in short (SUMMARY)
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPTIONS = "options.json"
STATE = "training-state.pt"
PREVIOUS_STATE = "training-state.prev.pt"
SNAPSHOT = "snapshot.safetensors"
STATS = "stats.jsonl"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
REPORT = "report.md"
KL_PLOT = "kl.png"
TENSORBOARD = "tensorboard"
GRIDS = "grids"
SNAPSHOTS = "snapshots"
PRETRAINED_CONFIG = "config.json"     # what makes a folder a pretrained folder (share.hub)
CACHE_ENV = "PIONEER_CACHE"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache of decoded image pyramids, FID statistics and classifiers: `path` when given,
    else $PIONEER_CACHE, else ~/.cache/pioneer. Training and evaluation both resolve it here."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "pioneer")


@dataclass(frozen=True)
class RunFolder:
    """Paths inside one run folder (nothing is created by asking)."""

    path: Path

    def __init__(self, path: str | os.PathLike) -> None:
        object.__setattr__(self, "path", Path(path))

    options = property(lambda self: self.path / OPTIONS)
    state = property(lambda self: self.path / STATE)
    snapshot = property(lambda self: self.path / SNAPSHOT)
    stats = property(lambda self: self.path / STATS)
    metrics = property(lambda self: self.path / METRICS)
    summary = property(lambda self: self.path / SUMMARY)
    report = property(lambda self: self.path / REPORT)
    tensorboard = property(lambda self: self.path / TENSORBOARD)
    grids = property(lambda self: self.path / GRIDS)

    def grid(self, kind: str, images_seen: int) -> Path:
        """grids/KIND-KKKKKK.png, KKKKKK the kimg reached (kind: samples / reconstructions)."""
        return self.grids / f"{kind}-{images_seen // 1000:06d}.png"

    def numbered_snapshot(self, images_seen: int) -> Path:
        return self.path / SNAPSHOTS / f"snapshot-{images_seen // 1000:06d}.safetensors"

    def is_run(self) -> bool:
        """Whether training has written here (options, records or a training state)."""
        return any((self.path / name).is_file() for name in (OPTIONS, STATS, STATE))

    def read_options(self) -> dict[str, Any]:
        """options.json as written by `pioneer train`; OSError / ValueError when unreadable."""
        return json.loads(self.options.read_text())


def run_of_snapshot(path: str | os.PathLike) -> Path | None:
    """The run folder of a snapshot (RUN/snapshot.safetensors or RUN/snapshots/x.safetensors);
    None for anything that is not a file (a pretrained folder, a Hub repo id)."""
    p = Path(path).resolve()
    if not p.is_file():
        return None
    for folder in (p.parent, p.parent.parent):
        if RunFolder(folder).is_run():
            return folder
    return None


def next_run_dir(outdir: str | os.PathLike, desc: str) -> Path:
    """runs/00000-desc, runs/00001-desc, ... (EDM style): one more than the highest number there."""
    outdir = Path(outdir)
    ids = [int(m.group(1)) for p in outdir.glob("*") if (m := re.match(r"^(\d+)-", p.name))] if outdir.is_dir() else []
    return outdir / f"{max(ids, default=-1) + 1:05d}-{desc}"


def describe_run(preset_name: str, data: str) -> str:
    """Run folder suffix: the preset, plus the data set's name when it is not the built-in one."""
    if data.startswith("synthetic"):
        return preset_name
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(data.rstrip("/")).stem) or "data"
    return f"{preset_name}-{stem}"
