"""Resuming a run folder: what run a folder holds and whether training continues it
(`find_run`), preparing a folder for a new run (`start_in`), and what a finished run resumed
without training still has to write (`missing_final_outputs`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from pioneer.config import ConfigError, TrainConfig
from pioneer.errors import PioneerError
from pioneer.run.checkpoint import CheckpointError, load_snapshot, load_training_state
from pioneer.run.files import OPTIONS, SNAPSHOT, RunFolder
from pioneer.run.integrity import has_state, load_with_fallback
from pioneer.run.lock import is_lock_file


class RunError(PioneerError, ValueError):
    """A folder that cannot be used as asked (not a run, damaged options, not empty)."""


def find_run(folder: str | os.PathLike, required: bool) -> dict[str, Any] | None:
    """The saved options and images seen of the run to resume in `folder`: {"options": ...,
    "images_seen": int or None}, or None when a new run starts there (empty or missing folder,
    or a run that stopped before its first checkpoint). required (--resume): the folder must be
    a run folder. RunError says why a folder cannot be used."""
    run = RunFolder(folder)
    if required and not run.options.is_file():
        raise RunError(f"{run.path} is not a run folder (no {OPTIONS}): pass the folder that training created")
    if not required and not has_state(run.path):
        if run.path.is_dir() and not run.options.is_file() and any(not is_lock_file(p) for p in run.path.iterdir()):
            raise RunError(f"{run.path} is neither empty nor a run folder: pass a new or empty folder to --run-dir")
        return None
    if not run.options.is_file():
        raise RunError(f"{run.path} has a training state but no {OPTIONS}: restore it or start a new run")
    try:
        opts = run.read_options()
        TrainConfig.from_dict(opts["config"])
    except (ValueError, KeyError, TypeError, ConfigError) as e:
        raise RunError(f"{run.options} is damaged ({e}); restore it or start a new run") from e
    images_seen = None
    if has_state(run.path):
        try:  # the counter only (mapped, not verified: the training loop verifies what it resumes from)
            images_seen = int(load_with_fallback(run.path, lambda p: load_training_state(p, mmap=True),
                                                 lambda _: None)["images_seen"])
        except (CheckpointError, KeyError) as e:
            raise RunError(str(e)) from e
    return {"options": opts, "images_seen": images_seen}


def start_in(folder: str | os.PathLike) -> None:
    """Prepare `folder` for a new run: create it, and drop the logs of an attempt that stopped
    before its first checkpoint (they would otherwise be appended to)."""
    run = RunFolder(folder)
    run.path.mkdir(parents=True, exist_ok=True)
    if run.options.is_file():
        run.stats.unlink(missing_ok=True)
        run.summary.unlink(missing_ok=True)
        shutil.rmtree(run.tensorboard, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# Consistency of a finished run


def missing_final_outputs(run_dir: str | Path, images_seen: int) -> list[str]:
    """What a run finished at `images_seen` should hold beside its training state and does not:
    "snapshot" (missing, unreadable or behind), "numbered snapshot" (the last one) or "grids"
    (the last sample / reconstruction grids)."""
    run_dir = Path(run_dir)
    missing = []
    try:
        if load_snapshot(run_dir / SNAPSHOT).images_seen != images_seen:
            missing.append("snapshot")
    except CheckpointError:
        missing.append("snapshot")
    run = RunFolder(run_dir)
    if not run.numbered_snapshot(images_seen).is_file():
        missing.append("numbered snapshot")
    if not all(run.grid(kind, images_seen).is_file() for kind in ("samples", "reconstructions")):
        missing.append("grids")
    return missing

