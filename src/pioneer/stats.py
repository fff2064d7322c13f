"""Training statistics: one JSON line per record in stats.jsonl, mirrored to TensorBoard."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from .checkpoint import atomic_write_text


class StatsWriter:
    """Appends records to `run_dir/stats.jsonl` and, when tensorboard is installed, to
    `run_dir/tensorboard`. Each record is written with one write() call and flushed, so a
    killed run leaves whole lines only."""

    def __init__(self, run_dir: str | Path, resume_images: int | None = None, tensorboard: bool = True) -> None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        self.path = Path(run_dir) / "stats.jsonl"
        if resume_images is not None and self.path.exists():
            self._truncate_after(resume_images)
        self._file = open(self.path, "a", encoding="utf-8")
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
            except ImportError:
                warnings.warn("tensorboard is not installed: logging to stats.jsonl only "
                              "(pip install tensorboard to get TensorBoard logs)", stacklevel=2)
            else:
                self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=resume_images)

    def _truncate_after(self, images_seen: int) -> None:
        # Records written after the checkpoint we resume from would be logged twice.
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a killed run
            if rec.get("images_seen", 0) <= images_seen:
                keep.append(line)
        atomic_write_text(self.path, "".join(line + "\n" for line in keep))

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            step = int(record["images_seen"])
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "images_seen":
                    self._tb.add_scalar(k, v, step)

    def add_image(self, tag: str, image_hwc: Any, images_seen: int) -> None:
        if self._tb is not None:
            self._tb.add_image(tag, image_hwc, images_seen, dataformats="HWC")

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_stats(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of a run's stats.jsonl."""
    path = Path(run_dir) / "stats.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
