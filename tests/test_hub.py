"""Pretrained folders (save / load / model card), loading a Hub repo id from the local cache
offline, the upload call (built against a fake HfApi, never sent), `pioneer publish`, and
torch.hub from this checkout. Nothing here touches the network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import tiny_config, one_line_error as _one_line_error
from PIL import Image
from safetensors import safe_open

from pioneer import Pioneer
from pioneer.run.checkpoint import CheckpointError, load_snapshot
from pioneer.cli import main
from pioneer.share.hub import HubError, plain_networks, push_folder
from pioneer.inference.latent import AttributeVector
from pioneer.model.networks import Decoder, Encoder
from pioneer.model.spectral import spectral_norm_layers

pytest_plugins = ["model_fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def run(*args) -> "object":
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def run_dir(tiny_snapshot, tmp_path) -> Path:
    """A copy of the tiny run with a metrics.jsonl line and an attribute vector of its model."""
    run = tmp_path / "run"
    shutil.copytree(tiny_snapshot.parent, run, ignore=shutil.ignore_patterns("tensorboard", "training-state.pt"))
    options = {"preset": None, "command": ["pioneer", "train", "--kimg", "0.6"], "config": tiny_config().to_dict()}
    (run / "options.json").write_text(json.dumps(options))             # as `pioneer train` writes it
    record = {"metric": "lpips_rec", "kimg": 0.6, "results": {"lpips_rec": 0.3125, "num": 64}}
    (run / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    model = Pioneer.load(run / "snapshot.safetensors", device="cpu")
    v = torch.linspace(-1, 1, model.latent_dim)
    AttributeVector(v, "Smiling", 8, 8, model=model.fingerprint, source="test").save(run / "vectors" / "smile.safetensors")
    return run


@pytest.fixture
def published(run_dir, model_cache, tmp_path) -> Path:
    model = Pioneer.load(run_dir / "snapshot.safetensors", device="cpu")
    vec = AttributeVector.load(run_dir / "vectors" / "smile.safetensors")
    return model.save_pretrained(tmp_path / "pretrained", vectors=[vec], cache_dir=model_cache)


def _outputs(model: Pioneer) -> tuple[torch.Tensor, torch.Tensor]:
    z = model.sample_codes(5, seed=3)
    x = model.decode(z)
    return x, model.encode(x)


def test_pretrained_folder_round_trip_is_exact(run_dir, published):
    snap = Pioneer.load(run_dir / "snapshot.safetensors", device="cpu")
    assert sorted(p.name for p in published.iterdir()) == [
        "README.md", "config.json", "model.safetensors", "reconstructions.png", "samples.png", "vectors"]
    loaded = Pioneer.from_pretrained(published, device="cpu")
    for a, b in zip(_outputs(snap), _outputs(loaded)):
        assert torch.equal(a, b)                       # the same float32 weights, not approximately
    assert (loaded.level, loaded.alpha, loaded.images_seen) == (snap.level, snap.alpha, snap.images_seen)
    assert loaded.fingerprint == snap.fingerprint      # attribute vectors made with the snapshot still fit
    assert loaded.extra == snap.extra and loaded.extra["data"] == "synthetic:64"
    assert list(loaded.vectors) == ["Smiling"]
    assert torch.equal(loaded.vectors["Smiling"].vector, torch.linspace(-1, 1, snap.latent_dim))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # no "made with another model" warning
        loaded.edit(loaded.sample_codes(1, seed=0), loaded.vectors["Smiling"], 1.0)


def test_config_records_what_the_model_was_trained_on(run_dir, published):
    config = json.loads((published / "config.json").read_text())
    options = json.loads((run_dir / "options.json").read_text())
    snap = load_snapshot(run_dir / "snapshot.safetensors")
    assert config["format"] == "pioneer-pretrained" and config["version"] == 1
    assert config["model_config"]["latent_dim"] == snap.config.latent_dim == 32
    assert (config["level"], config["resolution"], config["images_seen"]) == (2, 16, snap.images_seen)
    assert config["trained_on"]["data"] == "synthetic:64" and config["training_options"] == options["config"]
    assert config["attribute_vectors"] == {"Smiling": "vectors/Smiling.safetensors"}


def test_weights_are_plain_with_spectral_norm_folded_exactly(run_dir, published):
    snap = load_snapshot(run_dir / "snapshot.safetensors")
    with safe_open(str(published / "model.safetensors"), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    assert not any("parametrizations" in k or k.endswith(("._u", "._v")) for k in tensors)
    # Plain modules (no parametrization at all) take the file as it is ...
    for prefix, net in zip(("encoder.", "decoder."), plain_networks(snap.config)):
        assert not any(".parametrizations." in k for k in net.state_dict())
        net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    # ... and each folded weight is what the snapshot's spectral norm applies in eval mode: W / sigma.
    for prefix, state, net in (("encoder", snap.encoder_state, Encoder(snap.config)),
                               ("decoder", snap.decoder_state, Decoder(snap.config))):
        net.load_state_dict(state)
        net.eval()
        layers = list(spectral_norm_layers(net))
        assert layers
        for name, layer, _ in layers:
            module = name.split(".parametrizations")[0]
            folded = tensors[f"{prefix}.{module}.weight"]
            assert torch.equal(folded, layer.weight)
            sigma = torch.linalg.matrix_norm(folded.double().flatten(1), ord=2)
            assert abs(sigma.item() - 1) < 1e-4


def test_model_card(run_dir, published):
    card = (published / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: pioneer\n")
    snap = load_snapshot(run_dir / "snapshot.safetensors")
    assert f"{snap.images_seen:,}" in card and "synthetic:64" in card
    assert "| lpips_rec | 0.3125 | 0.6 | 64 |" in card                 # the latest metric of metrics.jsonl
    assert "![64 samples (seed 0)](samples.png)" in card and "](reconstructions.png)" in card
    assert '"total_kimg": 0.6' in card                                  # the run's options
    assert "| Smiling | `vectors/Smiling.safetensors` |" in card
    with Image.open(published / "samples.png") as img:                  # 8 x 8 tiles of 64 px (16 px enlarged)
        assert img.size == (2 + 8 * 66, 2 + 8 * 66)
    with Image.open(published / "reconstructions.png") as img:          # held-out pairs, 8 tiles per row
        assert img.size[0] == 2 + 8 * 66 and img.size[1] > 2 and (img.size[1] - 2) % 66 == 0
    assert "**held-out inputs and reconstructions (pairs)**" in card
    assert "\nlicense: mit\n" in card and "# Balanced PIONEER, 16x16, trained on synthetic:64\n" in card
    assert "## Intended use and limits" in card and "real photos of faces come back as synthetic faces" in card
    assert "@inproceedings{heljakka2020balanced" in card


def test_model_card_states_limits_against_the_measured_numbers(published):
    from pioneer.share.card import model_card

    config = json.loads((published / "config.json").read_text())
    metrics = {"collapse": {"results": {"collapse": 0.3, "heldout_l1": 0.1234, "mean_face_l1": 0.339}, "kimg": 1.0},
               "pr1k": {"results": {"pr1k": 0.02, "precision": 0.02, "recall": 0.01}, "kimg": 1.0}}
    card = model_card(config, metrics, [], {})
    assert "held-out L1 0.1234 (images in [-1, 1]); the per-pixel mean of the same images scores 0.339" in card
    assert "precision 0.02, recall 0.01 against training images" in card
    assert "| collapse | 0.3 | 1 |  | heldout_l1 0.1234, mean_face_l1 0.339 |" in card
    other = model_card(dict(config, trained_on={"data": "photos/"}), {}, [], {})
    assert "images unlike the training data reconstruct poorly" in other and "held-out L1" not in other


def test_save_refuses_a_folder_of_other_files(tiny_snapshot, tmp_path):
    model = Pioneer.load(tiny_snapshot, device="cpu")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="photos exists and is not a pioneer pretrained folder"):
        model.save_pretrained(folder, card=False)
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]
    # Written again over an earlier publish: replaced, without the vectors it had.
    out = model.save_pretrained(tmp_path / "pre", card=False, run_dir=None,
                                vectors=[AttributeVector(torch.ones(32), "A", 1, 1, model=model.fingerprint)])
    assert (out / "vectors" / "A.safetensors").is_file()
    model.save_pretrained(out, card=False, run_dir=None)
    assert not (out / "vectors").exists() and Pioneer.from_pretrained(out).vectors == {}
    (out / "config.json").unlink()                  # as a publish stopped before its last file leaves it
    with pytest.raises(CheckpointError, match="has no config.json"):
        Pioneer.from_pretrained(out)
    model.save_pretrained(out, card=False, run_dir=None)
    assert Pioneer.from_pretrained(out).fingerprint == model.fingerprint


def test_save_refuses_a_vector_of_another_model(tiny_snapshot, tmp_path):
    model = Pioneer.load(tiny_snapshot, device="cpu")
    other = AttributeVector(torch.ones(32), "Smiling", 4, 4, model="0123456789abcdef")
    with pytest.raises(ValueError, match="made with another model"):
        model.save_pretrained(tmp_path / "pre", vectors=[other], card=False)
    assert not (tmp_path / "pre").exists()


def test_load_errors_say_what_the_folder_is(run_dir, published, tmp_path):
    with pytest.raises(CheckpointError, match="run has no config.json: it is a run folder"):
        Pioneer.from_pretrained(run_dir)
    with pytest.raises(CheckpointError, match="snapshot.safetensors is a pioneer snapshot: from_pretrained takes a folder"):
        Pioneer.from_pretrained(run_dir / "snapshot.safetensors")
    with pytest.raises(CheckpointError, match="does not exist and is not a Hub repo id"):
        Pioneer.from_pretrained(tmp_path / "missing")
    newer = tmp_path / "newer"
    shutil.copytree(published, newer)
    config = json.loads((newer / "config.json").read_text())
    (newer / "config.json").write_text(json.dumps(config | {"version": 2}))
    with pytest.raises(CheckpointError, match="format version 2, newer than this pioneer reads"):
        Pioneer.from_pretrained(newer)
    (newer / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="not the config of a pioneer pretrained folder"):
        Pioneer.from_pretrained(newer)
    (newer / "config.json").write_text(json.dumps(config | {"model_config": config["model_config"] | {"latent_dim": 64}}))
    with pytest.raises(CheckpointError, match="weights do not fit the model config.json describes"):
        Pioneer.from_pretrained(newer)


# ------------------------------------------------------------------------------------------------
# A Hub repo id, offline, from the cache layout huggingface_hub uses


def _cache_layout(hf_home: Path, repo_id: str, folder: Path, revision: str = "0" * 40) -> Path:
    """HF_HOME/hub/models--owner--name/{refs/main, snapshots/REV/...} holding `folder`'s files."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return repo


