"""What precision / recall (pr1k) can reach on a model's data: held-out real images and the
model's reconstructions scored like prior samples, against the training images pr1k uses.

    python benchmarks/pr_reference.py --model runs/00000-synthetic64 --num 500

Real held-out images give the ceiling the metric's sampling noise leaves (about 0.8 / 0.8 at
1000 reals). If reconstructions score near 0 too, the model's blur alone puts its images outside
the real support in Inception space, and samples cannot score higher than that.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pioneer.metrics import MetricContext, to_uint8
from pioneer.metrics.fid import inception_of, subset
from pioneer.metrics.precision_recall import precision_recall, real_features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="snapshot or run folder (trained on its data)")
    parser.add_argument("--num", type=int, default=500, help="held-out images scored (at most the test set)")
    parser.add_argument("--reals", type=int, default=1000, help="training images, as pr1k uses")
    args = parser.parse_args()
    model = Path(args.model)
    ctx = MetricContext.from_snapshot(model / "snapshot.safetensors" if model.is_dir() else model, progress=True)
    inception = inception_of(ctx)
    reals = real_features(ctx, min(args.reals, len(ctx.data.train)), inception)
    idx = subset(ctx.data.test, args.num)

    def reconstructions():
        for x in ctx.real_images(idx):
            yield to_uint8(ctx.model.reconstruct(x, batch_size=ctx.batch_size))

    for name, batches in (("held-out images", ctx.real_images(idx)), ("reconstructions", reconstructions())):
        p, r = precision_recall(reals, inception.of_batches(batches, len(idx), name, True))
        print(f"{name:16s} ({len(idx)}) vs {len(reals)} training images: precision {p:.3f}, recall {r:.3f}")


if __name__ == "__main__":
    main()
