"""The held-out split: which images are test images, and `open_dataset`, the data entry point
(open the images, cache them as a pyramid, split them).

The default split is a stable 2 % hash split; a list file of held-out names, or CelebA-HQ's
``image_list.txt`` (orig_idx >= 182637, the paper's CelebA split), can be given instead.
"""

from __future__ import annotations

import hashlib
import re
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import numpy as np

from pioneer.data.pyramid import ImagePyramid, check_resolution
from pioneer.data.sources import DataError, open_source

CELEBA_FIRST_TEST_ORIG_IDX = 182637  # the paper's CelebA split: train <= 182636, test >= 182637
DEFAULT_TEST_MODULUS = 50            # default split: crc32(key) % 50 == 0 -> test (2 %)


@dataclass
class DataSplit:
    """A pyramid and its train / held-out test indices (int64, sorted, disjoint)."""

    pyramid: ImagePyramid
    train: np.ndarray  # (N_train,) int64 indices into pyramid
    test: np.ndarray   # (N_test,) int64 indices into pyramid

    def held_out(self) -> dict[str, Any]:
        """What the held-out images are, in short: their number and a digest of their keys (the
        snapshots record it, so a model says what it was tested on)."""
        keys = "\n".join(sorted(self.pyramid.keys[i] for i in self.test))
        return {"images": int(len(self.test)), "sha256": hashlib.sha256(keys.encode("utf-8", "surrogateescape")).hexdigest()[:16]}


def default_test_mask(keys: Sequence[str]) -> np.ndarray:
    """Deterministic 2 % test split that is stable as a folder grows.

    An image is test when ``crc32(key) % 50 == 0``, so adding images never moves an existing one
    between train and test. With at least two images there is at least one of each (the image
    with the smallest ``(crc32 % 50, crc32)`` is the fallback test image).
    """
    crc = np.array([zlib.crc32(k.encode("utf-8", "surrogateescape")) for k in keys], dtype=np.int64)
    mask = crc % DEFAULT_TEST_MODULUS == 0
    if len(keys) >= 2 and (not mask.any() or mask.all()):
        first = int(np.lexsort((crc, crc % DEFAULT_TEST_MODULUS))[0])
        mask[:] = False
        mask[first] = True
    return mask


def _key_number(key: str) -> int | None:
    """The CelebA-HQ idx in a key's file stem: its last run of digits ('imgHQ00123' -> 123)."""
    digits = re.findall(r"\d+", PurePosixPath(key.replace("\\", "/")).stem)
    return int(digits[-1]) if digits else None


def _celeba_mask(keys: Sequence[str], lines: list[str], path: Path) -> np.ndarray:
    """Test mask from CelebA-HQ's image_list.txt: test when orig_idx >= 182637."""
    orig: dict[int, int] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            orig[int(parts[0])] = int(parts[1])
        except (IndexError, ValueError):
            raise DataError(
                f"{path} line {lineno} is not 'idx orig_idx orig_file proc_md5 final_md5': {line.strip()!r}"
            ) from None
    mask = np.zeros(len(keys), dtype=bool)
    unmatched = 0
    for i, key in enumerate(keys):
        number = _key_number(key)
        if number is None or number not in orig:
            unmatched += 1
        else:
            mask[i] = orig[number] >= CELEBA_FIRST_TEST_ORIG_IDX
    if unmatched:
        warnings.warn(
            f"{unmatched} of {len(keys)} images have no idx listed in the CelebA-HQ mapping {path}; "
            "they are used for training",
            stacklevel=3,
        )
    return mask


def _list_mask(keys: Sequence[str], lines: list[str], path: Path) -> np.ndarray:
    """Test mask from a list of keys (exact keys, or bare file names when unique)."""
    by_key = {k: i for i, k in enumerate(keys)}
    by_name: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        by_name.setdefault(PurePosixPath(k).name, []).append(i)
    mask = np.zeros(len(keys), dtype=bool)
    wanted = unmatched = 0
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        wanted += 1
        entry = entry.replace("\\", "/").removeprefix("./")
        if entry in by_key:
            mask[by_key[entry]] = True
        elif "/" not in entry and len(by_name.get(entry, ())) == 1:
            mask[by_name[entry][0]] = True
        else:
            unmatched += 1
    if unmatched:
        warnings.warn(
            f"{unmatched} of {wanted} keys in the held-out list {path} match no image "
            "(missing, or skipped as undecodable); they are ignored",
            stacklevel=3,
        )
    return mask


def holdout_mask(keys: Sequence[str], holdout: str | Path) -> np.ndarray:
    """Test mask from a held-out file: a list of keys, or CelebA-HQ's ``image_list.txt``."""
    path = Path(holdout).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read held-out file {path}: {err}") from err
    header = next((ln.split() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), [])
    if header[:2] == ["idx", "orig_idx"]:
        start = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["idx", "orig_idx"])
        return _celeba_mask(keys, lines[start:], path)
    return _list_mask(keys, lines, path)


def open_dataset(
    spec: str | Path,
    resolution: int,
    cache_dir: str | Path,
    holdout: str | Path | None = None,
    progress: bool = True,
    **synthetic_kwargs: Any,
) -> DataSplit:
    """Open ``spec`` (see :func:`~pioneer.data.sources.open_source`), cache it and split it.

    The held-out test set is, in order of precedence: the ``holdout`` file (a list of keys or
    CelebA-HQ's ``image_list.txt``), the source's own split (``train_indices`` /
    ``test_indices``, e.g. the synthetic faces), else :func:`default_test_mask`.
    """
    check_resolution(resolution)
    source = open_source(spec, **synthetic_kwargs)
    pyramid = ImagePyramid.build(source, resolution, cache_dir, progress=progress)
    if holdout is not None:
        mask = holdout_mask(pyramid.keys, holdout)
        train, test = np.flatnonzero(~mask), np.flatnonzero(mask)
    elif hasattr(source, "train_indices") and hasattr(source, "test_indices"):
        # Map source indices to pyramid positions (-1: skipped as undecodable).
        position = np.full(len(source), -1, dtype=np.int64)
        position[pyramid.source_indices] = np.arange(len(pyramid), dtype=np.int64)
        train = position[np.asarray(source.train_indices, dtype=np.int64)]
        test = position[np.asarray(source.test_indices, dtype=np.int64)]
        train, test = np.sort(train[train >= 0]), np.sort(test[test >= 0])
    else:
        mask = default_test_mask(pyramid.keys)
        train, test = np.flatnonzero(~mask), np.flatnonzero(mask)
    if train.size == 0:
        raise DataError(
            f"the held-out split of {spec} leaves no training images "
            f"({test.size} test of {len(pyramid)}): hold out fewer images"
        )
    if test.size == 0:  # the held-out L1 and the reconstruction grids need at least one
        raise DataError(f"{spec} leaves no held-out images ({len(pyramid)} usable): give at least 2 images, "
                        f"or a --holdout list that names some of them")
    return DataSplit(pyramid, train.astype(np.int64), test.astype(np.int64))
