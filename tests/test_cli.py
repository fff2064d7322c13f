import json
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from conftest import one_line_error as _one_line_error
from pioneer.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_commands_and_presets():
    r = run("--help")
    assert r.exit_code == 0 and "train" in r.output
    r = run("train", "--help")
    assert r.exit_code == 0 and "celebahq256" in r.output and "--resume" in r.output


def test_dry_run_prints_schedule_without_data():
    r = run("train", "--preset", "celebahq256", "--dry-run")
    assert r.exit_code == 0
    assert "256x256" in r.output and "fade-in" in r.output and "(none: pass --data)" in r.output
    r = run("train", "--preset", "celebahq256", "--dry-run", "--resolution", "32", "--no-margin")
    assert r.exit_code == 0 and "64x64" not in r.output and "0.5" not in r.output.split("kimg")[-1]


def test_image_pool_in_the_paper_presets_only():
    from pioneer.config import ConfigError, TrainConfig, preset
    for name in ("celebahq256", "lsun256", "pioneer-celebahq256"):
        cfg = preset(name)
        assert cfg.image_pool == 200 and TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert preset("synthetic64").image_pool == 0
    old = preset("celebahq256").to_dict()
    del old["image_pool"]                      # options.json of runs from before the field: off
    assert TrainConfig.from_dict(old).image_pool == 0
    with pytest.raises(ConfigError, match="image_pool"):
        TrainConfig.from_dict({**old, "image_pool": -1})
    assert "200 fakes below 256px, 100 from 256px" in run("train", "--preset", "lsun256", "--dry-run").output
    assert "image pool  off" in run("train", "--dry-run").output


def test_error_paths(tmp_path):
    _one_line_error(run("train", "--preset", "nope"), "nope")
    _one_line_error(run("train", "--preset", "celebahq256", "--outdir", str(tmp_path)), "--data")
    _one_line_error(run("train", "--data", str(tmp_path / "missing"), "--outdir", str(tmp_path)), "does not exist")
    (tmp_path / "empty").mkdir()
    _one_line_error(run("train", "--data", str(tmp_path / "empty"), "--outdir", str(tmp_path / "o")), "empty")
    _one_line_error(run("train", "--resolution", "100", "--dry-run"), "power of two")
    _one_line_error(run("train", "--preset", "synthetic64", "--resolution", "256", "--dry-run"), "only lower")
    _one_line_error(run("train", "--resume", str(tmp_path / "empty")), "not a run folder")
    _one_line_error(run("train", "--metrics", "fid1k,bogus", "--dry-run"), "bogus")
    assert not (tmp_path / "o").exists()  # nothing created for a failed start


def test_train_then_resume_from_cli(tmp_path):
    out = tmp_path / "runs"
    common = ["--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    r = run("train", "--data", "synthetic:64", "--resolution", "8", "--kimg", "0.1", "--batch", "8",
            "--width", "0.015625", "--outdir", str(out), "--name", "tiny", *common)
    assert r.exit_code == 0, r.output
    run_dir = out / "00000-tiny"
    opts = json.loads((run_dir / "options.json").read_text())
    assert opts["preset"] == "synthetic64" and opts["config"]["model"]["max_resolution"] == 8
    # extend the finished run
    r = run("train", "--resume", str(run_dir), "--kimg", "0.15", *common)
    assert r.exit_code == 0, r.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["images_seen"] >= 150
    # corrupt training states (the newest and the previous one kept beside it) are reported in one line
    for name in ("training-state.pt", "training-state.prev.pt"):
        (run_dir / name).write_bytes(b"\0" * 32)
    _one_line_error(run("train", "--resume", str(run_dir), "--kimg", "0.2", *common), "corrupt", "unusable too")


@pytest.mark.slow
def test_ctrl_c_checkpoints_and_resume_continues(tmp_path):
    """SIGINT finishes the iteration, writes a checkpoint, exits 130; --resume carries on."""
    out, cache = tmp_path / "runs", tmp_path / "cache"
    cmd = [sys.executable, "-m", "pioneer", "train", "--data", "synthetic:64", "--resolution", "8", "--kimg", "100",
           "--batch", "8", "--width", "0.015625", "--outdir", str(out), "--cache-dir", str(cache), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stats = out / "00000-synthetic64" / "stats.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (stats.exists() and len(stats.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "pioneer train --resume" in output
    run_dir = out / "00000-synthetic64"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert not summary["finished"] and summary["images_seen"] > 0
    stop_at = summary["images_seen"]
    r = run("train", "--resume", str(run_dir), "--kimg", str(stop_at / 1000 + 0.04), "--cache-dir", str(cache),
            "--no-progress")
    assert r.exit_code == 0, r.output
    assert json.loads((run_dir / "summary.json").read_text())["images_seen"] >= stop_at + 40


@pytest.mark.parametrize("flags, speed", [
    ([], "channels_last, sn_cache"),                                # the default preset
    (["--optimised"], "amp, channels_last, sn_cache"),
    (["--eager"], "eager float32 (all options off)"),
    (["--eager", "--amp"], "amp"),                                  # single flags apply on top
    (["--preset", "celebahq256", "--no-channels-last", "--sn-cache"], "sn_cache"),
])
def test_speed_options(flags, speed):
    r = CliRunner().invoke(main, ["train", "--dry-run", *flags])
    assert r.exit_code == 0, r.output
    line = next(l for l in r.output.splitlines() if l.startswith("speed"))
    assert line.split(None, 1)[1] == speed


def test_optimised_and_eager_conflict():
    r = CliRunner().invoke(main, ["train", "--dry-run", "--optimised", "--eager"])
    assert r.exit_code != 0 and "pick one" in r.output


def test_collapse_options_reach_the_config():
    r = CliRunner().invoke(main, ["train", "--dry-run", "--collapse-rank", "3", "--dead-cycle", "0.9"])
    assert r.exit_code == 0, r.output
    line = next(l for l in r.output.splitlines() if l.startswith("health"))
    assert "rank < 3" in line and "cycle > 0.9" in line
    health = lambda *a: next(l for l in CliRunner().invoke(main, ["train", "--dry-run", *a]).output.splitlines()  # noqa: E731
                             if l.startswith("health"))
    assert "rank < 4" in health() and "cycle > 0.98" in health()                  # the default preset's
    assert "rank < 4" in health("--preset", "celebahq256") and "cycle" not in health("--preset", "celebahq256")
    _one_line_error(run("train", "--dry-run", "--dead-cycle", "2.5"), "--dead-cycle")
    _one_line_error(run("train", "--dry-run", "--collapse-rank", "-1"), "--collapse-rank")
