"""Two kinds of checkpoint, both written atomically.

* Snapshot (safetensors, no pickle): EMA decoder + encoder + ModelConfig + the level and alpha
  reached, spectral-norm vectors exactly converged. Everything inference needs.
* Training state (torch.save, loaded with weights_only=True): networks, EMA, optimizers,
  spectral-norm vectors (inside the state dicts), RNG states and images seen. Everything an
  exact resume needs.

A write goes to a temporary file in the same folder, is fsync'ed, then renamed over the
target, so a killed process never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors import safe_open
from safetensors.torch import save as st_save
from torch import nn

from pioneer.atomic import atomic_write
from pioneer.config import ModelConfig
from pioneer.model.spectral import exact_spectral_vectors
from pioneer.run import integrity
from pioneer.run.integrity import CheckpointError  # defined beside the checks that raise it

SNAPSHOT_FORMAT = "pioneer-snapshot"
STATE_FORMAT = "pioneer-training-state"
FORMAT_VERSION = 1



def prefixed_tensors(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict as safetensors wants it: keys `prefix.name`, contiguous CPU copies."""
    return {f"{prefix}.{k}": v.detach().cpu().contiguous().clone() for k, v in state.items()}


def _inference_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict with exact spectral-norm vectors in place of its own.

    Why vectors and not folded weights: the keys stay those of the networks, so load_snapshot,
    Pioneer.load (which folds W / sigma at load time, eval mode) and snapshots written before
    this change all load as before; with exact u, v that fold divides by the exact largest
    singular value. The training networks are not touched (the vectors are computed aside).
    """
    return module.state_dict() | exact_spectral_vectors(module)


def save_snapshot(path: str | Path, decoder: nn.Module, encoder: nn.Module, cfg: ModelConfig,
                  level: int, alpha: float, images_seen: int, extra: dict[str, Any] | None = None) -> None:
    """Inference snapshot: `decoder` should be the EMA decoder. Spectral-norm vectors are
    stored exactly converged (see _inference_state), whatever the networks' own vectors are."""
    tensors = prefixed_tensors("decoder", _inference_state(decoder)) | prefixed_tensors("encoder", _inference_state(encoder))
    meta = {
        "format": SNAPSHOT_FORMAT,
        "version": str(FORMAT_VERSION),
        "model_config": json.dumps(asdict(cfg)),
        "level": str(level),
        "alpha": repr(float(alpha)),
        "images_seen": str(images_seen),
        "extra": json.dumps(extra or {}),
    }
    meta[integrity.CHECKSUM_KEY] = integrity.snapshot_digest(meta, tensors)
    data = st_save(tensors, metadata=meta)
    atomic_write(path, lambda f: f.write(data))


@dataclass
class Snapshot:
    """A loaded inference snapshot."""

    config: ModelConfig
    level: int
    alpha: float
    images_seen: int
    decoder_state: dict[str, torch.Tensor]
    encoder_state: dict[str, torch.Tensor]
    extra: dict[str, Any]


def read_safetensors(path: Path, what: str) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Metadata and tensors of a safetensors file; `what` names the expected kind in the error."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e}): is it {what}?") from e


def load_snapshot(path: str | Path) -> Snapshot:
    """Read a snapshot written by save_snapshot; CheckpointError when it is not one."""
    from pioneer.run.filetypes import describe, safetensors_metadata

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"snapshot {path} does not exist: pass the snapshot.safetensors of a run folder"
                              if not path.is_dir() else f"{path} is a folder, not a snapshot: pass RUN/snapshot.safetensors "
                              "(or load a pretrained folder with Pioneer.from_pretrained)")
    head = safetensors_metadata(path)       # the header alone: say what a wrong file is before reading it
    if head is None or head.get("format") != SNAPSHOT_FORMAT:
        raise CheckpointError(f"{path} is {describe(path)}, not a pioneer snapshot: pass RUN/snapshot.safetensors")
    version = head.get("version", "")
    if not version.isdigit():
        raise CheckpointError(f"{path}: damaged snapshot metadata (format version {version!r})")
    if int(version) > FORMAT_VERSION:
        raise CheckpointError(f"{path} is a pioneer snapshot of format version {version}, newer than this pioneer "
                              f"reads ({FORMAT_VERSION}): upgrade pioneer")
    meta, tensors = read_safetensors(path, "a pioneer snapshot")
    integrity.verify_snapshot(meta, tensors, path)
    try:
        cfg = ModelConfig(**json.loads(meta["model_config"]))
        snap = Snapshot(
            config=cfg,
            level=int(meta["level"]),
            alpha=float(meta["alpha"]),
            images_seen=int(meta["images_seen"]),
            decoder_state={k[len("decoder."):]: v for k, v in tensors.items() if k.startswith("decoder.")},
            encoder_state={k[len("encoder."):]: v for k, v in tensors.items() if k.startswith("encoder.")},
            extra=json.loads(meta.get("extra", "{}")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: damaged snapshot metadata ({e})") from e
    return snap


def save_training_state(path: str | Path, state: dict[str, Any]) -> None:
    """Full training state; tensors, numbers, strings, lists and dicts only (weights_only-safe)."""
    payload = integrity.with_checksum({"format": STATE_FORMAT, "version": FORMAT_VERSION, **state})
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write(path, lambda f: f.write(buf.getbuffer()), before_replace=lambda: integrity.keep_previous(Path(path)))


def load_training_state(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """Load a training state safely (weights_only=True); CheckpointError when unusable.

    mmap: map the tensors instead of reading them (cheap when only the counters are wanted; the
    checksum is then not verified, since that would read every tensor).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no training state at {path}: the run has not written a checkpoint yet")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # torch raises many types for damaged zip/pickle data
        raise CheckpointError(f"training state {path} is corrupt or unreadable ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not a pioneer training state")
    if state.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {state.get('version')}, this pioneer reads {FORMAT_VERSION}")
    if not mmap:
        integrity.verify_payload(state, path)
    return state


def state_is_finite(state: Any) -> bool:
    """True when every float tensor inside a (nested) training state is finite."""
    if isinstance(state, torch.Tensor):
        return not state.is_floating_point() or bool(torch.isfinite(state).all())
    if isinstance(state, dict):
        return all(state_is_finite(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return all(state_is_finite(v) for v in state)
    if isinstance(state, float):
        return math.isfinite(state)
    return True


def last_good_state(path: str | Path) -> dict[str, Any] | None:
    """The training state at `path` when it exists, loads and is finite; else None (what a
    rollback goes back to; None stops the run)."""
    try:
        state = load_training_state(path)
    except CheckpointError:
        return None
    return state if state_is_finite(state) else None
