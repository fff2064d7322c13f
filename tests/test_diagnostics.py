"""Collapse signals: effective rank, code variance, gradient shares, the `collapse` metric."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_model
from pioneer.config import LossConfig
from pioneer.model.diagnostics import batch_signals, code_variance, cycle_error, effective_rank
from pioneer.training.grad_shares import gradient_shares
from pioneer.training.records import RecordMeter
from pioneer.training.schedule import SchedulePoint
from pioneer.metrics import MetricContext, compute
from pioneer.model.loss import decoder_loss, encoder_loss
from pioneer.model.networks import Decoder, Encoder, sample_prior

pytest_plugins = ["model_fixtures"]


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_effective_rank_tells_collapsed_from_random_codes():
    g = torch.Generator().manual_seed(0)
    base, direction = torch.randn(512, generator=g), torch.randn(512, generator=g)
    # Unit-norm base and direction, small steps: on (not quite) the sphere, along one line.
    base, direction = F.normalize(base, dim=0), F.normalize(direction, dim=0)
    line = base + 0.05 * torch.randn(32, 1, generator=g) * direction + 1e-6 * torch.randn(32, 512, generator=g)
    assert effective_rank(line) == pytest.approx(1.0, abs=0.1)                       # one direction
    assert effective_rank(_unit(256, 512, 1)) > 200                                  # about 236
    assert effective_rank(_unit(1, 512, 1).repeat(32, 1)) == 0.0                     # identical codes
    assert effective_rank(_unit(1, 512, 1)) == 0.0                                   # a single code


def test_code_variance_and_cycle_error_of_isotropic_codes():
    z = _unit(4096, 64, 2)
    assert code_variance(z) == pytest.approx(1 / 64, rel=0.05)
    assert cycle_error(z, z) == pytest.approx(0.0, abs=1e-6)
    assert cycle_error(z, _unit(4096, 64, 3)) == pytest.approx(1.0, abs=0.05)


def test_batch_signals_match_the_functions_and_survive_non_finite_codes():
    real, fake = _unit(32, 64, 4), _unit(32, 64, 5)
    s = batch_signals(real, fake).tolist()
    assert s == pytest.approx([effective_rank(real), effective_rank(fake), code_variance(real), code_variance(fake)])
    real[0, 0] = float("nan")                          # a diverged step must reach the monitor, not crash an SVD
    assert torch.isnan(batch_signals(real, fake)[0])


def _tiny_networks():
    torch.manual_seed(0)
    cfg = tiny_model()
    return Encoder(cfg), Decoder(cfg), cfg


def _snapshot(*nets):
    return [t.detach().clone() for n in nets for t in list(n.parameters()) + list(n.buffers())]


def test_gradient_shares_sum_to_one_and_change_nothing():
    E, G, _ = _tiny_networks()
    E.train().requires_grad_(False)
    G.train().requires_grad_(True)                     # as the loop leaves them after a decoder step
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    before, rng = _snapshot(E, G), torch.get_rng_state()
    r = gradient_shares(E, G, x, 2, 1.0, margin=0.0, recon_weight=1.5, cfg=LossConfig(), seed=3)
    for net, terms in (("E", ("kl_real", "kl_fake", "recon")), ("G", ("kl_fake", "latent"))):
        shares = [r[f"gshare_{net}_{t}"] for t in terms]
        assert sum(shares) == pytest.approx(1.0) and all(s > 0 for s in shares)
        assert all(r[f"gnorm_{net}_{t}"] > 0 for t in terms)
    assert "gshare_E_cycle" not in r and "gshare_G_recon" not in r               # weights 0: not terms
    after = _snapshot(E, G)
    assert len(before) == len(after) and all(torch.equal(a, b) for a, b in zip(before, after))  # SN u/v too
    assert any(name.endswith("_u") for name, _ in E.named_buffers())
    assert torch.equal(torch.get_rng_state(), rng)
    assert E.training and G.training
    assert not any(p.requires_grad for p in E.parameters()) and all(p.requires_grad for p in G.parameters())
    assert all(p.grad is None for p in list(E.parameters()) + list(G.parameters()))
    assert gradient_shares(E, G, x, 2, 1.0, 0.0, 1.5, LossConfig(), seed=3) == r   # deterministic


def test_gradient_shares_cover_the_optional_terms_and_the_hinge():
    E, G, _ = _tiny_networks()
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    cfg = dataclasses.replace(LossConfig(), encoder_cycle_weight=1.0, decoder_recon_weight=1.0)
    r = gradient_shares(E, G, x, 1, 0.5, 0.0, 1.0, cfg, seed=0)
    assert sum(v for k, v in r.items() if k.startswith("gshare_E_")) == pytest.approx(1.0)
    assert r["gnorm_E_cycle"] > 0 and r["gnorm_G_recon"] > 0
    # The same codes as the function draws first; a margin the gap lies beyond closes the hinge.
    z = sample_prior(8, E.cfg.latent_dim, torch.Generator().manual_seed(0))
    with torch.no_grad():
        le = encoder_loss(E.eval(), G.eval(), x, z, 1, 0.5, 0.0, 1.0, cfg)
    gap = float(le.kl_real - le.kl_fake)
    assert gap < 0
    closed = gradient_shares(E.train(), G.train(), x, 1, 0.5, -gap / 2, 1.0, cfg, seed=0)
    assert closed["gnorm_E_kl_real"] == 0.0 and closed["gnorm_E_kl_fake"] == 0.0


def test_the_losses_name_their_terms_once_for_shares_and_records():
    """Every term the losses build sums to their total and reaches the gradient shares and the
    stats record under its own name: adding a term needs no change outside the loss module."""
    E, G, _ = _tiny_networks()
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    cfg = dataclasses.replace(LossConfig(), encoder_cycle_weight=1.0, encoder_prior_weight=0.5,
                              decoder_recon_weight=1.0)
    gen = torch.Generator().manual_seed(0)
    z_enc, z_dec = sample_prior(8, E.cfg.latent_dim, gen), sample_prior(8, E.cfg.latent_dim, gen)
    le = encoder_loss(E, G, x, z_enc, 1, 0.5, 0.0, 1.0, cfg)              # margin 0: no hinge
    lg = decoder_loss(E, G, z_dec, 1, 0.5, cfg, real=(le.real_z, x))
    assert set(le.terms) == {"kl_real", "kl_fake", "recon", "cycle", "prior"}
    assert set(lg.terms) == {"kl_fake", "latent", "recon"}
    torch.testing.assert_close(sum(le.terms.values()), le.total)
    torch.testing.assert_close(sum(lg.terms.values()), lg.total)

    r = gradient_shares(E, G, x, 1, 0.5, 0.0, 1.0, cfg, seed=0)
    for net, loss in (("E", le), ("G", lg)):
        assert {k.removeprefix(f"gshare_{net}_") for k in r if k.startswith(f"gshare_{net}_")} == set(loss.terms)

    meter = RecordMeter(torch.device("cpu"), 0)
    meter.add(le, lg)
    meter.add(le, lg)
    st = SchedulePoint(16, 0, 1, 8, 0.5, 1e-3, 0.0, 8, 1.0, 0.0)
    rec = meter.record(16, 2, st, le)
    for name, value in {**le.logged(), **lg.logged()}.items():
        assert rec[name] == pytest.approx(float(value.detach()), rel=1e-5), name
    assert rec["loss_E"] == pytest.approx(float(le.total.detach())) and rec["gap"] == pytest.approx(float(le.kl_real - le.kl_fake))


def test_collapse_metric_on_a_tiny_model(tiny_snapshot, model_cache):
    ctx = MetricContext.from_snapshot(tiny_snapshot, cache_dir=model_cache, batch_size=4)
    r = compute("collapse", ctx)
    n = r["num"]
    assert n == min(256, len(ctx.data.test))
    for key in ("heldout_l1", "mean_face_l1", "cycle", "rank_real", "rank_fake", "var_real", "rank_random"):
        assert isinstance(r[key], float) and r[key] >= 0, key
    assert 0 < r["rank_random"] <= n - 1 + 1e-4 and r["rank_real"] <= n - 1 + 1e-4
    assert r["collapse"] == pytest.approx(r["rank_real"] / r["rank_random"])
    assert compute("collapse", ctx)["cycle"] == r["cycle"]                        # seeded codes


def test_report_shows_the_collapse_metric_and_the_logged_signals(tiny_snapshot, model_cache, tmp_path):
    from pioneer.metrics import evaluate
    from pioneer.share.report import write_report

    run = tiny_snapshot.parent
    ctx = MetricContext.from_snapshot(tiny_snapshot, cache_dir=model_cache, batch_size=4)
    evaluate(["collapse"], ctx)                                   # appends to RUN/metrics.jsonl
    text = write_report(run).read_text()
    assert "| effective rank of E(x) |" in text and "random unit codes" in text and "mean face" in text
    assert "### Collapse signals" in text and "effective rank of real codes" in text
    assert "Gradient of E at" in text and "Gradient of G at" in text


def test_learning_benchmark_prints_the_collapse_numbers_of_a_run(tiny_snapshot, model_cache):
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "learning.py"
    proc = subprocess.run([sys.executable, str(script), "measure", str(tiny_snapshot.parent), "--no-attributes",
                           "--cache-dir", str(model_cache), "--threads", "1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    ctx = MetricContext.from_snapshot(tiny_snapshot, cache_dir=model_cache, seed=12345)
    expected = compute("collapse", ctx)
    for key in ("heldout_l1", "mean_face_l1", "cycle", "rank_real", "rank_fake"):
        assert r[key] == pytest.approx(expected[key], rel=1e-4), key
