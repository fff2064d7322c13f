"""Where sampled codes come from: the prior, or a Gaussian fitted to the codes of real images.

    prior    z ~ N(0, I) projected onto the sphere: what the game trains the decoder on, what the
             paper shows and what `pr1k`, `fid1k` and docs/generation.md measure.
    fitted   ex-post density estimation (Ghosh et al. 2020, "From Variational to Deterministic
             Autoencoders"): a full-covariance Gaussian fitted to E(x) of training images, drawn
             from and projected onto the sphere. Its samples stay where the encoder puts real
             images, so they look like reconstructions of unseen faces even where a model's prior
             samples do not. It is an extra sampler, not a fix for the prior's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from pioneer.errors import PioneerError

if TYPE_CHECKING:
    from pioneer.inference.facade import Pioneer

SAMPLERS: tuple[str, ...] = ("prior", "fitted")
FIT_NUM = 2000          # training images encoded for the fit: 128-d covariance from 15 codes per dimension


class SamplerError(PioneerError, ValueError):
    """A sampler that cannot be built as asked; the message says what to change."""


@dataclass(frozen=True)
class FittedCodes:
    """A Gaussian N(mean, scale scale^T) over codes; samples are projected onto the unit sphere."""

    mean: torch.Tensor           # (D,)
    scale: torch.Tensor          # (D, D) lower Cholesky factor of the covariance
    num: int                     # codes it was fitted to

    @classmethod
    def fit(cls, codes: torch.Tensor, ridge: float = 1e-6) -> "FittedCodes":
        """Fit to codes (N, D), N >= 2; `ridge` times the mean variance is added to the diagonal so
        that fewer codes than dimensions still give a valid (if flat) factor."""
        if codes.ndim != 2 or len(codes) < 2:
            raise SamplerError(f"fitting a code density needs at least 2 codes, got {tuple(codes.shape)}")
        z = codes.double()
        mean = z.mean(dim=0)
        cov = torch.cov(z.T)                                        # (D, D), unbiased
        cov = cov + ridge * cov.diagonal().mean().clamp_min(1e-12) * torch.eye(len(mean), dtype=z.dtype)
        return cls(mean.float(), torch.linalg.cholesky(cov).float(), len(codes))

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n unit codes (n, D)."""
        eps = torch.randn(n, len(self.mean), generator=generator)
        return F.normalize(self.mean + eps @ self.scale.T, dim=1)


def fit_to_data(model: "Pioneer", data: str | None = None, num: int = FIT_NUM, cache_dir: str | None = None,
                batch_size: int = 64, progress: bool = False) -> FittedCodes:
    """FittedCodes on `num` training images (a fixed subset) of `data`, by default the data set the
    snapshot was trained on (recorded in it); held-out images are never used."""
    import numpy as np

    from pioneer.data import open_dataset
    from pioneer.run.files import cache_dir as resolve_cache_dir

    spec = data or model.extra.get("data")
    if not spec:
        raise SamplerError("the snapshot does not name its training data: pass --data (a folder, .zip, LMDB or synthetic)")
    split = open_dataset(spec, model.resolution, resolve_cache_dir(cache_dir), progress=progress)
    if len(split.train) < 2:
        raise SamplerError(f"{spec} has {len(split.train)} training images: the fitted sampler needs at least 2")
    idx = np.sort(np.random.default_rng(0).permutation(split.train)[:num])
    codes = [model.encode(split.pyramid.images(idx[i:i + batch_size], model.resolution), batch_size=batch_size)
             for i in range(0, len(idx), batch_size)]                     # uint8 batches, encoded as images
    return FittedCodes.fit(torch.cat(codes))
