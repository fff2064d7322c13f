"""Tests of pioneer.data: sources, decoding, the pyramid cache and the held-out split."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pioneer.data import (
    CorruptImageWarning,
    DataError,
    DataSplit,
    FolderSource,
    ImageError,
    ImagePyramid,
    ImageSource,
    LMDBSource,
    ZipSource,
    default_test_mask,
    open_dataset,
    open_source,
)
from pioneer.data.pyramid import _host  # the host suffix the builder writes into temp names

RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------------------------
# helpers


def _rgb(h: int, w: int) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


class CountingSource:
    """A tiny in-memory source that counts its loads (and can fail or stop on demand)."""

    thread_safe = False

    def __init__(self, n: int = 6, tag: str = "a", corrupt: tuple[int, ...] = (),
                 interrupt_at: int | None = None) -> None:
        self.n, self.tag, self.corrupt, self.interrupt_at = n, tag, corrupt, interrupt_at
        self.loads = 0

    def __len__(self) -> int:
        return self.n

    def key(self, index: int) -> str:
        return f"img{index:03d}.png"

    def load(self, index: int, resolution: int) -> np.ndarray:
        self.loads += 1
        if index == self.interrupt_at:
            raise KeyboardInterrupt
        if index in self.corrupt:
            raise ImageError(f"cannot decode image img{index:03d}.png: broken")
        rng = np.random.default_rng(index)
        return rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)

    def fingerprint(self) -> str:
        return f"counting/{self.tag}:{self.n}"


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Images in every mode, a truncated PNG, random bytes named .jpg and a text file."""
    root = tmp_path_factory.mktemp("images")
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(_rgb(20, 20)).save(root / "rgb.png")
    Image.fromarray(_rgb(20, 20)).save(root / "sub" / "photo.jpg", quality=95)
    Image.fromarray(_rgb(20, 20)[..., 0]).save(root / "grey.png")  # L
    Image.fromarray(_rgb(20, 20)).convert("P").save(root / "palette.gif")  # P
    Image.fromarray(_rgb(20, 20)).save(root / "sub" / "deeper" / "x.bmp")
    Image.fromarray(_rgb(20, 20)).save(root / "x.webp")
    Image.fromarray(_rgb(20, 20)).save(root / "x.ppm")
    Image.fromarray(_rgb(20, 20)).save(root / "x.tiff")
    la = Image.merge("LA", [Image.new("L", (16, 16), 0), Image.new("L", (16, 16), 0)])
    la.save(root / "la.png")  # black but fully transparent -> white
    # RGBA: left half red fully transparent, right half opaque blue.
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, :, 0] = 255
    rgba[:, 8:] = (0, 0, 255, 255)
    Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
    # 16-bit grey: a horizontal ramp over the full 16-bit range.
    ramp = np.tile(np.linspace(0, 65535, 64).round().astype(np.uint16), (64, 1))
    Image.fromarray(ramp).save(root / "grey16.png")  # I;16
    Image.new("CMYK", (16, 16), (255, 0, 0, 0)).save(root / "cyan_cmyk.jpg", quality=95)
    # Non-square: 48 x 16, red sides and a green center square.
    wide = np.zeros((16, 48, 3), np.uint8)
    wide[:, :, 0] = 255
    wide[:, 16:32] = (0, 255, 0)
    Image.fromarray(wide).save(root / "wide.png")
    # EXIF orientation 6 (rotate 90 deg clockwise to display): stored 32 x 16, red left half,
    # blue right half -> displayed 16 x 32 with red on top.
    stored = np.zeros((16, 32, 3), np.uint8)
    stored[:, :16] = (255, 0, 0)
    stored[:, 16:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(root / "rotated.jpg", quality=95, exif=exif)
    # Broken ones.
    good_png = _png_bytes(_rgb(32, 32))
    (root / "truncated.png").write_bytes(good_png[: len(good_png) // 2])
    (root / "random.jpg").write_bytes(RNG.integers(0, 256, 300, dtype=np.uint8).tobytes())
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"resource fork")  # hidden files are ignored
    return root


VALID = 14      # decodable images in image_folder
CORRUPT = ("random.jpg", "truncated.png")


def _zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return target


# --------------------------------------------------------------------------------------------
# sources and decoding


def test_folder_source_keys_and_decoding(image_folder: Path) -> None:
    source = open_source(str(image_folder))
    assert isinstance(source, FolderSource) and isinstance(source, ImageSource)
    keys = [source.key(i) for i in range(len(source))]
    assert len(source) == VALID + len(CORRUPT)
    assert keys == sorted(keys) and "sub/deeper/x.bmp" in keys and "notes.txt" not in keys
    assert ".hidden.png" not in keys
    decoded = 0
    for i, key in enumerate(keys):
        if key in CORRUPT:
            with pytest.raises(ImageError, match=key):
                source.load(i, 8)
            continue
        image = source.load(i, 8)
        assert image.shape == (8, 8, 3) and image.dtype == np.uint8, key
        decoded += 1
    assert decoded == VALID


def test_decoding_rules(image_folder: Path) -> None:
    source = FolderSource(image_folder)
    load = {source.key(i): i for i in range(len(source))}

    def get(key: str, r: int = 16) -> np.ndarray:
        return source.load(load[key], r).astype(int)

    rgba = get("rgba.png")  # transparency composited on white, opaque pixels kept
    assert (rgba[:, :7] == 255).all() and (np.abs(rgba[:, 9:] - [0, 0, 255]) <= 1).all()
    assert (get("la.png") == 255).all()
    grey16 = source.load(load["grey16.png"], 64).astype(int)  # scaled, not clipped
    assert grey16[:, 0].max() <= 1 and grey16[:, -1].min() >= 254
    assert np.all(np.diff(grey16[32, :, 0]) >= 0) and 100 < grey16.mean() < 155
    assert len(np.unique(grey16)) > 50  # the contrast survives
    cyan = get("cyan_cmyk.jpg").mean(axis=(0, 1))
    assert cyan[0] < 30 and cyan[1] > 225 and cyan[2] > 225
    assert (np.abs(get("wide.png") - [0, 255, 0]) <= 2).all()  # center crop of the short side
    rotated = get("rotated.jpg", 8)  # EXIF applied: red on top, blue below
    top, bottom = rotated[:3].mean(axis=(0, 1)), rotated[5:].mean(axis=(0, 1))
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60
    # Upscaling works too (the 20 x 20 images at 64).
    assert source.load(load["rgb.png"], 64).shape == (64, 64, 3)


def test_zip_source_matches_folder(image_folder: Path, tmp_path: Path) -> None:
    archive = _zip_folder(image_folder, tmp_path / "images.zip")
    source = open_source(str(archive))
    folder = FolderSource(image_folder)
    assert isinstance(source, ZipSource) and len(source) == len(folder)
    assert [source.key(i) for i in range(len(source))] == [folder.key(i) for i in range(len(folder))]
    for i in range(len(source)):
        if source.key(i) in CORRUPT:
            with pytest.raises(ImageError, match=source.key(i)):
                source.load(i, 8)
        else:
            np.testing.assert_array_equal(source.load(i, 8), folder.load(i, 8))
    clone = pickle.loads(pickle.dumps(source))  # no open handle travels
    assert clone.load(0, 4).shape == (4, 4, 3)
    assert clone.fingerprint() == source.fingerprint()
    # Threaded decoding out of one zip handle gives the same cache as the folder.
    with pytest.warns(CorruptImageWarning):
        from_zip = ImagePyramid.build(source, 8, tmp_path / "c", progress=False, workers=3)
    with pytest.warns(CorruptImageWarning):
        from_folder = ImagePyramid.build(folder, 8, tmp_path / "c", progress=False, workers=1)
    assert from_zip.keys == from_folder.keys and from_zip.path != from_folder.path
    assert torch.equal(from_zip.images(range(VALID), 8), from_folder.images(range(VALID), 8))


def test_lmdb_source(tmp_path: Path) -> None:
    lmdb = pytest.importorskip("lmdb")
    db = tmp_path / "bedroom_train_lmdb"
    env = lmdb.open(str(db), map_size=1 << 24)
    values: dict[bytes, bytes] = {}
    for i, fmt in enumerate(["WEBP", "JPEG", "PNG"]):
        buf = io.BytesIO()
        Image.fromarray(_rgb(24, 30)).save(buf, format=fmt)
        values[f"{i:040x}".encode()] = buf.getvalue()
    values[b"f" * 40] = b"garbage, not an image"
    with env.begin(write=True) as txn:
        for k, v in values.items():
            txn.put(k, v)
    env.close()
    source = open_source(str(db))
    assert isinstance(source, LMDBSource) and len(source) == 4
    assert source.key(0) == f"{0:040x}"
    assert all(source.load(i, 8).shape == (8, 8, 3) for i in range(3))
    with pytest.raises(ImageError, match="f" * 40):
        source.load(3, 8)
    assert isinstance(open_source(str(db / "data.mdb")), LMDBSource)
    with pytest.warns(CorruptImageWarning, match="f" * 40):
        pyramid = ImagePyramid.build(source, 8, tmp_path / "cache", progress=False)
    assert len(pyramid) == 3 and pyramid.skipped == [3]
    assert pickle.loads(pickle.dumps(source)).load(0, 4).shape == (4, 4, 3)


def test_lmdb_missing_package_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data.mdb").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "lmdb", None)  # makes `import lmdb` fail
    with pytest.raises(DataError, match="pip install lmdb"):
        open_source(str(tmp_path))


# --------------------------------------------------------------------------------------------
# pyramid cache


def test_pyramid_from_folder_skips_corrupt_once(image_folder: Path, tmp_path: Path) -> None:
    source = FolderSource(image_folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pyramid = ImagePyramid.build(source, 16, tmp_path, progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, CorruptImageWarning)]
    assert len(messages) == len(CORRUPT)
    for name in CORRUPT:
        assert sum(name in m for m in messages) == 1
    assert len(pyramid) == VALID and not set(CORRUPT) & set(pyramid.keys)
    assert pyramid.levels == (4, 8, 16)
    for r in pyramid.levels:
        batch = pyramid.images(np.arange(len(pyramid)), r)
        assert batch.shape == (VALID, 3, r, r) and batch.dtype == torch.uint8
    meta = json.loads((pyramid.path / "meta.json").read_text())
    assert meta["keys"] == pyramid.keys and len(meta["skipped"]) == len(CORRUPT)
    assert [source.key(i) for i in meta["skipped"]] == sorted(CORRUPT)
    # The top level is exactly what the source decodes; CHW layout.
    i = pyramid.keys.index("rgb.png")
    expected = source.load(pyramid.source_indices[i], 16).transpose(2, 0, 1)
    np.testing.assert_array_equal(pyramid.images([i], 16)[0].numpy(), expected)


def test_levels_are_box_averages(tmp_path: Path) -> None:
    pyramid = ImagePyramid.build(CountingSource(5), 32, tmp_path, progress=False)
    for r in (32, 16, 8):
        upper = pyramid.images(range(5), r).float()
        lower = pyramid.images(range(5), r // 2).float()
        assert (F.avg_pool2d(upper, 2) - lower).abs().max() <= 1.0
    # Against the exact average of the top level: every level rounds once.
    exact = pyramid.images(range(5), 32).float()
    for r in (16, 8, 4):
        exact = F.avg_pool2d(exact, 2)
        assert (exact - pyramid.images(range(5), r).float()).abs().max() <= 0.5


def test_images_indices_and_errors(tmp_path: Path) -> None:
    pyramid = ImagePyramid.build(CountingSource(6), 8, tmp_path, progress=False)
    ref = pyramid.images([4, 1], 8)
    assert torch.equal(pyramid.images(np.array([4, 1]), 8), ref)
    assert torch.equal(pyramid.images(torch.tensor([4, 1]), 8), ref)
    assert pyramid.images(3, 4).shape == (1, 3, 4, 4)
    assert pyramid.images([], 4).shape == (0, 3, 4, 4)
    with pytest.raises(ValueError, match="not a level"):
        pyramid.images([0], 16)
    with pytest.raises(ValueError, match="not a level"):
        pyramid.images([0], 6)
    with pytest.raises(IndexError):
        pyramid.images([6], 8)
    clone = pickle.loads(pickle.dumps(pyramid))
    assert len(pickle.dumps(pyramid)) < 2000 and torch.equal(clone.images([4, 1], 8), ref)
    assert torch.equal(ImagePyramid.open(pyramid.path).images([4, 1], 8), ref)


def test_cache_is_reused_without_decoding(tmp_path: Path) -> None:
    first = CountingSource(7)
    pyramid = ImagePyramid.build(first, 16, tmp_path, progress=False)
    assert first.loads == 7
    again = CountingSource(7)
    reopened = ImagePyramid.build(again, 16, tmp_path, progress=False)
    assert again.loads == 0 and reopened.path == pyramid.path
    assert torch.equal(reopened.images(range(7), 4), pyramid.images(range(7), 4))
    # Another fingerprint or resolution is another cache.
    other = CountingSource(7, tag="b")
    ImagePyramid.build(other, 16, tmp_path, progress=False)
    assert other.loads == 7
    lower = CountingSource(7)
    assert ImagePyramid.build(lower, 8, tmp_path, progress=False).path != pyramid.path
    assert lower.loads == 7


def test_interrupted_build_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        ImagePyramid.build(CountingSource(6, interrupt_at=3), 8, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
    source = CountingSource(6)
    assert len(ImagePyramid.build(source, 8, tmp_path, progress=False)) == 6 and source.loads == 6


def test_leftovers_of_killed_build_are_ignored_and_cleaned(tmp_path: Path) -> None:
    good = ImagePyramid.build(CountingSource(4), 8, tmp_path / "ref", progress=False)
    final_name = good.path.name
    # A temp folder of a dead process, holding complete-looking files and meta.json.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    leftover = tmp_path / f".{final_name}.tmp-{pid}-deadbeef-{_host()}"
    leftover.mkdir()
    for f in good.path.iterdir():
        (leftover / f.name).write_bytes(f.read_bytes())
    # A final folder whose last level is short: a copy interrupted by hand, or disk trouble.
    half = tmp_path / final_name
    half.mkdir()
    for f in good.path.iterdir():
        (half / f.name).write_bytes(f.read_bytes())
    (half / "r8.u8").write_bytes(b"\0" * 10)
    source = CountingSource(4)
    with pytest.raises(DataError, match="not a valid image cache"):
        ImagePyramid.open(half)
    pyramid = ImagePyramid.build(source, 8, tmp_path, progress=False)
    assert source.loads == 4  # rebuilt, not trusted
    assert not leftover.exists() and sorted(p.name for p in tmp_path.iterdir()) == sorted(["ref", final_name])
    assert torch.equal(pyramid.images(range(4), 8), good.images(range(4), 8))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL")
def test_killed_build_process_leaves_no_valid_looking_cache(tmp_path: Path) -> None:
    class Dying(CountingSource):
        def load(self, index: int, resolution: int) -> np.ndarray:
            if index == 20:  # a hard kill in the middle of the build, level files half written
                os.kill(os.getpid(), signal.SIGKILL)
            return super().load(index, resolution)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # child: never return into pytest
        try:
            ImagePyramid.build(Dying(50, tag="dying"), 8, tmp_path, progress=False)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    entries = list(tmp_path.iterdir())
    assert len(entries) == 1 and entries[0].name.startswith(".counting_dying_50-r8.tmp-")
    assert (entries[0] / "r8.u8").exists()  # it died mid-build: only the temp folder exists
    source = CountingSource(50, tag="dying")
    pyramid = ImagePyramid.build(source, 8, tmp_path, progress=False)
    assert source.loads == 50 and len(pyramid) == 50
    assert [p.name for p in tmp_path.iterdir()] == ["counting_dying_50-r8"]


def test_all_corrupt_is_an_error(tmp_path: Path) -> None:
    with pytest.warns(CorruptImageWarning):
        with pytest.raises(DataError, match="none of the 3 images"):
            ImagePyramid.build(CountingSource(3, corrupt=(0, 1, 2)), 8, tmp_path / "c", progress=False)
    assert list((tmp_path / "c").iterdir()) == []
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (folder / "b.jpg").write_bytes(b"nope")
    with pytest.warns(CorruptImageWarning):
        with pytest.raises(DataError, match="could be decoded"):
            open_dataset(str(folder), 8, tmp_path / "c", progress=False)


def test_full_disk_is_an_error_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pioneer.data.pyramid as dataset

    almost_full = SimpleNamespace(total=10**6, used=10**6 - 1000, free=1000)
    monkeypatch.setattr(dataset.shutil, "disk_usage", lambda path: almost_full)
    with pytest.raises(DataError, match="GiB are free"):
        ImagePyramid.build(CountingSource(3), 64, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("resolution", [100, 2, 2048, 0, 3])
def test_bad_resolution(resolution: int, tmp_path: Path) -> None:
    message = f"resolution {resolution} is not a power of two between 4 and 1024"
    with pytest.raises(DataError, match=message):
        ImagePyramid.build(CountingSource(2), resolution, tmp_path, progress=False)
    with pytest.raises(DataError, match=message):
        open_dataset("synthetic:4", resolution, tmp_path, progress=False)


def test_source_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        open_source(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="no images found"):
        open_source(str(empty))
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as zf:
        zf.writestr("readme.txt", "nothing")
    with pytest.raises(DataError, match="no images found"):
        open_source(str(tmp_path / "empty.zip"))
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read zip"):
        open_source(str(tmp_path / "fake.zip"))
    (tmp_path / "list.txt").write_text("a\n")
    with pytest.raises(DataError, match="expected 'synthetic") as err:
        open_source(str(tmp_path / "list.txt"))
    assert "\n" not in str(err.value) and "list.txt" in str(err.value)
    with pytest.raises(DataError, match="synthetic:N"):
        open_source("synthetic:lots")
    assert issubclass(ImageError, DataError) and issubclass(DataError, ValueError)


# --------------------------------------------------------------------------------------------
# held-out split


@pytest.fixture(scope="module")
def numbered_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("celebahq")
    tiny = _png_bytes(_rgb(4, 4))
    for i in range(8):
        (root / f"{i:05d}.png").write_bytes(tiny)
    (root / "extra").mkdir()
    (root / "extra" / "imgHQ00002.png").write_bytes(tiny)
    (root / "extra" / "photo.png").write_bytes(tiny)
    return root


def test_holdout_list_file(numbered_folder: Path, tmp_path: Path) -> None:
    holdout = tmp_path / "test_keys.txt"
    holdout.write_text("# held-out images\n\n00001.png\nextra/photo.png\n./00005.png\n00006.png\nmissing.png\n")
    with pytest.warns(UserWarning, match="1 of 5 keys"):
        split = open_dataset(str(numbered_folder), 4, tmp_path / "c", holdout=holdout, progress=False)
    assert isinstance(split, DataSplit)
    keys = split.pyramid.keys
    assert sorted(keys[i] for i in split.test) == ["00001.png", "00005.png", "00006.png", "extra/photo.png"]
    assert split.train.dtype == np.int64 and split.test.dtype == np.int64
    assert sorted(np.concatenate([split.train, split.test]).tolist()) == list(range(len(keys)))


def test_holdout_celebahq_mapping(numbered_folder: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "image_list.txt"
    rows = ["idx         orig_idx    orig_file   proc_md5    final_md5"]
    for i, orig in enumerate([5, 182636, 182637, 190000, 7, 202598, 100, 3]):
        rows.append(f"{i:<11d} {orig:<11d} {orig + 1:06d}.jpg  {'a' * 32}  {'b' * 32}")
    mapping.write_text("\n".join(rows) + "\n")
    with pytest.warns(UserWarning, match="1 of 10 images have no idx"):  # extra/photo.png
        split = open_dataset(str(numbered_folder), 4, tmp_path / "c", holdout=mapping, progress=False)
    keys = split.pyramid.keys
    assert sorted(keys[i] for i in split.test) == ["00002.png", "00003.png", "00005.png", "extra/imgHQ00002.png"]
    all_test = tmp_path / "all.txt"
    all_test.write_text("\n".join(keys) + "\n")
    with pytest.raises(DataError, match="no training images"):
        open_dataset(str(numbered_folder), 4, tmp_path / "c", holdout=all_test, progress=False)
    with pytest.raises(DataError, match="cannot read held-out file"):
        open_dataset(str(numbered_folder), 4, tmp_path / "c", holdout=tmp_path / "nope.txt", progress=False)


def test_default_split_is_deterministic_and_stable() -> None:
    keys = [f"faces/{i:06d}.jpg" for i in range(1000)]
    mask = default_test_mask(keys)
    assert np.array_equal(mask, default_test_mask(list(keys)))
    assert 5 <= mask.sum() <= 40  # about 2 %
    grown = default_test_mask(keys + [f"more/{i}.png" for i in range(500)])
    assert np.array_equal(grown[:1000], mask)  # adding images moves no existing one
    for n in (2, 3, 10):
        small = default_test_mask(keys[:n])
        assert 1 <= small.sum() < n
    assert default_test_mask(keys[:1]).sum() <= 1


def test_default_split_on_folder(numbered_folder: Path, tmp_path: Path) -> None:
    a = open_dataset(str(numbered_folder), 4, tmp_path / "c", progress=False)
    b = open_dataset(str(numbered_folder), 4, tmp_path / "c", progress=False)
    assert a.test.size >= 1 and a.train.size >= 1
    assert np.array_equal(a.test, b.test) and np.array_equal(a.train, b.train)


def test_synthetic_split(tmp_path: Path) -> None:
    split = open_dataset("synthetic:24", 8, tmp_path, progress=False, num_test=4)
    assert len(split.pyramid) == 24 and split.pyramid.images([0, 23], 8).shape == (2, 3, 8, 8)
    assert split.train.tolist() == list(range(20)) and split.test.tolist() == [20, 21, 22, 23]
    assert split.pyramid.keys[0] == "000000.png"
    default = open_dataset("synthetic:24", 8, tmp_path, progress=False)  # N // 12 test images
    assert default.test.tolist() == [22, 23]
