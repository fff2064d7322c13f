"""Fault injection: what a failing machine and a careless user do to a run, and that no run is
lost. Tiny runs (8 px, 64 synthetic faces) so that each test takes seconds; the kill -9 loop is
marked slow. `faults_helpers` holds the shared commands and file surgery."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import tiny_config
from faults_helpers import (TINY, cli, flip_bytes, one_line_error, pioneer_proc, state_images, tensor_offset,
                            wait_for)
from pioneer.run import integrity
from pioneer.run.checkpoint import CheckpointError, load_snapshot, load_training_state
from pioneer.cli import main
from pioneer.run.lock import LOCK_FILE
from pioneer.run.resume import missing_final_outputs
from pioneer.training.loop import train

pytest_plugins = ["model_fixtures"]


# ------------------------------------------------------------------------------------------------
# Byte flips in each kind of file


def _finished_run(tmp_path: Path, kimg: str = "0.1") -> tuple[Path, list[str]]:
    run_dir, common = tmp_path / "run", ["--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    r = cli("train", "--run-dir", str(run_dir), *TINY, "--kimg", kimg, "--checkpoint-kimg", "0.04", *common)
    assert r.exit_code == 0, r.output
    return run_dir, common


def test_byte_flip_in_each_file_kind_is_detected(tmp_path):
    run_dir, common = _finished_run(tmp_path)
    state = run_dir / integrity.STATE_FILE
    prev_images = load_training_state(run_dir / integrity.PREVIOUS_STATE_FILE)["images_seen"]
    assert prev_images < load_training_state(state)["images_seen"]

    # training state: 64 bytes flipped inside an encoder weight -> the previous state, with a message
    enc = load_training_state(state)["encoder"]
    key = max((k for k, v in enc.items() if v.ndim == 1), key=lambda k: enc[k].numel())  # stored contiguously
    flip_bytes(state, tensor_offset(state, ("encoder", key)), 64)
    r = cli("train", "--resume", str(run_dir), "--kimg", "0.15", *common)
    assert r.exit_code == 0, r.output
    assert "fails its checksum" in r.output and "resuming from the previous checkpoint" in r.output
    assert f"at {prev_images / 1000:g} kimg" in r.output
    assert state_images(run_dir) >= 150

    # snapshot: the image commands refuse it in one line
    snap = run_dir / integrity.SNAPSHOT_FILE
    flip_bytes(snap, snap.stat().st_size - 200, 8)
    one_line_error(cli("sample", "--model", str(snap), "-n", "2", "-o", str(tmp_path / "s.png"), "--device", "cpu"),
                   "fails its checksum")
    assert not (tmp_path / "s.png").exists()
    numbered = sorted((run_dir / "snapshots").glob("*.safetensors"))[-1]
    flip_bytes(numbered, numbered.stat().st_size // 2, 1)
    with pytest.raises(CheckpointError, match="checksum"):
        load_snapshot(numbered)

    # options.json and a torn stats line
    with open(run_dir / "stats.jsonl", "a") as f:
        f.write('{"images_seen": 99999, "loss_')                  # a write killed half-way
    opts = run_dir / "options.json"
    text = opts.read_text()
    opts.write_text(text[: len(text) // 2])
    one_line_error(cli("train", "--resume", str(run_dir), "--kimg", "0.2", *common), "options.json", "damaged")
    opts.write_text(text)
    r = cli("train", "--resume", str(run_dir), "--kimg", "0.2", *common)
    assert r.exit_code == 0, r.output
    assert load_snapshot(snap).images_seen == state_images(run_dir)   # the damaged snapshot rewritten


def test_vectors_with_nan_or_inf_are_refused(tmp_path):
    from pioneer.inference.latent import AttributeVector

    for bad in (float("nan"), float("inf")):
        v = torch.zeros(32)
        v[3] = bad
        path = tmp_path / f"v{bad}.safetensors"
        AttributeVector(v, "Smiling", 4, 4).save(path)
        with pytest.raises(ValueError, match="NaN or infinite"):
            AttributeVector.load(path)


# ------------------------------------------------------------------------------------------------
# Two runs in one folder


def test_second_run_in_a_busy_folder_gets_one_line_and_changes_nothing(tmp_path):
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    proc = pioneer_proc("train", "--run-dir", str(run_dir), *TINY, "--kimg", "100", "--cache-dir", str(cache))
    try:
        wait_for(lambda: (run_dir / "stats.jsonl").is_file() and (run_dir / "stats.jsonl").stat().st_size > 0, proc)
        stats_before = (run_dir / "stats.jsonl").read_text()
        for args in (["--run-dir", str(run_dir)], ["--resume", str(run_dir), "--kimg", "5.5"]):
            r = cli("train", *args, "--cache-dir", str(cache), "--no-progress")
            one_line_error(r, f"pid {proc.pid}", "in use", "since")
        assert (run_dir / "stats.jsonl").read_text().startswith(stats_before)   # not deleted nor truncated
        assert json.loads((run_dir / "options.json").read_text())["config"]["schedule"]["total_kimg"] == 100
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in out, out
    assert not (run_dir / LOCK_FILE).exists() and integrity.has_state(run_dir)


# ------------------------------------------------------------------------------------------------
# Stopping


def test_sigint_stops_after_the_current_iteration(tmp_path, monkeypatch):
    """The signal arrives inside iteration 7 of a run that logs every 1000: the run stops after
    iteration 7, with a checkpoint at exactly that point."""
    import pioneer.training.loop as loop

    calls = {"n": 0}
    real = loop.training_iteration

    def signalling(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "training_iteration", signalling)
    cfg = _short_config(log_every=1000)
    res = train(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    assert res.interrupted and res.iterations == 7
    assert load_training_state(tmp_path / "run" / integrity.STATE_FILE)["iteration"] == 7


def _launch_tiny(tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path, float]:
    """A tiny `pioneer train` with its own run folder and image cache (so every start builds the
    cache too); returns the process, its run folder and its launch time."""
    run_dir = tmp_path / name / "run"
    t0 = time.monotonic()
    proc = pioneer_proc("train", "--run-dir", str(run_dir), *TINY, "--kimg", "100", "--cache-dir",
                        str(tmp_path / name / "cache"))
    return proc, run_dir, t0


def _handles_sigterm(pid: int) -> bool:
    """Whether process `pid` has installed a SIGTERM handler (Linux: SigCgt in /proc; elsewhere
    assumed after 0.5 s)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True   # ended already
    except OSError:
        time.sleep(0.5)
        return True
    caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M).group(1), 16)
    return bool(caught >> (signal.SIGTERM - 1) & 1)


