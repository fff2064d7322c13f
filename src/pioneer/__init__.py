"""Balanced PIONEER: progressively growing generative autoencoders in PyTorch."""

from pioneer.inference.facade import Pioneer
from pioneer.config import LossConfig, ModelConfig, ScheduleConfig, TrainConfig, preset
from pioneer.model.networks import Decoder, Encoder, sample_prior

__all__ = ["Decoder", "Encoder", "LossConfig", "ModelConfig", "Pioneer", "ScheduleConfig", "TrainConfig", "preset", "sample_prior"]
__version__ = "0.1.0"
