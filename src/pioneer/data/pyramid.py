"""The resolution pyramid cache.

Progressive training reads every image at every resolution from 4x4 to the final one, phase
after phase. Decoding full-size files again at each step would dominate the run time, so every
image is decoded **once** into an on-disk pyramid: uint8 arrays ``(N, 3, r, r)`` for
r = 4, 8, ..., R, stored as raw memmap files. Each level is the 2x2 box average of the level above
(computed in float from the top level and rounded once per level), like the official code's h5
pyramid, so average-pooling level r gives level r/2 up to rounding.

Layout: ``cache_dir/<sanitised fingerprint>-r<R>/`` holds ``r4.u8 ... r<R>.u8`` and
``meta.json`` (fingerprint, resolution, kept keys, skipped source indices and why). A cache is
built in a hidden temporary folder next to it and published with one atomic ``os.replace``
after every file was fsynced, so a killed build never leaves a folder that looks valid; stale
temporary folders are removed by the next build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pioneer import interrupts
from pioneer.atomic import fsync_path
from pioneer.data.sources import DataError, ImageError, ImageSource

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1                 # bump when the on-disk layout changes: old caches are rebuilt
MIN_RESOLUTION, MAX_RESOLUTION = 4, 1024
META_FILE = "meta.json"
_CHUNK_BYTES = 32 << 20              # top-level bytes decoded per chunk (float copy is 4x)
_MAX_CHUNK = 256                     # images per chunk at small resolutions (smooth progress)
_STALE_SECONDS = 24 * 3600           # age after which a foreign temporary folder is abandoned


class CorruptImageWarning(UserWarning):
    """An image could not be decoded and was left out of the cache."""


def check_resolution(resolution: int) -> int:
    """Return ``resolution`` if it is a power of two in [4, 1024], else raise :class:`DataError`."""
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, (int, np.integer))
        or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION
        or resolution & (resolution - 1)
    ):
        raise DataError(
            f"resolution {resolution} is not a power of two between {MIN_RESOLUTION} and {MAX_RESOLUTION}"
        )
    return int(resolution)


def pyramid_levels(resolution: int) -> tuple[int, ...]:
    """The levels 4, 8, ..., ``resolution`` of a pyramid, ascending."""
    top = check_resolution(resolution)
    return tuple(MIN_RESOLUTION << k for k in range((top // MIN_RESOLUTION).bit_length()))


def _sanitise(fingerprint: str) -> str:
    """A file-system-safe folder name for a fingerprint (long ones are shortened with a hash)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", fingerprint).strip("._-") or "data"
    if len(name) > 100:
        name = f"{name[:80]}-{hashlib.sha1(fingerprint.encode()).hexdigest()[:16]}"
    return name


def _level_file(folder: Path, resolution: int) -> Path:
    return folder / f"r{resolution}.u8"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]+", "", socket.gethostname()) or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only (POSIX; never called on Windows)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. EPERM: it exists but belongs to someone else
    return True


def _temp_name(final_name: str) -> str:
    return f".{final_name}.tmp-{os.getpid()}-{secrets.token_hex(4)}-{_host()}"


def _is_stale(entry: Path, tail: str) -> bool:
    """Whether a temporary folder belongs to a build that can no longer finish."""
    match = re.fullmatch(r"(\d+)-[0-9a-f]+-([A-Za-z0-9]+)", tail)
    if match and match.group(2) == _host() and os.name == "posix":
        return not _pid_alive(int(match.group(1)))
    try:
        return time.time() - entry.stat().st_mtime > _STALE_SECONDS
    except OSError:
        return False


def _clean_stale_temps(cache_dir: Path, final_name: str) -> None:
    """Remove the temporary folders of killed builds of this cache."""
    prefix = f".{final_name}.tmp-"
    for entry in cache_dir.iterdir():
        if entry.name.startswith(prefix) and _is_stale(entry, entry.name[len(prefix):]):
            logger.info("removing %s, left over by an interrupted cache build", entry)
            shutil.rmtree(entry, ignore_errors=True)


