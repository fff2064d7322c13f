"""Tests for the procedurally drawn synthetic face data set."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from PIL import Image

from pioneer.data.faces import (
    ATTRIBUTES,
    HAIR_COLORS,
    FaceParams,
    SyntheticFaces,
    face_attributes,
    face_params,
)
from pioneer.data.drawing import render_face
from pioneer.data.labels import read_celeba_attributes, write_celeba_attributes

R = 128  # resolution for the pixel-level attribute checks


def box_down(image: np.ndarray, factor: int) -> np.ndarray:
    r = image.shape[0] // factor
    return image.astype(np.float64).reshape(r, factor, r, factor, 3).mean(axis=(1, 3))


def luminance(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def plain(index: int, **changes) -> FaceParams:
    """Face ``index`` with every labelled attribute off (frontal, light skin, black hair)."""
    base = dict(smiling=False, yaw=0.0, beard=False, eyeglasses=False, sunglasses=False,
                bald=False, skin_tone=0.15, hair_color="black")
    base.update(changes)
    return dataclasses.replace(face_params(index), **base)


def region(p: FaceParams, y0: float, y1: float, x0: float, x1: float) -> tuple[slice, slice]:
    """Pixel slices for a box given in face units: x relative to the centre in half-widths,
    y relative to the centre in half-heights."""
    fh = p.face_width * p.face_aspect
    rows = slice(int((p.center_y + y0 * fh) * R), int(np.ceil((p.center_y + y1 * fh) * R)))
    cols = slice(int((p.center_x + x0 * p.face_width) * R),
                 int(np.ceil((p.center_x + x1 * p.face_width) * R)))
    return rows, cols


INDICES = tuple(range(8))


# --- determinism and resolution -------------------------------------------------------------


def test_same_index_same_pixels_different_index_different_pixels():
    a, b = SyntheticFaces(), SyntheticFaces()
    assert face_params(7) == face_params(7)
    assert np.array_equal(a.load(7, 64), a.load(7, 64))
    assert np.array_equal(a.load(7, 64), b.load(7, 64))
    for i, j in [(7, 8), (0, 1), (100, 101)]:
        assert np.abs(a.load(i, 64).astype(int) - a.load(j, 64).astype(int)).mean() > 5
    other_seed = SyntheticFaces(seed=1)
    assert not np.array_equal(a.load(7, 64), other_seed.load(7, 64))


def test_parameters_do_not_depend_on_the_data_set_size():
    small, large = SyntheticFaces(num_images=20, num_test=5), SyntheticFaces()
    assert np.array_equal(small.load(3, 32), large.load(3, 32))
    assert np.array_equal(small.labels([3]), large.labels([3]))


@pytest.mark.parametrize("index", [0, 11, 42])
def test_same_face_at_two_resolutions_agrees(index):
    p = face_params(index)
    small = render_face(p, 64).astype(np.float64)
    large = box_down(render_face(p, 256), 4)
    assert np.abs(small - large).mean() < 3.0
    tiny = render_face(p, 4).astype(np.float64)
    assert np.abs(tiny - box_down(render_face(p, 64), 16)).mean() < 8.0


@pytest.mark.parametrize("resolution", [4, 8, 16, 32, 64, 100, 256])
def test_shape_and_dtype(resolution):
    image = SyntheticFaces().load(5, resolution)
    assert image.shape == (resolution, resolution, 3)
    assert image.dtype == np.uint8
    assert image.std() > 5  # not a blank canvas


# --- attributes change the pixels where expected ----------------------------------------------


@pytest.mark.parametrize("index", INDICES)
def test_sunglasses_darken_the_eyes_and_eyeglasses_keep_them_visible(index):
    p = plain(index)
    rows, cols = region(p, -p.eye_height - 0.12, -p.eye_height + 0.12, -0.6, 0.6)
    bare = render_face(p, R)
    sun = render_face(dataclasses.replace(p, sunglasses=True), R)
    glasses = render_face(dataclasses.replace(p, eyeglasses=True), R)
    eyes = lambda img: luminance(img[rows, cols]).mean()
    assert eyes(sun) < eyes(bare) - 40
    assert eyes(glasses) > eyes(sun) + 25
    assert np.abs(glasses[rows, cols].astype(int) - bare[rows, cols]).mean() > 3
    # Nothing changes far below the eyes.
    low = slice(int((p.center_y + 0.5 * p.face_width * p.face_aspect) * R), R)
    assert np.array_equal(bare[low], sun[low])


@pytest.mark.parametrize("index", INDICES)
def test_smiling_changes_only_the_mouth(index):
    p = plain(index)
    rows, cols = region(p, p.mouth_y - 0.2, p.mouth_y + 0.3, -0.45, 0.45)
    for teeth in (False, True):
        neutral = render_face(dataclasses.replace(p, teeth=teeth), R)
        smile = render_face(dataclasses.replace(p, smiling=True, teeth=teeth), R)
        diff = np.abs(smile.astype(int) - neutral)
        assert diff[rows, cols].mean() > 4
        outside = diff.copy()
        outside[rows, cols] = 0
        assert outside.sum() == 0


@pytest.mark.parametrize("index", INDICES)
def test_bald_shows_skin_on_top_of_the_head(index):
    p = plain(index)
    rows, cols = region(p, -0.95, -0.7, -0.3, 0.3)
    hair = render_face(p, R)[rows, cols].astype(np.float64).mean(axis=(0, 1))
    scalp = render_face(dataclasses.replace(p, bald=True), R)[rows, cols].astype(np.float64)
    cheek_rows, cheek_cols = region(p, 0.2, 0.3, -0.75, -0.6)
    skin = render_face(p, R)[cheek_rows, cheek_cols].astype(np.float64).mean(axis=(0, 1))
    assert np.abs(scalp.mean(axis=(0, 1)) - hair).mean() > 60
    assert np.abs(scalp.mean(axis=(0, 1)) - skin).mean() < 30


@pytest.mark.parametrize("index", INDICES)
def test_beard_covers_the_chin_in_hair_colour(index):
    p = plain(index)
    rows, cols = region(p, 0.78, 0.95, -0.2, 0.2)
    for style in (0, 1, 2):
        q = dataclasses.replace(p, beard_style=style)
        shaved = render_face(q, R)[rows, cols]
        bearded = render_face(dataclasses.replace(q, beard=True), R)[rows, cols]
        assert luminance(bearded).mean() < luminance(shaved).mean() - 40
    # The top of the head is untouched.
    top = region(p, -2.0, -0.5, -2.0, 2.0)
    assert np.array_equal(render_face(p, R)[top], render_face(dataclasses.replace(p, beard=True), R)[top])


@pytest.mark.parametrize("index", INDICES)
def test_head_turn_moves_the_features(index):
    p = plain(index, bald=True)  # no hair near the eyes
    rows, cols = region(p, -p.eye_height - 0.07, -p.eye_height + 0.07, -0.8, 0.8)
    centres = []
    for yaw in (-0.9, 0.0, 0.9):
        band = render_face(dataclasses.replace(p, yaw=yaw), R)[rows, cols].astype(np.float64)
        skin = np.median(band.reshape(-1, 3), axis=0)  # most of the band is skin
        eyes = np.abs(band - skin).max(axis=2) > 50   # irises, pupils, lids
        assert eyes.sum() > 10
        centres.append(np.nonzero(eyes)[1].mean())
    # A turn to the left moves the eyes left, a turn to the right moves them right.
    assert centres[0] < centres[1] - 2 < centres[2] - 4


@pytest.mark.parametrize("index", INDICES)
def test_skin_tone_and_hair_colour_change_their_regions(index):
    p = plain(index)
    cheek = region(p, 0.1, 0.25, -0.75, -0.55)
    light = luminance(render_face(p, R)[cheek]).mean()
    dark = luminance(render_face(dataclasses.replace(p, skin_tone=0.85), R)[cheek]).mean()
    assert dark < light - 60

    top = region(p, -1.05, -0.9, -0.2, 0.2)
    colours = {c: render_face(dataclasses.replace(p, hair_color=c, hair_shade=0.5), R)[top]
               .astype(np.float64).mean(axis=(0, 1)) for c in HAIR_COLORS}
    lum = {c: v @ np.array([0.299, 0.587, 0.114]) for c, v in colours.items()}
    assert lum["black"] < lum["brown"] - 30 < lum["blond"] - 60
    assert lum["gray"] > lum["brown"] + 40
    assert np.ptp(colours["gray"]) < 15           # gray is unsaturated
    assert colours["blond"][0] - colours["blond"][2] > 50  # blond is yellow


# --- labels ------------------------------------------------------------------------------------


def test_face_attributes_follow_the_parameters():
    p = plain(0)
    assert not any(v for k, v in face_attributes(p).items() if k != "Black_Hair")
    assert list(face_attributes(p)) == list(ATTRIBUTES)
    assert face_attributes(dataclasses.replace(p, yaw=-0.5))["Turned_Left"]
    assert face_attributes(dataclasses.replace(p, yaw=0.5))["Turned_Right"]
    assert not any(face_attributes(dataclasses.replace(p, yaw=0.3))[k] for k in ("Turned_Left", "Turned_Right"))
    assert face_attributes(dataclasses.replace(p, skin_tone=0.9))["Dark_Skin"]
    bald = face_attributes(dataclasses.replace(p, bald=True))
    assert bald["Bald"] and not any(bald[k] for k in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"))
    with pytest.raises(ValueError, match="mutually exclusive"):
        dataclasses.replace(p, eyeglasses=True, sunglasses=True)
    with pytest.raises(ValueError, match="hair_color"):
        dataclasses.replace(p, hair_color="green")


def test_attribute_frequencies_are_sane():
    ds = SyntheticFaces(num_images=2000, num_test=200)
    labels = ds.labels()
    assert labels.shape == (2000, len(ATTRIBUTES)) and labels.dtype == bool
    freq = dict(zip(ATTRIBUTES, labels.mean(axis=0)))
    for name, f in freq.items():
        assert 0.12 < f < 0.55, (name, f)
    col = {name: labels[:, k] for k, name in enumerate(ATTRIBUTES)}
    hair = np.stack([col[k] for k in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")], 1)
    assert not (col["Eyeglasses"] & col["Sunglasses"]).any()
    assert not (col["Turned_Left"] & col["Turned_Right"]).any()
    assert np.array_equal(hair.sum(1), (~col["Bald"]).astype(int))
    # Baldness goes with beards (the "male" proxy), as in CelebA.
    assert col["Bald"][col["Beard"]].mean() > 2 * col["Bald"][~col["Beard"]].mean()
    yaw = ds.yaw()
    assert yaw.dtype == np.float32 and yaw.shape == (2000,)
    assert yaw.min() >= -1 and yaw.max() <= 1 and yaw.std() > 0.4
    assert np.array_equal(col["Turned_Left"], yaw < -0.35)
    assert np.array_equal(col["Turned_Right"], yaw > 0.35)
    # Different faces carry many different attribute combinations.
    assert len({row.tobytes() for row in labels}) > 100


def test_labels_and_yaw_accept_index_subsets():
    ds = SyntheticFaces(num_images=50, num_test=10)
    idx = np.array([3, 17, 42])
    labels = ds.labels(idx)
    assert labels.shape == (3, len(ATTRIBUTES))
    for row, i in zip(labels, idx):
        assert list(row) == list(face_attributes(face_params(int(i))).values())
    assert np.allclose(ds.yaw(idx), [face_params(int(i)).yaw for i in idx])
    with pytest.raises(IndexError):
        ds.labels([50])


def test_faces_are_varied():
    ds = SyntheticFaces()
    images = np.stack([ds.load(i, 32) for i in range(50)]).astype(np.float64).reshape(50, -1)
    distances = [np.abs(images[i] - images[j]).mean() for i, j in itertools.combinations(range(50), 2)]
    assert min(distances) > 8  # no near-duplicates
    assert np.median(distances) > 25
    # Faces are roughly centred: the image centre differs from the corners on average.
    params = [face_params(i) for i in range(50)]
    assert all(0.4 < p.center_x < 0.6 and 0.4 < p.center_y < 0.6 for p in params)
    assert len({(p.hair_style, p.nose_style, p.frame_shape, p.neckline) for p in params}) > 20


# --- split ---------------------------------------------------------------------------------------


def test_train_test_split_is_disjoint_and_covering():
    ds = SyntheticFaces(num_images=300, num_test=40)
    train, test = ds.train_indices, ds.test_indices
    assert train.dtype == np.int64 and test.dtype == np.int64
    assert len(train) == 260 and len(test) == 40
    assert not set(train.tolist()) & set(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(300))
    assert test.tolist() == list(range(260, 300))
    assert len(ds) == 300
    assert len(SyntheticFaces(num_images=10, num_test=0).test_indices) == 0


def test_keys_and_fingerprint():
    ds = SyntheticFaces()
    assert ds.key(0) == "000000.png"
    assert ds.key(123) == "000123.png"
    assert ds.key(np.int64(11999)) == "011999.png"
    fp = ds.fingerprint()
    assert fp == SyntheticFaces().fingerprint()
    assert "seed0" in fp and "n12000" in fp
    assert SyntheticFaces(seed=3).fingerprint() != fp
    assert SyntheticFaces(num_images=500, num_test=50).fingerprint() != fp


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_images=0), "num_images"),
        (dict(num_images=-5), "num_images"),
        (dict(num_images=10.5), "num_images"),
        (dict(num_images=True), "num_images"),
        (dict(num_images=100, num_test=100), "num_test"),
        (dict(num_images=100, num_test=-1), "num_test"),
        (dict(seed=-1), "seed"),
    ],
)
def test_constructor_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticFaces(**kwargs)


def test_out_of_range_indices_and_bad_resolutions():
    ds = SyntheticFaces(num_images=10, num_test=2)
    for bad in (-1, 10, 1000):
        with pytest.raises(IndexError, match="out of range"):
            ds.load(bad, 16)
        with pytest.raises(IndexError):
            ds.key(bad)
    with pytest.raises(TypeError):
        ds.load(1.5, 16)
    with pytest.raises(ValueError, match="resolution"):
        ds.load(0, 3)
    with pytest.raises(ValueError, match="negative"):
        face_params(-1)


# --- CelebA attribute files -------------------------------------------------------------------


def test_celeba_attribute_round_trip(tmp_path):
    ds = SyntheticFaces(num_images=30, num_test=5)
    idx = list(range(0, 30, 3))
    keys = [ds.key(i) for i in idx]
    labels = ds.labels(idx)
    path = tmp_path / "sub" / "list_attr_celeba.txt"
    write_celeba_attributes(path, keys, labels)
    lines = path.read_text().splitlines()
    assert lines[0] == str(len(idx))
    assert lines[1].split() == list(ATTRIBUTES)
    assert lines[2].split()[0] == "000000.png"
    assert set(lines[2].split()[1:]) <= {"1", "-1"}
    assert [p.name for p in path.parent.iterdir()] == ["list_attr_celeba.txt"]  # no temp file left
    read_keys, names, read_labels = read_celeba_attributes(path)
    assert read_keys == keys and names == list(ATTRIBUTES)
    assert read_labels.dtype == bool and np.array_equal(read_labels, labels)
    # Custom names and CelebA's double-space alignment are accepted.
    path.write_text("2\nA B \nx.jpg  1 -1\ny.jpg -1  1\n")
    read_keys, names, read_labels = read_celeba_attributes(path)
    assert read_keys == ["x.jpg", "y.jpg"] and names == ["A", "B"]
    assert np.array_equal(read_labels, [[True, False], [False, True]])


@pytest.mark.parametrize(
    "text, line",
    [
        ("two\nA B\nx 1 -1\n", "line 1"),
        ("2\nA B\nx 1 -1\n", "line 1"),          # count does not match
        ("1\nA B\nx 1\n", "line 3"),             # too few values
        ("2\nA B\nx 1 -1\ny 1 2\n", "line 4"),   # not 1 / -1
        ("1\n", "line 2"),
    ],
)
def test_malformed_attribute_file(tmp_path, text, line):
    path = tmp_path / "attrs.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=line) as err:
        read_celeba_attributes(path)
    assert "attrs.txt" in str(err.value)


def test_write_validates_shapes(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        write_celeba_attributes(tmp_path / "a.txt", ["a", "b"], np.zeros((3, len(ATTRIBUTES)), bool))
    with pytest.raises(ValueError, match="whitespace"):
        write_celeba_attributes(tmp_path / "a.txt", ["a b"], np.zeros((1, len(ATTRIBUTES)), bool))


def test_export_writes_images_and_labels(tmp_path):
    ds = SyntheticFaces(num_images=20, num_test=4)
    paths = ds.export(tmp_path / "out", 16, indices=[2, 5, 7])
    assert [p.name for p in paths] == ["000002.png", "000005.png", "000007.png"]
    for i, path in zip([2, 5, 7], paths):
        assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), ds.load(i, 16))
    keys, names, labels = read_celeba_attributes(tmp_path / "out" / "list_attr_celeba.txt")
    assert keys == [p.name for p in paths] and names == list(ATTRIBUTES)
    assert np.array_equal(labels, ds.labels([2, 5, 7]))
    ds.export(tmp_path / "bare", 8, indices=[0], labels_file=False)
    assert [p.name for p in (tmp_path / "bare").iterdir()] == ["000000.png"]
