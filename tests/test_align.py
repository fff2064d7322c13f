"""Tests of FFHQ-style face alignment on the real portraits that ship inside packages."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("dlib")
skimage_data = pytest.importorskip("skimage.data")
cbook = pytest.importorskip("matplotlib.cbook")

from pioneer.inference import align  # noqa: E402
from pioneer.inference.align import AlignError, FaceAligner, face_quad  # noqa: E402
from pioneer.data import ImageError  # noqa: E402

SIZE = 128


@pytest.fixture(scope="module")
def aligner() -> FaceAligner:
    return FaceAligner(size=SIZE)


def _astronaut() -> Image.Image:
    return Image.fromarray(skimage_data.astronaut())                  # 512x512, public domain


def _grace_hopper() -> Image.Image:
    with cbook.get_sample_data("grace_hopper.jpg") as f:               # 512x600
        return Image.open(f).convert("RGB")


def _eyes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return landmarks[36:42].mean(0), landmarks[42:48].mean(0)


def _check_aligned(aligner: FaceAligner, crop: Image.Image) -> None:
    """dlib finds the face again, upright, with its eyes where FFHQ puts them."""
    assert crop.size == (SIZE, SIZE) and crop.mode == "RGB"
    faces = aligner.detect(crop)
    assert len(faces) == 1
    left, right = (e / SIZE for e in _eyes(faces[0].landmarks))
    assert abs(left[1] - right[1]) < 0.02                               # eye line level
    # FFHQ's canonical eye centres, as fractions of the side: (0.375, 0.47) and (0.625, 0.47)
    np.testing.assert_allclose(left, [0.375, 0.47], atol=0.04)
    np.testing.assert_allclose(right, [0.625, 0.47], atol=0.04)


@pytest.mark.parametrize("portrait", [_astronaut, _grace_hopper], ids=["astronaut", "grace_hopper"])
def test_alignment_of_real_portraits(aligner, portrait):
    crops = aligner.align(portrait())
    assert len(crops) == 1                                              # one crop per face, no false alarm
    _check_aligned(aligner, crops[0])


def test_a_tilted_and_cut_off_face_comes_out_upright(aligner):
    """Rotation is undone, and a face at the photo's edge is padded (reflected, blurred)."""
    tilted = _astronaut().rotate(20, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(128, 128, 128))
    crops = aligner.align(tilted)
    assert len(crops) == 1
    _check_aligned(aligner, crops[0])
    edge = _astronaut().crop((150, 40, 512, 512))                       # the face's top-left margin is gone
    crop = aligner.align(edge)[0]
    _check_aligned(aligner, crop)
    top_left = np.asarray(crop)[:8, :8].astype(float)
    assert top_left.std() < 30                                          # padding is smooth, not black


def test_the_crop_square_follows_the_landmarks():
    """face_quad: an upright square for level eyes, rotated with them otherwise."""
    lm = np.zeros((68, 2))
    lm[36:42], lm[42:48] = (40.0, 50.0), (60.0, 50.0)                  # eyes 20 px apart
    lm[48], lm[54] = (42.0, 80.0), (58.0, 80.0)                        # mouth 30 px below
    quad = face_quad(lm)
    side = 2 * max(2 * 20, 1.8 * 30)                                   # half-side: max(2 eye dist., 1.8 eye-mouth)
    np.testing.assert_allclose(quad[3] - quad[0], [side, 0], atol=1e-9)    # top edge horizontal
    np.testing.assert_allclose(quad[1] - quad[0], [0, side], atol=1e-9)    # left edge vertical
    np.testing.assert_allclose(quad.mean(0), [50, 53], atol=1e-9)         # centre: eyes + 0.1 eye-to-mouth
    theta = np.deg2rad(30)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    turned = face_quad(lm @ rot.T)
    np.testing.assert_allclose(turned, quad @ rot.T, atol=1e-9)


def test_no_face_and_bad_files(aligner, tmp_path):
    assert aligner.align(skimage_data.coffee()) == []
    assert aligner.align(np.full((64, 64, 3), 200, np.uint8)) == []
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageError, match="bad.jpg"):
        aligner.align_file(bad)
    with pytest.raises(ImageError, match="missing.png"):
        aligner.align_file(tmp_path / "missing.png")


def test_missing_dlib_or_models_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)                      # import dlib -> ImportError
    with pytest.raises(AlignError, match="pip install dlib-bin face-recognition-models"):
        FaceAligner()
    monkeypatch.setattr(align.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(AlignError, match="pip install dlib-bin"):
        align.model_file()
