"""Data-path throughput per resolution: a random global batch read from the uint8 pyramid
cache, converted to float, flipped and faded exactly as the training loop does it.

    python benchmarks/loader_throughput.py                         # synthetic faces at 64
    python benchmarks/loader_throughput.py --data /data/celebahq --resolution 256 --batch 32

Compare against benchmarks/throughput.py (whose --loader option puts both side by side): the
loader should be far faster than training at every resolution (it runs in the training
process, between iterations).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from pioneer.training.speed import loader_images_per_s
from pioneer.config import RESOLUTIONS
from pioneer.data import open_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="synthetic")
    ap.add_argument("--resolution", type=int, default=64, help="top of the pyramid")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "pioneer"))
    ap.add_argument("--device", default="cpu", help="where the batches go (pinned uploads on cuda)")
    ap.add_argument("--channels-last", action="store_true", help="NHWC batches, as the presets train")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    split = open_dataset(a.data, a.resolution, a.cache_dir)
    train = torch.as_tensor(split.train, dtype=torch.long)
    rows = []
    print(f"data {a.data}, {len(train)} training images, batch {a.batch}")
    print(f"{'res':>5} {'ms/batch':>9} {'img/s':>10}")
    for r in RESOLUTIONS[: RESOLUTIONS.index(a.resolution) + 1]:
        sec = a.batch / loader_images_per_s(split.pyramid, train, r, a.batch, torch.device(a.device), a.channels_last,
                                            iters=a.iters)
        rows.append({"resolution": r, "batch": a.batch, "ms_per_batch": 1000 * sec, "images_per_s": a.batch / sec})
        print(f"{r:>5} {1000 * sec:>9.2f} {a.batch / sec:>10.0f}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"data": a.data, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
