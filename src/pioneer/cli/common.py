"""What every `pioneer` command shares: one-line errors, and one --model option and loader."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from pioneer.inference.facade import Pioneer

MODEL_HELP = ("Run folder, its snapshot.safetensors, pretrained folder (`pioneer publish`) or Hub repo id "
              "(owner/name).")
BUNDLED_HELP = " Default: the small model that ships with pioneer (64 px, trained on the synthetic faces)."


def fail(message: str) -> NoReturn:
    """End the command with `Error: message` (exit status 1), no traceback."""
    raise click.ClickException(message)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """pioneer's own errors (PioneerError: bad input, a missing file or part) and OS errors
    become one-line `Error: ...` messages; warnings (e.g. a vector made with another model) are
    printed as plain lines."""
    from pioneer.errors import PioneerError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except PioneerError as e:
            fail(str(e))
        except OSError as e:  # an unwritable -o, a full disk: one line naming the path
            from pioneer.run.oserrors import one_line

            fail(one_line(e))
        finally:
            for w in caught:
                click.echo(f"warning: {w.message}", err=True)


def model_option(required: bool = False, help: str = MODEL_HELP) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--model (parameter `model_path`): any model spec of pioneer.share.models; optional
    commands fall back to the shipped model."""
    return click.option("--model", "model_path", required=required, type=click.Path(),
                        help=help if required else help + BUNDLED_HELP)


def load_model(model_path: str | None, device: str) -> "Pioneer":
    """--model and --device -> Pioneer (None: the shipped model); call inside user_errors()."""
    from pioneer.share.models import open_model

    model = open_model(model_path, device=None if device == "auto" else device)
    if model_path is None:
        click.echo(f"model: the one that ships with pioneer ({model.resolution}x{model.resolution}, "
                   f"{model.images_seen / 1000:g} kimg of {model.extra.get('data') or 'unknown data'}); "
                   "--model picks another", err=True)
    return model
