"""JSON Lines, the run folder's log format (stats.jsonl, metrics.jsonl): one reader, one writer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

import numpy as np


def _default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def dumps(record: dict[str, Any]) -> str:
    """One record as one line, newline included (numpy numbers and paths allowed)."""
    return json.dumps(record, default=_default) + "\n"


def write_record(f: IO[str], record: dict[str, Any]) -> None:
    """Write one record with a single write() and flush it, so a killed process leaves whole lines."""
    f.write(dumps(record))
    f.flush()


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one record to a file (created with its folder when missing)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        write_record(f, record)


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of a JSONL file; [] when it does not exist. Lines that do not parse (the torn
    last line of a killed run) are skipped."""
    p = Path(path)
    if not p.is_file():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
