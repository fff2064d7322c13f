"""Shared pieces of the fault-injection tests: the tiny run's options, running the CLI in and out
of process, and flipping bytes inside checkpoint files."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from click.testing import CliRunner, Result

from conftest import one_line_error  # noqa: F401 (the fault tests import it from here)
from pioneer.run.checkpoint import load_training_state
from pioneer.cli import main

# 64 synthetic faces, 4 -> 8 px, batch 8, the narrowest networks: an iteration takes milliseconds.
TINY = ["--data", "synthetic:64", "--resolution", "8", "--batch", "8", "--width", "0.015625"]


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def pioneer_proc(*args: str) -> subprocess.Popen:
    """`python -m pioneer ARGS --no-progress` in its own process, stdout and stderr together."""
    return subprocess.Popen([sys.executable, "-m", "pioneer", *args, "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended early ({proc.returncode}): {proc.communicate()[0]}")
        if time.time() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def state_images(run_dir: Path) -> int:
    return int(load_training_state(run_dir / "training-state.pt")["images_seen"])


def tensor_offset(path: Path, keys: tuple[str, ...]) -> int:
    """Byte offset of a tensor's data inside a saved training state (torch stores it raw)."""
    obj = load_training_state(path)
    for k in keys:
        obj = obj[k]
    assert isinstance(obj, torch.Tensor)
    pos = path.read_bytes().find(obj.contiguous().numpy().tobytes())
    assert pos >= 0
    return pos


def flip_bytes(path: Path, offset: int, count: int) -> None:
    data = bytearray(path.read_bytes())
    for i in range(offset, min(offset + count, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
