import numpy as np
import pytest
import torch

from pioneer.config import LossConfig
from pioneer.model.loss import decoder_loss, encoder_loss, kl_divergence
from pioneer.model.networks import Decoder, Encoder, sample_prior

from conftest import tiny_model


def test_kl_matches_direct_computation():
    z = torch.randn(64, 16, dtype=torch.float64) * 0.3 + 0.1
    zn = z.numpy()
    m, s2 = zn.mean(0), zn.var(0)  # numpy var is the biased estimate
    expected = np.mean((s2 + m**2) / 2 - np.log(s2) / 2 - 0.5)
    assert kl_divergence(z).item() == pytest.approx(expected, rel=1e-5)


def test_kl_zero_for_standard_normal_statistics():
    z = torch.randn(20000, 8)
    assert kl_divergence(z).item() < 1e-3


def test_kl_floor_of_unit_norm_codes():
    # Unit-norm 512-d codes have variance ~1/512 per dimension: KL ~ (1/512 + log 512 - 1) / 2.
    z = sample_prior(4096, 512)
    assert kl_divergence(z).item() == pytest.approx((1 / 512 + np.log(512) - 1) / 2, abs=0.02)


def test_kl_survives_collapsed_batch():
    z = torch.ones(8, 4)
    assert torch.isfinite(kl_divergence(z))


class CodeE(torch.nn.Module):
    """An 'encoder' that just normalises its input: codes are controlled exactly."""

    def forward(self, x, level, alpha=1.0):
        return torch.nn.functional.normalize(x.flatten(1), dim=1)


class CollapsedG(torch.nn.Module):
    """Generated codes all point the same way: their KL is far above that of diverse real codes."""

    def forward(self, z, level, alpha=1.0):
        direction = torch.zeros_like(z)
        direction[:, 0] = 1.0
        return (direction + 0.01 * z).view(z.shape[0], -1, 1, 1)


def _hinge_case(margin):
    real = torch.randn(32, 8, 1, 1, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    z = sample_prior(32, 8, torch.Generator().manual_seed(1))
    out = encoder_loss(CodeE(), CollapsedG(), real, z, 0, 1.0, margin=margin, recon_weight=0.0, cfg=LossConfig())
    out.total.backward()
    return out, real.grad.abs().sum().item()


def test_hinge_blocks_gradient_below_minus_margin():
    plain, g_plain = _hinge_case(margin=0.0)  # margin 0 = no hinge, the plain difference
    gap = (plain.kl_real - plain.kl_fake).item()
    assert gap < -1.0 and g_plain > 0
    assert plain.total.item() == pytest.approx(0.1 * gap, rel=1e-5)

    clipped, g_clipped = _hinge_case(margin=abs(gap) / 2)  # gap below -margin: flat
    assert g_clipped == 0.0
    assert clipped.total.item() == pytest.approx(-0.1 * abs(gap) / 2, rel=1e-5)

    open_, g_open = _hinge_case(margin=abs(gap) * 2)  # gap above -margin: full gradient
    assert g_open == pytest.approx(g_plain, rel=1e-5)


def _nets():
    torch.manual_seed(0)
    cfg = tiny_model()
    return Encoder(cfg), Decoder(cfg)


def test_encoder_loss_components_and_weights():
    E, G = _nets()
    x = torch.rand(8, 3, 8, 8) * 2 - 1
    z = sample_prior(8, 32)
    cfg = LossConfig()
    out = encoder_loss(E, G, x, z, 1, 1.0, 0.0, 1.5, cfg)
    expected = cfg.kl_weight * (out.kl_real - out.kl_fake) + 1.5 * out.recon_l1
    assert out.total.item() == pytest.approx(expected.item(), rel=1e-5)
    with torch.no_grad():
        l1 = (G(E(x, 1), 1) - x).abs().mean()
    assert out.recon_l1.item() == pytest.approx(l1.item(), rel=1e-4)


def test_decoder_loss_components_and_gradient_target():
    E, G = _nets()
    z = sample_prior(8, 32)
    cfg = LossConfig()
    E.requires_grad_(False)
    out = decoder_loss(E, G, z, 1, 1.0, cfg)
    assert cfg.latent_weight == pytest.approx(100 / 512)
    expected = cfg.kl_weight * out.kl_fake + cfg.latent_weight * out.latent_cos
    assert out.total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert 0 <= out.latent_cos.item() <= 2
    out.total.backward()
    assert all(p.grad is None for p in E.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())
