"""One --model for every command (pioneer.share.models.open_model), and the model that ships
with pioneer: loaded when no model is named, and its recorded numbers still hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from pioneer import Pioneer, open_model
from pioneer.cli import main
from pioneer.run.checkpoint import CheckpointError
from pioneer.share import models
from pioneer.share.hub import save_pretrained

pytest_plugins = ["model_fixtures"]


def run(*args) -> "object":
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def pretrained(tiny_snapshot, tmp_path_factory) -> Path:
    return save_pretrained(Pioneer.load(tiny_snapshot, device="cpu"), tmp_path_factory.mktemp("pre") / "m", card=False)


def test_every_spec_opens_the_same_model(tiny_snapshot, pretrained):
    z = torch.nn.functional.normalize(torch.randn(3, 32, generator=torch.Generator().manual_seed(0)), dim=1)
    opened = [open_model(spec, device="cpu") for spec in (tiny_snapshot.parent, tiny_snapshot, pretrained,
                                                          str(pretrained))]
    assert len({m.fingerprint for m in opened}) == 1
    images = [m.decode(z) for m in opened]
    for x in images[1:]:
        torch.testing.assert_close(x, images[0], atol=1e-5, rtol=0)


def test_open_model_errors_say_what_to_pass(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="neither snapshot.safetensors nor config.json"):
        open_model(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="does not exist and is not a Hub repo id"):
        open_model(tmp_path / "a" / "b" / "none.safetensors")
    (tmp_path / "note.txt").write_text("not a model")
    with pytest.raises(CheckpointError):
        open_model(tmp_path / "note.txt")


def test_a_missing_bundled_model_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "BUNDLED", tmp_path / "gone")
    with pytest.raises(CheckpointError, match="missing from this install.*pass --model"):
        open_model()
    r = run("sample", "-n", "2", "-o", tmp_path / "s.png")
    assert r.exit_code != 0 and "Error:" in r.output and "missing from this install" in r.output


def test_commands_without_model_use_the_bundled_one(tiny_snapshot, pretrained, tmp_path, monkeypatch):
    """Pointed at a small stand-in so that this test does not depend on the shipped weights."""
    monkeypatch.setattr(models, "BUNDLED", pretrained)
    assert open_model().fingerprint == Pioneer.from_pretrained().fingerprint == Pioneer.load(tiny_snapshot).fingerprint
    r = run("sample", "-n", "4", "--seed", "3", "-o", tmp_path / "a.png")
    assert r.exit_code == 0, r.output
    r2 = run("sample", "--model", pretrained, "-n", "4", "--seed", "3", "-o", tmp_path / "b.png")
    assert r2.exit_code == 0, r2.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    r3 = run("reconstruct", tmp_path / "grey.png", "-o", tmp_path / "rec.png")
    assert r3.exit_code == 0 and (tmp_path / "rec.png").is_file(), r3.output


def test_evaluate_without_model_measures_the_bundled_one(pretrained, model_cache, tmp_path, monkeypatch):
    monkeypatch.setattr(models, "BUNDLED", pretrained)
    out = tmp_path / "m.jsonl"
    r = run("evaluate", "--metrics", "collapse", "--num", "8", "--cache-dir", model_cache, "--out", out,
            "--no-progress")
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text())
    assert rec["metric"] == "collapse" and rec["snapshot"] == str(pretrained) and rec["num"] == 8


def test_demo_session_takes_the_vectors_a_pretrained_folder_ships(tiny_snapshot, tmp_path):
    from pioneer.demo.server import ServeConfig, make_session
    from pioneer.inference.latent import AttributeVector

    model = Pioneer.load(tiny_snapshot, device="cpu")
    vec = AttributeVector(torch.ones(model.latent_dim) / model.latent_dim ** 0.5, "Shipped", 3, 4, model=model.fingerprint)
    folder = save_pretrained(model, tmp_path / "with-vectors", card=False, vectors=[vec])
    said: list[str] = []
    session = make_session(folder, None, ServeConfig(device="cpu"), echo=said.append)
    assert session.vector_names == ["Shipped"]
    assert any("attribute vectors from the pretrained folder: Shipped" in line for line in said), said


# ------------------------------------------------------------------------------------------------
# The shipped model itself


def _bundled_config() -> dict:
    return json.loads((models.bundled_model() / "config.json").read_text(encoding="utf-8"))


def test_the_bundled_model_is_complete_and_packaged():
    tomllib = pytest.importorskip("tomllib")
    import fnmatch

    folder = models.bundled_model()
    m = open_model(device="cpu")
    config = _bundled_config()
    assert (m.resolution, m.latent_dim, m.images_seen) == (config["resolution"], config["latent_dim"],
                                                          config["images_seen"])
    assert m.vectors and all(v.model == m.fingerprint for v in m.vectors.values())
    assert {"collapse", "prior_fit"} <= set(config["metrics"])
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert f"{config['metrics']['collapse']['results']['heldout_l1']:.4g}" in card
    # Every file of the folder is in the wheel (pyproject's package-data), not only in a checkout.
    patterns = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["pioneer"]
    package = Path(models.__file__).parents[1]
    for path in folder.rglob("*"):
        if path.is_file():
            rel = path.relative_to(package).as_posix()
            assert any(fnmatch.fnmatch(rel, p) and rel.count("/") == p.count("/") for p in patterns), rel


@pytest.mark.slow
def test_the_bundled_model_still_scores_what_its_card_says(model_cache):
    """Computed again on the same held-out faces and prior codes: a change to the networks,
    the loader or the data that moves these numbers is caught here."""
    from pioneer.metrics import MetricContext, compute

    recorded = _bundled_config()["metrics"]["collapse"]
    ctx = MetricContext.from_model(open_model(device="cpu"), cache_dir=model_cache, seed=recorded["seed"],
                                   num=recorded["num"])
    got, want = compute("collapse", ctx), recorded["results"]
    assert got["num"] == want["num"]
    for key, tol in (("heldout_l1", 2e-3), ("mean_face_l1", 1e-4), ("cycle", 5e-3), ("rank_real", 0.5)):
        assert abs(got[key] - want[key]) <= tol, (key, got[key], want[key])