def _read_meta(
    folder: Path, fingerprint: str | None = None, resolution: int | None = None
) -> tuple[dict[str, Any] | None, str]:
    """The metadata of a complete, consistent cache folder, or (None, why it is not one)."""
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return None, f"no readable {META_FILE} ({err})"
    try:
        if meta["format"] != FORMAT_VERSION:
            return None, f"format {meta['format']} is not {FORMAT_VERSION}"
        if fingerprint is not None and meta["fingerprint"] != fingerprint:
            return None, "the fingerprint differs"
        if resolution is not None and meta["resolution"] != resolution:
            return None, "the resolution differs"
        count = int(meta["count"])
        if count < 1 or len(meta["keys"]) != count:
            return None, "the key list does not match the image count"
        for r in pyramid_levels(int(meta["resolution"])):
            expected = count * 3 * r * r
            size = _level_file(folder, r).stat().st_size
            if size != expected:
                return None, f"{_level_file(folder, r).name} has {size} bytes, not {expected}"
    except (KeyError, TypeError, ValueError, OSError) as err:
        return None, f"inconsistent metadata ({err!r})"
    return meta, ""


class ImagePyramid:
    """Every image of a source at every level 4..resolution, decoded once, uint8, memmapped from disk.

    Create it with :meth:`build` (builds the cache if missing, else opens it) or :meth:`open`
    (an existing cache folder). Indices are positions among the *valid* images; ``keys[i]`` is
    the source key of image i and ``source_indices[i]`` its index in the source.
    Pickling keeps only the folder and metadata (workers reopen the memmaps).
    """

    def __init__(self, folder: str | Path, meta: dict[str, Any]) -> None:
        """Wrap a validated cache folder; use :meth:`open` or :meth:`build` instead."""
        self.path = Path(folder)
        self.fingerprint: str = meta["fingerprint"]
        self.resolution: int = int(meta["resolution"])
        self.keys: list[str] = list(meta["keys"])
        self.skipped: list[int] = [int(i) for i in meta["skipped"]]
        self.skip_reasons: list[str] = list(meta.get("skip_reasons", []))
        self.levels: tuple[int, ...] = pyramid_levels(self.resolution)
        source_count = int(meta["source_count"])
        kept = np.ones(source_count, dtype=bool)
        kept[np.asarray(self.skipped, dtype=np.int64)] = False
        self.source_indices: np.ndarray = np.flatnonzero(kept).astype(np.int64)  # (N,)
        self._arrays: dict[int, np.memmap] = {}

    # ---- creation -----------------------------------------------------------------------

    @classmethod
    def open(cls, folder: str | Path) -> ImagePyramid:
        """Open an existing cache folder; :class:`DataError` if it is incomplete or inconsistent."""
        folder = Path(folder).expanduser()
        meta, why = _read_meta(folder)
        if meta is None:
            raise DataError(f"{folder} is not a valid image cache: {why}; rebuild it with ImagePyramid.build")
        return cls(folder, meta)

    @classmethod
    def build(
        cls,
        source: ImageSource,
        resolution: int,
        cache_dir: str | Path,
        progress: bool = True,
        *,
        workers: int | None = None,
    ) -> ImagePyramid:
        """Open the cache of ``source`` at ``resolution`` under ``cache_dir``, building it if needed.

        ``workers`` decoding threads are used for sources marked ``thread_safe`` (default:
        up to 8); other sources are decoded in this thread. Undecodable images are warned
        about once each (:class:`CorruptImageWarning`) and skipped; :class:`DataError` when
        none is left.
        """
        resolution = check_resolution(resolution)
        cache_dir = Path(cache_dir).expanduser()
        cache_dir.mkdir(parents=True, exist_ok=True)
        fingerprint = source.fingerprint()
        final = cache_dir / f"{_sanitise(fingerprint)}-r{resolution}"

        meta, why = _read_meta(final, fingerprint, resolution)
        if meta is not None:
            logger.info("reusing image cache %s", final)
            if meta["skipped"]:
                logger.info("%d undecodable images were skipped when it was built (see %s)",
                            len(meta["skipped"]), final / META_FILE)
            return cls(final, meta)

        _clean_stale_temps(cache_dir, final.name)
        if final.exists():
            # Not one of ours in a valid state (older format, edited by hand): move it aside
            # atomically, then delete it.
            logger.warning("rebuilding image cache %s: %s", final, why)
            trash = cache_dir / _temp_name(final.name)
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)

        temp = cache_dir / _temp_name(final.name)
        temp.mkdir()
        try:
            meta = _build_into(temp, source, resolution, fingerprint, progress, workers)
            try:
                os.replace(temp, final)
            except OSError:
                # Another process published the same cache meanwhile: use theirs.
                theirs, _ = _read_meta(final, fingerprint, resolution)
                if theirs is None:
                    raise
                shutil.rmtree(temp, ignore_errors=True)
                return cls(final, theirs)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)  # also on Ctrl-C: leave nothing half-built
            raise
        fsync_path(cache_dir)
        logger.info("built image cache %s (%d images)", final, meta["count"])
        return cls(final, meta)

    # ---- access -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"ImagePyramid({str(self.path)!r}, {len(self)} images, levels {self.levels[0]}..{self.resolution})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_arrays"] = {}  # memmaps would pickle their whole content
        return state

    def array(self, resolution: int) -> np.ndarray:
        """The whole level ``resolution`` as a read-only memmap ``(N, 3, r, r)`` uint8."""
        if resolution not in self.levels:
            raise ValueError(
                f"resolution {resolution} is not a level of this pyramid: use one of "
                f"{', '.join(map(str, self.levels))}"
            )
        level = self._arrays.get(resolution)
        if level is None:
            level = np.memmap(
                _level_file(self.path, resolution), dtype=np.uint8, mode="r",
                shape=(len(self), 3, resolution, resolution),
            )
            self._arrays[resolution] = level
        return level

    def images(self, indices: Sequence[int] | np.ndarray | torch.Tensor | int, resolution: int) -> torch.Tensor:
        """Images ``indices`` (positions among the valid images) at level ``resolution``.

        Returns a ``(B, 3, r, r)`` uint8 CPU tensor (a scalar index gives B = 1).
        """
        level = self.array(resolution)
        if isinstance(indices, torch.Tensor):
            indices = indices.detach().cpu().numpy()
        idx = np.asarray(indices)
        if idx.size == 0:
            idx = idx.astype(np.int64)
        if idx.ndim > 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices must be a 1-D sequence of integers, got shape {idx.shape} of {idx.dtype}")
        idx = idx.astype(np.int64).reshape(-1)  # (B,)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"image index out of range: indices must be in [0, {len(self)})")
        batch = np.take(level, idx, axis=0)  # (B, 3, r, r), copied out of the memmap
        return torch.from_numpy(np.ascontiguousarray(batch))


