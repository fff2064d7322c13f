"""Hash the weights a tiny training run ends with, to show that a refactor changed no numbers.

    python benchmarks/weights_hash.py            # before the change, then again after it

Trains tests/conftest.py's tiny configuration (16 px, 0.6 kimg, a few seconds) three ways: the
eager path, the optimised path (bf16, channels_last, spectral norm once per step) and the small
recipe with the image pool, each into a fresh folder and cache, on one thread. Prints one
line per run: images seen and a sha256 prefix over every tensor of E, G and G_ema (parameters
and buffers, spectral-norm vectors included). The lines must be identical before and after.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import tiny_config  # noqa: E402

from pioneer.training.loop import train  # noqa: E402


def digest(modules: list[torch.nn.Module]) -> str:
    h = hashlib.sha256()
    for m in modules:
        for k, v in sorted(m.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    torch.set_num_threads(1)
    base = tiny_config()
    small = dataclasses.replace(base.loss, decoder_recon_weight=1.0, encoder_cycle_weight=0.3)
    runs = {"eager": base, "optimised": base.optimised(), "small+pool": tiny_config(image_pool=4, loss=small)}
    for name, cfg in runs.items():
        with tempfile.TemporaryDirectory() as d:
            r = train(cfg, Path(d) / "run", cache_dir=Path(d) / "cache", progress=False)
            print(f"{name:<11} {r.images_seen} images  weights {digest([r.encoder, r.decoder, r.decoder_ema])}")


if __name__ == "__main__":
    main()
