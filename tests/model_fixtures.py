"""Small trained models shared by the inference tests, trained once per test session.

Use from a test module with `pytest_plugins = ["model_fixtures"]` (a plugin is imported once,
so every module sees the same session fixtures).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conftest import tiny_config
from pioneer.training.loop import train


def _train(root: Path, cache: Path, **changes) -> Path:
    cfg = tiny_config(**{k: v for k, v in changes.items() if k != "total_kimg"})
    if "total_kimg" in changes:
        cfg = dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, total_kimg=changes["total_kimg"]))
    train(cfg, root, cache_dir=cache, progress=False)
    return root / "snapshot.safetensors"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pyramid-cache")


@pytest.fixture(scope="session")
def tiny_snapshot(tmp_path_factory, model_cache) -> Path:
    """conftest.tiny_config() trained to its end: 16x16, latent 32, 0.6 kimg (a few seconds)."""
    return _train(tmp_path_factory.mktemp("tiny-run"), model_cache)


@pytest.fixture(scope="session")
def attribute_snapshot(tmp_path_factory, model_cache) -> Path:
    """The tiny model trained longer on more faces, so that its codes carry attributes."""
    return _train(tmp_path_factory.mktemp("attribute-run"), model_cache, data="synthetic:512", total_kimg=1.2)
