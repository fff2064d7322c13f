"""The README's Python examples run as written (on the model that ships with pioneer), and every
command in its bash blocks names real commands and options."""

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


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(cwd),
                               "HF_HUB_OFFLINE": "1"})


def test_the_synthetic_faces_example_runs_as_written(tmp_path):
    block = next(b for b in python_blocks() if "SyntheticFaces()" in b and "export(" in b)
    out = _run(block, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "(3, 12)" in out.stdout
    assert len(list((tmp_path / "faces").glob("*.png"))) == 100
    assert (tmp_path / "faces" / "list_attr_celeba.txt").read_text().splitlines()[0] == "100"


# Stands in for huggingface_hub in the subprocess: records what would be uploaded (no network).
FAKE_HUB = '''
import sys, types, json, pathlib
hub = types.ModuleType("huggingface_hub")
class HfApi:
    def __init__(self, token=None): pass
    def create_repo(self, repo_id, **kw): pass
    def upload_folder(self, repo_id, folder_path, **kw):
        files = sorted(str(p.relative_to(folder_path)) for p in pathlib.Path(folder_path).rglob("*") if p.is_file())
        pathlib.Path("uploaded.json").write_text(json.dumps({"repo": repo_id, "files": files}))
        return "https://huggingface.co/" + repo_id + "/commit/0"
hub.HfApi = HfApi
sys.modules["huggingface_hub"] = hub
'''


def test_the_publish_example_runs_as_written(tmp_path):
    """The pretrained-folder block, on a copy of the shipped folder as published/, a face as a.png,
    this checkout as path/to/pioneer (torch.hub, source="local") and a stand-in Hub client."""
    import json
    import shutil

    from PIL import Image

    from pioneer.data import SyntheticFaces
    from pioneer.share.models import bundled_model

    block = next(b for b in python_blocks() if "push_to_hub" in b)
    shutil.copytree(bundled_model(), tmp_path / "published")
    Image.fromarray(SyntheticFaces().load(11000, 64)).save(tmp_path / "a.png")
    (tmp_path / "path" / "to").mkdir(parents=True)
    (tmp_path / "path" / "to" / "pioneer").symlink_to(README.parent)
    out = _run(FAKE_HUB + block + "\nprint('loaded', m.fingerprint, m.resolution)\n", tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    copied = sorted(p.name for p in (tmp_path / "copy" / "vectors").glob("*.safetensors"))
    assert copied and copied == sorted(p.name for p in (tmp_path / "published" / "vectors").glob("*.safetensors"))
    uploaded = json.loads((tmp_path / "uploaded.json").read_text())
    assert uploaded["repo"] == "me/pioneer-faces64" and "model.safetensors" in uploaded["files"]
    assert "loaded" in out.stdout and out.stdout.split()[-1] == "64"


def _command_lines() -> list[str]:
    """Every `pioneer ...` and `python benchmarks/...` line of the README's bash blocks, with
    continuation lines joined and comments dropped."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].split("  #")[0].strip()
            if line.startswith(("pioneer ", "python benchmarks/")):
                lines.append(line)
    return lines


def test_every_command_in_the_readme_names_real_commands_and_options():
    """The bash blocks train on data sets and GPUs this machine lacks, so they are not run; but
    every command, option and benchmark script they name exists."""
    import shlex

    import click

    from pioneer.cli import main

    lines = _command_lines()
    assert len(lines) > 30
    for line in lines:
        words = shlex.split(line.replace("$M", "M"))
        if words[0] == "python":
            assert (README.parent / words[1]).is_file(), line
            continue
        cmd = main.commands.get(words[1])
        assert isinstance(cmd, click.Command), f"no command {words[1]!r}: {line}"
        known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
        for w in words[2:]:
            if w.startswith("--"):
                assert w.split("=")[0] in known, f"{w} is not an option of pioneer {words[1]}: {line}"
