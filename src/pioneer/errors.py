"""The base of every error pioneer raises on purpose.

A PioneerError means bad input, a missing or damaged file, or an optional part that is not
installed, and its message names the problem and the fix in one line; the command line prints
it as `Error: ...` without a traceback (cli.common.user_errors). Each subclass also derives
from the built-in error it refines (ValueError, RuntimeError), so `except ValueError` still
catches it.
"""

from __future__ import annotations


class PioneerError(Exception):
    """An error whose message is meant for the user: what is wrong and what to do."""
