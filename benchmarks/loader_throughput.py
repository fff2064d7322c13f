"""Data-path throughput per resolution: a random global batch read from the uint8 pyramid
cache, converted to float, flipped and faded exactly as the training loop does it.

    python benchmarks/loader_throughput.py                         # synthetic faces at 64
    python benchmarks/loader_throughput.py --data /data/celebahq --resolution 256 --batch 32

Compare against benchmarks/train_throughput.py: the loader should be far faster than training
at every resolution (it runs in the training process, between iterations).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from pioneer.config import RESOLUTIONS
from pioneer.data import open_dataset
from pioneer.images import to_float
from pioneer.training_loop import fade_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="synthetic")
    ap.add_argument("--resolution", type=int, default=64, help="top of the pyramid")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "pioneer"))
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    split = open_dataset(a.data, a.resolution, a.cache_dir)
    train = torch.as_tensor(split.train, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    rows = []
    print(f"data {a.data}, {len(train)} training images, batch {a.batch}")
    print(f"{'res':>5} {'ms/batch':>9} {'img/s':>10}")
    for r in RESOLUTIONS[: RESOLUTIONS.index(a.resolution) + 1]:
        times = []
        for _ in range(a.iters):
            idx = train[torch.randint(len(train), (a.batch,), generator=g)]
            t = time.perf_counter()
            x = to_float(split.pyramid.images(idx, r))
            flip = torch.rand(a.batch, generator=g) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            fade_images(x, 0.5)
            times.append(time.perf_counter() - t)
        sec = statistics.median(times)
        rows.append({"resolution": r, "batch": a.batch, "ms_per_batch": 1000 * sec, "images_per_s": a.batch / sec})
        print(f"{r:>5} {1000 * sec:>9.2f} {a.batch / sec:>10.0f}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"data": a.data, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
