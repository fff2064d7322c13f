"""`pioneer demo` in a subprocess and the system browser, for the browser test and
benchmarks/demo_latency.py. Debian's chromium is driven by Playwright with `executable_path`
(never `playwright install`, which downloads a browser)."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def missing_tools() -> list[str]:
    """What the browser tests need and this machine lacks."""
    return [what for what, ok in (("gradio", importable("gradio")), ("playwright", importable("playwright")),
                                  (CHROMIUM, Path(CHROMIUM).is_file())) if not ok]


def importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`pioneer demo` in a subprocess; `url` once it serves, `stop()` ends it (SIGTERM, then kill)."""

    def __init__(self, snapshot: Path, root: Path, *args: str) -> None:
        self.cwd, self.tmp, self.home = root / "cwd", root / "tmp", root / "home"
        for d in (self.cwd, self.tmp, self.home):
            d.mkdir()
        env = dict(os.environ, TMPDIR=str(self.tmp), HOME=str(self.home), PYTHONUNBUFFERED="1")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/"
        command = [sys.executable, "-m", "pioneer", "demo", "--model", str(snapshot), "--port", str(port), *args]
        self.proc = subprocess.Popen(command, cwd=self.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if line.startswith("pioneer demo on http://127.0.0.1"):
                self._ready.set()

    def wait(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the demo did not start:\n" + "\n".join(self.lines))

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)   # its own session: nothing it started survives
                self.proc.wait(10)
        self._reader.join(10)                              # every line it printed is in self.lines
        return self.proc.returncode