_OFFLINE_SCRIPT = """
import sys, torch
from pioneer import Pioneer
from pioneer.share.hub import HubError
m = Pioneer.from_pretrained("someone/pioneer-tiny", device="cpu")
z = m.sample_codes(3, seed=3)
torch.save({"x": m.decode(z), "vectors": sorted(m.vectors)}, sys.argv[1])
try:
    Pioneer.from_pretrained("someone/not-cached", device="cpu")
except HubError as e:
    print("ERROR", e)
"""


def test_repo_id_loads_from_the_cache_offline(published, tmp_path):
    pytest.importorskip("huggingface_hub")
    _cache_layout(tmp_path / "hf", "someone/pioneer-tiny", published)
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    env.pop("HF_HUB_CACHE", None)
    out = tmp_path / "out.pt"
    r = subprocess.run([sys.executable, "-c", _OFFLINE_SCRIPT, str(out)], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    got = torch.load(out, weights_only=True)
    want = Pioneer.from_pretrained(published, device="cpu")
    assert torch.equal(got["x"], want.decode(want.sample_codes(3, seed=3))) and got["vectors"] == ["Smiling"]
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("ERROR")]
    assert line == ["ERROR someone/not-cached is not a local folder and not in the Hugging Face cache "
                    "(offline: HF_HUB_OFFLINE is set), and it could not be downloaded"]


