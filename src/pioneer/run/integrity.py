"""Run-folder integrity: checksums of checkpoints, the previous training state kept beside the
newest, fallback to it when the newest fails verification, and the cleanup of what killed or
failed writes leave behind.

* Every snapshot carries a sha256 of its metadata and tensors (in its safetensors metadata) and
  every training state a sha256 of its whole payload (a `checksum` entry). Both are checked on
  load, so a flipped byte in tensor data, which neither format notices by itself, is refused.
  Files written before checksums existed load unverified.
* Writing a training state keeps the one it replaces as `training-state.prev.pt` (a hard link
  where the file system has them, else a rename), so one damaged file never ends a run.
* `remove_stale_temps`: the hidden `.NAME.*.tmp` files of writes killed half-way (see
  checkpoint.atomic_write); only safe while the run-folder lock is held.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from pioneer.errors import PioneerError
from pioneer.run.files import (GRIDS, METRICS, OPTIONS, PREVIOUS_STATE as PREVIOUS_STATE_FILE, SNAPSHOT as SNAPSHOT_FILE,
                               SNAPSHOTS, STATE as STATE_FILE, STATS, SUMMARY, TENSORBOARD)
from pioneer.run.lock import LOCK_FILE


class CheckpointError(PioneerError, ValueError):
    """A checkpoint that is missing, corrupt, or does not belong to this run (checkpoint.py
    re-exports it: that is where callers meet it)."""

CHECKSUM_KEY = "checksum"                 # in the training state's payload and the snapshot's metadata
TEMP_GLOB = ".*.tmp"                      # atomic_write's temporaries: .NAME.RANDOM.tmp
RUN_SUBFOLDERS = ("", SNAPSHOTS, GRIDS)
# What a run writes; a start that fails before its first checkpoint removes these again.
RUN_OUTPUTS = (OPTIONS, STATS, SUMMARY, METRICS, TENSORBOARD, GRIDS, SNAPSHOTS, SNAPSHOT_FILE)


# ------------------------------------------------------------------------------------------------
# Checksums


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    flat = t.detach().cpu().contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())


def _feed(h: Any, obj: Any) -> None:
    """Hash a nested payload canonically: dict keys sorted, tensors by dtype, shape and bytes."""
    if isinstance(obj, torch.Tensor):
        h.update(f"T{obj.dtype}{tuple(obj.shape)}".encode())
        h.update(_tensor_bytes(obj))
    elif isinstance(obj, Mapping):
        h.update(f"D{len(obj)}".encode())
        for key in sorted(obj, key=repr):
            _feed(h, key)
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):  # torch.load may give back either for a saved tuple
        h.update(f"L{len(obj)}".encode())
        for item in obj:
            _feed(h, item)
    else:                                 # numbers, strings, bools, None: repr round-trips them
        h.update(f"S{obj!r}".encode())


def payload_digest(payload: Mapping[str, Any]) -> str:
    """sha256 of a training-state payload, its own checksum entry left out."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k != CHECKSUM_KEY})
    return h.hexdigest()


def snapshot_digest(meta: Mapping[str, str], tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 of a snapshot's metadata (its checksum left out) and tensors."""
    meta = {k: v for k, v in meta.items() if k != CHECKSUM_KEY}
    return payload_digest({"meta": meta, "tensors": dict(tensors)})


def with_checksum(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, CHECKSUM_KEY: payload_digest(payload)}


def verify_payload(payload: Mapping[str, Any], path: Path) -> None:
    """CheckpointError when a training state's checksum does not match (none: written before checksums)."""
    stored = payload.get(CHECKSUM_KEY)
    if stored is not None and stored != payload_digest(payload):
        raise CheckpointError(f"training state {path} fails its checksum: the file was damaged after it was written")


def verify_snapshot(meta: Mapping[str, str], tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    """CheckpointError when a snapshot's checksum does not match (none: written before checksums)."""
    stored = meta.get(CHECKSUM_KEY)
    if stored is not None and stored != snapshot_digest(meta, tensors):
        raise CheckpointError(f"snapshot {path} fails its checksum: the file is damaged; use a numbered snapshot "
                             f"from the run's snapshots/ folder or re-run `pioneer train --resume` to rewrite it")


# ------------------------------------------------------------------------------------------------
# The previous training state


def keep_previous(path: Path) -> None:
    """Called just before a new training state replaces `path`: keep the current one as the
    previous state. A hard link keeps `path` in place until the new file is renamed over it."""
    if not path.is_file():
        return
    prev = path.with_name(PREVIOUS_STATE_FILE)
    tmp = prev.with_name(f".{prev.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
        os.replace(tmp, prev)
    except OSError:  # no hard links here (some network and FAT file systems): move it
        os.replace(path, prev)


def state_files(run_dir: str | Path) -> list[Path]:
    """The run's training states that exist, newest first."""
    run_dir = Path(run_dir)
    return [p for p in (run_dir / STATE_FILE, run_dir / PREVIOUS_STATE_FILE) if p.is_file()]


def has_state(run_dir: str | Path) -> bool:
    return bool(state_files(run_dir))


def load_with_fallback(run_dir: str | Path, load: Callable[[Path], dict[str, Any]],
                       note: Callable[[str], None]) -> dict[str, Any]:
    """The newest training state that loads and verifies; `note` says when it is the previous
    one. Raises the newest state's error when none does."""
    files = state_files(run_dir)
    if not files:
        return load(Path(run_dir) / STATE_FILE)  # raises the usual "no training state" error
    first: CheckpointError | None = None
    for path in files:
        try:
            state = load(path)
        except CheckpointError as e:
            first = first or e
            continue
        if path.name != STATE_FILE:
            why = f"failed verification ({first})" if first is not None else "is missing"
            note(f"warning: {Path(run_dir) / STATE_FILE} {why}; resuming from the previous checkpoint "
                 f"{path.name} at {int(state['images_seen']) / 1000:g} kimg")
        return state
    assert first is not None
    if len(files) > 1:
        raise CheckpointError(f"{first}; the previous state {files[1].name} is unusable too: start a new run")
    raise first


# ------------------------------------------------------------------------------------------------
# Leftovers


def _temps(run_dir: Path) -> Iterator[Path]:
    for sub in RUN_SUBFOLDERS:
        folder = run_dir / sub
        if folder.is_dir():
            yield from (p for p in folder.glob(TEMP_GLOB) if p.is_file())


def remove_stale_temps(run_dir: str | Path) -> list[Path]:
    """Delete the temporaries of writes that were killed; call with the run lock held."""
    removed = []
    for path in _temps(Path(run_dir)):
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def describe_removed(paths: list[Path]) -> str:
    size = sum(_size(p) for p in paths)
    return f"removed {len(paths)} temporary file(s) of an interrupted write ({size / 2**20:.1f} MiB)"


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def discard_unstarted_run(run_dir: str | Path, created: bool) -> None:
    """Undo a start that failed before the first checkpoint: remove what the run wrote, and the
    folder itself when this start created it and nothing else is in it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or has_state(run_dir):
        return
    for name in RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    remove_stale_temps(run_dir)
    if created:
        (run_dir / LOCK_FILE).unlink(missing_ok=True)  # ours (the caller holds it); released right after
        try:
            run_dir.rmdir()   # only when empty: never removes what someone else put there
        except OSError:
            pass
