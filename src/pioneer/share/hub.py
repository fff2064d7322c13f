"""Pretrained folders in the Hugging Face Hub layout: save, load (a folder or a Hub repo id),
the model card, and the upload.

A pretrained folder holds

    config.json                 format, version, ModelConfig, level / alpha / resolution, images
                                seen, the model's fingerprint, what it was trained on, the run's
                                options and latest metrics
    model.safetensors           encoder.* and decoder.*: spectral norm folded into plain weights,
                                so they load into modules without any parametrization
    vectors/NAME.safetensors    attribute vectors (`pioneer attributes`), if any
    README.md                   the model card (YAML front matter for the Hub), with
    samples.png                 64 samples from seed 0 and
    reconstructions.png         held-out images next to their reconstructions

Only JSON and safetensors are read back: nothing is unpickled. huggingface_hub is needed only
for repo ids and uploads and is imported there (`pip install 'pioneer[hub]'`).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import torch
from safetensors.torch import save as st_save
from torch import nn

from pioneer.errors import PioneerError
from pioneer.atomic import atomic_write, atomic_write_text
from pioneer.run.checkpoint import CheckpointError, prefixed_tensors, read_safetensors
from pioneer.config import ModelConfig
from pioneer.run.files import OPTIONS, PRETRAINED_CONFIG, SNAPSHOT, SUMMARY
from pioneer.inference.latent import AttributeVector
from pioneer.share.card import CARD_NAME

if TYPE_CHECKING:
    from pioneer.inference.facade import Pioneer

PRETRAINED_FORMAT = "pioneer-pretrained"
PRETRAINED_VERSION = 1
CONFIG_NAME = PRETRAINED_CONFIG
WEIGHTS_NAME = "model.safetensors"
VECTOR_DIR = "vectors"
SAMPLES_NAME = "samples.png"
RECONSTRUCTIONS_NAME = "reconstructions.png"
# Files a pretrained folder may hold; only these are replaced when a folder is written again.
_OWN_FILES = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, SAMPLES_NAME, RECONSTRUCTIONS_NAME)
# What from_pretrained fetches from a Hub repo (the card's pictures are not needed to run).
_DOWNLOAD_PATTERNS = [CONFIG_NAME, WEIGHTS_NAME, f"{VECTOR_DIR}/*.safetensors"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class HubError(PioneerError, RuntimeError):
    """A Hub repo that cannot be fetched or an upload that cannot be made; the message says why."""


# ------------------------------------------------------------------------------------------------
# Plain networks: spectral norm folded into the weights


def plain_copy(net: nn.Module) -> nn.Module:
    """A CPU float32 copy of a network in eval mode with spectral norm folded into plain
    weights (W / sigma with the network's own u, v; see inference.facade.fold_spectral_norm). `net` is
    not changed; a network already folded (as Pioneer's are) is copied as it is."""
    from pioneer.inference.facade import fold_spectral_norm

    out = copy.deepcopy(net).eval().requires_grad_(False)
    fold_spectral_norm(out)
    return out.to("cpu", torch.float32, memory_format=torch.contiguous_format)


def plain_networks(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """Encoder and Decoder of `cfg` without spectral-norm parametrizations, to load plain weights into."""
    from pioneer.inference.facade import fold_spectral_norm
    from pioneer.model.networks import Decoder, Encoder

    nets = Encoder(cfg).eval(), Decoder(cfg).eval()
    for net in nets:
        fold_spectral_norm(net)
    return nets


# ------------------------------------------------------------------------------------------------
# What the model was trained on (the run folder)


def run_record(run_dir: Path | None) -> dict[str, Any]:
    """What a run folder says about its training: preset, command, options, the last session's summary."""
    if run_dir is None:
        return {}
    from pioneer.run.files import RunFolder
    from pioneer.run.jsonl import read_jsonl
    from pioneer.share.report import latest_metrics

    record: dict[str, Any] = {"run": run_dir.name}
    for name, key in ((OPTIONS, "options"), (SUMMARY, "summary")):
        try:
            record[key] = json.loads((run_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    metrics = latest_metrics(read_jsonl(RunFolder(run_dir).metrics))
    # What a reader (and the bundled model's drift test) needs to compute each number again.
    record["metrics"] = {name: {k: r.get(k) for k in ("results", "kimg", "num", "seed", "data")}
                         for name, r in metrics.items()}
    return record


def _trained_on(model: "Pioneer", record: dict[str, Any]) -> dict[str, Any]:
    cfg = record.get("options", {}).get("config", {})
    return {
        "data": cfg.get("data", model.extra.get("data")),
        "holdout": cfg.get("holdout"),
        "preset": record.get("options", {}).get("preset"),
        "images_seen": model.images_seen,
    }


# ------------------------------------------------------------------------------------------------
# Save


def save_pretrained(model: "Pioneer", folder: str | os.PathLike, *, run_dir: str | os.PathLike | None | bool = True,
                    vectors: Iterable[AttributeVector | str | os.PathLike] | None = None, card: bool = True,
                    data: str | None = None, cache_dir: str | os.PathLike | None = None,
                    repo_id: str | None = None, progress: bool = False) -> Path:
    """Write `model` as a pretrained folder (see the module doc); returns the folder.

    run_dir: the run folder the model came from, for the model card and config.json (training
    options, metrics.jsonl); True finds it next to the snapshot the model was loaded from,
    False / None leaves it out. vectors: attribute vectors (or their files) to include; each
    must have been made with this model (None: the model's own, e.g. those of the pretrained
    folder it was loaded from; () for none). data: the data set whose held-out images the card's
    reconstruction grid shows (default: the run's); repo_id: where it will be pushed (for the
    card's example). An existing folder is only written over
    when it is a pretrained folder; other files in it are kept.
    """
    from pioneer.inference.inputs import InputError

    folder = Path(folder)
    _check_target(folder)
    run = run_of_model(model) if run_dir is True else (Path(run_dir) if run_dir else None)
    record = run_record(run)
    vecs = [_check_vector(model, v) for v in (model.vectors.values() if vectors is None else vectors)]
    names = [_vector_file(v.attribute) for v in vecs]
    if len(set(names)) != len(names):
        raise InputError(f"two attribute vectors share a name ({', '.join(v.attribute for v in vecs)}): "
                         "give each attribute once")

    # config.json goes first and comes back last: a folder without it is incomplete (and a
    # publish that was stopped halfway may be written again, see _is_pretrained).
    folder.mkdir(parents=True, exist_ok=True)
    for name in _OWN_FILES:
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / VECTOR_DIR, ignore_errors=True)   # vectors of an earlier publish
    encoder, decoder = plain_copy(model.encoder), plain_copy(model.decoder)
    weights = st_save(prefixed_tensors("encoder", encoder.state_dict()) | prefixed_tensors("decoder", decoder.state_dict()),
                      metadata={"format": PRETRAINED_FORMAT, "version": str(PRETRAINED_VERSION)})
    atomic_write(folder / WEIGHTS_NAME, lambda f: f.write(weights))
    for vec, name in zip(vecs, names):
        vec.save(folder / VECTOR_DIR / name)
    config = {
        "format": PRETRAINED_FORMAT,
        "version": PRETRAINED_VERSION,
        "model_config": asdict(model.config),
        "level": model.level,
        "alpha": model.alpha,
        "resolution": model.resolution,
        "latent_dim": model.latent_dim,
        "images_seen": model.images_seen,
        "fingerprint": model.fingerprint,     # of the snapshot's weights: attribute vectors name it
        "trained_on": _trained_on(model, record),
        "extra": model.extra,
        "attribute_vectors": {v.attribute: f"{VECTOR_DIR}/{n}" for v, n in zip(vecs, names)},
        "training_options": record.get("options", {}).get("config"),
        "metrics": record.get("metrics", {}),   # the latest record of each metric in the run's metrics.jsonl
        "pioneer_version": _version(),
    }
    if card:
        from pioneer.share.card import write_model_card

        write_model_card(folder, model, config, run, record, data=data, cache_dir=cache_dir, repo_id=repo_id,
                         progress=progress)
    atomic_write_text(folder / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    return folder


def _check_target(folder: Path) -> None:
    from pioneer.inference.inputs import InputError

    if folder.is_file():
        raise InputError(f"{folder} is a file: the output of save_pretrained is a folder")
    if folder.is_dir() and any(folder.iterdir()) and not _is_pretrained(folder):
        raise InputError(f"{folder} exists and is not a pioneer pretrained folder: choose a new or empty folder "
                         "(nothing was written)")


def _is_pretrained(folder: Path) -> bool:
    """A pretrained folder, or one whose writing stopped before its config.json."""
    from pioneer.run.filetypes import safetensors_metadata

    try:
        return json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8")).get("format") == PRETRAINED_FORMAT
    except (OSError, ValueError, AttributeError):
        return (safetensors_metadata(folder / WEIGHTS_NAME) or {}).get("format") == PRETRAINED_FORMAT


def run_of_model(model: "Pioneer") -> Path | None:
    from pioneer.run.files import run_of_snapshot

    return run_of_snapshot(model.source) if model.source else None


def _check_vector(model: "Pioneer", v: AttributeVector | str | os.PathLike) -> AttributeVector:
    from pioneer.inference.inputs import InputError

    try:
        vec = v if isinstance(v, AttributeVector) else AttributeVector.load(v)
    except ValueError as e:
        raise InputError(str(e)) from e
    if vec.latent_dim != model.latent_dim:
        raise InputError(f"attribute vector {vec.attribute!r} has {vec.latent_dim} dimensions, the model {model.latent_dim}")
    if vec.model and vec.model != model.fingerprint:
        raise InputError(f"attribute vector {vec.attribute!r} was made with another model ({vec.model}, this one is "
                         f"{model.fingerprint}): make it again with this model's `pioneer attributes`")
    return vec


def _vector_file(attribute: str) -> str:
    """A safe file name for an attribute: letters, digits, '-', '_' and '.' kept."""
    return (re.sub(r"[^\w.-]+", "_", attribute).strip("._") or "attribute") + ".safetensors"


def _version() -> str:
    from pioneer import __version__

    return __version__


# ------------------------------------------------------------------------------------------------
# Load


def load_pretrained(name_or_path: str | os.PathLike, *, device: torch.device | str | None = None,
                    channels_last: bool = True, revision: str | None = None,
                    cache_dir: str | os.PathLike | None = None, token: str | bool | None = None) -> "Pioneer":
    """A Pioneer from a pretrained folder, or from a Hub repo id ("owner/name", fetched with
    huggingface_hub into its cache; HF_HUB_OFFLINE=1 uses the cache only). CheckpointError with
    a one-line reason when the folder is not one; HubError when the repo cannot be fetched."""
    from pioneer.inference.facade import Pioneer
    from pioneer.inference.inputs import resolve_device

    device = resolve_device(device)                  # fail before reading or fetching anything
    folder = resolve_pretrained(name_or_path, revision=revision, cache_dir=cache_dir, token=token)
    config = read_config(folder)
    try:
        cfg = ModelConfig(**config["model_config"])
        level, alpha = int(config["level"]), float(config["alpha"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{folder / CONFIG_NAME}: damaged pretrained config ({e})") from e
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{folder} has no {WEIGHTS_NAME}: the folder is incomplete")
    meta, tensors = read_safetensors(weights, "the weights of a pioneer pretrained folder")
    if meta.get("format") != PRETRAINED_FORMAT:
        from pioneer.run.filetypes import describe

        raise CheckpointError(f"{weights} is {describe(weights)}, not the weights of a pioneer pretrained folder")
    encoder, decoder = plain_networks(cfg)
    try:
        for prefix, net in (("encoder.", encoder), ("decoder.", decoder)):
            net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    except RuntimeError as e:
        raise CheckpointError(f"{weights}: the weights do not fit the model config.json describes ({_one_line(e)})") from e
    model = Pioneer(encoder, decoder, level, alpha, device=device, channels_last=channels_last,
                    source=str(name_or_path), images_seen=int(config.get("images_seen", 0)),
                    extra=config.get("extra") or {})
    model.fingerprint = config.get("fingerprint") or model.fingerprint
    model.vectors = load_vectors(folder, config)
    return model


def read_config(folder: Path) -> dict[str, Any]:
    """config.json of a pretrained folder, checked for format and version."""
    from pioneer.run.filetypes import describe

    path = folder / CONFIG_NAME
    if not path.is_file():
        hint = ("a run folder: load RUN/snapshot.safetensors with Pioneer.load, or make a pretrained folder "
                "with `pioneer publish`") if (folder / SNAPSHOT).is_file() else "not a pretrained folder"
        raise CheckpointError(f"{folder} has no {CONFIG_NAME}: it is {hint}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path} is {describe(path)} that cannot be read as JSON ({e})") from e
    if not isinstance(config, dict) or config.get("format") != PRETRAINED_FORMAT:
        raise CheckpointError(f"{path} is not the config of a pioneer pretrained folder (no format "
                              f"{PRETRAINED_FORMAT!r}): is it another library's model?")
    version = config.get("version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: damaged pretrained config (format version {version!r})")
    if version > PRETRAINED_VERSION:
        raise CheckpointError(f"{path} is a pioneer pretrained folder of format version {version}, newer than this "
                              f"pioneer reads ({PRETRAINED_VERSION}): upgrade pioneer")
    return config


def load_vectors(folder: Path, config: dict[str, Any]) -> dict[str, AttributeVector]:
    """The attribute vectors config.json lists, by attribute name."""
    out = {}
    for attribute, rel in (config.get("attribute_vectors") or {}).items():
        path = (folder / rel).resolve()
        if folder.resolve() not in path.parents:
            raise CheckpointError(f"{folder / CONFIG_NAME}: attribute vector path {rel!r} leaves the folder")
        try:
            out[attribute] = AttributeVector.load(path)
        except ValueError as e:
            raise CheckpointError(str(e)) from e
    return out


def resolve_pretrained(name_or_path: str | os.PathLike, *, revision: str | None = None,
                       cache_dir: str | os.PathLike | None = None, token: str | bool | None = None) -> Path:
    """A local pretrained folder as it is, or a Hub repo id fetched into (or, offline, found in)
    the huggingface_hub cache; returns the folder."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        from pioneer.run.filetypes import describe

        raise CheckpointError(f"{path} is {describe(path)}: from_pretrained takes a folder written by "
                              "save_pretrained (or `pioneer publish`) or a Hub repo id; load snapshots with Pioneer.load")
    text = str(name_or_path)
    if not _REPO_ID.match(text):
        raise CheckpointError(f"{text} does not exist and is not a Hub repo id (owner/name)")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as e:
        raise HubError(f"{text} is not a local folder, and loading a Hub repo needs huggingface_hub: "
                       "pip install 'pioneer[hub]'") from e
    try:
        return Path(snapshot_download(text, revision=revision, cache_dir=cache_dir, token=token,
                                      allow_patterns=_DOWNLOAD_PATTERNS, library_name="pioneer",
                                      library_version=_version()))
    except LocalEntryNotFoundError as e:
        offline = " (offline: HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") else ""
        raise HubError(f"{text} is not a local folder and not in the Hugging Face cache{offline}, and it could not "
                       "be downloaded") from e
    except (OSError, ValueError) as e:                  # HTTP errors derive from OSError, a bad id from ValueError
        raise HubError(f"{text} is not a local folder, and fetching it from the Hugging Face Hub failed: "
                       f"{_one_line(e)}") from e


# ------------------------------------------------------------------------------------------------
# Push


def push_folder(folder: str | os.PathLike, repo_id: str, *, private: bool = False, commit_message: str | None = None,
                token: str | None = None, api: Any = None) -> str:
    """Upload a pretrained folder to the Hub repo `repo_id` (created when missing); returns the
    commit's URL. `api`: an HfApi (default: a new one with `token`, else the login's)."""
    folder = Path(folder)
    config = read_config(folder)                       # only pretrained folders are uploaded
    if not _REPO_ID.match(repo_id):
        raise HubError(f"{repo_id!r} is not a Hub repo id: use owner/name")
    if api is None:
        try:
            from huggingface_hub import HfApi
        except ImportError as e:
            raise HubError("pushing to the Hub needs huggingface_hub: pip install 'pioneer[hub]'") from e
        api = HfApi(token=token)
    message = commit_message or (f"pioneer {config['resolution']}x{config['resolution']} model, "
                                 f"{config['images_seen'] / 1000:g} kimg")
    try:
        api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model", commit_message=message)
    except Exception as e:  # the Hub client raises HTTP, connection, auth and validation errors of many types
        raise HubError(f"upload of {folder} to {repo_id} failed: {_one_line(e)}") from e
    return str(getattr(info, "commit_url", None) or info)


def push_model(model: "Pioneer", repo_id: str, *, private: bool = False, commit_message: str | None = None,
               token: str | None = None, api: Any = None, **save_kwargs: Any) -> str:
    """save_pretrained into a temporary folder, then push_folder; returns the commit's URL."""
    with tempfile.TemporaryDirectory(prefix="pioneer-push-") as tmp:
        save_pretrained(model, tmp, repo_id=repo_id, **save_kwargs)
        return push_folder(tmp, repo_id, private=private, commit_message=commit_message, token=token, api=api)


def vector_files(run_dir: Path, fingerprint: str) -> list[Path]:
    """Attribute vector files in a run folder (RUN/*.safetensors, RUN/vectors/) made with the
    model of `fingerprint`: what `pioneer publish` includes without being told."""
    from pioneer.run.filetypes import safetensors_metadata
    from pioneer.inference.latent import VECTOR_FORMAT

    found = []
    for path in sorted([*run_dir.glob("*.safetensors"), *run_dir.glob(f"{VECTOR_DIR}/*.safetensors")]):
        meta = safetensors_metadata(path) or {}
        if meta.get("format") == VECTOR_FORMAT and meta.get("model") == fingerprint:
            found.append(path)
    return found


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
