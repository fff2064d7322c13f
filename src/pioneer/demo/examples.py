"""The demo's built-in examples: held-out synthetic faces and the real portraits that ship
inside installed packages (scikit-image's astronaut, matplotlib's Grace Hopper), written as PNG
files into the demo's temporary folder. Nothing is downloaded."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

# (package, path inside it, caption); found without importing the packages (both are slow to import)
PACKAGED_PORTRAITS: tuple[tuple[str, str, str], ...] = (
    ("skimage", "data/astronaut.png", "Eileen Collins (scikit-image)"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "Grace Hopper (matplotlib)"),
)


@dataclass(frozen=True)
class Example:
    name: str           # caption on the page
    path: Path          # PNG in the demo's temporary folder


def packaged_file(package: str, inside: str) -> Path | None:
    """A data file inside an installed package, or None when the package or file is missing."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / inside
        if path.is_file():
            return path
    return None


def build_examples(folder: str | os.PathLike, synthetic: int = 4, size: int = 256) -> list[Example]:
    """Write the examples into `folder`: `synthetic` held-out synthetic faces (the test split
    of the default set, never trained on) rendered at `size`, then the packaged portraits that
    are installed."""
    from pioneer.data.faces import SyntheticFaces

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    examples = []
    faces = SyntheticFaces()
    for i in faces.test_indices[:synthetic].tolist():
        path = folder / f"heldout-{i:06d}.png"
        Image.fromarray(faces.load(i, size)).save(path)
        examples.append(Example(f"held-out synthetic face {i}", path))
    for package, inside, caption in PACKAGED_PORTRAITS:
        source = packaged_file(package, inside)
        if source is None:
            continue
        path = folder / f"{Path(inside).stem}.png"
        with Image.open(source) as img:
            img.convert("RGB").save(path)
        examples.append(Example(caption, path))
    return examples
