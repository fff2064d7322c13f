"""The Python facade for a trained model: encode, decode, reconstruct, sample, interpolate, edit.

    from pioneer import Pioneer
    m = Pioneer.load("runs/00000-synthetic64/snapshot.safetensors")
    z = m.encode(["a.png", "b.png"])          # (2, D) codes on the unit sphere
    x = m.decode(z)                           # (2, 3, r, r) float in [-1, 1]
    m.to_pil(m.reconstruct("a.png"))[0].save("a-rec.png")

Inputs are images of any kind `pioneer.inference.inputs` accepts (paths, PIL images, arrays,
tensors, lists of these). Large inputs are converted and run in batches of `batch_size`. Outputs are float CPU tensors in [-1, 1];
`to_pil` turns them into images to save.
"""

from __future__ import annotations

import hashlib
import numbers
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from tqdm import tqdm

from pioneer.config import ModelConfig
from pioneer.images import to_pil
from pioneer.inference import latent
from pioneer.inference.sampler import FIT_NUM, FittedCodes, SamplerError, fit_to_data
from pioneer.inference.inputs import ImageInput, Images, InputError, as_sequence, resolve_device, to_batches
from pioneer.inference.latent import AttributeVector, Method
from pioneer.model.networks import Decoder, Encoder, sample_prior
from pioneer.run.checkpoint import CheckpointError, load_snapshot


