"""Numbers and tables as text, the same in every table, card and report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def fmt(v: Any) -> str:
    """Four significant digits for floats, "" for None, str() for the rest."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def table(rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A plain-text table: rows[0] is the header, then a rule, then the other rows; columns two
    spaces apart, each aligned as `align` says ("l" or "r" per column; right when not said)."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    sides = align.ljust(len(widths), "r")

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, sides)).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *map(line, cells[1:])])
