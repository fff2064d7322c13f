import pytest
import torch
import torch.nn.functional as F

from pioneer.config import CHANNEL_TABLE, DECODER_NORMS, ModelConfig
from pioneer.model.networks import Decoder, Encoder, sample_prior

from conftest import tiny_model


@pytest.mark.parametrize("norm", DECODER_NORMS)
def test_shapes_at_every_level_and_during_fade_in(norm):
    cfg = tiny_model(max_resolution=32, decoder_norm=norm)
    E, G = Encoder(cfg), Decoder(cfg)
    z = sample_prior(3, cfg.latent_dim)
    for level in range(cfg.num_levels):
        r = 4 * 2**level
        for alpha in (0.0, 0.3, 1.0):
            x = G(z, level, alpha)
            assert x.shape == (3, 3, r, r)
            code = E(x, level, alpha)
            assert code.shape == (3, cfg.latent_dim)
            torch.testing.assert_close(code.norm(dim=1), torch.ones(3))


def test_fade_in_endpoints():
    """alpha=0 at a new level reproduces the previous level, upsampled (decoder) / pooled (encoder)."""
    cfg = tiny_model()
    E, G = Encoder(cfg).eval(), Decoder(cfg).eval()
    z = sample_prior(2, cfg.latent_dim)
    with torch.no_grad():
        prev = G(z, 1)
        faded = G(z, 2, alpha=0.0)
        torch.testing.assert_close(faded, F.interpolate(prev, scale_factor=2, mode="nearest"))
        x = torch.randn(2, 3, 16, 16)
        torch.testing.assert_close(E(x, 2, alpha=0.0), E(F.avg_pool2d(x, 2), 1))
        assert not torch.allclose(G(z, 2, alpha=1.0), faded)


def test_channel_table_full_width():
    cfg = ModelConfig(max_resolution=256)
    assert [cfg.channels(r) for r in (4, 8, 16, 32, 64, 128, 256)] == [512, 512, 512, 512, 256, 128, 64]
    E, G = Encoder(cfg), Decoder(cfg)
    n_g = sum(p.numel() for p in G.parameters())
    n_e = sum(p.numel() for p in E.parameters())
    # The notes: decoder 23.0M, encoder 25.4M parameters at 256px.
    assert abs(n_g / 1e6 - 23.0) < 0.3, n_g
    assert abs(n_e / 1e6 - 25.4) < 0.3, n_e


def test_width_scales_channels_with_floor():
    cfg = ModelConfig(max_resolution=64, width=1 / 16, min_channels=16)
    assert [cfg.channels(r) for r in (4, 8, 16, 32, 64)] == [32, 32, 32, 32, 16]
    assert set(CHANNEL_TABLE) == {4, 8, 16, 32, 64, 128, 256, 512, 1024}


@pytest.mark.parametrize("norm,has_sn,has_pn,has_eqlr", [
    ("sn", True, False, False), ("pn", False, True, False), ("eqlr", False, False, True),
    ("eqlr+pn", False, True, True), ("none", False, False, False)])
def test_normalisation_variants(norm, has_sn, has_pn, has_eqlr):
    from pioneer.model.layers import EqualizedConv2d, PixelNorm
    G = Decoder(tiny_model(decoder_norm=norm))
    names = " ".join(n for n, _ in G.named_modules())
    assert ("parametrizations" in names) == has_sn
    assert any(isinstance(m, PixelNorm) for m in G.modules()) == has_pn
    assert any(isinstance(m, EqualizedConv2d) for m in G.modules()) == has_eqlr
    # to_rgb is never spectral-normalised; the encoder always is.
    assert not any("to_rgb" in n and "parametrizations" in n for n, _ in G.named_parameters())
    E = Encoder(tiny_model(decoder_norm=norm))
    assert any("parametrizations" in n for n, _ in E.named_parameters())
    assert not any("from_rgb" in n and "parametrizations" in n for n, _ in E.named_parameters())


def test_spectral_norm_bounds_the_layer():
    G = Decoder(tiny_model())
    G.train()
    z = sample_prior(4, 32)
    for _ in range(30):  # power iterations converge
        G(z, 2)
    conv = G.blocks["b8"].conv1
    w = conv.weight.flatten(1)
    assert abs(torch.linalg.matrix_norm(w, ord=2).item() - 1.0) < 0.05


def test_pixel_norm_unit_rms():
    from pioneer.model.layers import PixelNorm
    x = torch.randn(2, 5, 3, 3) * 7
    y = PixelNorm()(x)
    torch.testing.assert_close(y.pow(2).mean(1), torch.ones(2, 3, 3), atol=1e-4, rtol=1e-4)


def test_encoder_last_activation_option():
    """With the option, codes are normalize(LReLU(h)) of the same pre-activation h. LReLU is
    positively homogeneous, so that equals normalize(LReLU(code without the option))."""
    torch.manual_seed(0)
    plain = Encoder(tiny_model()).eval()
    act = Encoder(tiny_model(encoder_last_activation=True)).eval()
    act.load_state_dict(plain.state_dict())
    x = torch.randn(16, 3, 4, 4)
    with torch.no_grad():
        expected = F.normalize(F.leaky_relu(plain(x, 0), 0.2), dim=1)
        torch.testing.assert_close(act(x, 0), expected)
        assert not torch.allclose(act(x, 0), plain(x, 0))


