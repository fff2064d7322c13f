"""One error family: every error pioneer raises on purpose is a PioneerError, still catchable
as the built-in error it refines, and the command line prints any of them as one line."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import click
import pytest

import pioneer
from pioneer.cli.common import user_errors
from pioneer.errors import PioneerError


def _error_classes() -> list[type]:
    found = {}
    for info in pkgutil.walk_packages(pioneer.__path__, "pioneer."):
        if info.name == "pioneer.__main__" or info.name.startswith(("pioneer.demo.app", "pioneer.demo.server")):
            continue       # runs the CLI; the others import gradio (their errors live in demo.session)
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, Exception) and not issubclass(obj, Warning) \
                    and obj.__module__ == info.name:
                found[f"{info.name}.{name}"] = obj
    return list(found.values())


def test_every_pioneer_error_has_the_common_base_and_its_builtin_one():
    classes = _error_classes()
    assert len(classes) >= 15, [c.__name__ for c in classes]
    for cls in classes:
        assert issubclass(cls, PioneerError), cls
        assert cls is PioneerError or issubclass(cls, (ValueError, RuntimeError)), cls


@pytest.mark.parametrize("cls", [c for c in _error_classes() if c is not PioneerError], ids=lambda c: c.__name__)
def test_user_errors_turns_each_into_one_line(cls):
    with pytest.raises(click.ClickException) as caught:
        with user_errors():
            raise cls("the thing is wrong: do this instead")
    assert caught.value.message == "the thing is wrong: do this instead"
