"""Cost of checkpoint verification: sha256 of a training state and of a snapshot, next to the
time torch.save / safetensors take to serialise them, for a preset's networks (random weights,
Adam moments filled as after a step).

    python benchmarks/checkpoint_integrity.py --preset celebahq256
"""

from __future__ import annotations

import argparse
import io
import time

import torch

from pioneer.run import integrity
from pioneer.config import preset
from pioneer.model.networks import Decoder, Encoder


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="celebahq256")
    args = p.parse_args()
    cfg = preset(args.preset).model
    E, G, G_ema = Encoder(cfg), Decoder(cfg), Decoder(cfg)
    adam = {}
    for name, net in (("opt_encoder", E), ("opt_decoder", G)):
        adam[name] = {"state": {i: {"step": torch.tensor(1.0), "exp_avg": torch.randn_like(q),
                                    "exp_avg_sq": torch.rand_like(q)} for i, q in enumerate(net.parameters())},
                      "param_groups": [{"lr": 1e-3, "betas": (0.0, 0.99), "params": list(range(len(list(net.parameters()))))}]}
    state = {"encoder": E.state_dict(), "decoder": G.state_dict(), "decoder_ema": G_ema.state_dict(), **adam,
             "images_seen": 123456, "torch_rng": torch.get_rng_state()}
    buf = io.BytesIO()
    t_save = _timed(lambda: torch.save(state, buf))
    t_hash = _timed(lambda: integrity.payload_digest(state))
    mb = buf.tell() / 2**20
    snap = {f"decoder.{k}": v for k, v in G_ema.state_dict().items()} | {f"encoder.{k}": v for k, v in E.state_dict().items()}
    from safetensors.torch import save as st_save
    t_st = _timed(lambda: st_save({k: v.contiguous() for k, v in snap.items()}))
    t_snap_hash = _timed(lambda: integrity.snapshot_digest({"format": "x"}, snap))
    print(f"preset {args.preset}: training state {mb:.0f} MiB: torch.save {t_save:.2f} s, sha256 {t_hash:.2f} s "
          f"({mb / t_hash:.0f} MiB/s, {t_hash / t_save:.2f}x the save)")
    print(f"snapshot: safetensors save {t_st:.2f} s, sha256 {t_snap_hash:.2f} s")


if __name__ == "__main__":
    main()