@pytest.mark.slow
def test_signal_at_any_moment_of_start_up_exits_cleanly(tmp_path):
    """SIGINT and SIGTERM at 20 moments spread from 0.05 s after launch to just after the first
    training iteration: every start exits 130 within 10 s of the signal, with no traceback and
    no C++ abort, and leaves either nothing or a run that resumes.

    The moments are fractions of this machine's own start-up time, measured first, so the test
    covers the same stages (imports, option checks, the image cache, the networks, the loop)
    however fast the machine is. Before the first line of `pioneer.entry` (the interpreter's own
    start, 0.02-0.05 s) no program can catch a signal, so a moment that comes earlier than that
    waits until the process handles SIGTERM. The 10 s bound holds on a loaded 2-core machine:
    the slowest path is a signal during `import torch`, which finishes the import (2-5 s there)
    before the safe point after it."""
    proc, run_dir, t0 = _launch_tiny(tmp_path, "calibration")
    try:
        wait_for(lambda: (run_dir / "stats.jsonl").exists(), proc)   # opened right before the loop
        start_up = time.monotonic() - t0
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    moments = [0.05 * (1.15 * start_up / 0.05) ** (i / 19) for i in range(20)]   # geometric: start-up is front-loaded
    for i, delay in enumerate(moments):
        procs = [(sig, *_launch_tiny(tmp_path, f"{i}-{sig.name}")) for sig in (signal.SIGINT, signal.SIGTERM)]
        try:
            for sig, proc, _, t0 in procs:
                time.sleep(max(0.0, t0 + delay - time.monotonic()))
                while proc.poll() is None and not _handles_sigterm(proc.pid):
                    time.sleep(0.002)
                proc.send_signal(sig)
            for sig, proc, run_dir, _ in procs:
                where = f"{sig.name} at {delay:.2f} s of a {start_up:.2f} s start-up"
                try:
                    out, _ = proc.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    raise AssertionError(f"{where}: still running 10 s later") from None
                assert proc.returncode == 130, (where, out)
                assert "Traceback" not in out and "terminate called" not in out, (where, out)
                if run_dir.exists():   # what is left is either nothing, or a run that resumes
                    assert not (run_dir / LOCK_FILE).exists(), where
                    assert integrity.has_state(run_dir) or not any(run_dir.iterdir()), (where, sorted(run_dir.iterdir()))
        finally:
            for _, proc, _, _ in procs:
                proc.kill()


