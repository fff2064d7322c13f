"""FFHQ-style face alignment for real photos, from dlib's 68 face landmarks.

A model trained on aligned faces (CelebA-HQ, FFHQ) reconstructs a photo well only when the
face sits where the training faces sat; misaligned input is the usual cause of "identity lost"
reports. The recipe is that of the FFHQ data set:

1. detect faces (dlib's HOG detector) and fit the 68 landmarks to each;
2. from the eye centres and mouth corners build an oriented square: its horizontal axis
   follows the eye line, half its side is max(2 x eye distance, 1.8 x eye-to-mouth distance), its
   centre sits a tenth of the eye-to-mouth vector below the eyes;
3. shrink very large photos first, crop around the square with a margin, pad with reflected,
   blurred borders where the square leaves the photo, and resample the square (supersampled,
   then Lanczos) to the output size.

dlib (`dlib-bin`, a prebuilt wheel) and its model files (`face-recognition-models`) are
optional: `pip install dlib-bin face-recognition-models` or `pip install 'pioneer[align]'`.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from pioneer.errors import PioneerError
from pioneer.data.sources import DECODE_ERRORS, ImageError, to_rgb

LANDMARKS_MODEL = "shape_predictor_68_face_landmarks.dat"
INSTALL_HINT = "pip install dlib-bin face-recognition-models (or pip install 'pioneer[align]')"


class AlignError(PioneerError, RuntimeError):
    """Alignment cannot run: dlib or its landmark model is not installed."""


def model_file(name: str = LANDMARKS_MODEL) -> Path:
    """Path of one of face_recognition_models' .dat files, found without importing the package
    (its __init__ imports pkg_resources, which new setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise AlignError(f"face alignment needs dlib's landmark model: {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        path = Path(location) / "models" / name
        if path.is_file():
            return path
    raise AlignError(f"{name} is missing from the face_recognition_models package: reinstall it ({INSTALL_HINT})")


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as e:
        raise AlignError(f"face alignment needs dlib: {INSTALL_HINT}") from e
    return dlib


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """An image file as 8-bit RGB, EXIF orientation applied; ImageError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image file {path} does not exist")
    try:
        with Image.open(path) as img:
            img.load()
            return to_rgb(ImageOps.exif_transpose(img))
    except DECODE_ERRORS as e:
        raise ImageError(f"cannot decode image {path}: {str(e) or type(e).__name__}") from e


@dataclass(frozen=True)
class Face:
    """One detected face in image coordinates."""

    box: tuple[int, int, int, int]   # left, top, right, bottom
    score: float                     # detector confidence (higher is surer)
    landmarks: np.ndarray            # (68, 2) float (x, y), dlib / iBUG 300-W order


def face_quad(landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ crop square for 68 landmarks: (4, 2) corners upper-left, lower-left,
    lower-right, upper-right (the order PIL's QUAD transform takes)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eye_left, eye_right = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) / 2                        # outer mouth corners
    eye_to_mouth = mouth_avg - eye_avg
    # Horizontal axis: the eye line, tilted towards the perpendicular of eye-to-mouth.
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]                               # x turned by 90 degrees (down)
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def _padded(img: Image.Image, quad: np.ndarray, qsize: float, border: int) -> tuple[Image.Image, np.ndarray]:
    """Extend the photo where the square leaves it: reflected content, blurred and faded towards
    the median colour with the distance from the original border (as FFHQ does)."""
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    pad = np.maximum([-lo[0] + border, -lo[1] + border, hi[0] - img.width + border, hi[1] - img.height + border], 0)
    if max(pad) <= border - 4:
        return img, quad
    pad = np.maximum(pad, max(1, int(np.rint(qsize * 0.3))))
    left, top, right, bottom = (int(p) for p in pad)
    arr = np.pad(np.asarray(img, dtype=np.float32), ((top, bottom), (left, right), (0, 0)), mode="reflect")
    h, w, _ = arr.shape
    yy, xx = np.ogrid[:h, :w]
    # 0 inside the photo, rising to 1 at the far edge of the padding
    mask = np.maximum(1.0 - np.minimum(xx / left, (w - 1 - xx) / right),
                      1.0 - np.minimum(yy / top, (h - 1 - yy) / bottom))[..., None].astype(np.float32)
    blurred = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255))).filter(ImageFilter.GaussianBlur(qsize * 0.02))
    arr += (np.asarray(blurred, dtype=np.float32) - arr) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(mask, 0.0, 1.0)
    return Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB"), quad + [left, top]


def align_face(img: Image.Image, landmarks: np.ndarray, size: int = 256, supersample: int = 4) -> Image.Image:
    """Crop and rotate one face to a `size` x `size` RGB image, FFHQ-style."""
    quad = face_quad(landmarks)
    qsize = float(np.hypot(*(quad[3] - quad[0])))            # side of the square in pixels
    # Shrink huge photos first: the final resampling then stays within a 2x reduction.
    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        img = img.resize((int(np.rint(img.width / shrink)), int(np.rint(img.height / shrink))), Image.Resampling.LANCZOS)
        quad, qsize = quad / shrink, qsize / shrink
    # Crop to the square plus a margin (the margin feeds the blur of the padding).
    border = max(int(np.rint(qsize * 0.1)), 3)
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    box = (max(lo[0] - border, 0), max(lo[1] - border, 0), min(hi[0] + border, img.width), min(hi[1] + border, img.height))
    if box[2] - box[0] < img.width or box[3] - box[1] < img.height:
        img = img.crop(box)
        quad = quad - box[:2]
    img, quad = _padded(img, quad, qsize, border)
    work = size * supersample
    out = img.transform((work, work), Image.Transform.QUAD, (quad + 0.5).flatten().tolist(), Image.Resampling.BILINEAR)
    return out.resize((size, size), Image.Resampling.LANCZOS) if work != size else out


class FaceAligner:
    """Detects faces, fits landmarks and returns FFHQ-style crops, one per face.

    size:        side of the aligned crops
    min_score:   faces the detector scores lower are ignored (its false alarms score near 0)
    detect_size: photos are scaled to at most this side for detection (speed); landmarks are
                 fitted on the full-resolution photo
    """

    def __init__(self, size: int = 256, min_score: float = 0.3, detect_size: int = 1024) -> None:
        if size < 4:
            raise ValueError(f"aligned size {size} is too small: use at least 4")
        dlib = _import_dlib()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(model_file(LANDMARKS_MODEL)))
        self.size = size
        self.min_score = min_score
        self.detect_size = detect_size

    def detect(self, img: Image.Image | np.ndarray) -> list[Face]:
        """The faces in an RGB image, best score first."""
        img = img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img, dtype=np.uint8))
        img = to_rgb(img)
        full = np.ascontiguousarray(np.asarray(img))
        scale = min(1.0, self.detect_size / max(img.size))
        small = full if scale == 1.0 else np.asarray(
            img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BILINEAR))
        # One 2x upsampling finds faces down to ~40 px (as FFHQ's detection did).
        rects, scores, _ = self._detector.run(np.ascontiguousarray(small), 1, 0.0)
        faces = []
        for rect, score in zip(rects, scores):
            if score < self.min_score:
                continue
            box = tuple(int(round(v / scale)) for v in (rect.left(), rect.top(), rect.right(), rect.bottom()))
            shape = self._predictor(full, self._dlib.rectangle(*box))
            lm = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)   # (68, 2)
            faces.append(Face(box, float(score), lm))
        return sorted(faces, key=lambda f: -f.score)

    def align(self, img: Image.Image | np.ndarray) -> list[Image.Image]:
        """One aligned `size` x `size` crop per face found, best score first (empty: no face)."""
        img = img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img, dtype=np.uint8))
        img = to_rgb(img)
        return [align_face(img, face.landmarks, self.size) for face in self.detect(img)]

    def align_file(self, path: str | os.PathLike) -> list[Image.Image]:
        """Aligned crops of every face in an image file (ImageError when it cannot be read)."""
        return self.align(load_rgb(path))
