import os

import pytest
import torch

from pioneer.config import LossConfig, ModelConfig, Rule, ScheduleConfig, TrainConfig


# The threads of CI's 2-core machine; OMP_NUM_THREADS=1 runs the suite on one.
TEST_THREADS = int(os.environ.get("OMP_NUM_THREADS") or 2)


@pytest.fixture(autouse=True)
def _small_torch():
    torch.set_num_threads(TEST_THREADS)
    yield


def tiny_model(**kw) -> ModelConfig:
    """4 -> 16 px, a few channels: a forward+backward takes milliseconds."""
    base = dict(max_resolution=16, latent_dim=32, width=1 / 64, min_channels=8)
    base.update(kw)
    return ModelConfig(**base)


def tiny_config(**kw) -> TrainConfig:
    """Phases 0..2 in 0.6 kimg: batch 8, fade-in over 0.1 kimg, margin from 0.4 kimg."""
    sched = ScheduleConfig(
        rules=(Rule(0.0, 0, 2e-3, 0.0), Rule(0.15, 1, 2e-3, 0.0), Rule(0.3, 2, 2e-3, 0.0), Rule(0.4, 2, 2e-3, 0.2)),
        fade_kimg=0.1,
        batch_sizes={4: 8, 8: 8, 16: 8},
        total_kimg=0.6,
    )
    base = dict(model=tiny_model(), loss=LossConfig(), schedule=sched, data="synthetic:64", grid_size=2, ema_decay=0.9,
                log_every=5, grid_kimg=0.2, snapshot_kimg=0.3, checkpoint_kimg=0.1)
    base.update(kw)
    return TrainConfig(**base)


def one_line_error(r, *needles: str) -> None:
    """A CLI result that failed with exactly one 'Error:' line naming each of `needles`, and no
    traceback (click may add its usage lines above)."""
    assert r.exit_code != 0, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in r.output, r.output
    for n in needles:
        assert n in errors[0], errors[0]
