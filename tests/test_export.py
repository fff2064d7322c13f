"""ONNX and TorchScript export: the exported encoder and decoder match PyTorch (max absolute
difference <= 1e-4, float32) at several batch sizes, through onnxruntime and torch.jit.load."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pioneer import Pioneer
from pioneer.cli import main
from pioneer.share.export import ExportError, export, verify_export

pytest_plugins = ["model_fixtures"]

TOL = 1e-4


def run(*args) -> "object":
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def model(tiny_snapshot) -> Pioneer:
    return Pioneer.load(tiny_snapshot, device="cpu")


def _inputs(model: Pioneer, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Images the model made itself (n, 3, 16, 16) and prior codes (n, 32), float32."""
    z = model.sample_codes(n, seed=n)
    return model.decode(z).numpy(), z.numpy()


def test_onnx_matches_pytorch_at_any_batch_size(model, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    result = export(model, tmp_path, "onnx")
    assert set(result.max_abs_diff) == {"encoder", "decoder"} and max(result.max_abs_diff.values()) <= TOL
    enc = ort.InferenceSession(str(tmp_path / "encoder.onnx"), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(tmp_path / "decoder.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in enc.get_inputs()] == ["images"] and enc.get_inputs()[0].shape[1:] == [3, 16, 16]
    assert [i.name for i in dec.get_inputs()] == ["codes"] and dec.get_inputs()[0].shape[1:] == [32]
    assert isinstance(enc.get_inputs()[0].shape[0], str)                      # the batch is symbolic
    for n in (1, 3, 9):
        images, codes = _inputs(model, n)
        z = enc.run(None, {"images": images})[0]
        x = dec.run(None, {"codes": codes})[0]
        assert z.shape == (n, 32) and x.shape == (n, 3, 16, 16)
        assert np.abs(z - model.encode(torch.from_numpy(images)).numpy()).max() <= TOL
        assert np.abs(x - model.decode(torch.from_numpy(codes)).numpy()).max() <= TOL
    # Off-sphere codes are projected as Pioneer.decode projects them.
    x = dec.run(None, {"codes": 3 * codes})[0]
    assert np.abs(x - model.decode(torch.from_numpy(3 * codes)).numpy()).max() <= TOL
    manifest = json.loads((tmp_path / "export.json").read_text())
    assert manifest["files"] == {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}
    assert manifest["resolution"] == 16 and manifest["encoder"]["input"]["shape"] == ["batch", 3, 16, 16]
    assert manifest["max_abs_diff_vs_pytorch"] == result.max_abs_diff
    _check_preprocessing(manifest, model, enc, tmp_path)


def _check_preprocessing(manifest: dict, model: Pioneer, enc, tmp_path) -> None:
    """export.json's preprocessing code, run as written, gives exactly pioneer's input tensor, and
    the exported encoder on it gives pioneer's code for the same file."""
    from PIL import Image

    from pioneer.data import SyntheticFaces
    from pioneer.inference.inputs import convert_one

    namespace: dict = {}
    exec(manifest["preprocessing"]["python"], namespace)             # noqa: S102 (our own file)
    face = Image.fromarray(SyntheticFaces().load(11000, 96))
    files = {"png": tmp_path / "wide.png", "jpg": tmp_path / "big.jpg"}
    face.crop((0, 10, 96, 80)).save(files["png"])                    # not square, not the model's size
    face.resize((400, 400)).save(files["jpg"], quality=90)           # a JPEG decoded at a reduced scale
    for path in files.values():
        x = namespace["preprocess"](path)
        assert x.dtype == np.float32 and x.shape == (3, 16, 16)
        np.testing.assert_array_equal(x, convert_one(path, 16).numpy())
        z = enc.run(None, {"images": x[None]})[0]
        assert np.abs(z - model.encode(str(path)).numpy()).max() <= TOL


def test_onnx_export_during_a_fade_in(tmp_path):
    """Level and alpha are fixed in the graph: halfway through a fade-in the skip branch is in it."""
    pytest.importorskip("onnxruntime")
    from conftest import tiny_model
    from pioneer.model.networks import Decoder, Encoder

    torch.manual_seed(0)
    cfg = tiny_model()
    model = Pioneer(Encoder(cfg), Decoder(cfg), level=2, alpha=0.25, device="cpu")
    result = export(model, tmp_path, "onnx")
    assert max(result.max_abs_diff.values()) <= TOL
    assert json.loads((tmp_path / "export.json").read_text())["alpha"] == 0.25


def test_torchscript_matches_pytorch_at_any_batch_size(model, tmp_path):
    result = export(model, tmp_path, "torchscript")
    assert max(result.max_abs_diff.values()) <= TOL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                             # torch 2.13+ deprecates TorchScript
        enc = torch.jit.load(str(tmp_path / "encoder.pt"))
        dec = torch.jit.load(str(tmp_path / "decoder.pt"))
    for n in (1, 4):
        images, codes = _inputs(model, n)
        with torch.inference_mode():
            z, x = enc(torch.from_numpy(images)), dec(torch.from_numpy(codes))
        assert (z - model.encode(torch.from_numpy(images))).abs().max() <= TOL
        assert (x - model.decode(torch.from_numpy(codes))).abs().max() <= TOL


def test_verification_catches_a_network_that_differs(model, tmp_path):
    result = export(model, tmp_path, "torchscript")
    other = Pioneer.load(model.source, device="cpu")
    with torch.no_grad():
        other.decoder.to_rgb["r16"].bias.add_(0.01)                 # a model the files were not made from
    with pytest.raises(ExportError, match=r"decoder.pt differs from PyTorch by up to 0.01"):
        verify_export(other, result.files, "torchscript")
    assert set(verify_export(model, result.files, "torchscript")) == {"encoder", "decoder"}


def test_export_command(tiny_snapshot, tmp_path):
    pytest.importorskip("onnxruntime")
    r = run("export", "--model", tiny_snapshot.parent, "--format", "onnx", "-o", tmp_path / "onnx")
    assert r.exit_code == 0, r.output
    assert "encoder: " in r.output and "max |difference| from PyTorch" in r.output
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == ["decoder.onnx", "encoder.onnx", "export.json"]
    r = run("export", "--model", tmp_path / "missing.safetensors", "-o", tmp_path / "x")
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert r.exit_code != 0 and len(errors) == 1 and "missing.safetensors" in errors[0], r.output
