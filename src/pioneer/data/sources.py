"""Image sources: a folder, a zip file or an LMDB database of images, and the synthetic faces.

Every source follows the small :class:`ImageSource` protocol: a fixed number of images, each
with a stable key (its relative path or LMDB key), loadable as a square ``(R, R, 3)`` uint8 RGB
array at any resolution R, plus a fingerprint that changes when the data changes (it names the
on-disk pyramid cache, see :mod:`pioneer.data.pyramid`).

Decoding is shared by all file-based sources (:func:`decode_image`):

* any Pillow mode becomes 8-bit RGB: grey and palette images are expanded, CMYK is converted,
  16-bit and 32-bit integer images are *scaled* to 8 bits (65535 -> 255, never clipped), float
  images are min-max normalised;
* transparency (RGBA, LA, PA, palette with a transparent colour) is composited on **white**,
  so that transparent pixels look as they do in most viewers instead of showing whatever colour
  happens to hide under alpha = 0;
* the EXIF orientation is applied, so photos look as they do in a viewer;
* the image is center-cropped to a square on its short side and resized to R x R with Lanczos
  (after a cheap integer pre-reduction through ``reducing_gap``; JPEGs are additionally decoded
  at a reduced DCT scale when they are at least four times too large).

Undecodable data raises :class:`ImageError`, naming the file.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import threading
import weakref
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image, ImageOps

from pioneer.errors import PioneerError

# File name extensions treated as images by folder and zip sources (compared lower-case).
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif",
)

# The ways Pillow reports broken or unsupported data while opening or decoding. SyntaxError,
# struct.error, IndexError and EOFError are raised by some plugins on malformed headers;
# DecompressionBombError (a plain Exception) on absurdly large images.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error,
    Image.DecompressionBombError, zipfile.BadZipFile,
)


class DataError(PioneerError, ValueError):
    """The data cannot be used as given; the one-line message says what to do instead."""


class ImageError(DataError):
    """One image cannot be decoded (corrupt, truncated or not an image); names the file."""


@runtime_checkable
class ImageSource(Protocol):
    """What the pyramid cache needs from a set of images."""

    def __len__(self) -> int:
        """Number of images (valid or not)."""
        ...

    def key(self, index: int) -> str:
        """Stable name of image ``index``: its path inside the folder or zip, or its LMDB key."""
        ...

    def load(self, index: int, resolution: int) -> np.ndarray:
        """Image ``index`` as a ``(resolution, resolution, 3)`` uint8 RGB array.

        Raises :class:`ImageError` when the data cannot be decoded.
        """
        ...

    def fingerprint(self) -> str:
        """Stable identifier of the data: changes when images are added, removed or changed."""
        ...


# --------------------------------------------------------------------------------------------
# Decoding


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (see the module docstring for the rules)."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(img).astype(np.float64)  # (H, W), native-endian whatever the mode
        if mode.startswith("I;16"):
            scaled = values / 257.0  # 65535 / 255 = 257 exactly
        elif mode == "I" and values.min() >= 0 and values.max() <= 65535:
            scaled = values / 257.0  # mode I from files is 16-bit data (older Pillow, TIFF)
        else:
            # Arbitrary range (32-bit ints beyond 16 bits, floats): stretch to the full 8 bits.
            lo, hi = float(values.min()), float(values.max())
            scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
        grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "P":
        # A palette may carry transparency; expand to RGBA so that it is composited below.
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    elif mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
        mode = "RGBA"
    elif mode in ("L", "1") and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    elif mode == "RGB" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img).convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, HSV, RGBX, ...


def square_resize(img: Image.Image, resolution: int) -> Image.Image:
    """Center-crop to a square on the short side and resize it to ``resolution`` squared."""
    width, height = img.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    box = (left, top, left + side, top + side)
    if side == resolution:
        return img.crop(box)
    # Lanczos with an integer pre-reduction (box filter) when much larger: sharp and fast.
    return img.resize((resolution, resolution), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)


def decode_image(file: str | Path | IO[bytes], resolution: int, name: str) -> np.ndarray:
    """Decode an image file (path or binary file object) to ``(resolution, resolution, 3)`` uint8.

    Raises :class:`ImageError` naming ``name`` when the data is not a decodable image.
    """
    try:
        with Image.open(file) as img:
            if img.format == "JPEG":
                # Decode at a reduced DCT scale when the image is >= 4x too large (big speed-up
                # for large photos); keep a 2x margin so that Lanczos still does the final step.
                img.draft(None, (2 * resolution, 2 * resolution))
            img.load()  # force full decoding here, so truncated data fails inside the try
            oriented = ImageOps.exif_transpose(img)
            rgb = to_rgb(oriented)
            out = square_resize(rgb, resolution)
            array = np.asarray(out, dtype=np.uint8)  # (R, R, 3)
    except DECODE_ERRORS as err:
        reason = str(err) or type(err).__name__
        raise ImageError(f"cannot decode image {name}: {reason}") from err
    if array.shape != (resolution, resolution, 3):  # defensive: Pillow should never do this
        raise ImageError(f"cannot decode image {name}: unexpected shape {array.shape}")
    return array


def _is_image_name(name: str) -> bool:
    """True for an image extension, skipping hidden files (macOS '._x.jpg' resource forks)."""
    parts = PurePosixPath(name).parts
    if any(part.startswith(".") for part in parts) or (parts and parts[0] == "__MACOSX"):
        return False
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _digest(items: list[str]) -> str:
    """Short stable hash of a list of strings."""
    h = hashlib.sha1()
    for item in items:
        h.update(item.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def _empty_error(what: str, path: Path) -> DataError:
    exts = ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
    return DataError(
        f"no images found in {what} {path} (looked recursively for {exts}): "
        "add images there or point to another folder, zip or LMDB"
    )


# --------------------------------------------------------------------------------------------
# Sources


class FolderSource:
    """Every image file below a folder (recursive), keyed by its relative POSIX path, sorted.

    The fingerprint hashes every key with its size and modification time, so adding, removing,
    replacing or touching a file invalidates the cache.
    """

    thread_safe = True  # each load opens its own file: the cache builder may use threads

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise DataError(f"image folder {self.path} does not exist: check the path")
        entries: list[tuple[str, int, int]] = []  # (key, size, mtime_ns)
        for root, dirs, files in os.walk(self.path):
            dirs[:] = [d for d in dirs if not d.startswith(".")]  # .git, .cache, ...
            rel_root = Path(root).relative_to(self.path)
            for fname in files:
                key = (rel_root / fname).as_posix()
                if not _is_image_name(key):
                    continue
                try:
                    st = os.stat(os.path.join(root, fname))
                except OSError:
                    continue  # vanished or dangling link: not an image we can read
                entries.append((key, st.st_size, st.st_mtime_ns))
        entries.sort()
        if not entries:
            raise _empty_error("folder", self.path)
        self._keys = [e[0] for e in entries]
        self._fingerprint = "folder-{}-{}-{}".format(
            self.path.resolve().name or "root",
            len(entries),
            _digest([f"{k}|{s}|{m}" for k, s, m in entries]),
        )

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"FolderSource({str(self.path)!r}, {len(self)} images)"

    def key(self, index: int) -> str:
        return self._keys[index]

    def load(self, index: int, resolution: int) -> np.ndarray:
        key = self._keys[index]
        return decode_image(self.path / key, resolution, name=str(self.path / key))

    def fingerprint(self) -> str:
        return self._fingerprint


class ZipSource:
    """Every image inside a zip file (recursive), keyed by its path in the archive, sorted.

    The fingerprint hashes every member's name, CRC and size, so it follows the content, not
    the zip file's modification time. The zip handle is reopened after a fork or unpickling.
    """

    thread_safe = True  # zipfile serialises member reads on its shared handle

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise DataError(f"zip file {self.path} does not exist: check the path")
        try:
            with zipfile.ZipFile(self.path) as zf:
                infos = [i for i in zf.infolist() if not i.is_dir() and _is_image_name(i.filename)]
        except (zipfile.BadZipFile, OSError) as err:
            raise DataError(f"cannot read zip file {self.path}: {err}") from err
        infos.sort(key=lambda i: i.filename)
        if not infos:
            raise _empty_error("zip file", self.path)
        self._keys = [i.filename for i in infos]
        self._fingerprint = "zip-{}-{}-{}".format(
            self.path.stem,
            len(infos),
            _digest([f"{i.filename}|{i.CRC}|{i.file_size}" for i in infos]),
        )
        self._zip: zipfile.ZipFile | None = None
        self._pid = -1
        self._lock = threading.Lock()

    def _handle(self) -> zipfile.ZipFile:
        # A handle inherited through fork shares its file offset with the parent: reopen.
        with self._lock:
            if self._zip is None or self._pid != os.getpid():
                self._zip = zipfile.ZipFile(self.path)
                self._pid = os.getpid()
            return self._zip

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_zip"], state["_pid"], state["_lock"] = None, -1, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"ZipSource({str(self.path)!r}, {len(self)} images)"

    def key(self, index: int) -> str:
        return self._keys[index]

    def load(self, index: int, resolution: int) -> np.ndarray:
        key = self._keys[index]
        name = f"{self.path}:{key}"
        try:
            data = self._handle().read(key)  # raises BadZipFile on a CRC mismatch
        except (zipfile.BadZipFile, OSError, KeyError, EOFError) as err:
            raise ImageError(f"cannot read image {name}: {err}") from err
        return decode_image(io.BytesIO(data), resolution, name=name)

    def fingerprint(self) -> str:
        return self._fingerprint


class _SharedEnv:
    """One read-only LMDB environment, shared by every :class:`LMDBSource` on the same files."""

    def __init__(self, env: Any) -> None:
        self.env = env


# LMDB (and py-lmdb, which enforces it) allows one open environment per process and file, so
# sources on the same database must share it: this registry mirrors that process-wide rule. It
# holds weak references only; the environment closes when its last source goes away. A forked
# child (DataLoader worker) keeps using the inherited handle, which is safe read-only without
# locking and is what the usual LSUN loaders do.
_SHARED_ENVS: weakref.WeakValueDictionary[tuple[int, int], _SharedEnv] = weakref.WeakValueDictionary()
_SHARED_ENVS_LOCK = threading.Lock()


def _shared_env(path: Path) -> _SharedEnv:
    lmdb = _import_lmdb()
    st = (path / "data.mdb").stat()
    ident = (st.st_dev, st.st_ino)
    with _SHARED_ENVS_LOCK:
        shared = _SHARED_ENVS.get(ident)
        if shared is None:
            try:
                env = lmdb.open(
                    str(path), readonly=True, lock=False, readahead=False,
                    meminit=False, max_readers=256, subdir=True,
                )
            except lmdb.Error as err:
                raise DataError(f"cannot open LMDB database {path}: {err}") from err
            shared = _SHARED_ENVS[ident] = _SharedEnv(env)
    return shared


class LMDBSource:
    """An LMDB environment whose values are encoded images (LSUN export: WebP/JPEG/PNG bytes).

    ``path`` is the folder holding ``data.mdb`` (or that file itself). The environment is opened
    read-only without locking; keys are listed lazily (only when an image is accessed), so
    reopening a cached pyramid does not walk millions of keys. Keys are decoded as UTF-8
    (LSUN keys are ASCII hex digests).
    """

    thread_safe = True  # every load uses its own read transaction

    def __init__(self, path: str | Path) -> None:
        path = Path(path).expanduser()
        if path.name == "data.mdb" and path.is_file():
            path = path.parent
        self.path = path
        if not (path / "data.mdb").is_file():
            raise DataError(f"LMDB folder {path} has no data.mdb: point to an LMDB export")
        self._lmdb = _import_lmdb()
        self._shared: _SharedEnv | None = None
        self._raw_keys: list[bytes] | None = None
        entries = int(self._environment().stat()["entries"])
        if entries == 0:
            raise DataError(f"LMDB database {path} is empty: point to an LMDB with images")
        self._len = entries
        st = (path / "data.mdb").stat()
        self._fingerprint = "lmdb-{}-{}-{}".format(
            path.resolve().name or "root", entries, _digest([str(st.st_size), str(st.st_mtime_ns)])
        )

    def _environment(self) -> Any:
        if self._shared is None:
            self._shared = _shared_env(self.path)
        return self._shared.env

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_shared"], state["_lmdb"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lmdb = _import_lmdb()

    def _keys(self) -> list[bytes]:
        if self._raw_keys is None:
            with self._environment().begin(write=False) as txn:
                self._raw_keys = list(txn.cursor().iternext(keys=True, values=False))
            self._len = len(self._raw_keys)
        return self._raw_keys

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"LMDBSource({str(self.path)!r}, {len(self)} images)"

    def key(self, index: int) -> str:
        return self._keys()[index].decode("utf-8", "backslashreplace")

    def load(self, index: int, resolution: int) -> np.ndarray:
        raw_key = self._keys()[index]
        name = f"{self.path}:{raw_key.decode('utf-8', 'backslashreplace')}"
        try:
            with self._environment().begin(write=False, buffers=False) as txn:
                data = txn.get(raw_key)
        except self._lmdb.Error as err:
            raise ImageError(f"cannot read image {name}: {err}") from err
        if data is None:
            raise ImageError(f"cannot read image {name}: key vanished from the database")
        return decode_image(io.BytesIO(data), resolution, name=name)

    def fingerprint(self) -> str:
        return self._fingerprint


def _import_lmdb() -> Any:
    try:
        import lmdb  # optional dependency: only LSUN-style data needs it
    except ImportError as err:
        raise DataError(
            "reading an LMDB database needs the lmdb package: pip install lmdb "
            "(or pip install 'pioneer[lmdb]')"
        ) from err
    return lmdb


def open_source(spec: str | Path, **synthetic_kwargs: Any) -> ImageSource:
    """Open the images named by ``spec``.

    * ``"synthetic"`` or ``"synthetic:N"``: the procedural faces
      (:class:`pioneer.data.faces.SyntheticFaces`, N images of which N // 12, at most 1000,
      are the test split unless ``num_test`` is given; ``synthetic_kwargs`` are passed on)
    * a folder containing ``data.mdb`` (or that file): :class:`LMDBSource`
    * any other folder: :class:`FolderSource`
    * a ``.zip`` file: :class:`ZipSource`

    ``synthetic_kwargs`` are ignored for the other sources, so that a caller may always pass
    them. Anything else raises a one-line :class:`DataError`.
    """
    text = str(spec)
    if text == "synthetic" or text.startswith("synthetic:"):
        from pioneer.data.faces import SyntheticFaces  # lazy: avoids an import cycle

        kwargs = dict(synthetic_kwargs)
        if text != "synthetic":
            count = text.split(":", 1)[1]
            if not count.isdigit() or int(count) < 2:  # one to train on, one held out at least
                raise DataError(f"data {text!r} is invalid: use 'synthetic' or 'synthetic:N' with N >= 2")
            kwargs["num_images"] = int(count)
            # The default test split (1000 of 12000) scaled to N: 1/12, at most 1000.
            kwargs.setdefault("num_test", min(1000, max(1, int(count) // 12)))
        try:
            return SyntheticFaces(**kwargs)
        except (TypeError, ValueError) as err:
            raise DataError(f"data {text!r}: {err}") from err
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(
            f"data path {path} does not exist: give a folder of images, a .zip, an LMDB folder or 'synthetic'"
        )
    if path.is_dir():
        if (path / "data.mdb").is_file():
            return LMDBSource(path)
        return FolderSource(path)
    if path.name == "data.mdb":
        return LMDBSource(path)
    if path.suffix.lower() == ".zip":
        return ZipSource(path)
    raise DataError(
        f"cannot use {path} as data: expected 'synthetic[:N]', a folder of images, "
        "a .zip of images or an LMDB folder (containing data.mdb)"
    )
