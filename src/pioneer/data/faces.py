"""Procedurally drawn synthetic faces, the built-in default data set: their parameters, labels
and the data set (drawing.py draws them).

No face data set ships in any package and nothing may be downloaded, so the default training
run, the attribute vectors and the attribute-edit benchmark use these cartoon portraits instead
of CelebA-HQ. Each face is a pure function of ``(seed, index)``: its parameters come from
``numpy.random.default_rng([seed, index])`` and never from a global RNG, and they do not depend
on the resolution, so image ``i`` is the same face at 4x4 and at 1024x1024 on every machine.

The binary attributes mirror the paper's edits (smile, head turn, beard as the "male" proxy,
glasses, baldness, skin tone, hair colour) and are known exactly, which makes them ground truth
for edit benchmarks. Everything else (position, size, face shape, eyes, nose, brows, hair style,
background, clothes, lighting) is unlabelled nuisance variation, so a model has to learn a real
distribution rather than a few templates.

The labels can be written in CelebA's ``list_attr_celeba.txt`` format so that the folder loader
and the attribute tools treat an exported synthetic set exactly like the real one.
"""

from __future__ import annotations

import colorsys
import operator
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from pioneer.data.drawing import HAIR_COLORS, RGB, FaceParams, lerp, render_face
from pioneer.data.labels import ATTRIBUTES, write_celeba_attributes

__all__ = ["ATTRIBUTES", "HAIR_COLORS", "FaceParams", "face_params", "face_attributes", "SyntheticFaces"]

# Label thresholds on the continuous parameters.
TURN_THRESHOLD = 0.35      # |yaw| beyond this is a labelled turn
DARK_SKIN_THRESHOLD = 0.5  # skin_tone above this is Dark_Skin

# Bump the version whenever the drawing or the parameter sampling changes: on-disk caches
# are keyed by fingerprint() and would otherwise serve stale images.
_VERSION = 1


# --------------------------------------------------------------------------------------------
# Parameters (FaceParams itself is in drawing.py: it is what a drawing takes)
# --------------------------------------------------------------------------------------------


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


_IRIS_COLORS: tuple[RGB, ...] = (
    (92, 56, 30), (48, 34, 26), (70, 120, 180), (78, 128, 82), (140, 108, 52), (110, 110, 125),
)
_FRAME_COLORS: tuple[RGB, ...] = (
    (22, 22, 24), (88, 50, 30), (170, 138, 60), (150, 32, 42), (32, 42, 100), (60, 60, 64),
)
_N_SLOTS = 64  # fixed-size random vector; new parameters take unused slots so old ones stay put


