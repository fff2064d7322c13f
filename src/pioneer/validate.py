"""Checked option values for the command line: finite numbers within a range, devices that exist
here, batches that split over processes. Each failure is one line naming the option and the fix.

click's FloatRange lets NaN through (every comparison with NaN is false), and Python's float()
accepts "nan", "inf" and "1e400"; `Number` refuses all three.
"""

from __future__ import annotations

import math
from typing import Any

import click

# Bounds on what commands draw, so that a typo cannot ask for hundreds of gigabytes.
MAX_STRENGTH = 100.0        # |lambda| of an edit: the code is re-normalised, 100 is already far beyond useful
MAX_STRIP = 64              # images in one edit strip or along one interpolation edge
MAX_GRID_IMAGES = 4096      # images in one PNG grid (sample -n into a .png)


class Number(click.ParamType):
    """A finite float (or int) in [low, high]; `open_low` / `open_high` exclude the ends."""

    def __init__(self, low: float | None = None, high: float | None = None, *, integer: bool = False,
                 open_low: bool = False, open_high: bool = False, hint: str = "") -> None:
        self.low, self.high, self.integer = low, high, integer
        self.open_low, self.open_high, self.hint = open_low, open_high, hint
        self.name = "integer" if integer else "float"

    def describe_range(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'above' if self.open_low else 'at least'} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'below' if self.open_high else 'at most'} {self.high:g}")
        return " and ".join(parts)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            try:
                number = int(text) if self.integer else float(text)
            except ValueError:
                self.fail(f"{value!r} is not {'an integer' if self.integer else 'a number'}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number: give one {self.describe_range() or 'that is finite'}",
                      param, ctx)
        low_bad = self.low is not None and (number <= self.low if self.open_low else number < self.low)
        high_bad = self.high is not None and (number >= self.high if self.open_high else number > self.high)
        if low_bad or high_bad:
            self.fail(f"{value!r} is out of range: give a number {self.describe_range()}{self.hint}", param, ctx)
        return number


def finite(value: float, what: str, low: float | None = None, high: float | None = None) -> float:
    """`value` when finite and within [low, high]; ValueError naming `what` otherwise."""
    if not math.isfinite(value):
        raise ValueError(f"{what} {value!r} is not a finite number")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = " and ".join(s for s in (f"at least {low:g}" if low is not None else "",
                                          f"at most {high:g}" if high is not None else "") if s)
        raise ValueError(f"{what} {value!r} is out of range: use a number {bounds}")
    return value


def check_device(text: str, option: str = "--device") -> None:
    """click error for a device that is not understood or not present here ("auto" always passes)."""
    if text == "auto":
        return
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise click.BadParameter(f"{text!r} is not a device: use auto, cpu, cuda or cuda:N",
                                 param_hint=f"'{option}'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise click.BadParameter(f"{text!r}: no CUDA GPU is visible to this process; use --device cpu (or auto)",
                                     param_hint=f"'{option}'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise click.BadParameter(f"{text!r}: this machine has {torch.cuda.device_count()} GPU(s), numbered from 0",
                                     param_hint=f"'{option}'")
    elif dev.type != "cpu":
        raise click.BadParameter(f"{text!r} is not supported: use auto, cpu, cuda or cuda:N", param_hint=f"'{option}'")


def check_gpus(gpus: int, device: str) -> None:
    """--gpus N on GPUs needs N visible GPUs (CPU processes need none)."""
    if gpus <= 1 or device == "cpu":
        return
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        count = torch.cuda.device_count()
        if count < gpus:
            raise click.BadParameter(f"{gpus} processes need {gpus} GPUs but {count} are visible: lower --gpus, "
                                     "or pass --device cpu for CPU processes", param_hint="'--gpus'")


def check_batch_split(batch_sizes: dict[int, int], final_resolution: int, processes: int) -> None:
    """Every batch of the schedule must split evenly over the processes."""
    for res, b in sorted(batch_sizes.items()):
        if res <= final_resolution and b % processes:
            raise click.UsageError(f"batch size {b} at {res}px does not split over --gpus {processes}: "
                                   f"pass --batch with a multiple of {processes}, or change --gpus")


def check_strengths(values: list[float], count: int) -> None:
    """Edit strengths: finite, within +-MAX_STRENGTH, 1 to MAX_STRIP of them (ValueError)."""
    for v in values:
        finite(v, "strength", -MAX_STRENGTH, MAX_STRENGTH)
    if not 1 <= count <= MAX_STRIP:
        raise ValueError(f"{count} strengths asked for: use 1 to {MAX_STRIP}")