def _build_into(
    folder: Path, source: ImageSource, resolution: int, fingerprint: str,
    progress: bool, workers: int | None,
) -> dict[str, Any]:
    """Decode every image of ``source`` into level files in ``folder``; return the metadata."""
    total = len(source)
    if total == 0:
        raise DataError(f"{source!r} has no images: add images or point to other data")
    levels = pyramid_levels(resolution)
    _check_space(folder, total * 3 * sum(r * r for r in levels))
    # Sized for every image; truncated to the valid ones at the end. Written chunk by chunk
    # so the data set never sits in RAM.
    arrays = {
        r: np.memmap(_level_file(folder, r), dtype=np.uint8, mode="w+", shape=(total, 3, r, r))
        for r in levels
    }
    chunk = max(1, min(_MAX_CHUNK, _CHUNK_BYTES // (3 * resolution * resolution)))
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if getattr(source, "thread_safe", False) else 1

    def load(index: int) -> np.ndarray | ImageError:
        try:
            return source.load(index, resolution)
        except ImageError as err:  # reported by the caller, in order, from this thread
            return err

    count = 0
    keys: list[str] = []
    skipped: list[int] = []
    reasons: list[str] = []
    executor = ThreadPoolExecutor(workers, thread_name_prefix="decode") if workers > 1 else None
    bar = tqdm(total=total, desc=f"caching images at {resolution}px", unit="img",
               disable=not progress, dynamic_ncols=True)
    try:
        for start in range(0, total, chunk):
            interrupts.check()  # a Ctrl-C recorded at start-up ends the build here (the temp folder is removed)
            indices = range(start, min(total, start + chunk))
            results = list(executor.map(load, indices)) if executor else [load(i) for i in indices]
            good: list[np.ndarray] = []
            for index, result in zip(indices, results):
                if isinstance(result, ImageError):
                    warnings.warn(f"{result}; skipping it", CorruptImageWarning, stacklevel=3)
                    skipped.append(index)
                    reasons.append(str(result))
                    continue
                if result.shape != (resolution, resolution, 3) or result.dtype != np.uint8:
                    raise ValueError(
                        f"{source!r}.load({index}, {resolution}) returned {result.dtype} {result.shape}, "
                        f"expected uint8 ({resolution}, {resolution}, 3)"
                    )
                good.append(result)
                keys.append(source.key(index))
            bar.update(len(indices))
            if not good:
                continue
            _store(arrays, count, np.stack(good).transpose(0, 3, 1, 2))  # (n, R, R, 3) -> (n, 3, R, R)
            count += len(good)
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    for level in arrays.values():
        level.flush()
    arrays.clear()  # unmap before truncating (required on Windows)
    if count == 0:
        raise DataError(
            f"none of the {total} images of {source!r} could be decoded "
            f"(first error: {reasons[0]}): check the data"
        )
    for r in levels:  # drop the room left for skipped images, then make the levels durable
        path = _level_file(folder, r)
        if count < total:
            os.truncate(path, count * 3 * r * r)
        fsync_path(path)
    if skipped:
        logger.warning("skipped %d of %d images that could not be decoded (listed in %s)",
                       len(skipped), total, META_FILE)
    meta = {
        "format": FORMAT_VERSION,
        "fingerprint": fingerprint,
        "resolution": resolution,
        "levels": list(levels),
        "source": repr(source),
        "source_count": total,
        "count": count,
        "keys": keys,
        "skipped": skipped,
        "skip_reasons": reasons,
    }
    (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    fsync_path(folder / META_FILE)
    fsync_path(folder)
    return meta


def _check_space(folder: Path, needed: int) -> None:
    """The level files are sparse memmaps: a full disk would kill the process (SIGBUS) mid-build
    instead of raising, so check the space first."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DataError(
            f"the image cache needs {needed / 2**30:.2f} GiB under {folder.parent} but only "
            f"{free / 2**30:.2f} GiB are free: pass a cache_dir on a larger disk"
        )


def _store(arrays: dict[int, np.ndarray], start: int, top: np.ndarray) -> None:
    """Write top-level images (n, 3, R, R) uint8 at `start` into every level of `arrays`, each
    level the 2x2 box average of the one above: the exact float average is carried down and
    rounded once per stored level."""
    levels = sorted(arrays)
    n = len(top)
    arrays[levels[-1]][start:start + n] = top
    x = torch.from_numpy(np.ascontiguousarray(top)).float()  # (n, 3, R, R)
    for r in reversed(levels[:-1]):
        x = F.avg_pool2d(x, 2)  # (n, 3, 2r, 2r) -> (n, 3, r, r)
        arrays[r][start:start + n] = x.round().clamp_(0, 255).to(torch.uint8).numpy()
