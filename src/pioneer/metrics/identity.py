"""Identity preservation: dlib's 128-d face embeddings of each input and its reconstruction.

The paper reports the median L2 distance over 1k test images (0.758 baseline -> 0.712
Balanced PIONEER); dlib's own rule is that < 0.6 means the same person. Faces are found with
dlib's HOG detector (one 2x upsampling; images under 256 px are first enlarged to 256), fitted
with the 5-point landmark model and embedded with dlib_face_recognition_resnet_model_v1 (all from
the face-recognition-models package, found without importing it). Pairs where dlib finds no face
in the input or in the reconstruction are counted, not scored.

The data set's images are taken as aligned already (CelebA-HQ and FFHQ are); align raw photos
first with `pioneer align`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from pioneer.metrics.context import MetricContext, to_uint8
from pioneer.metrics.registry import register

SAME_PERSON = 0.6
RECOGNITION_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"


class FaceEmbedder:
    """RGB uint8 image (H, W, 3) -> 128-d embedding of its most confident face, or None."""

    def __init__(self, min_side: int = 256) -> None:
        from pioneer.inference.align import model_file, INSTALL_HINT

        try:
            import dlib
        except ImportError as e:
            raise RuntimeError(f"the identity metric needs dlib: {INSTALL_HINT}") from e
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(model_file(SHAPE_MODEL)))
        self._net = dlib.face_recognition_model_v1(str(model_file(RECOGNITION_MODEL)))
        self.min_side = min_side

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        img = np.asarray(image, dtype=np.uint8)
        if min(img.shape[:2]) < self.min_side:
            scale = self.min_side / min(img.shape[:2])
            size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
            img = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))
        img = np.ascontiguousarray(img)
        rects, scores, _ = self._detector.run(img, 1, 0.0)
        if not rects:
            return None
        best = rects[int(np.argmax(scores))]
        return np.asarray(self._net.compute_face_descriptor(img, self._shape(img, best)), dtype=np.float64)

    def embed_batch(self, images: torch.Tensor) -> list[np.ndarray | None]:
        """uint8 (B, 3, H, W) or float in [-1, 1] -> one embedding (or None) per image."""
        arrays = to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()
        return [self(a) for a in arrays]


def identity_distances(inputs: list[np.ndarray | None], recs: list[np.ndarray | None]) -> dict[str, Any]:
    """Median L2 over pairs where both faces were found, and the counts of faces missed."""
    d = [float(np.linalg.norm(a - b)) for a, b in zip(inputs, recs) if a is not None and b is not None]
    return {
        "identity": float(np.median(d)) if d else float("nan"),
        "mean": float(np.mean(d)) if d else float("nan"),
        "same_person_share": float(np.mean(np.asarray(d) < SAME_PERSON)) if d else float("nan"),
        "num": len(inputs),
        "scored": len(d),
        "missed_input": sum(a is None for a in inputs),
        "missed_reconstruction": sum(a is not None and b is None for a, b in zip(inputs, recs)),
    }


@register("identity", "median L2 of dlib face embeddings, test input vs reconstruction (0.6 = same person)")
def identity(ctx: MetricContext) -> dict[str, Any]:
    from pioneer.metrics.fid import subset

    data = ctx.require_data("identity")
    embed = FaceEmbedder()
    n = ctx.count(1000, len(data.test))
    inputs: list[np.ndarray | None] = []
    recs: list[np.ndarray | None] = []
    with tqdm(total=n, unit="img", desc="identity", disable=not ctx.progress, leave=False) as bar:
        for x in ctx.real_images(subset(data.test, n, ctx.seed)):
            inputs += embed.embed_batch(x)
            recs += embed.embed_batch(ctx.model.reconstruct(x, batch_size=ctx.batch_size))
            bar.update(len(x))
    return {**identity_distances(inputs, recs), "network": "dlib-resnet-v1"}