def face_params(index: int, seed: int = 0) -> FaceParams:
    """The parameters of face ``index`` of the set drawn with ``seed`` (pure, deterministic).

    Only ``Generator.random`` is used (one fixed-length draw, one slot per parameter) because
    its output is the most stable part of NumPy's stream-compatibility promise, and a fixed
    slot layout keeps existing parameters unchanged when a new one is added.
    """
    index = operator.index(index)
    seed = operator.index(seed)
    if index < 0:
        raise ValueError(f"face index {index} is negative: use an index >= 0")
    if seed < 0:
        raise ValueError(f"seed {seed} is negative: use a seed >= 0")
    u = np.random.default_rng([seed, index]).random(_N_SLOTS).tolist()

    smiling = u[0] < 0.45
    yaw = 2.0 * u[1] - 1.0  # uniform: about a third of faces turn each way past the threshold
    beard = u[2] < 0.35
    # Sunglasses and eyeglasses share one draw so they can never both be on.
    sunglasses = u[3] < 0.17
    eyeglasses = (not sunglasses) and u[3] < 0.42
    # Baldness is much likelier with a beard, as for CelebA's Bald given Male.
    bald = u[4] < (0.45 if beard else 0.10)
    # Skin tone is bimodal with a gap around the threshold so that Dark_Skin is unambiguous.
    dark = u[5] < 0.28
    skin_tone = lerp(0.62, 1.0, u[6]) if dark else lerp(0.0, 0.40, u[6])
    c = u[7]
    hair_color = "black" if c < 0.28 else "brown" if c < 0.54 else "blond" if c < 0.78 else "gray"

    style_u = u[20]
    hair_style = 0 if style_u < 0.3 else 1 if style_u < 0.55 else 2 if style_u < 0.85 else 3
    hair_volume = lerp(0.02, 0.10, u[21]) if hair_style != 3 else lerp(0.16, 0.30, u[21])

    return FaceParams(
        smiling=smiling,
        yaw=yaw,
        beard=beard,
        eyeglasses=eyeglasses,
        sunglasses=sunglasses,
        bald=bald,
        skin_tone=skin_tone,
        hair_color=hair_color,
        teeth=u[8] < 0.6,
        smile_depth=lerp(0.0, 1.0, u[9]),
        beard_style=0 if u[10] < 0.55 else 1 if u[10] < 0.82 else 2,
        beard_line=lerp(0.0, 1.0, u[11]),
        hair_shade=u[12],
        hair_style=hair_style,
        hair_volume=hair_volume,
        hair_length=u[22],
        fringe_depth=lerp(0.18, 0.50, u[23]),
        fringe_tilt=lerp(-0.22, 0.22, u[24]),
        fringe_sides=lerp(0.0, 0.7, u[25]),
        fringe_wave=lerp(0.0, 0.1, u[26]) if u[27] < 0.35 else 0.0,
        center_x=lerp(0.46, 0.54, u[13]),
        center_y=lerp(0.47, 0.53, u[14]),
        face_width=lerp(0.205, 0.255, u[15]),
        face_aspect=lerp(1.15, 1.35, u[16]),
        jaw=lerp(2.0, 2.9, u[17]),
        eye_size=lerp(0.13, 0.19, u[30]),
        eye_spacing=lerp(0.36, 0.47, u[31]),
        eye_height=lerp(0.0, 0.14, u[32]),
        iris_rgb=_IRIS_COLORS[min(int(u[33] * len(_IRIS_COLORS)), len(_IRIS_COLORS) - 1)],
        nose_style=min(int(u[34] * 3), 2),
        nose_length=lerp(0.17, 0.30, u[35]),
        nose_width=lerp(0.08, 0.15, u[36]),
        brow_thickness=lerp(0.035, 0.075, u[37]),
        brow_tilt=lerp(-0.5, 0.5, u[38]),
        brow_height=lerp(0.16, 0.28, u[39]),
        ear_size=lerp(0.11, 0.16, u[40]),
        mouth_width=lerp(0.24, 0.36, u[41]),
        mouth_y=lerp(0.46, 0.58, u[42]),
        mouth_curve=lerp(-0.08, 0.05, u[43]),
        lip_tone=lerp(0.3, 0.9, u[44]),
        frame_shape=0 if u[45] < 0.5 else 1,
        frame_rgb=_FRAME_COLORS[min(int(u[46] * len(_FRAME_COLORS)), len(_FRAME_COLORS) - 1)],
        lens_rgb=_hsv(u[47], 0.5, lerp(0.06, 0.18, u[48])),
        background_top=_hsv(u[50], lerp(0.08, 0.55, u[51]), lerp(0.35, 0.95, u[52])),
        background_bottom=_hsv(
            u[50] + lerp(-0.06, 0.06, u[53]),
            lerp(0.08, 0.55, u[51]),
            lerp(0.35, 0.95, u[52]) * lerp(0.65, 1.05, u[54]),
        ),
        clothes_rgb=_hsv(u[55], lerp(0.15, 0.8, u[56]), lerp(0.18, 0.9, u[57])),
        neckline=min(int(u[58] * 3), 2),
        neck_length=lerp(0.03, 0.09, u[59]),
        brightness=lerp(0.9, 1.08, u[60]),
        light_gradient=lerp(-0.09, 0.09, u[61]),
    )


def face_attributes(params: FaceParams) -> dict[str, bool]:
    """The binary ground-truth attributes of a face, keyed by ATTRIBUTES (in that order)."""
    hair = None if params.bald else params.hair_color  # bald faces have no hair colour
    values = {
        "Smiling": params.smiling,
        "Turned_Left": params.yaw < -TURN_THRESHOLD,
        "Turned_Right": params.yaw > TURN_THRESHOLD,
        "Beard": params.beard,
        "Eyeglasses": params.eyeglasses,
        "Sunglasses": params.sunglasses,
        "Bald": params.bald,
        "Dark_Skin": params.skin_tone > DARK_SKIN_THRESHOLD,
        "Black_Hair": hair == "black",
        "Blond_Hair": hair == "blond",
        "Brown_Hair": hair == "brown",
        "Gray_Hair": hair == "gray",
    }
    return {name: bool(values[name]) for name in ATTRIBUTES}


