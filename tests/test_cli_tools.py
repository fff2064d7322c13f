"""Tests of the image-manipulation commands: reconstruct, sample, interpolate, attributes, edit, align."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import one_line_error as _one_line_error
from pioneer.cli import main
from pioneer.data import SyntheticFaces
from pioneer.inference.latent import AttributeVector

pytest_plugins = ["model_fixtures"]

COMMANDS = ("reconstruct", "sample", "interpolate", "attributes", "edit", "align")


def run(*args) -> "object":
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """Eight held-out synthetic faces (32x32 PNGs) with a CelebA-style labels file."""
    folder = tmp_path_factory.mktemp("faces")
    SyntheticFaces().export(folder, 32, indices=range(11000, 11008))
    return folder


@pytest.fixture(scope="module")
def vector(tiny_snapshot, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vectors") / "Dark_Skin.safetensors"
    r = run("attributes", "--model", tiny_snapshot, "--synthetic", "--attribute", "Dark_Skin", "--count", 8, "-o", path)
    assert r.exit_code == 0, r.output
    return path


def test_every_command_has_help_with_examples():
    r = run("--help")
    for name in COMMANDS:
        assert name in r.output
        h = run(name, "--help")
        assert h.exit_code == 0 and "Examples:" in h.output and "pioneer " + name in h.output, name


def test_reconstruct_folder_and_grid(tiny_snapshot, faces, tmp_path):
    r = run("reconstruct", "--model", tiny_snapshot, faces, "-o", tmp_path / "out", "--batch-size", 3)
    assert r.exit_code == 0, r.output
    outs = sorted((tmp_path / "out").glob("*.png"))
    assert [p.stem for p in outs] == [f"{i:06d}" for i in range(11000, 11008)]
    assert _png(outs[0]).shape == (16, 16, 3)
    r = run("reconstruct", "--model", tiny_snapshot, faces / "011000.png", faces / "011001.png", "-o", tmp_path / "pairs.png")
    assert r.exit_code == 0, r.output
    grid = _png(tmp_path / "pairs.png")           # 4 tiles of 64 px (enlarged) + 2 px padding
    assert grid.shape == (2 + 66, 2 + 4 * 66, 3)


def test_reconstruct_errors_name_the_input(tiny_snapshot, faces, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    _one_line_error(run("reconstruct", "--model", tiny_snapshot, bad, "-o", tmp_path / "o"), "bad.png")
    _one_line_error(run("reconstruct", "--model", tiny_snapshot, tmp_path / "nope.png"), "nope.png", "does not exist")
    _one_line_error(run("reconstruct", "--model", faces / "011000.png", faces), "011000.png is a PNG image, not a pioneer snapshot")
    _one_line_error(run("reconstruct", "--model", tmp_path / "missing.safetensors", faces), "missing.safetensors")
    # a bad file inside a folder is reported and skipped, the others are written
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.png").write_bytes((faces / "011000.png").read_bytes())
    (folder / "b.png").write_bytes(b"garbage")
    r = run("reconstruct", "--model", tiny_snapshot, folder, "-o", tmp_path / "mixed-out")
    assert r.exit_code == 0 and "skipped" in r.output and "b.png" in r.output
    assert [p.name for p in (tmp_path / "mixed-out").glob("*.png")] == ["a.png"]


def test_sample_is_deterministic(tiny_snapshot, tmp_path):
    for name in ("a.png", "b.png"):
        assert run("sample", "--model", tiny_snapshot, "-n", 4, "--seed", 7, "-o", tmp_path / name).exit_code == 0
    assert np.array_equal(_png(tmp_path / "a.png"), _png(tmp_path / "b.png"))
    assert _png(tmp_path / "a.png").shape == (2 + 2 * 66, 2 + 2 * 66, 3)
    r = run("sample", "--model", tiny_snapshot, "-n", 3, "-o", tmp_path / "many")
    assert r.exit_code == 0 and len(list((tmp_path / "many").glob("*.png"))) == 3


def test_interpolate_layouts(tiny_snapshot, faces, tmp_path):
    files = [faces / f"{i:06d}.png" for i in range(11000, 11006)]
    cell = 66
    r = run("interpolate", "--model", tiny_snapshot, *files[:2], "--steps", 5, "-o", tmp_path / "strip.png")
    assert r.exit_code == 0, r.output
    assert _png(tmp_path / "strip.png").shape == (2 + cell, 2 + 7 * cell, 3)          # input, 5 steps, input
    r = run("interpolate", "--model", tiny_snapshot, *files[:4], "--steps", 4, "--linear", "-o", tmp_path / "grid.png")
    assert r.exit_code == 0, r.output
    grid = _png(tmp_path / "grid.png")
    assert grid.shape == (2 + 4 * cell, 2 + 6 * cell, 3)                                # inputs beside the corners
    assert (grid[2 + cell:2 + 2 * cell, 2:2 + 64] == 255).all()                          # blank beside inner rows
    r = run("interpolate", "--model", tiny_snapshot, *files[:4], "--steps", 3, "--no-inputs", "-o", tmp_path / "g.png")
    assert r.exit_code == 0 and _png(tmp_path / "g.png").shape == (2 + 3 * cell, 2 + 3 * cell, 3)
    r = run("interpolate", "--model", tiny_snapshot, *files, "--steps", 4, "-o", tmp_path / "hex.png")
    assert r.exit_code == 0, r.output
    height = _png(tmp_path / "hex.png").shape[0]
    assert height == 2 + round(8.25 * cell)                                             # 7 rows, inputs 1.25 below
    _one_line_error(run("interpolate", "--model", tiny_snapshot, *files[:3]), "2, 4 or 6", "got 3")


def test_attributes_from_every_source(tiny_snapshot, faces, vector, tmp_path):
    vec = AttributeVector.load(vector)
    assert (vec.attribute, vec.count_with, vec.count_without, vec.latent_dim) == ("Dark_Skin", 8, 8, 32)
    assert "synthetic:64" in vec.source and vec.snapshot == str(tiny_snapshot)
    r = run("attributes", "--model", tiny_snapshot, "--labels", faces / "list_attr_celeba.txt", "--images", faces,
            "--attribute", "Smiling", "--count", 3, "-o", tmp_path / "smile.safetensors")
    assert r.exit_code == 0, r.output
    assert "few images" in r.output                                                     # 3 < 32: a warning
    assert AttributeVector.load(tmp_path / "smile.safetensors").count_with <= 3
    with_dir, without_dir = tmp_path / "with", tmp_path / "without"
    for folder, ids in ((with_dir, (11000, 11001)), (without_dir, (11002, 11003, 11004))):
        folder.mkdir()
        for i in ids:
            (folder / f"{i}.png").write_bytes((faces / f"{i:06d}.png").read_bytes())
    r = run("attributes", "--model", tiny_snapshot, "--with", with_dir, "--without", without_dir,
            "-o", tmp_path / "folders.safetensors")
    assert r.exit_code == 0, r.output
    vec = AttributeVector.load(tmp_path / "folders.safetensors")
    assert (vec.attribute, vec.count_with, vec.count_without) == ("with", 2, 3)


def test_attributes_errors(tiny_snapshot, faces, tmp_path):
    _one_line_error(run("attributes", "--model", tiny_snapshot, "--attribute", "Smiling"), "choose one source")
    _one_line_error(run("attributes", "--model", tiny_snapshot, "--synthetic", "--with", faces, "--attribute", "Smiling"),
                    "choose one source")
    _one_line_error(run("attributes", "--model", tiny_snapshot, "--synthetic"), "--attribute")
    _one_line_error(run("attributes", "--model", tiny_snapshot, "--synthetic", "--attribute", "Grin"), "Grin", "Smiling")
    _one_line_error(run("attributes", "--model", tiny_snapshot, "--labels", faces / "list_attr_celeba.txt",
                        "--images", faces, "--attribute", "Grin"), "Grin", "Smiling")
    _one_line_error(run("attributes", "--model", tiny_snapshot, "--with", faces), "--without")
    broken = tmp_path / "attrs.txt"
    broken.write_text("2\nSmiling\n000001.png 1\n")
    _one_line_error(run("attributes", "--model", tiny_snapshot, "--labels", broken, "--images", faces,
                        "--attribute", "Smiling"), "attrs.txt", "line 1")


def test_edit_strip_and_combinations(tiny_snapshot, faces, vector, tmp_path):
    cell = 66
    r = run("edit", "--model", tiny_snapshot, faces / "011000.png", faces / "011001.png", "--vector", vector,
            "--strength=-2:2:5", "-o", tmp_path / "strip.png")
    assert r.exit_code == 0, r.output
    strip = _png(tmp_path / "strip.png")
    assert strip.shape == (2 + 2 * cell, 2 + 7 * cell, 3)       # per row: input, reconstruction, 5 strengths
    # lambda = 0 is the reconstruction
    assert np.array_equal(strip[2:66, 2 + cell:cell + 66], strip[2:66, 2 + 4 * cell:4 * cell + 66])
    other = tmp_path / "Other.safetensors"
    vec = AttributeVector.load(vector)
    AttributeVector(-vec.vector, "Other", 1, 1, model=vec.model).save(other)
    r = run("edit", "--model", tiny_snapshot, faces / "011000.png", "--vector", vector, "--vector", other,
            "--combo", "Dark_Skin=1", "--combo", "Dark_Skin=1,Other=1", "-o", tmp_path / "combo.png")
    assert r.exit_code == 0, r.output
    combo = _png(tmp_path / "combo.png")
    assert combo.shape == (2 + cell, 2 + 4 * cell, 3)
    # v + (-v) = 0: the second combination gives back the reconstruction
    assert np.array_equal(combo[2:66, 2 + cell:cell + 66], combo[2:66, 2 + 3 * cell:3 * cell + 66])


def test_edit_errors(tiny_snapshot, faces, vector, tmp_path):
    face = faces / "011000.png"
    _one_line_error(run("edit", "--model", tiny_snapshot, face, "--vector", vector, "--strength", "1:2"), "--strength")
    _one_line_error(run("edit", "--model", tiny_snapshot, face, "--vector", vector, "--combo", "Smile=1"),
                    "Smile", "Dark_Skin")
    _one_line_error(run("edit", "--model", tiny_snapshot, face, "--vector", vector, "--combo", "Dark_Skin=x"), "'x'")
    _one_line_error(run("edit", "--model", tiny_snapshot, face, "--vector", vector, "--combo", "Dark_Skin=1",
                        "--strength", "1"), "exclude")
    _one_line_error(run("edit", "--model", tiny_snapshot, face, "--vector", face), "011000.png")
    _one_line_error(run("edit", "--model", tiny_snapshot, face, "--vector", tmp_path / "none.safetensors"), "does not exist")
    small = tmp_path / "small.safetensors"
    AttributeVector(AttributeVector.load(vector).vector[:8], "Small", 1, 1).save(small)
    _one_line_error(run("edit", "--model", tiny_snapshot, face, "--vector", small), "(32,)")
    foreign = tmp_path / "foreign.safetensors"
    AttributeVector(AttributeVector.load(vector).vector, "Foreign", 1, 1, model="0123456789abcdef").save(foreign)
    r = run("edit", "--model", tiny_snapshot, face, "--vector", foreign, "-o", tmp_path / "f.png")
    assert r.exit_code == 0 and "another model" in r.output


def test_align_command(tmp_path):
    pytest.importorskip("dlib")
    skimage_data = pytest.importorskip("skimage.data")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(skimage_data.astronaut()).save(photos / "astronaut.jpg")
    Image.fromarray(skimage_data.coffee()).save(photos / "coffee.jpg")
    r = run("align", photos, "-o", tmp_path / "aligned", "--size", 64)
    assert r.exit_code == 0, r.output
    assert [p.name for p in (tmp_path / "aligned").glob("*.png")] == ["astronaut.png"]
    assert _png(tmp_path / "aligned" / "astronaut.png").shape == (64, 64, 3)
    assert "no face found in" in r.output and "coffee.jpg" in r.output
    _one_line_error(run("align", photos / "coffee.jpg", "-o", tmp_path / "none"), "no face found", "coffee.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    _one_line_error(run("align", bad), "bad.jpg")


def test_reconstruct_with_align(tiny_snapshot, tmp_path):
    pytest.importorskip("dlib")
    skimage_data = pytest.importorskip("skimage.data")
    Image.fromarray(skimage_data.astronaut()).save(tmp_path / "astronaut.png")
    Image.fromarray(skimage_data.coffee()).save(tmp_path / "coffee.png")
    r = run("reconstruct", "--model", tiny_snapshot, "--align", tmp_path / "astronaut.png", tmp_path / "coffee.png",
            "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert [p.name for p in (tmp_path / "out").glob("*.png")] == ["astronaut.png"]
    assert "no face found" in r.output and "coffee.png" in r.output
    _one_line_error(run("reconstruct", "--model", tiny_snapshot, "--align", tmp_path / "coffee.png", "-o", tmp_path / "o2"),
                    "no face found")
