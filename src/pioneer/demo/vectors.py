"""The demo's attribute vectors: read from a folder of `pioneer attributes` files, or computed
at start from the synthetic faces' ground-truth labels for a model trained on them."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from pioneer.inference.facade import Pioneer
from pioneer.inference.latent import AttributeVector, mean_difference


def load_vector_dir(folder: str | os.PathLike, model: Pioneer) -> tuple[list[AttributeVector], list[str]]:
    """Every `*.safetensors` attribute vector in `folder` (sorted by name) that fits `model`,
    and one notice per file skipped (not a vector, another latent size, another model).
    ValueError when the folder does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--vectors {folder} is not a folder: give the folder of .safetensors files "
                         "that `pioneer attributes` wrote")
    vectors, notices = [], []
    for path in sorted(folder.glob("*.safetensors")):
        try:
            v = AttributeVector.load(path)
        except ValueError as e:
            notices.append(f"skipped {path.name}: {e}")
            continue
        if v.latent_dim != model.latent_dim:
            notices.append(f"skipped {path.name}: it has {v.latent_dim} dimensions and this model's codes "
                           f"{model.latent_dim}, so it was made for another model")
        elif v.model and v.model != model.fingerprint:
            notices.append(f"skipped {path.name}: it was made for another model (fingerprint {v.model}, this one is "
                           f"{model.fingerprint}); make it again with "
                           f"`pioneer attributes --model {model.source or 'SNAPSHOT'}`")
        elif v.attribute in {u.attribute for u in vectors}:
            notices.append(f"skipped {path.name}: a vector named {v.attribute!r} was already loaded")
        else:
            vectors.append(v)
    if not vectors and not notices:
        notices.append(f"no attribute vectors (*.safetensors) in {folder}: make some with `pioneer attributes`")
    return vectors, notices


def trained_on_synthetic(model: Pioneer) -> str | None:
    """The synthetic data spec the model was trained on ("synthetic" or "synthetic:N"), else None."""
    data = str(model.extra.get("data") or "")
    return data if data.startswith("synthetic") else None


@torch.inference_mode()
def synthetic_vectors(model: Pioneer, data: str = "synthetic", count: int = 64, pool: int = 512,
                      batch_size: int = 64) -> list[AttributeVector]:
    """One vector per attribute of the synthetic faces: mean code of the first `count` training
    faces with it minus that of the first `count` without, searched among the first `pool`
    training faces. The same faces `pioneer attributes --synthetic --count N` takes whenever the
    pool holds `count` of each, but every face is encoded once for all attributes."""
    from pioneer.data import open_source
    from pioneer.data.faces import ATTRIBUTES, SyntheticFaces

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
