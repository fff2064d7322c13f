"""Balanced PIONEER: progressively growing generative autoencoders in PyTorch."""

from typing import Any

__all__ = ["Decoder", "Encoder", "LossConfig", "ModelConfig", "Pioneer", "ScheduleConfig", "TrainConfig", "open_model", "preset", "sample_prior"]
__version__ = "0.1.0"

# Imported on first use (PEP 562), so that `pioneer` starts without importing torch first and
# catches Ctrl-C from its first moment (see pioneer.entry).
_WHERE = {"Pioneer": "inference.facade", "LossConfig": "config", "ModelConfig": "config", "ScheduleConfig": "config",
          "TrainConfig": "config", "preset": "config", "Decoder": "model.networks", "Encoder": "model.networks",
          "sample_prior": "model.networks",
          "open_model": "share.models"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'pioneer' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"pioneer.{_WHERE[name]}"), name)