@pytest.fixture
def recorder():
    """pioneer.interrupts recording in this process, as `pioneer.entry` sets it up; pytest's own
    handlers are given back afterwards."""
    from pioneer import interrupts

    previous = {sig: signal.getsignal(sig) for sig in interrupts.SIGNALS}
    interrupts.record()
    try:
        yield interrupts
    finally:
        interrupts.take()
        interrupts.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_a_stop_recorded_at_start_up_ends_the_start_at_a_safe_point(tmp_path, recorder):
    """Recorded before the image cache is built: the build stops at its first chunk, removes its
    temporary folder, and nothing of the run is written."""
    os.kill(os.getpid(), signal.SIGTERM)   # handled at once: only recorded
    assert recorder.requested()
    with pytest.raises(KeyboardInterrupt):
        train(_short_config(), tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    assert not recorder.requested()
    assert not list((tmp_path / "cache").iterdir())      # no half-built cache, no temporary folder
    assert not integrity.has_state(tmp_path / "run") and not (tmp_path / "run" / "stats.jsonl").exists()


def test_a_stop_recorded_after_the_last_safe_point_is_taken_over_by_the_loop(tmp_path, recorder, monkeypatch):
    """Recorded while the loop sets up its preview (after the last safe point): the loop's own
    handler takes it over, so the run stops after one iteration with a checkpoint."""
    import pioneer.training.loop as loop

    real = loop.Preview

    def preview_then_signal(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "Preview", preview_then_signal)
    res = train(_short_config(), tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    assert res.interrupted and res.iterations == 1
    assert load_training_state(tmp_path / "run" / integrity.STATE_FILE)["iteration"] == 1
    assert not recorder.requested()


def test_commands_other_than_train_get_the_ordinary_ctrl_c_back(recorder):
    """`pioneer train` keeps recording until its loop takes over; any other command (a demo
    server, a long evaluation) must stop on Ctrl-C wherever it is, so it releases the recorder."""
    r = cli("train", "--dry-run")
    assert r.exit_code == 0 and recorder.recording()
    r = cli("sample", "--help")
    assert r.exit_code == 0 and not recorder.recording()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)   # the handler runs at the next bytecode; the sleep is never finished


# ------------------------------------------------------------------------------------------------
# Failed writes


def _failing_writes(monkeypatch, fail_on, err=errno.ENOSPC):
    """Make checkpoint writes whose call number is in `fail_on` (a set, or 'all') raise OSError."""
    import pioneer.run.checkpoint as ckpt

    real, count = ckpt.atomic_write, {"n": 0}

    def atomic_write(path, write, before_replace=None):
        if Path(path).suffix in (".pt", ".safetensors"):
            count["n"] += 1
            if fail_on == "all" or count["n"] in fail_on:
                raise OSError(err, os.strerror(err), str(path))
        return real(path, write, before_replace)

    monkeypatch.setattr(ckpt, "atomic_write", atomic_write)
    return count


def _short_config(**kw):
    """tiny_config cut to 0.2 kimg (4 and 8 px), a checkpoint every 0.04 kimg."""
    cfg = tiny_config(checkpoint_kimg=0.04, snapshot_kimg=0.1, grid_kimg=0.1, **kw)
    return dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, total_kimg=0.2))


