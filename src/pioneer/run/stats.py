"""Training statistics: one JSON line per record in stats.jsonl, mirrored to TensorBoard."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from pioneer.atomic import atomic_write_text
from pioneer.run.files import RunFolder
from pioneer.run.jsonl import dumps, read_jsonl, write_record


class StatsWriter:
    """Appends records to `run_dir/stats.jsonl` and, when tensorboard is installed, to
    `run_dir/tensorboard`. Each record is written with one write() call and flushed, so a
    killed run leaves whole lines only.

    resume_images: the run continues from this many images: records logged after it (by the
    session that was interrupted) are dropped, in the JSONL file and in TensorBoard."""

    def __init__(self, run_dir: str | Path, resume_images: int | None = None, tensorboard: bool = True) -> None:
        self.run = RunFolder(run_dir)
        self.run.path.mkdir(parents=True, exist_ok=True)
        self.path = self.run.stats
        self._tensorboard = tensorboard
        self._open(resume_images)

    def _open(self, resume_images: int | None) -> None:
        if resume_images is not None and self.path.exists():
            # Records written after the checkpoint we resume from would be logged twice.
            kept = [r for r in read_jsonl(self.path) if r.get("images_seen", 0) <= resume_images]
            atomic_write_text(self.path, "".join(dumps(r) for r in kept))
        self._file = open(self.path, "a", encoding="utf-8")
        self._tb = None
        if self._tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
            except ImportError:
                warnings.warn("tensorboard is not installed: logging to stats.jsonl only "
                              "(pip install tensorboard to get TensorBoard logs)", stacklevel=3)
                self._tensorboard = False
            else:
                self._tb = SummaryWriter(str(self.run.tensorboard), purge_step=resume_images)

    def rewind(self, images_seen: int) -> None:
        """Forget the records after `images_seen` (the run went back there: a rollback)."""
        self.close()
        self._open(images_seen)

    def write(self, record: dict[str, Any]) -> None:
        write_record(self._file, record)
        if self._tb is not None:
            step = int(record["images_seen"])
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "images_seen":
                    self._tb.add_scalar(k, v, step)

    def add_image(self, tag: str, image_hwc: Any, images_seen: int) -> None:
        if self._tb is not None:
            self._tb.add_image(tag, image_hwc, images_seen, dataformats="HWC")

    def close(self) -> None:
        try:
            self._file.close()
        finally:  # a full disk fails the last flush: still close TensorBoard's files
            if self._tb is not None:
                self._tb.close()


def read_stats(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of a run's stats.jsonl (a torn last line is skipped)."""
    return read_jsonl(RunFolder(run_dir).stats)
