"""Export a trained encoder and decoder for serving without pioneer: ONNX (onnxruntime) or
TorchScript, at the model's resolution, with a dynamic batch size, verified against PyTorch.

    encoder.onnx / encoder.pt   images (B, 3, r, r) float32 in [-1, 1] -> codes (B, D) on the unit sphere
    decoder.onnx / decoder.pt   codes (B, D) float32 (projected onto the sphere) -> images (B, 3, r, r)
                                float32 clamped to [-1, 1], as Pioneer.decode returns them
    export.json                 the above, level and alpha, the exporter, and the verification's
                                largest absolute differences from PyTorch

Both graphs are traced at the model's level and alpha, which are fixed in them; spectral norm is
folded into plain weights first. ONNX goes through `torch.onnx.export(dynamo=True)` (torch.export
and onnxscript): the exporter torch develops, which works on torch 2.11 to 2.14. The legacy
TorchScript-based exporter (dynamo=False) also runs there but warns that it will be removed.
onnx, onnxscript and onnxruntime are imported only here (`pip install 'pioneer[export]'`).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pioneer.errors import PioneerError
from pioneer.atomic import atomic_write_text
from pioneer.share.hub import plain_copy

if TYPE_CHECKING:
    from pioneer.inference.facade import Pioneer

Format = Literal["onnx", "torchscript"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}
DEFAULT_OPSET = 18
TOLERANCE = 1e-4          # largest absolute difference from PyTorch accepted, float32
EXAMPLE_BATCH = 2         # traced with 2: torch.export specialises a batch of 1
VERIFY_BATCH = 5          # verified with another batch size, so a fixed batch would fail


class ExportError(PioneerError, RuntimeError):
    """An export that failed or does not match PyTorch; the message says which network and why."""


class EncoderGraph(nn.Module):
    """images (B, 3, r, r) in [-1, 1] -> codes (B, D), at a fixed level and alpha."""

    def __init__(self, encoder: nn.Module, level: int, alpha: float) -> None:
        super().__init__()
        self.encoder, self.level, self.alpha = encoder, level, alpha

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images, self.level, self.alpha)


class DecoderGraph(nn.Module):
    """codes (B, D) -> images (B, 3, r, r) in [-1, 1]: projected onto the sphere and clamped as
    in Pioneer.decode, at a fixed level and alpha."""

    def __init__(self, decoder: nn.Module, level: int, alpha: float) -> None:
        super().__init__()
        self.decoder, self.level, self.alpha = decoder, level, alpha

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        z = F.normalize(codes.float(), dim=1)
        return self.decoder(z, self.level, self.alpha).clamp(-1.0, 1.0)


@dataclass
class ExportResult:
    folder: Path
    format: str
    files: dict[str, Path]                                  # "encoder" / "decoder" -> file
    max_abs_diff: dict[str, float] = field(default_factory=dict)


def graphs(model: "Pioneer") -> dict[str, nn.Module]:
    """The two networks of `model` as single-input modules on the CPU (float32, NCHW)."""
    return {"encoder": EncoderGraph(plain_copy(model.encoder), model.level, model.alpha).eval(),
            "decoder": DecoderGraph(plain_copy(model.decoder), model.level, model.alpha).eval()}


def example_inputs(model: "Pioneer", batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Inputs like the real ones: the model's own samples as images (B, 3, r, r), prior codes (B, D)."""
    codes = model.sample_codes(batch, seed=seed)
    return {"encoder": model.decode(codes), "decoder": codes}


IO_NAMES = {"encoder": (["images"], ["codes"]), "decoder": (["codes"], ["images"])}


def _export_onnx(graph: nn.Module, example: torch.Tensor, path: Path, names: tuple[list[str], list[str]],
                 opset: int) -> None:
    batch = torch.export.Dim("batch", min=1, max=65536)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # deprecation notes of torch.export internals
        torch.onnx.export(graph, (example,), str(path), input_names=names[0], output_names=names[1],
                          dynamic_shapes=({0: batch},), opset_version=opset, dynamo=True, external_data=False,
                          verbose=False, optimize=True)