def test_failed_checkpoint_write_warns_keeps_the_previous_and_retries(tmp_path, monkeypatch, capsys):
    cfg = _short_config()
    _failing_writes(monkeypatch, {3, 4})           # the second checkpoint's snapshot, then the third's
    res = train(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    cap = capsys.readouterr()
    err = cap.out + cap.err
    assert err.count("warning: checkpoint at") == 2 and "no space left" in err and "previous files are kept" in err
    assert res.write_error is None and not res.interrupted and res.images_seen >= 200
    assert state_images(tmp_path / "run") == res.images_seen
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_repeated_write_failures_stop_the_run_cleanly(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    r = cli("train", "--run-dir", str(run_dir), *TINY, "--kimg", "0.04", "--cache-dir", str(tmp_path / "cache"),
            "--no-progress")
    assert r.exit_code == 0
    before = state_images(run_dir)
    _failing_writes(monkeypatch, "all")
    r = cli("train", "--resume", str(run_dir), "--kimg", "5", "--checkpoint-kimg", "0.016", "--cache-dir",
            str(tmp_path / "cache"), "--no-progress")
    one_line_error(r, "checkpoints could not be written", "no space left", "--resume")
    assert r.output.count("warning: checkpoint at") >= 3
    assert state_images(run_dir) == before                       # the previous checkpoint, intact
    monkeypatch.undo()
    assert load_training_state(run_dir / integrity.STATE_FILE)["images_seen"] == before
    assert json.loads((run_dir / "summary.json").read_text())["images_seen"] < 5000


def _tmpfs(path: Path, size: str) -> bool:
    """Mount a small tmpfs at `path` when we may (root), else False."""
    if os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_disk_full_during_a_run_is_one_line_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    disk = tmp_path / "disk"
    mounted = _tmpfs(disk, "4m")
    run_dir, common = disk / "run", ["--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    try:
        r = cli("train", "--run-dir", str(run_dir), *TINY, "--kimg", "0.04", *common)
        assert r.exit_code == 0, r.output
        before = state_images(run_dir)
        if mounted:  # fill the disk, then leave 64 KiB: room for the lock and a few records, not a checkpoint
            with open(disk / "filler", "wb") as f, pytest.raises(OSError):
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            os.truncate(disk / "filler", (disk / "filler").stat().st_size - 65536)
        else:
            _failing_writes(monkeypatch, "all")
            monkeypatch.setattr("pioneer.run.stats.StatsWriter.write", _raise_enospc)
        r = cli("train", "--resume", str(run_dir), "--kimg", "0.2", "--checkpoint-kimg", "0.016", *common)
        one_line_error(r, "no space left", str(run_dir))
        monkeypatch.undo()
        assert state_images(run_dir) == before
        (disk / "filler").unlink(missing_ok=True)
        r = cli("train", "--resume", str(run_dir), "--kimg", "0.2", *common)
        assert r.exit_code == 0, r.output
        assert state_images(run_dir) >= 200 and not list(run_dir.rglob("*.tmp"))
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=False)


def _raise_enospc(self, record):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))