def test_bad_level_and_resolution_errors():
    cfg = tiny_model()
    E, G = Encoder(cfg), Decoder(cfg)
    with pytest.raises(ValueError, match="level 3"):
        G(sample_prior(1, 32), 3)
    with pytest.raises(ValueError, match="expects 8x8"):
        E(torch.randn(1, 3, 16, 16), 1)


def test_sample_prior_on_sphere_and_seeded():
    a = sample_prior(5, 16, torch.Generator().manual_seed(1))
    b = sample_prior(5, 16, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(5))


@pytest.mark.parametrize("weight_norm", ["sn", "eqlr", "none"])
def test_point_convs_equal_the_direct_convolutions(weight_norm):
    """The decoder's first conv (4x4, padding 3, on a 1x1 input) and the encoder's last
    (4x4 valid conv on a 4x4 input) run as matrix products; they must equal the convs."""
    from pioneer.model.layers import conv_from_point, conv_to_point, conv_weight, make_conv

    torch.manual_seed(0)
    conv = make_conv(6, 5, 4, 3, weight_norm).eval()
    z = torch.randn(3, 6)
    w = conv_weight(conv)
    want = F.conv2d(z[:, :, None, None], w, conv.bias, padding=3)         # (3, 5, 4, 4)
    torch.testing.assert_close(conv_from_point(conv, z), want)

    conv = make_conv(6, 5, 4, 0, weight_norm).eval()
    h = torch.randn(3, 6, 4, 4)
    want = F.conv2d(h, conv_weight(conv), conv.bias).flatten(1)            # (3, 5)
    torch.testing.assert_close(conv_to_point(conv, h), want)
    torch.testing.assert_close(conv_to_point(conv, h.contiguous(memory_format=torch.channels_last)), want)


def _decaying_spectra(net: torch.nn.Module) -> None:
    """Give every spectral-normalised weight a decaying spectrum (s_i ~ 1/sqrt(i)), as trained
    weights have; random init has nearly equal top singular values, where no power iteration
    converges quickly."""
    from pioneer.model.spectral import refresh_spectral_norm, spectral_norm_layers, weight_matrix
    with torch.no_grad():
        for _, layer, sn in spectral_norm_layers(net):
            w = layer.parametrizations.weight.original
            U, S, Vh = torch.linalg.svd(weight_matrix(w, sn.dim), full_matrices=False)
            w.copy_(((U * (S[0] / torch.arange(1, len(S) + 1) ** 0.5)) @ Vh).view_as(w))
    refresh_spectral_norm(net, 50)


def test_ema_decoder_has_spectral_norm_vectors_of_its_own():
    """After EMA updates towards a moving G, the weight G_ema applies (W / u^T W v) has exact
    spectral norm 1 within 1e-5 per layer; with G's vectors copied instead it is off by far more."""
    import copy
    from pioneer.training.ema import EmaUpdate
    from pioneer.model.spectral import effective_sigmas, refresh_spectral_norm
    torch.manual_seed(0)
    G = Decoder(tiny_model(width=1 / 16, min_channels=16))
    _decaying_spectra(G)
    ema, copied = copy.deepcopy(G).eval(), copy.deepcopy(G).eval()
    update = EmaUpdate(ema, G)
    g = torch.Generator().manual_seed(1)
    for _ in range(60):
        with torch.no_grad():  # a training step of G and its own power iteration
            for p in G.parameters():
                if p.dim() == 4:
                    p.add_(torch.randn(p.shape, generator=g) * 0.03 * p.std())
        refresh_spectral_norm(G)
        update(0.9)
        with torch.no_grad():  # the old update: average the weights, copy G's vectors
            torch._foreach_lerp_(list(copied.parameters()), list(G.parameters()), 0.1)
            torch._foreach_copy_(list(copied.buffers()), list(G.buffers()))
    ours, theirs = effective_sigmas(ema), effective_sigmas(copied)
    assert len(ours) == 2 * 3  # two SN convs per block, three levels
    assert max(abs(s - 1) for s in ours.values()) < 1e-5, ours
    assert max(abs(s - 1) for s in theirs.values()) > 1e-4, theirs
    for a, b in zip(ema.parameters(), copied.parameters()):  # the same averaged weights
        torch.testing.assert_close(a, b)


def test_exact_spectral_vectors_give_the_largest_singular_value():
    from pioneer.model.spectral import exact_spectral_vectors, effective_sigmas, top_singular_vectors
    torch.manual_seed(0)
    E = Encoder(tiny_model())
    before = {k: v.clone() for k, v in E.state_dict().items()}
    vectors = exact_spectral_vectors(E)
    assert all(torch.equal(v, E.state_dict()[k]) for k, v in before.items())  # E is not changed
    E.load_state_dict(vectors, strict=False)
    assert max(abs(s - 1) for s in effective_sigmas(E).values()) < 1e-6
    for shape in ((5, 40), (40, 5)):  # both Gram sides
        w = torch.randn(*shape, dtype=torch.float64)
        u, v = top_singular_vectors(w)
        torch.testing.assert_close(u @ w @ v, torch.linalg.svdvals(w)[0])