def _export_torchscript(graph: nn.Module, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # the encoder's resolution check is a constant in the trace
        traced = torch.jit.trace(graph, (example,), check_trace=False)
        torch.jit.save(traced, str(path))         # (torch 2.14 marks TorchScript deprecated)


def export(model: "Pioneer", folder: str | os.PathLike, fmt: Format = "onnx", *, opset: int = DEFAULT_OPSET,
           verify: bool = True, tolerance: float = TOLERANCE) -> ExportResult:
    """Write encoder and decoder files of `fmt` into `folder` with export.json; with `verify`,
    run them on a batch of another size and raise ExportError when an output differs from
    PyTorch by more than `tolerance`."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}: use {' or '.join(FORMATS)}")
    _check_available(fmt)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    nets, examples = graphs(model), example_inputs(model, EXAMPLE_BATCH)
    result = ExportResult(folder, fmt, {})
    for name, graph in nets.items():
        path = folder / f"{name}{SUFFIX[fmt]}"
        try:
            if fmt == "onnx":
                _export_onnx(graph, examples[name], path, IO_NAMES[name], opset)
            else:
                _export_torchscript(graph, examples[name], path)
        except Exception as e:  # exporters raise many types; name the network and the first line
            text = str(e).strip()
            raise ExportError(f"{fmt} export of the {name} failed: {text.splitlines()[0] if text else type(e).__name__}") from e
        result.files[name] = path
    if verify:
        result.max_abs_diff = verify_export(model, result.files, fmt, nets, tolerance)
    _write_manifest(model, result, opset)
    return result


def _check_available(fmt: str) -> None:
    needed = ("onnx", "onnxscript", "onnxruntime") if fmt == "onnx" else ()
    missing = []
    for module in needed:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ExportError(f"ONNX export needs {', '.join(missing)}: pip install 'pioneer[export]'")


def runner(path: Path, fmt: str) -> Callable[[np.ndarray], np.ndarray]:
    """A function running an exported network on a float32 batch, on the CPU."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # torch 2.13+ marks TorchScript deprecated
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()
    return run


def verify_export(model: "Pioneer", files: dict[str, Path], fmt: str, nets: dict[str, nn.Module] | None = None,
                  tolerance: float = TOLERANCE, batch: int = VERIFY_BATCH) -> dict[str, float]:
    """Largest absolute difference of each exported network from PyTorch on a batch of `batch`
    (another size than the traced one); ExportError above `tolerance`."""
    nets = nets or graphs(model)
    inputs = example_inputs(model, batch, seed=1)
    out = {}
    for name, path in files.items():
        x = inputs[name].contiguous()
        with torch.inference_mode():
            want = nets[name](x).numpy()
        got = runner(path, fmt)(x.numpy())
        if got.shape != want.shape:
            raise ExportError(f"{path} returns shape {got.shape} for a batch of {batch}, PyTorch {want.shape}")
        out[name] = float(np.abs(got - want).max())
        if not out[name] <= tolerance:
            raise ExportError(f"{path} differs from PyTorch by up to {out[name]:.3g} (tolerance {tolerance:g})")
    return out


# How an image becomes the encoder's input, as pioneer does it (pioneer.data.sources.decode_image):
# runnable with Pillow and numpy alone; {r} is the model's resolution.
PREPROCESS = """\
import numpy as np
from PIL import Image, ImageOps

def preprocess(path, r={r}):
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft(None, (2 * r, 2 * r))     # large JPEGs decode at a reduced scale first
        img = ImageOps.exif_transpose(img).convert("RGB")
    w, h = img.size
    s = min(w, h)                                # center crop to a square on the shorter side
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    img = img.crop(box) if s == r else img.resize((r, r), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    return np.asarray(img, np.float32).transpose(2, 0, 1) / 127.5 - 1   # (3, r, r) in [-1, 1]
"""


def _write_manifest(model: "Pioneer", result: ExportResult, opset: int) -> None:
    r, d = model.resolution, model.latent_dim
    manifest = {
        "format": result.format,
        "files": {name: path.name for name, path in result.files.items()},
        "encoder": {"input": {"name": "images", "shape": ["batch", 3, r, r], "dtype": "float32", "range": [-1, 1]},
                    "output": {"name": "codes", "shape": ["batch", d], "dtype": "float32", "note": "unit norm"}},
        "decoder": {"input": {"name": "codes", "shape": ["batch", d], "dtype": "float32",
                              "note": "projected onto the unit sphere"},
                    "output": {"name": "images", "shape": ["batch", 3, r, r], "dtype": "float32", "range": [-1, 1]}},
        "resolution": r, "latent_dim": d, "level": model.level, "alpha": model.alpha,
        "images_seen": model.images_seen, "source": model.source, "fingerprint": model.fingerprint,
        "exporter": (f"torch.onnx.export(dynamo=True), opset {opset}" if result.format == "onnx"
                     else "torch.jit.trace") + f", torch {torch.__version__}",
        "max_abs_diff_vs_pytorch": result.max_abs_diff,
        "preprocessing": {
            "steps": ["decode to 8-bit RGB, EXIF orientation applied (16-bit images scaled, transparency "
                      "composited as pioneer.data.sources.to_rgb does)",
                      "center-crop to a square on the shorter side",
                      f"resize to {r}x{r} with Lanczos (Pillow, reducing_gap 3)",
                      "HWC uint8 -> CHW float32, x / 127.5 - 1: values in [-1, 1]",
                      "stack into (batch, 3, r, r); faces from photos are aligned first (pioneer align)"],
            "python": PREPROCESS.format(r=r),
        },
        "postprocessing": "images (batch, 3, r, r) in [-1, 1] -> uint8: round((x + 1) * 127.5), clip to 0..255, "
                          "CHW -> HWC",
    }
    atomic_write_text(result.folder / "export.json", json.dumps(manifest, indent=2) + "\n")
