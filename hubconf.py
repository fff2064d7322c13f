"""torch.hub entry points of pioneer.

    import torch
    m = torch.hub.load("path/to/pioneer", "pioneer", "published/", source="local")
    m = torch.hub.load(GITHUB_OWNER + "/pioneer", "pioneer", weights="owner/pioneer-faces64")   # from GitHub
    x = m.sample(16, seed=0)                  # (16, 3, r, r) in [-1, 1]

`weights` is a pretrained folder (`pioneer publish`), a Hugging Face Hub repo id of one, a run
folder or a snapshot file. The package is imported from this checkout's src/ folder, so the
repository need not be installed; its dependencies must be.
"""

import sys
from pathlib import Path

dependencies = ["torch", "numpy", "PIL", "safetensors", "tqdm"]

_SRC = str(Path(__file__).resolve().parent / "src")


def pioneer(weights: str, device: str | None = None, channels_last: bool = True, **kwargs):
    """A trained Balanced PIONEER autoencoder (pioneer.Pioneer): encode, decode, reconstruct,
    sample, interpolate, edit. kwargs go to Pioneer.from_pretrained (revision, cache_dir, token)."""
    if _SRC not in sys.path:
        sys.path.insert(0, _SRC)     # this checkout's package (unless pioneer is imported already)
    from pioneer import Pioneer

    path = Path(weights).expanduser()
    if path.is_file():
        return Pioneer.load(path, device=device, channels_last=channels_last)
    if path.is_dir() and not (path / "config.json").is_file() and (path / "snapshot.safetensors").is_file():
        return Pioneer.load(path / "snapshot.safetensors", device=device, channels_last=channels_last)
    return Pioneer.from_pretrained(weights, device=device, channels_last=channels_last, **kwargs)
