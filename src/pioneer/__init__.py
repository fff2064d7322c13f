"""Balanced PIONEER: progressively growing generative autoencoders in PyTorch."""

from .api import Pioneer
from .config import LossConfig, ModelConfig, ScheduleConfig, TrainConfig, preset
from .networks import Decoder, Encoder, sample_prior

__all__ = ["Decoder", "Encoder", "LossConfig", "ModelConfig", "Pioneer", "ScheduleConfig", "TrainConfig", "preset", "sample_prior"]
__version__ = "0.1.0"
