import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from pioneer.config import LossConfig
from pioneer.run.checkpoint import CheckpointError, load_snapshot, load_training_state
from pioneer.run.stats import read_stats
from pioneer.data.batches import IndexStream, fade_images
from pioneer.training.loop import train

from conftest import tiny_config
from step_gradients import global_batch, step_gradients


def _states_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_index_stream_resumes_exactly():
    s = IndexStream(torch.arange(10), seed=3)
    first = s.take(7)
    saved = s.state_dict()
    rest = s.take(25)
    s2 = IndexStream(torch.arange(10), seed=3)
    s2.load_state_dict(saved)
    assert torch.equal(s2.take(25), rest)
    # each epoch is a permutation
    s3 = IndexStream(torch.arange(10), seed=3)
    assert sorted(s3.take(10).tolist()) == list(range(10))
    assert not torch.equal(first, torch.arange(7))


def test_fade_images_endpoints():
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(fade_images(x, 1.0), x)
    low = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(x, 2), scale_factor=2)
    torch.testing.assert_close(fade_images(x, 0.0), low)


@pytest.mark.parametrize("sn_cache,image_pool,stop,code_noise",
                         [(False, 0, 31, 0.0), (True, 0, 31, 0.0), (False, 24, 60, 0.0), (False, 0, 31, 0.3)])
def test_exact_resume_bit_for_bit(tmp_path, sn_cache, image_pool, stop, code_noise):
    """N+M iterations in one go == N iterations, stop, resume, M iterations (CPU, bitwise).
    With the image pool: stopped in the stable part of the last phase, the pool full.
    With code noise: its draws come from the run's generator too."""
    cfg = tiny_config(sn_cache=sn_cache, image_pool=image_pool, loss=LossConfig(code_noise=code_noise))
    cache = tmp_path / "cache"
    full = train(cfg, tmp_path / "full", cache_dir=cache, progress=False)
    part = train(cfg, tmp_path / "split", cache_dir=cache, progress=False, stop_after=stop)
    assert part.interrupted and part.iterations == stop
    if image_pool:
        pool = load_training_state(tmp_path / "split" / "training-state.pt")["image_pool"]
        assert pool["size"] == image_pool and pool["images"].shape == (image_pool, 3, 16, 16)
    rest = train(cfg, tmp_path / "split", cache_dir=cache, progress=False, resume=True)
    assert rest.iterations == full.iterations and rest.images_seen == full.images_seen
    a = load_training_state(tmp_path / "full" / "training-state.pt")
    b = load_training_state(tmp_path / "split" / "training-state.pt")
    for key in ("encoder", "decoder", "decoder_ema"):  # spectral-norm u/v vectors included
        _states_equal(a[key], b[key])
    assert any(k.endswith("_u") for k in a["encoder"])
    assert torch.equal(a["generator"], b["generator"])
    assert ("image_pool" in a) == bool(image_pool)
    if image_pool:
        assert a["image_pool"]["size"] == b["image_pool"]["size"]
        assert torch.equal(a["image_pool"]["images"], b["image_pool"]["images"])
    for key in ("opt_encoder", "opt_decoder"):
        for pa, pb in zip(a[key]["state"].values(), b[key]["state"].values()):
            assert torch.equal(pa["exp_avg"], pb["exp_avg"]) and torch.equal(pa["exp_avg_sq"], pb["exp_avg_sq"])
    # the stats of the resumed run have no duplicated records
    seen = [r["images_seen"] for r in read_stats(tmp_path / "split") if "loss_E" in r]
    assert seen == sorted(seen) and len(seen) == len(set(seen))