def test_read_only_or_unwritable_places_give_one_line(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
    else:  # root writes anywhere: refuse the writes in that folder instead
        real_open = os.open

        def deny(path, flags, *a, **k):
            if str(path).startswith(str(ro)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, flags, *a, **k)

        monkeypatch.setattr(os, "open", deny)
        monkeypatch.setattr("builtins.open", _deny_builtin_open(ro))
    try:
        one_line_error(cli("train", "--run-dir", str(ro / "run"), *TINY, "--kimg", "0.02", "--cache-dir",
                           str(tmp_path / "cache"), "--no-progress"), str(ro))
        one_line_error(cli("train", "--outdir", str(ro), *TINY, "--kimg", "0.02", "--cache-dir",
                           str(tmp_path / "cache"), "--no-progress"), str(ro))
        one_line_error(cli("train", *TINY, "--kimg", "0.02", "--outdir", str(tmp_path / "runs"), "--cache-dir",
                           str(ro / "cache"), "--no-progress"), str(ro))
    finally:
        ro.chmod(0o755)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # failed starts leave nothing


def _deny_builtin_open(folder: Path):
    import builtins

    real = builtins.open

    def deny(file, mode="r", *a, **k):
        if isinstance(file, (str, os.PathLike)) and str(file).startswith(str(folder)) and any(c in mode for c in "wax+"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return real(file, mode, *a, **k)

    return deny


def test_stale_temps_of_a_killed_write_are_removed_at_the_next_start(tmp_path, capsys):
    cfg = _short_config()
    train(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, stop_after=12)
    stale = tmp_path / "run" / ".training-state.pt.k1ll3d.tmp"
    stale.write_bytes(b"\0" * 4096)
    train(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, resume=True, stop_after=1)
    assert not stale.exists() and "removed 1 temporary file(s)" in capsys.readouterr().err


def test_finished_run_with_a_stale_snapshot_rewrites_it(tmp_path):
    """A run killed between its final state and its final snapshots (as older versions wrote them)."""
    cfg = _short_config()
    run_dir = tmp_path / "run"
    full = train(cfg, run_dir, cache_dir=tmp_path / "cache", progress=False)
    train(cfg, tmp_path / "early", cache_dir=tmp_path / "cache", progress=False, stop_after=20)
    early = tmp_path / "early" / integrity.SNAPSHOT_FILE
    final_kimg = full.images_seen // 1000
    (run_dir / integrity.SNAPSHOT_FILE).write_bytes(early.read_bytes())
    (run_dir / "snapshots" / f"snapshot-{final_kimg:06d}.safetensors").unlink()
    for p in (run_dir / "grids").glob(f"*-{final_kimg:06d}.png"):
        p.unlink()
    assert missing_final_outputs(run_dir, full.images_seen) == ["snapshot", "numbered snapshot", "grids"]
    res = train(cfg, run_dir, cache_dir=tmp_path / "cache", progress=False, resume=True)
    assert res.iterations == full.iterations and res.heldout_l1 is not None
    assert missing_final_outputs(run_dir, full.images_seen) == []
    assert load_snapshot(run_dir / integrity.SNAPSHOT_FILE).images_seen == full.images_seen
    assert json.loads((run_dir / "summary.json").read_text())["heldout_l1"] is not None


# ------------------------------------------------------------------------------------------------
# Numbers and options


@pytest.mark.parametrize("args,needle", [
    (["--kimg", "nan", "--dry-run"], "--kimg"), (["--kimg", "inf", "--dry-run"], "--kimg"),
    (["--kimg", "1e-9", "--dry-run"], "--kimg"), (["--checkpoint-kimg", "nan", "--dry-run"], "--checkpoint-kimg"),
    (["--width", "-1", "--dry-run"], "--width"), (["--gpus", "0", "--dry-run"], "--gpus"),
    (["--dead-cycle", "2", "--dry-run"], "--dead-cycle"), (["--collapse-rank", "inf", "--dry-run"], "--collapse-rank"),
    (["--metrics-kimg", "nan", "--dry-run"], "--metrics-kimg"), (["--batch", "0", "--dry-run"], "--batch"),
    (["--seed", "-1", "--dry-run"], "--seed"), (["--device", "bogus", "--data", "synthetic:64"], "--device"),
    (["--gpus", "2", "--batch", "7", "--device", "cpu", "--data", "synthetic:64"], "--gpus 2"),
    (["--data", "synthetic:1"], "N >= 2"),
])
def test_numeric_and_device_options_give_one_line(tmp_path, args, needle):
    r = CliRunner().invoke(main, ["train", *args, "--outdir", str(tmp_path / "runs")])
    one_line_error(r, needle)
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu_is_one_line(tmp_path):
    one_line_error(CliRunner().invoke(main, ["train", "--device", "cuda", "--outdir", str(tmp_path)]), "no CUDA GPU")


def test_image_commands_bound_their_numbers_and_outputs(tiny_snapshot, tmp_path):
    from pioneer.data import SyntheticFaces
    from pioneer.inference.latent import AttributeVector

    faces = tmp_path / "faces"
    SyntheticFaces().export(faces, 16, indices=range(11000, 11002))
    face = str(faces / "011000.png")
    vec = tmp_path / "v.safetensors"
    AttributeVector(torch.ones(32) / 32 ** 0.5, "Smiling", 4, 4).save(vec)
    model = ["--model", str(tiny_snapshot), "--device", "cpu"]
    for strength in ("nan:1:3", "inf:0:3", "1e308", "0:1:100000000", "1,nan"):
        one_line_error(cli("edit", *model, face, "--vector", str(vec), "--strength", strength, "-o",
                           str(tmp_path / "e.png")), "strength")
    one_line_error(cli("edit", *model, face, "--vector", str(vec), "--combo", "Smiling=inf", "-o",
                       str(tmp_path / "e.png")), "not a finite")
    nan_vec = tmp_path / "nan.safetensors"
    AttributeVector(torch.full((32,), float("nan")), "Smiling", 4, 4).save(nan_vec)
    one_line_error(cli("edit", *model, face, "--vector", str(nan_vec), "-o", str(tmp_path / "e.png")), "NaN")
    one_line_error(cli("interpolate", *model, face, face, "--steps", "100000", "-o", str(tmp_path / "i.png")),
                   "--steps")
    one_line_error(cli("sample", *model, "-n", "5000", "-o", str(tmp_path / "s.png")), "at most 4096")
    one_line_error(cli("interpolate", *model, str(faces), face, "-o", str(tmp_path / "i.png")), "hold 3 usable images")
    (tmp_path / "file").write_text("x")
    one_line_error(cli("sample", *model, "-n", "2", "-o", str(tmp_path / "file" / "s.png")), str(tmp_path / "file"))
    assert not list(tmp_path.glob("*.png"))


def test_resume_options_that_would_be_ignored_are_refused(tmp_path):
    run_dir, common = _finished_run(tmp_path, "0.04")
    one_line_error(cli("train", "--resume", str(run_dir), "--name", "x", *common), "--resume", "--name")
    one_line_error(cli("train", "--resume", str(run_dir), "--outdir", str(tmp_path), *common), "--outdir")
    options = (run_dir / "options.json").read_text()
    one_line_error(cli("train", "--resume", str(run_dir), "--kimg", "0.01", *common), "already seen")
    assert (run_dir / "options.json").read_text() == options
    r = cli("train", "--resume", str(run_dir), *common)          # resuming a finished run keeps its score
    assert r.exit_code == 0 and json.loads((run_dir / "summary.json").read_text())["heldout_l1"] is not None


def test_a_start_that_fails_leaves_no_folder(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"{i}.png").write_bytes(b"not a png")
    r = cli("train", "--data", str(bad), "--outdir", str(tmp_path / "runs"), *TINY[2:], "--cache-dir",
            str(tmp_path / "cache"), "--no-progress")
    one_line_error(r)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    one = tmp_path / "one"
    one.mkdir()
    from PIL import Image
    Image.new("RGB", (16, 16), (200, 10, 10)).save(one / "a.png")
    one_line_error(cli("train", "--data", str(one), "--run-dir", str(tmp_path / "r1"), *TINY[2:], "--cache-dir",
                       str(tmp_path / "cache"), "--no-progress"), "held-out")
    assert not (tmp_path / "r1").exists()


# ------------------------------------------------------------------------------------------------
# kill -9 at random moments


KILLS = 8


@pytest.mark.slow
def test_kill_9_loop_at_random_moments_loses_at_most_one_interval(tmp_path):
    """Start the same --run-dir command again and again, kill -9 each at a random moment
    (start-up included), until one finishes; the result equals an uninterrupted run bit for bit."""
    rng = random.Random(11)
    cache, run_dir, ref_dir = tmp_path / "cache", tmp_path / "run", tmp_path / "ref"
    args = [*TINY, "--kimg", "0.4", "--checkpoint-kimg", "0.04", "--cache-dir", str(cache)]
    r = cli("train", "--run-dir", str(ref_dir), *args, "--no-progress")
    assert r.exit_code == 0, r.output
    kills, resumes, lost, seen_at_kill = 0, 0, [], None
    for attempt in range(KILLS + 1):  # KILLS attempts killed at a random moment, then one left to finish
        proc = pioneer_proc("train", "--run-dir", str(run_dir), *args)
        if attempt < KILLS:
            # A quarter of the kills land in start-up; the others once the run has made progress
            # since the last kill, at a random moment up to 1.5 s later (during writes too).
            if rng.random() < 0.25:
                time.sleep(rng.uniform(0.2, 2.0))
            else:
                while proc.poll() is None and (_logged_images(run_dir) or 0) <= (seen_at_kill or 0):
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.0, 1.5))
        killed = attempt < KILLS and proc.poll() is None
        if killed:
            seen = _logged_images(run_dir)
            proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
        assert "Traceback" not in out, out
        m = re.search(r"resuming .* from ([0-9.]+) kimg", out)
        if m:
            resumes += 1
            if seen_at_kill is not None:  # images logged before the last kill that had to be trained again
                lost.append(max(0, seen_at_kill - round(float(m.group(1)) * 1000)))
        if not killed:
            assert proc.returncode == 0, out
            break
        kills, seen_at_kill = kills + 1, seen
    else:
        pytest.fail("the run never finished")
    summary = json.loads((run_dir / "summary.json").read_text())
    a = load_training_state(ref_dir / integrity.STATE_FILE)
    b = load_training_state(run_dir / integrity.STATE_FILE)
    for key in ("encoder", "decoder", "decoder_ema"):
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), (key, k)
    assert load_snapshot(run_dir / integrity.SNAPSHOT_FILE).images_seen == b["images_seen"]
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / LOCK_FILE).exists()
    print(f"kill loop: {kills} kills, {resumes} clean resumes, work lost per kill (images) {lost}, "
          f"finished on start {attempt + 1} after {summary['iterations']} iterations")
    assert resumes >= 1
    assert all(n <= 48 for n in lost)  # at most one checkpoint interval (40 images) and a batch


def _logged_images(run_dir: Path) -> int | None:
    try:
        recs = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return None
    return max((r["images_seen"] for r in recs), default=None)
