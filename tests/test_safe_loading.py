"""Loading never unpickles a user-given file, and a wrong file gets a one-line error that names
it and says what it is (a training state, a pickle, an image, a vector, a newer snapshot)."""

from __future__ import annotations

import pickle

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from pioneer import Pioneer
from pioneer.run.checkpoint import CheckpointError, load_snapshot
from pioneer.cli import main
from pioneer.run.filetypes import describe
from pioneer.inference.latent import AttributeVector

pytest_plugins = ["model_fixtures"]


def _rewrite_metadata(src, dst, **changes) -> None:
    """A copy of a safetensors file with some metadata changed."""
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(dst), metadata=meta | changes)


def test_wrong_files_are_named_and_described(tiny_snapshot, tmp_path):
    run = tiny_snapshot.parent
    pickled = tmp_path / "weights.pkl"
    pickled.write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    vector = tmp_path / "Smiling.safetensors"
    AttributeVector(torch.ones(32), "Smiling", 1, 1).save(vector)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    cases = {
        run / "training-state.pt": "is a zip archive (a PyTorch checkpoint such as training-state.pt",
        pickled: "is a Python pickle (never loaded here",
        vector: "is a pioneer attribute vector",
        other: "is a safetensors file of another kind (no pioneer metadata)",
        empty: "is an empty file",
        run / "grids": "is a folder, not a snapshot",
    }
    for path, what in cases.items():
        with pytest.raises(CheckpointError) as e:
            load_snapshot(path)
        message = str(e.value)
        assert "\n" not in message and str(path) in message and what in message, message


def test_newer_snapshot_format_is_refused(tiny_snapshot, tmp_path):
    newer = tmp_path / "newer.safetensors"
    _rewrite_metadata(tiny_snapshot, newer, version="2")
    with pytest.raises(CheckpointError, match=r"newer.safetensors is a pioneer snapshot of format version 2, "
                                              r"newer than this pioneer reads \(1\): upgrade pioneer"):
        Pioneer.load(newer)
    _rewrite_metadata(tiny_snapshot, newer, version="one")
    with pytest.raises(CheckpointError, match="damaged snapshot metadata"):
        Pioneer.load(newer)


def test_cli_names_a_training_state_given_as_model(tiny_snapshot, tmp_path):
    state = tiny_snapshot.parent / "training-state.pt"
    r = CliRunner().invoke(main, ["sample", "--model", str(state), "-o", str(tmp_path / "s.png")], catch_exceptions=False)
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert r.exit_code != 0 and len(errors) == 1 and "Traceback" not in r.output, r.output
    assert f"{state} is a zip archive" in errors[0] and "not a pioneer snapshot" in errors[0]


def test_loading_never_unpickles(tiny_snapshot, tmp_path, monkeypatch):
    out = Pioneer.load(tiny_snapshot, device="cpu").save_pretrained(tmp_path / "pre", card=False, run_dir=None)

    def refuse(*args, **kwargs):
        raise AssertionError("a loader unpickled something")

    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)
    a = Pioneer.load(tiny_snapshot, device="cpu")
    b = Pioneer.from_pretrained(out, device="cpu")
    assert torch.equal(a.sample(2, seed=0), b.sample(2, seed=0))


def test_describe_reads_only_the_header(tmp_path):
    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    assert describe(png) == "a PNG image"
    assert describe(tmp_path / "none") == "missing"
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert describe(text) == "a text file"
