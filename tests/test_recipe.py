"""The small-scale recipe: its config fields, its loss terms, and that it learns where the
authors' recipe collapses."""

import dataclasses
import math

import pytest
import torch

from pioneer.config import ConfigError, LossConfig, preset, recipe_of, with_recipe
from pioneer.model.loss import decoder_loss, encoder_loss
from pioneer.model.networks import Decoder, Encoder, sample_prior

from conftest import tiny_config, tiny_model


def test_recipes_set_their_fields_and_are_recognised():
    cfg = preset("celebahq256")
    assert recipe_of(cfg) == "authors"
    small = with_recipe(cfg, "small")
    assert recipe_of(small) == "small"
    assert small.model.code_gain == pytest.approx(math.sqrt(cfg.model.latent_dim))
    assert small.loss.decoder_recon_weight > 0 and small.loss.encoder_cycle_weight > 0
    assert small.schedule == cfg.schedule and small.model.max_resolution == cfg.model.max_resolution
    assert with_recipe(small, "authors") == cfg
    changed = dataclasses.replace(small, loss=dataclasses.replace(small.loss, encoder_cycle_weight=0.5))
    assert recipe_of(changed) == "custom"
    with pytest.raises(ConfigError, match="unknown recipe"):
        with_recipe(cfg, "fast")


def test_presets_follow_their_recipe():
    assert recipe_of(preset("synthetic64")) == "small"
    for name in ("celebahq256", "lsun256", "pioneer-celebahq256"):
        assert recipe_of(preset(name)) == "authors", name


def test_code_gain_scales_the_decoder_input():
    torch.manual_seed(0)
    G = Decoder(tiny_model())
    G2 = Decoder(tiny_model(code_gain=4.0))
    G2.load_state_dict(G.state_dict())
    G.eval(), G2.eval()
    z = sample_prior(3, 32)
    torch.testing.assert_close(G2(z, 2), G(4.0 * z, 2))


def _nets():
    """Networks in eval mode: spectral norm does not advance, so repeated forwards agree."""
    torch.manual_seed(0)
    return Encoder(tiny_model()).eval(), Decoder(tiny_model()).eval()


