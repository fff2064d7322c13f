"""Named metrics, shared by training and `pioneer evaluate` (as StyleGAN2-ADA's metric_main).

    from pioneer.metrics import MetricContext, compute, list_metrics
    ctx = MetricContext.from_snapshot("runs/00000-synthetic64/snapshot.safetensors")
    compute("fid1k", ctx)          # {"fid1k": 41.2, "num_gen": 1000, "num_real": 1000, ...}

A metric is a function `fn(ctx) -> dict` registered under a name with `@register(name)`. The
dict holds the headline value under the metric's own name plus details (counts, which network
was used). `compute` adds the seconds it took. `evaluate` runs several, appends one JSON line
per metric to `RUN/metrics.jsonl`, and `format_table` prints them.

Metrics and their weights (all offline unless said):
  fid1k, fid10k, fid50k  FID of generated samples vs the training set (Inception 2015-12-05)
  fid_rec                FID of reconstructions of the test set vs the test set
  lpips_rec              LPIPS between test images and their reconstructions, face crop at 128
  ppl                    perceptual path length on the sphere (eps 1e-4), face crop at 128
  identity               median L2 of dlib face embeddings, input vs reconstruction
  attr_edit              attribute-edit benchmark on the synthetic faces (ground-truth labels)
  collapse               code rank vs random codes, latent cycle, held-out L1 vs the mean face
  pr1k, pr10k            precision / recall of prior samples vs training images (Inception, k = 3)
  prior_fit              how far real codes are from the prior: MMD, codes that survive the cycle
"""

from pioneer.metrics.context import MetricContext, to_uint8
from pioneer.metrics.registry import (MetricError, compute, evaluate, evaluate_during_training, format_table,
                                      list_metrics, register)

__all__ = ["MetricContext", "MetricError", "compute", "evaluate", "evaluate_during_training", "format_table",
           "list_metrics", "register", "to_uint8"]

# Register the metrics (each module decorates its functions with @register).
from pioneer.metrics import attributes, collapse, fid, identity, perceptual, ppl, precision_recall, prior_fit  # noqa: E402, F401
