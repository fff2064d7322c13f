"""torch.hub entry points of pioneer.

    import torch
    m = torch.hub.load("path/to/pioneer", "pioneer", "published/", source="local")
    m = torch.hub.load(GITHUB_OWNER + "/pioneer", "pioneer", weights="owner/pioneer-faces64")   # from GitHub
    x = m.sample(16, seed=0)                  # (16, 3, r, r) in [-1, 1]

`weights` is a pretrained folder (`pioneer publish`), a Hugging Face Hub repo id of one, a run
folder or a snapshot file; without it, the small model that ships with pioneer. The package
is imported from this checkout's src/ folder, so the repository need not be installed; its
dependencies must be.
"""

import sys
from pathlib import Path

dependencies = ["torch", "numpy", "PIL", "safetensors", "tqdm"]

_SRC = str(Path(__file__).resolve().parent / "src")


def pioneer(weights: str | None = None, device: str | None = None, channels_last: bool = True, **kwargs):
    """A trained Balanced PIONEER autoencoder (pioneer.Pioneer): encode, decode, reconstruct,
    sample, interpolate, edit. weights: any --model of pioneer (None: the model that ships with
    it); kwargs go to Pioneer.from_pretrained (revision, cache_dir, token)."""
    if _SRC not in sys.path:
        sys.path.insert(0, _SRC)     # this checkout's package (unless pioneer is imported already)
    from pioneer import open_model

    return open_model(weights, device=device, channels_last=channels_last, **kwargs)
