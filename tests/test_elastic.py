"""--run-dir (train into one folder, resume it if it holds a checkpoint), the torchrun launch with
--max-restarts, and a real elastic restart after a worker dies."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import one_line_error as _one_line_error
from pioneer.cli import main
from pioneer.cli.launch import torchrun_command as _torchrun_command
from pioneer.run.stats import read_stats

TINY = ["--data", "synthetic:64", "--resolution", "8", "--batch", "8", "--width", "0.015625", "--no-progress"]


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _logged_images(run_dir: Path) -> list[int]:
    return [r["images_seen"] for r in read_stats(run_dir) if "loss_E" in r]


def test_run_dir_starts_a_run_then_continues_it(tmp_path):
    run_dir = tmp_path / "celeba"  # does not exist yet
    args = ["train", "--run-dir", str(run_dir), *TINY, "--cache-dir", str(tmp_path / "cache")]
    r = run(*args, "--kimg", "0.1")
    assert r.exit_code == 0, r.output
    assert "resuming" not in r.output
    assert json.loads((run_dir / "summary.json").read_text())["images_seen"] == 104
    opts = json.loads((run_dir / "options.json").read_text())
    assert opts["config"]["model"]["max_resolution"] == 8

    # The same command with a longer --kimg continues the run in the same folder.
    r = run(*args, "--kimg", "0.15")
    assert r.exit_code == 0, r.output
    assert f"resuming {run_dir} from 0.104 kimg" in r.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] and summary["images_seen"] == 152 and summary["iterations_this_session"] == 6
    assert json.loads((run_dir / "options.json").read_text())["config"]["schedule"]["total_kimg"] == 0.15
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "celeba"]  # no new run folder
    seen = _logged_images(run_dir)
    assert seen == sorted(set(seen)) and seen[-1] == 152

    # The run's own options, in a dry run; options that would change the run are refused.
    r = run("train", "--run-dir", str(run_dir), "--dry-run")
    assert r.exit_code == 0 and "up to 8px" in r.output and "0.15 kimg" in r.output
    _one_line_error(run(*args, "--width", "0.03125"), "--width 0.03125", "does not match", str(run_dir))
    _one_line_error(run(*args, "--preset", "celebahq256"), "--preset celebahq256")
    _one_line_error(run(*args, "--resolution", "16"), "--resolution 16")
    _one_line_error(run(*args, "--batch", "16"), "--batch 16")
    _one_line_error(run("train", "--resume", str(run_dir), "--seed", "3", "--dry-run"), "--seed 3")


def test_run_dir_starts_over_after_a_failure_before_the_first_checkpoint(tmp_path):
    """options.json but no training-state.pt: the last attempt died early; a new run starts
    there without the old attempt's log records."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "options.json").write_text("{}")
    (run_dir / "stats.jsonl").write_text(json.dumps({"images_seen": 8, "loss_E": 99.0}) + "\n")
    r = run("train", "--run-dir", str(run_dir), *TINY, "--kimg", "0.05", "--cache-dir", str(tmp_path / "cache"))
    assert r.exit_code == 0, r.output
    assert "resuming" not in r.output
    assert json.loads((run_dir / "options.json").read_text())["config"]["schedule"]["total_kimg"] == 0.05
    recs = [r for r in read_stats(run_dir) if "loss_E" in r]
    assert recs and all(r["loss_E"] != 99.0 for r in recs)
    assert _logged_images(run_dir) == sorted(set(_logged_images(run_dir)))


def test_run_dir_errors(tmp_path, monkeypatch):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a run")
    _one_line_error(run("train", "--run-dir", str(tmp_path / "other"), *TINY), "neither empty nor a run folder")
    _one_line_error(run("train", "--run-dir", str(tmp_path / "a"), "--resume", str(tmp_path / "a")), "use one")
    _one_line_error(run("train", "--run-dir", str(tmp_path / "a"), "--name", "x"), "--name")
    _one_line_error(run("train", "--max-restarts", "-1", "--dry-run"), "--max-restarts", "-1")
    monkeypatch.setenv("WORLD_SIZE", "2")  # as under torchrun
    _one_line_error(run("train", "--max-restarts", "2", "--dry-run"), "pass --max-restarts to torchrun")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]


def test_torchrun_command():
    cmd = _torchrun_command(["train", "--gpus", "4", "--max-restarts=3", "--outdir", "o", "--name=x", "--data", "d"],
                            4, 3, Path("o/00000-x"))
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", "--max-restarts=3",
                       "-m", "pioneer", "train", "--data", "d", "--run-dir", "o/00000-x"]
    cmd = _torchrun_command(["train", "--gpus=2", "--outdir", "o", "--data", "d"], 2, 0, None)
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                       "-m", "pioneer", "train", "--outdir", "o", "--data", "d"]


def test_warns_about_torchruns_shared_store(monkeypatch, capsys):
    from pioneer.cli.launch import warn_shared_store as _warn_shared_store
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "3")
    _warn_shared_store()
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in capsys.readouterr().err
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "False")  # what that setting gives the workers
    _warn_shared_store()
    assert capsys.readouterr().err == ""


def test_gpus_with_max_restarts_reserves_a_run_dir(tmp_path, monkeypatch):
    """--gpus N --max-restarts K picks the run folder once, so that restarted workers resume it."""
    launched = []

    def execve(path, cmd, env):
        launched.append((cmd, env))
        raise SystemExit(0)

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", raising=False)
    monkeypatch.setattr(os, "execve", execve)
    argv = ["train", "--gpus", "2", "--max-restarts", "2", "--data", "synthetic:64", "--outdir", str(tmp_path / "runs")]
    monkeypatch.setattr(sys, "argv", ["pioneer", *argv])
    run(*argv)
    run_dir = tmp_path / "runs" / "00000-synthetic64"
    assert run_dir.is_dir() and not any(run_dir.iterdir())
    cmd, env = launched[0]
    assert cmd[-2:] == ["--run-dir", str(run_dir)] and "--max-restarts=2" in cmd
    assert "--outdir" not in cmd and "--gpus" not in cmd
    assert env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] == "1"  # restarts need a fresh store per attempt


@pytest.mark.slow
def test_elastic_restart_resumes_from_the_last_checkpoint(tmp_path):
    """torchrun, 2 gloo processes, --max-restarts=1: rank 0 dies after the first checkpoint; the
    restarted job resumes from that checkpoint in the same folder and finishes the run."""
    run_dir = tmp_path / "run"
    worker = Path(__file__).with_name("elastic_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--max-restarts=1",
           "--monitor-interval=0.2", str(worker), "train", "--run-dir", str(run_dir), *TINY, "--kimg", "0.3",
           "--checkpoint-kimg", "0.1", "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]
    # What the --gpus launch sets for restarts; without it they fail (pytorch/pytorch#135712).
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    died_at = int((run_dir / "died-at.txt").read_text())
    assert died_at == 104, output  # the first checkpoint: 0.1 kimg crossed at batch 8
    assert f"elastic restart 1: resuming {run_dir} from 0.104 kimg" in proc.stdout, output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] and summary["images_seen"] == 304
    assert summary["iterations_this_session"] == (304 - died_at) // 8  # resumed, not started over
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "run"]
    seen = _logged_images(run_dir)
    assert seen == sorted(set(seen)) and seen[-1] == 304  # no records logged twice
