"""The `pioneer` console command and `python -m pioneer`: the CLI with clean exits.

Ctrl-C (SIGINT) and SIGTERM at any moment of start-up end the command with one line and exit
status 130, never a traceback: SIGTERM is turned into the same KeyboardInterrupt as Ctrl-C,
and this module imports nothing heavy before it is ready to catch it. Once training runs, its
loop installs its own handlers (finish the iteration, checkpoint, exit 130). An OSError that no
command turned into a message (disk full, permissions) becomes one line naming the path.
"""

from __future__ import annotations

import errno
import signal
import sys


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run() -> None:
    try:
        signal.signal(signal.SIGTERM, _interrupt)
        import click

        from pioneer.cli import main

        # click's own standalone mode would turn an interrupt into "Aborted!" and exit 1
        try:
            code = main.main(standalone_mode=False)
        except click.exceptions.Abort:
            raise KeyboardInterrupt from None
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        sys.exit(code if isinstance(code, int) else 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as e:
        if e.errno == errno.EPIPE:  # output piped into `head`: nothing to report
            sys.exit(1)
        from pioneer.run.oserrors import one_line

        print(f"Error: {one_line(e)}", file=sys.stderr)
        sys.exit(1)
