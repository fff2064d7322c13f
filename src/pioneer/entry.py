"""The `pioneer` console command and `python -m pioneer`: the CLI with clean exits.

Ctrl-C (SIGINT) and SIGTERM at any moment from here on end the command with one line,
"interrupted", and exit status 130, never a traceback and never an abort: the first thing
`run()` does is make both signals only record the request (pioneer.interrupts), and the command
acts on it at safe points: after the imports, before and while the image cache is built, before
the first training iteration. Once training runs, its loop installs its own handlers (finish the
iteration, checkpoint, exit 130) and takes over a request recorded before. Commands other than
`pioneer train` go back to the ordinary Ctrl-C once they start (pioneer.cli). An OSError that
no command turned into a message (disk full, permissions) becomes one line naming the path.
"""

from __future__ import annotations

import errno
import sys

from pioneer import interrupts


def run() -> None:
    try:
        interrupts.record()  # first: importing torch takes seconds and runs C++ callbacks
        import click

        from pioneer.cli import main

        interrupts.check()  # after the imports
        # click's own standalone mode would turn an interrupt into "Aborted!" and exit 1
        try:
            code = main.main(standalone_mode=False)
        except click.exceptions.Abort:
            raise KeyboardInterrupt from None
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        interrupts.check()  # a request that arrived after the loop had handed its handlers back
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