def test_run_folder_contents(tmp_path):
    cfg = tiny_config()
    res = train(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    run = tmp_path / "run"
    assert (run / "snapshot.safetensors").is_file() and (run / "training-state.pt").is_file()
    assert list((run / "snapshots").glob("snapshot-*.safetensors"))
    assert list((run / "grids").glob("samples-*.png")) and list((run / "grids").glob("reconstructions-*.png"))
    assert list((run / "tensorboard").iterdir())
    assert not list(run.rglob("*.tmp"))  # atomic writes leave no temporaries
    recs = [r for r in read_stats(run) if "loss_E" in r]
    for key in ("kl_real", "kl_fake", "gap", "margin", "lr", "alpha", "resolution", "images_per_s",
                "cycle", "rank_real", "rank_fake", "var_real", "var_fake"):
        assert key in recs[-1]
    assert 0 < recs[-1]["rank_real"] <= 7 + 1e-4 and recs[-1]["var_real"] > 0   # a batch of 8 codes
    grid_recs = [r for r in read_stats(run) if "heldout_l1" in r]
    for key in ("heldout_l1", "prior_fit", "cycle_kept", "gshare_E_kl_real", "gshare_E_kl_fake", "gshare_E_recon",
                "gshare_G_kl_fake", "gshare_G_latent",
                "gnorm_E_recon", "gnorm_G_latent"):
        assert key in grid_recs[-1], key
    assert sum(v for k, v in grid_recs[-1].items() if k.startswith("gshare_G_")) == pytest.approx(1.0)
    assert {r["resolution"] for r in recs} == {4, 8, 16}
    snap = load_snapshot(run / "snapshot.safetensors")
    assert snap.level == 2 and snap.alpha == 1.0 and snap.images_seen == res.images_seen
    summary = json.loads((run / "summary.json").read_text())
    assert summary["finished"] and summary["heldout_l1"] == pytest.approx(res.heldout_l1)


def test_grid_time_diagnostics_leave_the_trajectory_alone(tmp_path):
    """Grids, held-out L1 and gradient shares every 0.05 kimg or only at phase ends: the same networks."""
    import dataclasses
    cfg = tiny_config()
    states = []
    for name, every in (("often", 0.05), ("rarely", 100.0)):
        train(dataclasses.replace(cfg, grid_kimg=every), tmp_path / name, cache_dir=tmp_path / "cache",
              progress=False, stop_after=24)
        states.append(load_training_state(tmp_path / name / "training-state.pt"))
    often = [r for r in read_stats(tmp_path / "often") if "gshare_E_recon" in r]
    rarely = [r for r in read_stats(tmp_path / "rarely") if "gshare_E_recon" in r]
    assert len(often) > len(rarely)
    for key in ("encoder", "decoder", "decoder_ema"):
        _states_equal(states[0][key], states[1][key])
    assert torch.equal(states[0]["generator"], states[1]["generator"])
    assert torch.equal(states[0]["torch_rng"], states[1]["torch_rng"])


@pytest.mark.slow
def test_reconstruction_error_falls(tmp_path):
    """A tiny model trained for 2.5 kimg with the small recipe (the default one) reconstructs
    held-out faces much better than at init and than the best constant image (the mean face),
    and its training L1 falls along the last phase.

    Margins measured by benchmarks/test_margins.py over seeds 0-9 with the avx512 and the
    default kernels of an AVX-512 Xeon (20 trajectories; another machine's seed 0 is one more
    such draw): held-out L1 after / at init 0.47-0.59 (mean 0.53, sd 0.035; asserted < 0.7),
    after / mean face 0.58-0.68 (mean 0.63, sd 0.03; asserted < 0.8). One record is the L1 of
    one batch of 16 and moves by about +-0.03 from record to record, so the trend is taken over
    quarters of the last phase's stable part (alpha = 1, 27 records): last quarter / first
    quarter 0.60-0.76 (mean 0.68, sd 0.05; asserted < 0.9). Records of different resolutions are not compared: 8 px faces hold more
    detail to miss than 4 px ones. (With the authors' recipe the same run failed the held-out
    check in 3 of the 20: at this size it collapses, docs/collapse.md.)"""
    from learning_run import learning_config, learning_measures
    m = learning_measures(learning_config(seed=0), tmp_path / "run", tmp_path / "cache")
    assert m["after"] < 0.7 * m["before"] and m["after"] < 0.8 * m["mean_face"], m
    assert m["records"] >= 8, m
    assert m["last"] < 0.9 * m["first"], m


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, cfg, root: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from pioneer import distributed as dist
    dev = dist.init("cpu")
    try:
        x, z = global_batch(cfg)
        half = slice(rank * 4, rank * 4 + 4)
        grads = step_gradients(x[half], z[half], cfg, dist.gather_with_grad)
        res = train(cfg, os.path.join(root, "ddp"), device=dev, cache_dir=os.path.join(root, "cache"), progress=False)
        torch.save({"encoder": res.encoder.state_dict(), "decoder": res.decoder.state_dict(), "grads": grads},
                   os.path.join(root, f"rank{rank}.pt"))
    finally:
        dist.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("image_pool", [0, 12])
def test_two_process_gloo_matches_single_process(tmp_path, image_pool):
    """Two gloo ranks with half the batch each = one process with the whole batch: the same
    gradients (KL statistics over the global batch), the same losses along a short run, and
    bit-identical networks (spectral-norm vectors too) on both ranks. The image pool runs on
    the gathered global batch, so it keeps that property.

    The gradients are compared in float64. In float32 they are not reproducible to better than
    about 2 % of a tensor's largest entry, even on one machine: at initialisation the decoder
    maps every prior code to nearly the same image, so the fake codes E(G(z)) differ from their
    batch mean by ~1e-3 (per-dimension variance ~5e-7), and the KL's -log(var)/2 amplifies the
    rounding of those differences. Which rounding a CPU makes depends on its conv kernels
    (oneDNN picks them by batch size and instruction set: AVX-512 machines pick other ones for
    4 images than for 8), so float32 agreement to 1e-4 held on some machines and not on others.
    A real error in the distributed maths can hide under that noise (KL statistics over the
    local batch instead of the global one change some tensors by only 1 %, others by 110 %), so
    a float32 tolerance loose enough for every CPU would miss errors of a few percent. In
    float64 (benchmarks/gradient_agreement.py) the two computations agree to within 3e-14 of
    each tensor's largest entry with every kernel set measured (ATEN_CPU_CAPABILITY default,
    avx2, avx512 on an AVX-512 Xeon), and the tolerance below, 1e-9 of it, is 3e4 times that
    and 1e7 below the smallest real error."""
    import dataclasses
    torch.set_num_threads(1)  # as in the workers
    cfg = tiny_config(image_pool=image_pool)
    cfg = dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, total_kimg=0.2), log_every=1)
    single = train(cfg, tmp_path / "single", cache_dir=tmp_path / "cache", progress=False)
    x, z = global_batch(cfg)
    single_grads = step_gradients(x, z, cfg, lambda t: t)
    mp.start_processes(_ddp_worker, args=(2, _free_port(), cfg, str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["grads"].keys() == single_grads.keys()
    for k, g in single_grads.items():
        assert r0["grads"][k].dtype == torch.float64
        scale = g.abs().max().item()
        torch.testing.assert_close(r0["grads"][k], g, rtol=0, atol=1e-9 * scale, msg=k)
    for net in ("encoder", "decoder"):
        _states_equal(r0[net], r1[net])
    # Adam's first steps are sign-like, so float noise in near-zero gradients can flip single
    # weights by 2 lr; compare what the networks compute instead: the logged losses.
    a = [r for r in read_stats(tmp_path / "single") if "loss_E" in r]
    b = [r for r in read_stats(tmp_path / "ddp") if "loss_E" in r]
    assert len(a) == len(b) == 25
    for ra, rb in zip(a[:5], b[:5]):
        for key in ("loss_E", "loss_G", "kl_real", "kl_fake", "recon_l1"):
            assert rb[key] == pytest.approx(ra[key], rel=1e-2, abs=2e-3), (ra["iteration"], key)
    assert (tmp_path / "ddp" / "snapshot.safetensors").is_file()


def test_resume_errors(tmp_path):
    cfg = tiny_config()
    with pytest.raises(CheckpointError, match="no training state"):
        train(cfg, tmp_path / "empty", cache_dir=tmp_path / "cache", progress=False, resume=True)
    run = tmp_path / "run"
    train(cfg, run, cache_dir=tmp_path / "cache", progress=False, stop_after=3)
    import dataclasses
    other = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, min_channels=16))
    with pytest.raises(CheckpointError, match="another model configuration"):
        train(other, run, cache_dir=tmp_path / "cache", progress=False, resume=True)
    (run / "training-state.pt").write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        train(cfg, run, cache_dir=tmp_path / "cache", progress=False, resume=True)


