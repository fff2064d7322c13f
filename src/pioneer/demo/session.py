"""The demo's work without a web page: read and check photos, encode once, edit by decoding.

A `DemoSession` holds one model and its attribute vectors. Every input is checked (file size,
pixel count, decodable image, a face when alignment is on) and encoded once; its code is cached
by content, so each slider move only decodes: E(x) is never run twice for the same input.
Errors meant for the person at the page are `DemoError`s whose message says what was wrong and
what to do.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from pioneer.errors import PioneerError
from pioneer.inference import latent
from pioneer.inference.facade import Pioneer
from pioneer.inference.inputs import InputError
from pioneer.data.sources import DECODE_ERRORS, to_rgb
from pioneer.images import make_grid, to_pil
from pioneer.inference.latent import AttributeVector


class DemoError(PioneerError, ValueError):
    """Bad input, described for the person at the page (shown there, never as a traceback)."""


@dataclass(frozen=True)
class DemoConfig:
    max_pixels: int = 40_000_000        # largest photo accepted, width x height (checked before decoding)
    max_file_bytes: int = 20 * 2**20    # largest upload accepted
    display_size: int = 256             # results are enlarged (nearest, whole factor) to at least this side
    preview_size: int = 1024            # the input is shown at most this large (a 36 MP photo is not sent back whole)
    decode_size: int = 1024             # large JPEGs decode at 1/2, 1/4 or 1/8 scale, both sides still at least this
    align_size: int = 256               # side of the aligned crop (the model's input is resized from it)
    cache_size: int = 128               # codes kept, keyed by the input's content
    vector_count: int = 64              # synthetic faces with / without each attribute for built-in vectors
    vector_pool: int = 512              # training faces searched for them (all groups reach 64 in the first 512)


@dataclass(frozen=True)
class Prepared:
    """One input, ready to edit."""

    photo: Image.Image                  # the image as read (RGB, EXIF orientation applied)
    crop: Image.Image | None            # the aligned face crop the model saw (alignment on), else None
    code: torch.Tensor                  # (D,) its code on the unit sphere


def human_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} kB"


class DemoSession:
    """One model, its attribute vectors and a cache of codes; every method is safe to call
    with anything a person can upload (bad input raises DemoError)."""

    def __init__(self, model: Pioneer, vectors: Sequence[AttributeVector] = (), config: DemoConfig = DemoConfig(),
                 notices: Sequence[str] = ()) -> None:
        for v in vectors:
            if v.latent_dim != model.latent_dim:
                raise DemoError(f"attribute vector {v.attribute!r} has {v.latent_dim} dimensions, "
                                f"the model {model.latent_dim}")
        self.model = model
        self.vectors = list(vectors)
        self.config = config
        self.notices = list(notices)    # things the page should say at the top (e.g. skipped vectors)
        self._matrix = (torch.stack([v.vector.float() for v in self.vectors]) if self.vectors
                        else torch.empty(0, model.latent_dim))                          # (K, D)
        self._codes: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._aligner = None
        self._lock = threading.Lock()   # the page calls from several threads: the cache and dlib are shared

    @property
    def vector_names(self) -> list[str]:
        return [v.attribute for v in self.vectors]

    def describe(self) -> str:
        m = self.model
        return (f"{m.resolution}x{m.resolution} images, {m.latent_dim}-d code, "
                f"trained on {m.images_seen / 1000:.1f} kimg "
                f"({m.extra.get('data') or 'unknown data'})")

    # ------------------------------------------------------------------------------ inputs

    def read_image(self, path: str | os.PathLike) -> Image.Image:
        """An uploaded file as an RGB image, after the size checks; DemoError for anything else."""
        path = Path(path)
        name = path.name
        if not path.is_file():
            raise DemoError(f"{name} could not be found on the server: upload it again")
        size = path.stat().st_size
        if size > self.config.max_file_bytes:
            raise DemoError(f"{name} is {human_bytes(size)}, more than the {human_bytes(self.config.max_file_bytes)} "
                            "this page accepts: use a smaller file (or start the demo with a larger --max-file-mb)")
        try:
            with Image.open(path) as img:
                w, h = img.size                 # read from the header: nothing decoded yet
                if w * h > self.config.max_pixels:
                    raise DemoError(f"{name} is {w}x{h} pixels ({w * h / 1e6:.3g} MP), more than the "
                                    f"{self.config.max_pixels / 1e6:g} MP this page accepts: use a smaller image "
                                    "(or start the demo with a larger --max-megapixels)")
                # JPEG decodes at 1/2, 1/4 or 1/8 scale for a fraction of the time; the model and
                # the aligner need far fewer pixels than a camera's.
                img.draft("RGB", (self.config.decode_size, self.config.decode_size))
                img.load()
                return to_rgb(ImageOps.exif_transpose(img))
        except DemoError:               # a ValueError, like some decode errors: pass it on as it is
            raise
        except DECODE_ERRORS as e:
            raise DemoError(f"{name} is not an image this page can read ({str(e) or type(e).__name__}): "
                            "upload a PNG, JPEG, WebP or similar photo") from e

    def _align(self, img: Image.Image, name: str) -> Image.Image:
        from pioneer.inference.align import AlignError, FaceAligner

        with self._lock:
            if self._aligner is None:
                try:
                    self._aligner = FaceAligner(size=self.config.align_size)
                except AlignError as e:
                    raise DemoError(f"face alignment is not available here: {e}; or turn alignment off") from e
            crops = self._aligner.align(img)
        if not crops:
            raise DemoError(f"no face was found in {name}: turn alignment off, or use a photo with a clearly "
                            "visible frontal face")
        return crops[0]                 # the most confident face

    def prepare(self, source: str | os.PathLike | Image.Image, align: bool = False) -> Prepared:
        """Read (a path) or take (a PIL image) one input, align it if asked, and encode it once."""
        if isinstance(source, Image.Image):
            photo, name = to_rgb(source), "the image"
        else:
            photo, name = self.read_image(source), Path(source).name
        crop = self._align(photo, name) if align else None
        seen = crop if crop is not None else photo
        key = hashlib.blake2b(seen.tobytes(), digest_size=16).hexdigest() + f"{seen.size}"
        with self._lock:
            code = self._codes.get(key)
            if code is not None:
                self._codes.move_to_end(key)
        if code is None:
            try:
                code = self.model.encode(seen)[0]                                       # (D,)
            except InputError as e:
                raise DemoError(f"{name} cannot be used: {e}") from e
            with self._lock:
                self._codes[key] = code
                while len(self._codes) > self.config.cache_size:
                    self._codes.popitem(last=False)
        return Prepared(photo, crop, code)

    @property
    def cached_codes(self) -> int:
        return len(self._codes)

    # ------------------------------------------------------------------------------ outputs

    def preview(self, photo: Image.Image) -> Image.Image:
        """The input as the page shows it: at most preview_size on its longer side."""
        if max(photo.size) <= self.config.preview_size:
            return photo
        small = photo.copy()
        small.thumbnail((self.config.preview_size, self.config.preview_size), Image.Resampling.LANCZOS)
        return small

    def display(self, image: torch.Tensor) -> Image.Image:
        """One image (3, r, r) in [-1, 1] -> PIL, enlarged by a whole factor (nearest) to at least
        display_size, so that 64 px results stay sharp on the page and in downloads."""
        img = to_pil(image)[0]
        factor = max(1, math.ceil(self.config.display_size / img.width))
        return img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST) if factor > 1 else img

    def _code(self, code: torch.Tensor | np.ndarray | Sequence[float] | None) -> torch.Tensor:
        if code is None:
            raise DemoError("no input yet: upload a photo or pick an example first")
        z = torch.as_tensor(np.asarray(code, dtype=np.float32))
        if z.shape != (self.model.latent_dim,):
            raise DemoError(f"this code has shape {tuple(z.shape)}, the model needs ({self.model.latent_dim},): "
                            "pick the input again")
        return z

    def reconstruction(self, code: torch.Tensor) -> Image.Image:
        """G(z) for a cached code."""
        return self.display(self.model.decode(self._code(code))[0])

    def edit_code(self, code: torch.Tensor, strengths: Sequence[float]) -> torch.Tensor:
        """z + sum_i strengths[i] v_i, back on the sphere: (D,)."""
        if len(strengths) != len(self.vectors):
            raise DemoError(f"{len(strengths)} strengths for {len(self.vectors)} attribute vectors")
        z = self._code(code)
        if not self.vectors:
            return z
        return latent.edit(z[None], self._matrix, [float(s) for s in strengths])[0]

    def edit(self, code: torch.Tensor, strengths: Sequence[float]) -> Image.Image:
        """The edited image: one decoder call, no encoder."""
        return self.display(self.model.decode(self.edit_code(code, strengths))[0])

    def interpolation(self, code_a: torch.Tensor, code_b: torch.Tensor, t: float) -> Image.Image:
        """G(slerp(z_a, z_b, t))."""
        za, zb = self._code(code_a), self._code(code_b)
        return self.display(self.model.decode(latent.slerp(za, zb, float(t)))[0])

    def strip(self, code_a: torch.Tensor, code_b: torch.Tensor, steps: int = 8) -> Image.Image:
        """`steps` slerp steps from G(z_a) to G(z_b), side by side."""
        if steps < 2:
            raise DemoError(f"an interpolation strip needs at least 2 steps, got {steps}")
        z = latent.interpolate(self._code(code_a), self._code(code_b), int(steps))      # (steps, D)
        images = self.model.decode(z)
        return Image.fromarray(make_grid(images, cols=len(images), min_cell=min(128, self.config.display_size)))

    def samples(self, seed: int, n: int = 8, cols: int = 4) -> Image.Image:
        """n random faces from the prior; the same seed gives the same faces."""
        if not 1 <= n <= 64:
            raise DemoError(f"ask for 1 to 64 samples, not {n}")
        try:
            seed = int(seed)
        except (TypeError, ValueError, OverflowError):
            raise DemoError(f"the seed must be a whole number, not {seed!r}") from None
        if not 0 <= seed < 2**63:
            raise DemoError(f"the seed must be between 0 and 2^63 - 1, not {seed}")
        images = self.model.sample(n, seed=seed)
        return Image.fromarray(make_grid(images, cols=min(cols, n), min_cell=min(128, self.config.display_size)))