# ------------------------------------------------------------------------------------------------
# Push: the calls are built against a fake HfApi and never sent


class FakeHfApi:
    """Records the calls push makes, and what the uploaded folder held at the time."""

    instances: list["FakeHfApi"] = []

    def __init__(self, token=None):
        self.token = token
        self.calls: list[tuple[str, dict]] = []
        self.uploaded: dict[str, bytes] = {}
        FakeHfApi.instances.append(self)

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))
        return f"https://hub.example/{kwargs['repo_id']}"

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        root = Path(kwargs["folder_path"])
        self.uploaded = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

        class Info:
            commit_url = f"https://hub.example/{kwargs['repo_id']}/commit/abc"
        return Info()


def test_push_folder_builds_the_upload_call(published):
    api = FakeHfApi()
    url = push_folder(published, "me/pioneer-tiny", private=True, api=api)
    assert url == "https://hub.example/me/pioneer-tiny/commit/abc"
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][1] == {"repo_id": "me/pioneer-tiny", "repo_type": "model", "private": True, "exist_ok": True}
    upload = api.calls[1][1]
    assert upload["repo_id"] == "me/pioneer-tiny" and upload["repo_type"] == "model"
    assert upload["folder_path"] == str(published) and "16x16" in upload["commit_message"]
    assert set(api.uploaded) >= {"config.json", "model.safetensors", "README.md", "vectors/Smiling.safetensors"}


