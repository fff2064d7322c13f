"""The README's Python examples run as written (on the model that ships with pioneer)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_inference_example_runs_as_written(tmp_path):
    block = next(b for b in python_blocks() if "Pioneer.from_pretrained()" in b and "m.edit(" in b)
    code = block + "\nprint('shapes', tuple(z.shape), tuple(x.shape), tuple(grid.shape), tuple(both.shape))\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "shapes (2, 128) (2, 3, 64, 64) (64, 3, 64, 64) (1, 3, 64, 64)" in out.stdout
    for name in ("a-rec.png", "samples.png", "Smiling.safetensors"):
        assert (tmp_path / name).is_file(), name