def test_optimised_path_runs_on_cpu(tmp_path):
    """bf16 autocast, channels_last and spectral norm once per step run through the same code
    on CPU; the KL stays float32."""
    import dataclasses
    cfg = tiny_config().optimised()
    assert cfg.amp and cfg.channels_last and cfg.sn_cache and not cfg.compile
    cfg = dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, total_kimg=0.32))
    res = train(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    recs = [r for r in read_stats(tmp_path / "run") if "loss_E" in r]
    import math
    assert recs and all(math.isfinite(r[k]) for r in recs for k in ("loss_E", "loss_G", "kl_real", "kl_fake"))
    assert res.heldout_l1 is not None and res.heldout_l1 < 2.0


def _poison_once(monkeypatch, at_call: int):
    """Make the encoder's weights NaN right after iteration `at_call` (once), as a blow-up would."""
    import pioneer.training.loop as tl
    real = tl.training_iteration
    calls = {"n": 0}

    def poisoned(E, *args, **kwargs):
        out = real(E, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == at_call:
            with torch.no_grad():
                E.from_rgb["r4"].weight.fill_(float("nan"))
                E.from_rgb["r8"].weight.fill_(float("nan"))
        return out

    monkeypatch.setattr(tl, "training_iteration", poisoned)


def test_monitor_rolls_back_after_nan_and_the_run_continues(tmp_path, monkeypatch):
    import math
    _poison_once(monkeypatch, at_call=20)  # after the checkpoint at 0.1 kimg (iteration 13)
    cfg = tiny_config()
    res = train(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    assert res.rollbacks == 1 and res.diverged is None and res.images_seen >= 600
    assert all(torch.isfinite(p).all() for p in res.encoder.parameters())
    recs = read_stats(tmp_path / "run")
    events = [r for r in recs if r.get("event") == "rollback"]
    assert len(events) == 1 and "non-finite" in events[0]["reason"] and events[0]["detected_at"] > events[0]["images_seen"]
    losses = [r for r in recs if "loss_E" in r]
    assert all(math.isfinite(r["loss_E"]) for r in losses)  # the poisoned records were dropped
    state = load_training_state(tmp_path / "run" / "training-state.pt")
    assert all(torch.isfinite(v).all() for v in state["encoder"].values() if v.is_floating_point())


def test_monitor_stop_policy_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import dataclasses
    _poison_once(monkeypatch, at_call=20)
    cfg = dataclasses.replace(tiny_config(), on_divergence="stop")
    res = train(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    assert res.diverged and "non-finite" in res.diverged and res.images_seen < 600
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["diverged"] and not summary["finished"]
    state = load_training_state(tmp_path / "run" / "training-state.pt")
    assert all(torch.isfinite(v).all() for v in state["encoder"].values() if v.is_floating_point())
    assert state["images_seen"] <= 20 * 8


def test_resume_from_a_state_without_an_image_pool(tmp_path):
    """A training state written without a pool (older pioneer, or the pool off) resumes with the
    pool on: it starts empty and the next checkpoint holds it."""
    cfg = tiny_config()
    train(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, stop_after=52)
    assert "image_pool" not in load_training_state(tmp_path / "run" / "training-state.pt")
    res = train(tiny_config(image_pool=16), tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, resume=True)
    assert res.images_seen >= 600
    pool = load_training_state(tmp_path / "run" / "training-state.pt")["image_pool"]
    assert pool["size"] == 16 and pool["images"].shape == (16, 3, 16, 16)