def test_push_refuses_what_is_not_a_pretrained_folder(run_dir, published):
    with pytest.raises(CheckpointError, match="no config.json"):
        push_folder(run_dir, "me/x", api=FakeHfApi())
    with pytest.raises(HubError, match="not a Hub repo id"):
        push_folder(published, "not a repo", api=FakeHfApi())


def test_push_to_hub_uses_hfapi_with_the_token(tiny_snapshot, monkeypatch):
    hf = pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(hf, "HfApi", FakeHfApi)
    FakeHfApi.instances.clear()
    model = Pioneer.load(tiny_snapshot, device="cpu")
    url = model.push_to_hub("me/tiny", token="hf_test", card=False)
    api, = FakeHfApi.instances
    assert api.token == "hf_test" and url.endswith("/commit/abc")
    assert api.calls[0][1]["private"] is False
    config = json.loads(api.uploaded["config.json"])
    assert config["fingerprint"] == model.fingerprint and "model.safetensors" in api.uploaded


# ------------------------------------------------------------------------------------------------
# CLI and torch.hub


def test_publish_command(run_dir, model_cache, tmp_path, monkeypatch):
    out = tmp_path / "published"
    r = run("publish", "--model", run_dir, "-o", out, "--cache-dir", model_cache, "--no-progress")
    assert r.exit_code == 0, r.output
    assert "attribute vectors: 1" in r.output                # found in RUN/vectors without being named
    config = json.loads((out / "config.json").read_text())
    assert config["attribute_vectors"] == {"Smiling": "vectors/Smiling.safetensors"}
    assert "| lpips_rec | 0.3125 |" in (out / "README.md").read_text()
    hf = pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(hf, "HfApi", FakeHfApi)
    FakeHfApi.instances.clear()
    r = run("publish", "--model", run_dir / "snapshot.safetensors", "-o", out, "--push", "me/tiny", "--private",
            "--cache-dir", model_cache, "--no-progress")
    assert r.exit_code == 0, r.output
    assert "pushed to me/tiny: https://hub.example/me/tiny/commit/abc" in r.output
    assert FakeHfApi.instances[0].calls[0][1]["private"] is True
    assert 'Pioneer.from_pretrained("me/tiny")' in (out / "README.md").read_text()
    # A pretrained folder is published again with its vectors.
    r = run("publish", "--model", out, "-o", tmp_path / "again", "--no-progress")
    assert r.exit_code == 0, r.output
    assert Pioneer.from_pretrained(tmp_path / "again").vectors.keys() == {"Smiling"}


def test_publish_gives_a_synthetic_faces_model_its_attribute_vectors(tiny_snapshot, model_cache, tmp_path):
    from pioneer.inference.selection import synthetic_vectors

    model = Pioneer.load(tiny_snapshot, device="cpu")
    want = {v.attribute: v.vector for v in synthetic_vectors(model, model.extra["data"])}
    r = run("publish", "--model", tiny_snapshot.parent, "-o", tmp_path / "p", "--cache-dir", model_cache, "--no-progress")
    assert r.exit_code == 0, r.output
    got = Pioneer.from_pretrained(tmp_path / "p").vectors
    assert len(want) >= 5 and got.keys() == want.keys()
    for name, v in got.items():
        torch.testing.assert_close(v.vector, want[name])
        assert v.model == model.fingerprint
    r = run("publish", "--model", tiny_snapshot.parent, "-o", tmp_path / "q", "--no-synthetic-vectors",
            "--cache-dir", model_cache, "--no-progress")
    assert r.exit_code == 0 and Pioneer.from_pretrained(tmp_path / "q").vectors == {}, r.output


def test_publish_command_errors(run_dir, tmp_path):
    _one_line_error(run("publish", "--model", tmp_path / "nope", "-o", tmp_path / "o"), "nope does not exist")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("keep")
    _one_line_error(run("publish", "--model", run_dir, "-o", taken), "taken exists and is not a pioneer pretrained folder")
    assert (taken / "notes.txt").read_text() == "keep"


def test_torch_hub_load_from_this_checkout(published, tiny_snapshot):
    m = torch.hub.load(str(REPO_ROOT), "pioneer", source="local", weights=str(published), device="cpu")
    assert isinstance(m, Pioneer) and m.resolution == 16
    direct = Pioneer.from_pretrained(published, device="cpu")
    assert torch.equal(m.sample(2, seed=1), direct.sample(2, seed=1))
    from_snapshot = torch.hub.load(str(REPO_ROOT), "pioneer", source="local", weights=str(tiny_snapshot.parent))
    assert from_snapshot.fingerprint == direct.fingerprint
