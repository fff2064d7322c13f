"""Where attribute vectors get their images: which images have an attribute and which do not.
Each *_images function returns (with, without), at most `count` of each, in file / index order;
synthetic_vectors makes every attribute's vector of the synthetic faces at once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pioneer.inference.inputs import InputError

if TYPE_CHECKING:
    from pioneer.inference.facade import Pioneer
    from pioneer.inference.latent import AttributeVector


def _find_image(folder: Path, key: str) -> Path | None:
    """`folder/key`, or the same name with another image extension (CelebA ships .jpg; people
    often convert to .png)."""
    from pioneer.data.sources import IMAGE_EXTENSIONS

    path = folder / key
    if path.is_file():
        return path
    for ext in IMAGE_EXTENSIONS:
        alt = path.with_suffix(ext)
        if alt.is_file():
            return alt
    return None


def labelled_images(labels_file: str | os.PathLike, images_dir: str | os.PathLike, attribute: str,
                    count: int = 64) -> tuple[list[Path], list[Path]]:
    """Images split by a CelebA-style attribute file (`list_attr_celeba.txt`, or CelebAMask-HQ's
    `CelebAMask-HQ-attribute-anno.txt`: a count, the attribute names, then `key 1 -1 ...`)."""
    from pioneer.data.labels import read_celeba_attributes

    labels_file, folder = Path(labels_file), Path(images_dir)
    if not labels_file.is_file():
        raise InputError(f"attribute file {labels_file} does not exist")
    if not folder.is_dir():
        raise InputError(f"image folder {folder} does not exist")
    keys, names, labels = read_celeba_attributes(labels_file)   # ValueError names the line
    if attribute not in names:
        raise InputError(f"attribute {attribute!r} is not in {labels_file}; it has: {', '.join(names)}")
    col = names.index(attribute)
    groups: tuple[list[Path], list[Path]] = ([], [])
    for key, has in zip(keys, labels[:, col]):
        group = groups[0] if has else groups[1]
        if len(group) < count and (path := _find_image(folder, key)) is not None:
            group.append(path)
        if len(groups[0]) >= count and len(groups[1]) >= count:
            break
    _check_groups(groups, attribute, f"{folder} (labels {labels_file.name})")
    return groups


def folder_images(folder: str | os.PathLike, count: int = 64) -> list[Path]:
    """The first `count` images below a folder (sorted by path)."""
    from pioneer.data.sources import FolderSource

    source = FolderSource(folder)                                # DataError: missing or empty
    return [source.path / source.key(i) for i in range(min(count, len(source)))]


def synthetic_images(attribute: str, count: int, resolution: int, data: str = "synthetic"
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Training images of the built-in synthetic faces split by their ground-truth labels,
    rendered at `resolution`. `data` is the training data spec ("synthetic" or "synthetic:N")."""
    from pioneer.data import open_source
    from pioneer.data.faces import ATTRIBUTES, SyntheticFaces

    if attribute not in ATTRIBUTES:
        raise InputError(f"the synthetic faces have no attribute {attribute!r}; they have: {', '.join(ATTRIBUTES)}")
    faces = open_source(data)
    if not isinstance(faces, SyntheticFaces):
        raise InputError(f"data {data!r} is not the synthetic faces")
    col = ATTRIBUTES.index(attribute)
    groups: tuple[list[int], list[int]] = ([], [])
    train = faces.train_indices
    for start in range(0, len(train), 256):                     # labels are cheap, rendering is not
        idx = train[start:start + 256]
        for i, has in zip(idx.tolist(), faces.labels(idx)[:, col]):
            group = groups[0] if has else groups[1]
            if len(group) < count:
                group.append(i)
        if len(groups[0]) >= count and len(groups[1]) >= count:
            break
    _check_groups(groups, attribute, repr(faces))
    return ([faces.load(i, resolution) for i in groups[0]], [faces.load(i, resolution) for i in groups[1]])


def _check_groups(groups: tuple[list[Any], list[Any]], attribute: str, where: str) -> None:
    for group, what in zip(groups, ("with", "without")):
        if not group:
            raise InputError(f"no images {what} attribute {attribute!r} found in {where}")


def trained_on_synthetic(model: "Pioneer") -> str | None:
    """The synthetic data spec the model was trained on ("synthetic" or "synthetic:N"), else None."""
    data = str(model.extra.get("data") or "")
    return data if data.startswith("synthetic") else None


@torch.inference_mode()
def synthetic_vectors(model: "Pioneer", data: str = "synthetic", count: int = 64, pool: int = 512,
                      batch_size: int = 64) -> list["AttributeVector"]:
    """One vector per attribute of the synthetic faces: mean code of the first `count` training
    faces with it minus that of the first `count` without, searched among the first `pool`
    training faces. The same faces `pioneer attributes --synthetic --count N` takes whenever the
    pool holds `count` of each, but every face is encoded once for all attributes."""
    from pioneer.data import open_source
    from pioneer.data.faces import ATTRIBUTES, SyntheticFaces
    from pioneer.inference.latent import AttributeVector, mean_difference

    faces = open_source(data)
    if not isinstance(faces, SyntheticFaces):
        raise ValueError(f"data {data!r} is not the synthetic faces")
    indices = faces.train_indices[:pool]
    labels = torch.as_tensor(faces.labels(indices)).bool()                              # (P, A)
    images = [faces.load(int(i), model.resolution) for i in indices]
    codes = model.encode(images, batch_size=batch_size)                                 # (P, D)
    vectors = []
    for col, name in enumerate(ATTRIBUTES):
        with_, without = labels[:, col].nonzero()[:count, 0], (~labels[:, col]).nonzero()[:count, 0]
        if len(with_) == 0 or len(without) == 0:
            continue                    # a tiny data set may lack an attribute altogether
        vectors.append(AttributeVector(mean_difference(codes[with_], codes[without]), name, len(with_), len(without),
                                       model=model.fingerprint, snapshot=model.source,
                                       source=f"synthetic faces ({data}), training split"))
    return vectors