def state_fingerprint(*modules: nn.Module) -> str:
    """Short hash of the modules' weights: identifies the model an attribute vector belongs to."""
    h = hashlib.blake2b(digest_size=8)
    for i, module in enumerate(modules):
        for name, tensor in sorted(module.state_dict().items()):
            h.update(f"{i}.{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def fold_spectral_norm(module: nn.Module) -> None:
    """Bake W / sigma into plain weights: in eval mode spectral norm only rescales by a fixed
    sigma, so inference need not recompute it on every call."""
    for sub in module.modules():
        if parametrize.is_parametrized(sub, "weight"):
            parametrize.remove_parametrizations(sub, "weight", leave_parametrized=True)


class Pioneer:
    """A trained encoder and (EMA) decoder, run in eval mode at a fixed level and alpha.

    Usually made by `Pioneer.load(snapshot)`. The constructor takes over the networks it is
    given: it puts them in eval mode, folds spectral norm into their weights and moves them to
    `device`. channels_last (NHWC) convolutions are faster on CPUs (about 1.2-1.9x measured
    at 64-256 px) and GPUs alike; outputs are returned in the usual contiguous layout.
    """

    def __init__(self, encoder: Encoder, decoder: Decoder, level: int, alpha: float = 1.0, *,
                 device: torch.device | str | None = None, channels_last: bool = True, source: str = "",
                 images_seen: int = 0, extra: dict[str, Any] | None = None) -> None:
        if encoder.cfg != decoder.cfg:
            raise ValueError("the encoder and decoder were built from different model configurations")
        if not 0 <= level < encoder.cfg.num_levels:
            raise ValueError(f"level {level} is outside the model's 0..{encoder.cfg.num_levels - 1}")
        self.fingerprint = state_fingerprint(encoder, decoder)   # before folding: the snapshot's weights
        self.device = resolve_device(device)
        self.encoder = encoder.eval().requires_grad_(False)
        self.decoder = decoder.eval().requires_grad_(False)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        for net in (self.encoder, self.decoder):
            fold_spectral_norm(net)
            net.to(self.device, memory_format=self.memory_format)
        self.level = level
        self.alpha = float(alpha)
        self.source = source
        self.images_seen = images_seen
        self.extra = dict(extra or {})      # what training recorded, e.g. {"data": "synthetic"}
        self.vectors: dict[str, AttributeVector] = {}   # attribute vectors shipped with a pretrained folder

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str | None = None,
             channels_last: bool = True) -> "Pioneer":
        """Load a snapshot written by training (`RUN/snapshot.safetensors`); CheckpointError
        with a one-line reason when the file is missing or is not a pioneer snapshot."""
        device = resolve_device(device)         # fail before reading a large file
        snap = load_snapshot(path)
        encoder, decoder = Encoder(snap.config), Decoder(snap.config)
        try:
            encoder.load_state_dict(snap.encoder_state)
            decoder.load_state_dict(snap.decoder_state)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise CheckpointError(f"{path}: the weights do not fit the model its metadata describes ({first})") from e
        return cls(encoder, decoder, snap.level, snap.alpha, device=device, channels_last=channels_last,
                   source=str(path), images_seen=snap.images_seen, extra=snap.extra)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike | None = None, device: torch.device | str | None = None,
                        channels_last: bool = True, **kwargs: Any) -> "Pioneer":
        """Load a pretrained folder (`save_pretrained`, `pioneer publish`) or a Hugging Face Hub
        repo id ("owner/name"); kwargs: revision, cache_dir, token. See pioneer.hub. Without a
        name: the small model that ships with pioneer (pioneer.share.models.BUNDLED)."""
        from pioneer.share.hub import load_pretrained
        from pioneer.share.models import bundled_model

        if name_or_path is None:
            name_or_path = bundled_model()
        return load_pretrained(name_or_path, device=device, channels_last=channels_last, **kwargs)

    def save_pretrained(self, folder: str | os.PathLike, **kwargs: Any) -> Path:
        """Write config.json, model.safetensors (spectral norm folded), attribute vectors and a
        model card into `folder`; kwargs: run_dir, vectors, card, data, cache_dir. See pioneer.hub."""
        from pioneer.share.hub import save_pretrained

        return save_pretrained(self, folder, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """save_pretrained into a temporary folder and upload it to the Hub repo `repo_id`;
        returns the commit URL. kwargs: private, commit_message, token, and save_pretrained's."""
        from pioneer.share.hub import push_model

        return push_model(self, repo_id, **kwargs)

    # ------------------------------------------------------------------------------ properties

    @property
    def config(self) -> ModelConfig:
        return self.encoder.cfg

    @property
    def resolution(self) -> int:
        """Side of the images the model reads and writes (the level the snapshot reached)."""
        return self.config.resolution(self.level)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def __repr__(self) -> str:
        return (f"Pioneer({self.resolution}x{self.resolution}, latent {self.latent_dim}, level {self.level}, "
                f"alpha {self.alpha:g}, {self.images_seen / 1000:g} kimg, device {self.device}, "
                f"source {self.source or '(in memory)'!r})")

    to_pil = staticmethod(to_pil)

    # ------------------------------------------------------------------------------ inputs

    def prepare(self, images: Images) -> torch.Tensor:
        """Convert images (any accepted kind) to a float batch (N, 3, r, r) in [-1, 1] on the CPU."""
        batches = list(to_batches(images, self.resolution, batch_size=256))
        return torch.cat(batches) if batches else torch.empty(0, 3, self.resolution, self.resolution)


    def codes(self, x: Images | torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Codes (N, D) from codes (a float tensor (D,) or (N, D)) or from images (encoded)."""
        if isinstance(x, torch.Tensor) and x.ndim in (1, 2) and x.is_floating_point():
            return self._as_codes(x)
        return self.encode(x, batch_size=batch_size)

    def _as_codes(self, z: torch.Tensor) -> torch.Tensor:
        if not (isinstance(z, torch.Tensor) and z.ndim in (1, 2) and z.is_floating_point()
                and z.shape[-1] == self.latent_dim):
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise InputError(f"codes must be a float tensor (N, {self.latent_dim}) or ({self.latent_dim},), got {got}")
        return latent.normalize(z.detach().cpu().reshape(-1, self.latent_dim))

    # ------------------------------------------------------------------------------ networks

    @torch.inference_mode()
    def encode(self, images: Images, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        """Images -> codes (N, D) on the unit sphere (float32, CPU)."""
        items = as_sequence(images)
        out = []
        with tqdm(total=len(items), unit="img", desc="encode", disable=not progress, leave=False) as bar:
            for x in to_batches(items, self.resolution, batch_size):
                x = x.to(self.device).contiguous(memory_format=self.memory_format)
                out.append(self.encoder(x, self.level, self.alpha).cpu())
                bar.update(len(x))
        return torch.cat(out) if out else torch.empty(0, self.latent_dim)

    @torch.inference_mode()
    def decode(self, z: torch.Tensor, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        """Codes (N, D) or (D,) -> images (N, 3, r, r) clamped to [-1, 1] (float32, CPU). Codes off
        the sphere are projected onto it, as the decoder only saw unit-norm codes in training."""
        z = self._as_codes(z)
        out = []
        with tqdm(total=len(z), unit="img", desc="decode", disable=not progress, leave=False) as bar:
            for chunk in z.split(batch_size):
                x = self.decoder(chunk.to(self.device), self.level, self.alpha)
                out.append(x.float().clamp_(-1.0, 1.0).cpu().contiguous())   # clamped: what a saved image shows
                bar.update(len(chunk))
        return torch.cat(out) if out else torch.empty(0, 3, self.resolution, self.resolution)

    def reconstruct(self, images: Images, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        """G(E(x)): images -> reconstructions (N, 3, r, r) in [-1, 1]."""
        return self.decode(self.encode(images, batch_size, progress), batch_size)

    def sample_codes(self, n: int, seed: int | None = None, sampler: FittedCodes | None = None) -> torch.Tensor:
        """n codes (n, D) from the prior (N(0, I) projected onto the sphere), or from `sampler`
        (`fit_sampler`); the same seed gives the same codes."""
        if sampler is not None and len(sampler.mean) != self.latent_dim:
            raise SamplerError(f"the fitted sampler has {len(sampler.mean)}-d codes, this model {self.latent_dim}-d: "
                             "fit it to this model (Pioneer.fit_sampler)")
        if n < 1:
            raise InputError(f"the number of samples must be at least 1, got {n}")
        gen = torch.Generator()
        if seed is None:
            gen.seed()                      # fresh entropy, without touching torch's global RNG
        else:
            gen.manual_seed(seed)
        return sampler.sample(n, gen) if sampler is not None else sample_prior(n, self.latent_dim, gen)

    def sample(self, n: int, seed: int | None = None, batch_size: int = 64,
               sampler: FittedCodes | None = None) -> torch.Tensor:
        """n random images (n, 3, r, r) in [-1, 1] from the prior or `sampler`; the same seed gives
        the same images."""
        return self.decode(self.sample_codes(n, seed, sampler), batch_size)

    def fit_sampler(self, data: str | None = None, num: int = FIT_NUM, images: Images | None = None,
                    cache_dir: str | None = None, progress: bool = False) -> FittedCodes:
        """A Gaussian fitted to the codes of real images (inference/sampler.py), for `sample`:
        of `images` when given, else of `num` training images of `data` (default: the data set
        the snapshot was trained on)."""
        if images is not None:
            return FittedCodes.fit(self.encode(images, progress=progress))
        return fit_to_data(self, data, num, cache_dir, progress=progress)

    # ------------------------------------------------------------------------------ latent space

    def _endpoints(self, inputs: Sequence[Any] | torch.Tensor, count: int, what: str) -> torch.Tensor:
        z = self.codes(inputs if isinstance(inputs, torch.Tensor) else list(inputs))
        if len(z) != count:
            raise InputError(f"{what} needs exactly {count} images or codes, got {len(z)}")
        return z

    def interpolate(self, a: ImageInput | torch.Tensor, b: ImageInput | torch.Tensor, steps: int = 8,
                    method: Method = "slerp") -> torch.Tensor:
        """`steps` images from the reconstruction of a to that of b (both included): (steps, 3, r, r)."""
        za, zb = self.codes(a), self.codes(b)
        if len(za) != 1 or len(zb) != 1:
            raise InputError(f"interpolate takes one image or code at each end, got {len(za)} and {len(zb)}")
        return self.decode(latent.interpolate(za[0], zb[0], steps, method))

    def interpolation_grid(self, corners: Sequence[Any] | torch.Tensor, rows: int = 8, cols: int | None = None,
                           method: Method = "slerp") -> torch.Tensor:
        """Four corners (top-left, top-right, bottom-left, bottom-right; images or codes) ->
        a rows x cols grid by bilinear slerp, row-major: (rows * cols, 3, r, r)."""
        z = self._endpoints(corners, 4, "an interpolation grid")
        return self.decode(latent.grid4(z, rows, cols, method).flatten(0, 1))

    def interpolation_hex(self, corners: Sequence[Any] | torch.Tensor, radius: int = 3,
                          method: Method = "slerp") -> tuple[torch.Tensor, torch.Tensor]:
        """Six corners (clockwise from the top-left; images or codes) -> the hexagon of Fig. 1:
        images (M, 3, r, r) and their (x, y) cell positions (M, 2), for `images.place_tiles`."""
        z = self._endpoints(corners, 6, "a hexagonal interpolation")
        codes, positions = latent.hex6(z, radius, method)
        return self.decode(codes), positions

    def attribute_vector(self, with_attribute: Images, without_attribute: Images, attribute: str = "attribute",
                         source: str = "", batch_size: int = 64, progress: bool = False) -> AttributeVector:
        """The paper's attribute vector: mean code of images with the attribute minus the mean
        code of images without it (32-64 of each in the paper)."""
        z_with = self.encode(with_attribute, batch_size, progress)
        z_without = self.encode(without_attribute, batch_size, progress)
        return AttributeVector(latent.mean_difference(z_with, z_without), attribute, len(z_with), len(z_without),
                               model=self.fingerprint, snapshot=self.source, source=source)

    def _vector(self, v: AttributeVector | torch.Tensor) -> torch.Tensor:
        if isinstance(v, AttributeVector):
            if v.model and v.model != self.fingerprint:
                warnings.warn(f"attribute vector {v.attribute!r} was made with another model ({v.model}, this one is "
                              f"{self.fingerprint}): its direction may mean nothing here", stacklevel=3)
            v = v.vector
        if v.shape != (self.latent_dim,):
            raise InputError(f"an attribute vector must have shape ({self.latent_dim},), got {tuple(v.shape)}")
        return v.float()

    def edit(self, x: Images | torch.Tensor, vectors: AttributeVector | torch.Tensor | Sequence[AttributeVector | torch.Tensor],
             strengths: float | Sequence[float]) -> torch.Tensor:
        """Decode E(x) + sum_i strengths[i] * vectors[i], re-normalised onto the sphere: (N, 3, r, r).
        One vector and one strength, or a combination (the paper's Fig. 8)."""
        vs = [vectors] if isinstance(vectors, (AttributeVector, torch.Tensor)) else list(vectors)
        ss = [float(strengths)] if isinstance(strengths, numbers.Real) else list(strengths)
        return self.decode(latent.edit(self.codes(x), [self._vector(v) for v in vs], ss))

    def edit_strip(self, x: Images | torch.Tensor, vector: AttributeVector | torch.Tensor,
                   strengths: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0)) -> torch.Tensor:
        """Each input moved by each strength along one vector (the paper's Fig. 7):
        (N, S, 3, r, r), the images of input n in row n."""
        z = self.codes(x)
        codes = latent.edit_strip(z, self._vector(vector), strengths)          # (N, S, D)
        return self.decode(codes.flatten(0, 1)).unflatten(0, codes.shape[:2])
