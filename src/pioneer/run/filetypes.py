"""Say what a file is, from its first bytes, without loading it: for one-line errors when a
user passes the wrong file (a training state, an image, another library's weights) where a
snapshot or a pretrained folder was expected. Nothing here unpickles or imports the file.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

# Formats pioneer writes into safetensors metadata, and what to call them.
KNOWN_FORMATS = {
    "pioneer-snapshot": "a pioneer snapshot",
    "pioneer-pretrained": "the weights of a pioneer pretrained folder (load the folder with Pioneer.from_pretrained)",
    "pioneer-attribute-vector": "a pioneer attribute vector (use it with `pioneer edit --vector`)",
}

_MAGIC = (
    (b"PK\x03\x04", "a zip archive (a PyTorch checkpoint such as training-state.pt, or a TorchScript file)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
)


def safetensors_metadata(path: str | Path) -> dict[str, str] | None:
    """The `__metadata__` of a safetensors file read from its JSON header alone ({} when it has
    none), or None when the file is not a safetensors file."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return None
            (size,) = struct.unpack("<Q", head)
            if not 2 <= size <= 100_000_000:
                return None
            header = json.loads(f.read(size))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    meta = header.get("__metadata__", {})
    return meta if isinstance(meta, dict) else {}


def describe(path: str | Path) -> str:
    """What `path` is, as a phrase for an error message: "a PNG image", "a pioneer attribute
    vector", "a Python pickle (never loaded: ...)", "a folder", ..."""
    path = Path(path)
    if path.is_dir():
        return "a folder"
    if not path.exists():
        return "missing"
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if not head:
        return "an empty file"
    meta = safetensors_metadata(path)
    if meta is not None:
        fmt = meta.get("format", "")
        if fmt in KNOWN_FORMATS:
            return KNOWN_FORMATS[fmt]
        return f"a safetensors file of another kind ({'format ' + repr(fmt) if fmt else 'no pioneer metadata'})"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if head[:1] == b"\x80" and 2 <= head[1] <= 5:
        return "a Python pickle (never loaded here: unpickling can run code)"
    if path.suffix.lower() == ".onnx":
        return "an ONNX model"
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON file"
    if all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        return "a text file"
    return f"a file of unknown type (starts with {head[:8].hex(' ')})"
