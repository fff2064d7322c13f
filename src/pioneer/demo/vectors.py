"""The demo's attribute vectors: read from a folder of `pioneer attributes` files, or computed
at start from the synthetic faces' ground-truth labels for a model trained on them
(inference.selection.synthetic_vectors, re-exported here)."""

from __future__ import annotations

import os
from pathlib import Path

from pioneer.inference.facade import Pioneer
from pioneer.inference.latent import AttributeVector
from pioneer.inference.selection import synthetic_vectors, trained_on_synthetic

__all__ = ["load_vector_dir", "synthetic_vectors", "trained_on_synthetic"]


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
