"""The fitted sampler: a Gaussian fitted to real codes, as an extra to the prior."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import one_line_error
from pioneer.cli import main
from pioneer.inference.facade import Pioneer
from pioneer.inference.sampler import FittedCodes, SamplerError
from pioneer.model.networks import sample_prior

pytest_plugins = ["model_fixtures"]


def test_fit_recovers_the_mean_and_covariance_of_the_codes():
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(8, 8, generator=g)
    codes = torch.randn(20000, 8, generator=g, dtype=torch.float64) @ mix.double().T * 0.1 + 0.3
    fit = FittedCodes.fit(codes)
    torch.testing.assert_close(fit.mean.double(), codes.mean(0), rtol=0, atol=1e-6)
    torch.testing.assert_close((fit.scale @ fit.scale.T).double(), torch.cov(codes.T), rtol=1e-3, atol=1e-5)
    z = fit.sample(5000, torch.Generator().manual_seed(1))
    torch.testing.assert_close(z.norm(dim=1), torch.ones(5000))
    # samples follow the fitted direction, not the prior's: their mean points where the codes' does
    cos = torch.nn.functional.cosine_similarity(z.mean(0), fit.mean, dim=0)
    assert cos > 0.99 and z.mean(0).norm() > 0.5 > sample_prior(5000, 8).mean(0).norm()


def test_fit_needs_two_codes_and_survives_fewer_codes_than_dimensions():
    with pytest.raises(SamplerError, match="at least 2 codes"):
        FittedCodes.fit(torch.randn(1, 16))
    fit = FittedCodes.fit(sample_prior(5, 16))                 # rank 4 covariance: the ridge keeps it valid
    assert torch.isfinite(fit.sample(3, torch.Generator().manual_seed(0))).all()


def test_model_samples_from_a_fitted_density(tiny_snapshot, model_cache):
    model = Pioneer.load(tiny_snapshot)
    fit = model.fit_sampler(num=40, cache_dir=str(model_cache))  # the snapshot's own training data
    assert fit.num == 40 and fit.mean.shape == (model.latent_dim,)
    a, b = model.sample(4, seed=3, sampler=fit), model.sample(4, seed=3, sampler=fit)
    assert a.shape == (4, 3, model.resolution, model.resolution) and torch.equal(a, b)
    assert not torch.equal(a, model.sample(4, seed=3))          # not the prior's codes
    # the fitted codes lie where the real ones do: closer to their mean direction than prior codes
    fitted_z = model.sample_codes(64, seed=5, sampler=fit)
    assert (fitted_z @ fit.mean).mean() > (model.sample_codes(64, seed=5) @ fit.mean).mean()
    from_images = model.fit_sampler(images=model.sample(8, seed=1))
    assert from_images.num == 8
    with pytest.raises(SamplerError, match="fit it to this model"):
        model.sample(2, sampler=FittedCodes.fit(sample_prior(10, model.latent_dim + 1)))


def test_cli_sample_with_the_fitted_sampler(tiny_snapshot, model_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("PIONEER_CACHE", str(model_cache))
    run = CliRunner().invoke
    out = tmp_path / "fitted.png"
    r = run(main, ["sample", "--model", str(tiny_snapshot), "--sampler", "fitted", "--fit-num", "40", "-n", "4",
                   "-o", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    prior = tmp_path / "prior.png"
    assert run(main, ["sample", "--model", str(tiny_snapshot), "-n", "4", "-o", str(prior)]).exit_code == 0
    with Image.open(out) as a, Image.open(prior) as b:
        assert a.size == b.size and not np.array_equal(np.asarray(a), np.asarray(b))
    one_line_error(run(main, ["sample", "--model", str(tiny_snapshot), "--data", "synthetic", "-o", str(out)]),
                   "--data is for --sampler fitted")
    one_line_error(run(main, ["sample", "--model", str(tiny_snapshot), "--sampler", "fitted", "--data",
                              str(tmp_path / "missing"), "-o", str(out)]), "missing")
