"""What every `pioneer` command shares: one-line errors."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import NoReturn

import click


def fail(message: str) -> NoReturn:
    """End the command with `Error: message` (exit status 1), no traceback."""
    raise click.ClickException(message)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Library errors that describe bad input become one-line `Error: ...` messages; warnings
    (e.g. a vector made with another model) are printed as plain lines."""
    from pioneer.data import DataError
    from pioneer.inference.align import AlignError
    from pioneer.inference.inputs import InputError
    from pioneer.inference.sampler import SamplerError
    from pioneer.run.checkpoint import CheckpointError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except (InputError, DataError, CheckpointError, AlignError, SamplerError) as e:
            fail(str(e))
        except OSError as e:  # an unwritable -o, a full disk: one line naming the path
            from pioneer.run.oserrors import one_line

            fail(one_line(e))
        finally:
            for w in caught:
                click.echo(f"warning: {w.message}", err=True)