def test_decoder_reconstruction_term_trains_the_decoder_only_on_real_images():
    E, G = _nets()
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    z = sample_prior(4, 32)
    codes = E(x, 2).detach().requires_grad_(True)
    plain = decoder_loss(E, G, z, 2, 1.0, LossConfig())
    assert float(plain.recon_l1) == 0.0
    cfg = LossConfig(decoder_recon_weight=2.0)
    with_rec = decoder_loss(E, G, z, 2, 1.0, cfg, real=(codes, x))
    expected = (G(codes, 2) - x).abs().mean()
    torch.testing.assert_close(with_rec.recon_l1, expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(with_rec.total - plain.total, 2.0 * with_rec.recon_l1, rtol=1e-4, atol=1e-5)
    with_rec.total.backward()
    assert codes.grad is None                     # the codes are held fixed: E learns nothing from it
    # weight 0 keeps the authors' decoder loss, real batch or not
    off = decoder_loss(E, G, z, 2, 1.0, LossConfig(), real=(codes, x))
    torch.testing.assert_close(off.total, plain.total, rtol=1e-5, atol=1e-6)


def _encoder_losses(**weights):
    """The encoder loss at 16 px without and with extra terms: E, G, x, z, plain, with_terms."""
    E, G = _nets()
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    z = sample_prior(6, 32)
    plain = encoder_loss(E, G, x, z, 2, 1.0, 0.0, 1.0, LossConfig())
    return E, G, x, z, plain, encoder_loss(E, G, x, z, 2, 1.0, 0.0, 1.0, LossConfig(**weights))


def test_encoder_cycle_term_adds_one_minus_cos_on_prior_codes():
    E, G, x, z, a, b = _encoder_losses(encoder_cycle_weight=3.0)
    expected = (1 - torch.nn.functional.cosine_similarity(z, E(G(z, 2), 2), dim=1)).mean()
    torch.testing.assert_close(b.cycle, expected.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(b.total - a.total, 3.0 * b.cycle, rtol=1e-4, atol=1e-5)
    assert b.real_z.shape == (6, 32) and b.fake_z.shape == (6, 32) and not b.real_z.requires_grad


def _learning_run(tmp_path, recipe: str):
    """A short progressive run to 16 px on 512 synthetic faces, then on 128 prior codes z:
    (1 - cos(z, E(G_ema(z))), effective rank of E(G_ema(z))). About 20 s on 2 cores."""
    from pioneer.config import Rule, ScheduleConfig
    from pioneer.model.diagnostics import cycle_error, effective_rank
    from pioneer.training.loop import train

    sched = ScheduleConfig(rules=(Rule(0.0, 0, 1e-3, 0.0), Rule(2.0, 1, 1e-3, 0.0), Rule(4.0, 2, 1e-3, 0.0)),
                           fade_kimg=1.0, batch_sizes={4: 16, 8: 16, 16: 16}, total_kimg=8.0, lr_rampdown_kimg=2.0)
    cfg = tiny_config(model=tiny_model(latent_dim=64, width=1 / 32), schedule=sched, data="synthetic:512",
                      log_every=10, grid_kimg=100.0, snapshot_kimg=100.0, checkpoint_kimg=100.0, collapse_rank=0.0)
    res = train(with_recipe(cfg, recipe), tmp_path / recipe, cache_dir=tmp_path / "cache", progress=False)
    E, G = res.encoder.eval(), res.decoder_ema.eval()
    with torch.no_grad():
        z = sample_prior(128, 64, torch.Generator().manual_seed(1))
        e = E(G(z, 2), 2)
        return cycle_error(z, e), effective_rank(e)


@pytest.mark.slow
def test_small_recipe_learns_the_latent_cycle_where_the_authors_recipe_does_not(tmp_path):
    small_cycle, small_rank = _learning_run(tmp_path, "small")
    authors_cycle, authors_rank = _learning_run(tmp_path, "authors")
    # Measured (1 thread): small 0.53 / rank 32, authors 0.94 / rank 15.
    assert small_cycle < 0.7 < 0.85 < authors_cycle
    assert small_rank > authors_rank


def test_mmd_tells_collapsed_codes_from_prior_codes():
    from pioneer.model.loss import mmd

    g = torch.Generator().manual_seed(0)
    z, z2 = sample_prior(64, 32, g), sample_prior(64, 32, g)
    collapsed = torch.nn.functional.normalize(z[:1] + 0.01 * torch.randn(64, 32, generator=g), dim=1)
    assert float(mmd(z, z)) == pytest.approx(0.0, abs=1e-6)
    assert float(mmd(collapsed, z2)) > 20 * float(mmd(z, z2)) > 0


def test_encoder_prior_term_adds_the_mmd_of_real_codes():
    from pioneer.model.loss import mmd

    E, G, x, z, a, b = _encoder_losses(encoder_prior_weight=2.0)
    torch.testing.assert_close(b.total - a.total, 2.0 * mmd(E(x, 2), z).detach(), rtol=1e-4, atol=1e-5)


def test_code_noise_reconstructs_from_a_perturbed_code_on_the_sphere():
    from pioneer.model.loss import perturb

    E, G = _nets()
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    z = sample_prior(6, 32)
    noise = torch.randn(6, 32, generator=torch.Generator().manual_seed(3))
    cfg = LossConfig(code_noise=0.5)
    out = encoder_loss(E, G, x, z, 2, 1.0, 0.0, 1.0, cfg, noise=noise)
    moved = perturb(E(x, 2), noise, 0.5)
    torch.testing.assert_close(out.recon_z, moved.detach())
    torch.testing.assert_close(out.recon_z.norm(dim=1), torch.ones(6))
    step = (out.recon_z - out.real_z).norm(dim=1)           # about 0.5, never 0
    assert float(step.min()) > 0.2 and float(step.max()) < 0.8
    torch.testing.assert_close(out.recon_l1, (G(moved, 2) - x).abs().mean().detach(), rtol=1e-5, atol=1e-6)
    # off (weight 0 or no draws): the code itself, as before
    for off in (encoder_loss(E, G, x, z, 2, 1.0, 0.0, 1.0, LossConfig(), noise=noise),
                encoder_loss(E, G, x, z, 2, 1.0, 0.0, 1.0, cfg)):
        torch.testing.assert_close(off.recon_z, off.real_z)
