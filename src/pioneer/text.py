"""Numbers as text, the same in every table, card and report."""

from __future__ import annotations

from typing import Any


def fmt(v: Any) -> str:
    """Four significant digits for floats, "" for None, str() for the rest."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)
