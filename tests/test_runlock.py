import json
import os
import socket
import subprocess
import sys

import pytest

from pioneer.run.lock import LOCK_FILE, RunLockError, hold

HOLD_SCRIPT = """
import sys, time
from pioneer.run.lock import hold
with hold(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_second_process_gets_one_line_naming_the_holder(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunLockError) as e:
            with hold(tmp_path):
                pass
        msg = str(e.value)
        assert "\n" not in msg and f"pid {proc.pid}" in msg and socket.gethostname() in msg and "since" in msg
    finally:
        proc.kill()
        proc.wait()
    # the killed holder's lock is taken over, with a message naming it
    notes = []
    with hold(tmp_path, note=notes.append):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert len(notes) == 1 and f"pid {proc.pid}" in notes[0] and "no longer running" in notes[0]
    assert not (tmp_path / LOCK_FILE).exists()  # released cleanly: nothing left to take over


def test_hold_is_reentrant_in_one_process_and_released_at_the_end(tmp_path):
    with hold(tmp_path):
        with hold(tmp_path / "." ):
            assert (tmp_path / LOCK_FILE).exists()
        assert (tmp_path / LOCK_FILE).exists()
    assert not (tmp_path / LOCK_FILE).exists()
    with hold(tmp_path, enabled=False):
        assert not (tmp_path / LOCK_FILE).exists()


def test_lock_left_by_another_host_is_refused_with_the_fix(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "t"}))
    with pytest.raises(RunLockError, match="another machine.*delete"):
        with hold(tmp_path):
            pass
