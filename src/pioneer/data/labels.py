"""Attribute labels in CelebA's format (``list_attr_celeba.txt``, CelebAMask-HQ's
``CelebAMask-HQ-attribute-anno.txt``): a count, the attribute names, then ``key 1 -1 ...``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pioneer.atomic import atomic_write_text

# The synthetic faces' binary attributes (faces.face_attributes), the default columns, in file
# column order: CelebA spelling where CelebA has one (CelebA has No_Beard rather than Beard, and
# no head-turn or skin-tone columns).
ATTRIBUTES: tuple[str, ...] = (
    "Smiling",
    "Turned_Left",
    "Turned_Right",
    "Beard",
    "Eyeglasses",
    "Sunglasses",
    "Bald",
    "Dark_Skin",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
)


def write_celeba_attributes(path: str | os.PathLike[str], keys: Sequence[str], labels: np.ndarray,
                            names: Sequence[str] | None = None) -> None:
    """Write labels in CelebA's ``list_attr_celeba.txt`` format, atomically. names: the
    attribute columns (default: the synthetic faces' ``ATTRIBUTES``).

    Line 1 is the number of images, line 2 the attribute names, then one line per image:
    the key followed by ``1`` or ``-1`` per attribute. ``labels`` is ``(len(keys), len(names))``,
    bool or numeric (``> 0`` is true).
    """
    if names is None:
        names = ATTRIBUTES
    keys = [str(k) for k in keys]
    names = [str(n) for n in names]
    labels = np.asarray(labels)
    if labels.shape != (len(keys), len(names)):
        raise ValueError(
            f"labels have shape {labels.shape}, expected ({len(keys)}, {len(names)}) "
            f"for {len(keys)} keys and {len(names)} attribute names"
        )
    for what, items in (("key", keys), ("attribute name", names)):
        for item in items:
            if not item or any(ch.isspace() for ch in item):
                raise ValueError(f"{what} {item!r} is empty or contains whitespace")
    lines = [str(len(keys)), " ".join(names)]
    # Booleans as they are; numbers as > 0 so that both 0/1 and -1/1 inputs mean what they say.
    values = np.where(labels if labels.dtype == bool else labels > 0, "1", "-1")
    lines += [key + " " + " ".join(row) for key, row in zip(keys, values.tolist())]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_celeba_attributes(path: str | os.PathLike[str]) -> tuple[list[str], list[str], np.ndarray]:
    """Read a CelebA-style attribute file: ``(keys, names, labels)`` with labels bool ``(N, A)``.

    Values ``1`` are true and ``-1`` (or ``0``) false. Malformed input raises ValueError
    naming the file and the line.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a count on line 1 and attribute names on line 2")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise ValueError(f"{path}, line 1: expected the number of images, got {lines[0]!r}") from None
    names = lines[1].split()
    if not names:
        raise ValueError(f"{path}, line 2: expected attribute names, found none")
    rows = lines[2:]
    if len(rows) != count:
        raise ValueError(f"{path}, line 1: says {count} images but the file has {len(rows)} lines of labels")
    keys: list[str] = []
    labels = np.zeros((count, len(names)), dtype=bool)
    truth = {"1": True, "-1": False, "0": False}
    for row, line in enumerate(rows):
        lineno = row + 3
        parts = line.split()
        if len(parts) != len(names) + 1:
            raise ValueError(
                f"{path}, line {lineno}: expected a key and {len(names)} values, got {len(parts)} fields"
            )
        keys.append(parts[0])
        for col, value in enumerate(parts[1:]):
            if value not in truth:
                raise ValueError(
                    f"{path}, line {lineno}: value {value!r} for {names[col]} is not 1 or -1"
                )
            labels[row, col] = truth[value]
    return keys, names, labels