# --------------------------------------------------------------------------------------------
# Data set
# --------------------------------------------------------------------------------------------


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} {value} is too small: use at least {minimum}")
    return value


class SyntheticFaces:
    """The synthetic face data set: images 0..num_images-1; the last num_test are the fixed test split."""

    def __init__(self, num_images: int = 12000, num_test: int = 1000, seed: int = 0) -> None:
        self.num_images = _check_int(num_images, "num_images", 2)
        self.num_test = _check_int(num_test, "num_test", 0)
        self.seed = _check_int(seed, "seed", 0)
        if self.num_test >= self.num_images:
            raise ValueError(
                f"num_test {self.num_test} leaves no training images out of num_images "
                f"{self.num_images}: use num_test < num_images"
            )
        self._params: dict[int, FaceParams] = {}  # parameters are cheap but labels() asks for all

    def __len__(self) -> int:
        return self.num_images

    def __repr__(self) -> str:
        return f"SyntheticFaces(num_images={self.num_images}, num_test={self.num_test}, seed={self.seed})"

    def _index(self, index: int) -> int:
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"image index must be an integer, got {index!r}") from None
        if not 0 <= i < self.num_images:
            raise IndexError(f"image index {i} is out of range: the set has images 0..{self.num_images - 1}")
        return i

    def params(self, index: int) -> FaceParams:
        """The parameters of image ``index`` (cached)."""
        i = self._index(index)
        p = self._params.get(i)
        if p is None:
            p = self._params[i] = face_params(i, self.seed)
        return p

    def key(self, index: int) -> str:
        """The file name of image ``index``, e.g. ``"000123.png"``."""
        return f"{self._index(index):06d}.png"

    def load(self, index: int, resolution: int) -> np.ndarray:
        """Image ``index`` as a ``(resolution, resolution, 3)`` uint8 RGB array."""
        return render_face(self.params(index), resolution)

    def fingerprint(self) -> str:
        """A stable id for on-disk caches; changes whenever the images would change."""
        return f"synthetic-v{_VERSION}-seed{self.seed}-n{self.num_images}"

    @property
    def train_indices(self) -> np.ndarray:
        """Training images: 0..num_images-num_test-1 (int64)."""
        return np.arange(self.num_images - self.num_test, dtype=np.int64)

    @property
    def test_indices(self) -> np.ndarray:
        """The fixed test split: the last num_test images (int64)."""
        return np.arange(self.num_images - self.num_test, self.num_images, dtype=np.int64)

    def _indices(self, indices: Iterable[int] | np.ndarray | None) -> list[int]:
        if indices is None:
            return list(range(self.num_images))
        return [self._index(i) for i in np.asarray(indices).reshape(-1).tolist()]

    def labels(self, indices: Iterable[int] | np.ndarray | None = None) -> np.ndarray:
        """Ground-truth attributes, ``(N, len(ATTRIBUTES))`` bool, from the parameters (no rendering)."""
        idx = self._indices(indices)
        out = np.zeros((len(idx), len(ATTRIBUTES)), dtype=bool)
        for row, i in enumerate(idx):
            out[row] = list(face_attributes(self.params(i)).values())
        return out

    def yaw(self, indices: Iterable[int] | np.ndarray | None = None) -> np.ndarray:
        """The continuous head turn in [-1, 1] per image, ``(N,)`` float32."""
        idx = self._indices(indices)
        return np.array([self.params(i).yaw for i in idx], dtype=np.float32)

    def export(self, folder: str | os.PathLike[str], resolution: int,
               indices: Iterable[int] | np.ndarray | None = None,
               labels_file: bool = True) -> list[Path]:
        """Write images as PNG files named by key() into ``folder`` (created if needed).

        With ``labels_file`` the labels of the written images go to
        ``folder/list_attr_celeba.txt`` so that the folder can stand in for CelebA.
        Returns the paths of the written images.
        """
        from tqdm import tqdm  # only exporting needs it

        resolution = _check_int(resolution, "resolution", 4)
        idx = self._indices(indices)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in tqdm(idx, desc=f"export {resolution}x{resolution}", unit="img",
                      disable=len(idx) <= 16):
            path = folder / self.key(i)
            Image.fromarray(self.load(i, resolution), "RGB").save(path)
            paths.append(path)
        if labels_file:
            write_celeba_attributes(folder / "list_attr_celeba.txt",
                                    [self.key(i) for i in idx], self.labels(idx))
        return paths
