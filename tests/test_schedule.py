import pytest

from pioneer.config import ConfigError, LossConfig, Rule, ScheduleConfig, preset
from pioneer.training.schedule import describe, format_table, state_at


def celeba():
    cfg = preset("celebahq256")
    return cfg.schedule, cfg.loss


@pytest.mark.parametrize("kimg,phase,res,alpha,lr,margin,batch,lam", [
    (0, 0, 4, 1.0, 5e-4, 0.5, 128, 1.0),            # rule 0 applied (the official code skipped it)
    (1199.999, 0, 4, 1.0, 5e-4, 0.5, 128, 1.0),
    (1200, 0, 4, 1.0, 5e-4, 0.5, 128, 1.5),         # phase 0 has no fade but keeps the lambda switch
    (2400, 1, 8, 0.0, 5e-4, 0.5, 128, 1.0),         # first image of a phase: alpha 0
    (3000, 1, 8, 0.5, 5e-4, 0.5, 128, 1.0),
    (3600, 1, 8, 1.0, 5e-4, 0.5, 128, 1.5),         # fade-in ends, lambda_X switches to 1.5
    (7200, 3, 32, 0.0, 5e-4, 0.5, 64, 1.0),
    (9600, 4, 64, 0.0, 1e-3, 0.0, 32, 1.0),
    (12999, 4, 64, 1.0, 1e-3, 0.0, 32, 1.5),
    (13000, 4, 64, 1.0, 1e-3, 0.2, 32, 1.5),        # margin switched on mid-phase: no new fade-in
    (16520, 5, 128, 0.0, 1e-3, 0.2, 32, 1.0),
    (20040, 6, 256, 0.0, 1e-3, 0.4, 32, 1.0),
    (21240, 6, 256, 1.0, 1e-3, 0.4, 32, 1.5),
    (25480, 6, 256, 1.0, 1e-3, 0.4, 32, 1.5),
])
def test_celebahq_values_at_boundaries(kimg, phase, res, alpha, lr, margin, batch, lam):
    s = state_at(*celeba(), int(round(kimg * 1000)))
    assert (s.phase, s.resolution, s.lr, s.margin, s.batch_size, s.recon_weight) == (phase, res, lr, margin, batch, lam)
    assert s.alpha == pytest.approx(alpha)


def test_lsun_and_baseline_presets():
    lsun = preset("lsun256")
    s = state_at(lsun.schedule, lsun.loss, 12_360_000)
    assert (s.phase, s.margin) == (4, 0.6)
    assert state_at(lsun.schedule, lsun.loss, 21_400_000).margin == 0.4
    base = preset("pioneer-celebahq256")
    assert base.model.decoder_norm == "eqlr+pn" and base.model.encoder_last_activation
    assert all(r.margin == 0 for r in base.schedule.rules)
    bp = preset("celebahq256")
    assert bp.model.decoder_norm == "sn" and not bp.model.encoder_last_activation


def test_alpha_is_monotone_within_a_phase():
    sched, loss = celeba()
    alphas = [state_at(sched, loss, k * 1000).alpha for k in range(2400, 4800, 50)]
    assert alphas == sorted(alphas) and alphas[0] == 0 and alphas[-1] == 1


def test_schedule_validation():
    with pytest.raises(ConfigError, match="start at 0"):
        ScheduleConfig(rules=(Rule(5, 0, 1e-3, 0),))
    with pytest.raises(ConfigError, match="increasing"):
        ScheduleConfig(rules=(Rule(0, 0, 1e-3, 0), Rule(0, 1, 1e-3, 0)))
    with pytest.raises(ConfigError, match="one level at a time"):
        ScheduleConfig(rules=(Rule(0, 0, 1e-3, 0), Rule(10, 2, 1e-3, 0)))
    with pytest.raises(ConfigError, match="batch size"):
        ScheduleConfig(rules=(Rule(0, 0, 1e-3, 0),), batch_sizes={8: 4})
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("celeba1024")


def test_dry_run_table_covers_the_run():
    sched = preset("synthetic64").schedule
    rows = describe(sched)
    assert rows[0]["kimg"].startswith("0-") and rows[-1]["kimg"].endswith(f"-{sched.total_kimg:g}")
    text = format_table(rows)
    assert "fade-in" in text and "64x64" in text
    # iterations add up to the run's images at each batch size
    total_images = sum(r["iterations"] * r["batch"] for r in rows)
    assert abs(total_images - sched.total_kimg * 1000) < len(rows) * 32


def test_lr_rampdown_ends_the_run_at_zero():
    """A half cosine over the last lr_rampdown_kimg; untouched before it; shown in --dry-run."""
    import dataclasses

    from pioneer.config import ConfigError, LossConfig, preset
    from pioneer.training.schedule import describe, state_at

    cfg = preset("synthetic64").schedule
    assert cfg.lr_rampdown_kimg == 10.0 and cfg.total_kimg == 86.0
    lr = lambda kimg: state_at(cfg, LossConfig(), int(kimg * 1000)).lr  # noqa: E731
    assert lr(75.9) == 1e-3 and lr(76.0) == 1e-3
    assert lr(81.0) == pytest.approx(0.5e-3)
    assert lr(86.0) == pytest.approx(0.0, abs=1e-12)
    assert all(lr(k) >= lr(k + 0.5) for k in (76.0, 78.0, 80.0, 82.0, 84.0))
    rows = describe(cfg)
    assert rows[-1]["kimg"] == "76-86" and rows[-1]["lr"] == "0.001->0"
    assert rows[-2]["kimg"] == "72-76" and rows[-2]["lr"] == "0.001"
    assert preset("celebahq256").schedule.lr_rampdown_kimg == 0  # the paper has none
    with pytest.raises(ConfigError, match="lr_rampdown_kimg"):
        dataclasses.replace(cfg, lr_rampdown_kimg=-1.0)
    short = dataclasses.replace(cfg, total_kimg=4.0)  # e.g. --kimg 4: the ramp spans the whole run
    assert state_at(short, LossConfig(), 0).lr == pytest.approx(1e-3)
    assert state_at(short, LossConfig(), 2000).lr == pytest.approx(0.5e-3)
    assert describe(short)[0]["lr"] == "0.001->0"
