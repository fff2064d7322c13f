"""One way to name a model, for every command and the Python API: `open_model(spec)`.

A spec is any of
    None                        the small model that ships with pioneer (BUNDLED, a pretrained
                                folder trained on the synthetic faces: docs/generation.md)
    RUN/                        a run folder: its snapshot.safetensors
    RUN/snapshot.safetensors    a snapshot written by training
    FOLDER/                     a pretrained folder (`pioneer publish`, `save_pretrained`)
    owner/name                  a Hugging Face Hub repo id (needs huggingface_hub)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pioneer.run.files import PRETRAINED_CONFIG, SNAPSHOT

if TYPE_CHECKING:  # torch waits until a model is opened, so that `pioneer --help` stays fast
    import torch

    from pioneer.inference.facade import Pioneer

# Inside the package, so that a wheel carries it too (pyproject.toml: package-data).
BUNDLED = Path(__file__).resolve().parents[1] / "pretrained" / "synthetic64"


def bundled_model() -> Path:
    """The shipped pretrained folder; CheckpointError when this install lacks it."""
    from pioneer.run.checkpoint import CheckpointError

    if not (BUNDLED / PRETRAINED_CONFIG).is_file():
        raise CheckpointError(f"the model that ships with pioneer is missing from this install ({BUNDLED}): "
                              "reinstall pioneer, or pass --model")
    return BUNDLED


def open_model(spec: str | os.PathLike | None = None, device: torch.device | str | None = None,
               channels_last: bool = True, **hub: Any) -> "Pioneer":
    """A Pioneer from any spec of the module doc; CheckpointError (HubError for repo ids that
    cannot be fetched) with a one-line reason otherwise. hub: revision, cache_dir, token for
    Hub repo ids (see Pioneer.from_pretrained)."""
    from pioneer.inference.facade import Pioneer
    from pioneer.run.checkpoint import CheckpointError

    if spec is None:
        return Pioneer.from_pretrained(bundled_model(), device=device, channels_last=channels_last)
    path = Path(spec).expanduser()
    if path.is_dir() and (path / PRETRAINED_CONFIG).is_file():
        return Pioneer.from_pretrained(path, device=device, channels_last=channels_last, **hub)
    if path.is_dir():
        if not (path / SNAPSHOT).is_file():
            raise CheckpointError(f"{path} has neither {SNAPSHOT} nor {PRETRAINED_CONFIG}: pass a run folder, "
                                  "a snapshot or a pretrained folder")
        return Pioneer.load(path / SNAPSHOT, device=device, channels_last=channels_last)
    if path.exists():
        return Pioneer.load(path, device=device, channels_last=channels_last)
    # A Hub repo id, or a one-line error naming the missing path.
    return Pioneer.from_pretrained(spec, device=device, channels_last=channels_last, **hub)
