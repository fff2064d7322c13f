"""Data: image sources (sources.py), the on-disk resolution pyramid cache (pyramid.py), the
held-out split (split.py), training batches (batches.py), CelebA-style labels (labels.py) and
the built-in synthetic faces (faces.py, drawn by drawing.py).

``open_dataset(spec, resolution, cache_dir)`` is the usual entry point: it opens the images
(``open_source``), decodes them once into an :class:`ImagePyramid` and splits them into train
and held-out test indices (:class:`DataSplit`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pioneer.data.pyramid import CorruptImageWarning, ImagePyramid, check_resolution, pyramid_levels
from pioneer.data.split import DataSplit, default_test_mask, holdout_mask, open_dataset
from pioneer.data.sources import (
    IMAGE_EXTENSIONS,
    DataError,
    FolderSource,
    ImageError,
    ImageSource,
    LMDBSource,
    ZipSource,
    decode_image,
    open_source,
)

if TYPE_CHECKING:
    from pioneer.data.faces import ATTRIBUTES, SyntheticFaces

__all__ = [
    "ATTRIBUTES",
    "IMAGE_EXTENSIONS",
    "CorruptImageWarning",
    "DataError",
    "DataSplit",
    "FolderSource",
    "ImageError",
    "ImagePyramid",
    "ImageSource",
    "LMDBSource",
    "SyntheticFaces",
    "ZipSource",
    "check_resolution",
    "decode_image",
    "default_test_mask",
    "holdout_mask",
    "open_dataset",
    "open_source",
    "pyramid_levels",
]


def __getattr__(name: str) -> Any:
    # The synthetic faces are imported on first use: keeps `import pioneer.data` light and free
    # of import cycles with the module that draws them.
    if name in ("SyntheticFaces", "ATTRIBUTES"):
        from pioneer.data import faces

        return getattr(faces, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
