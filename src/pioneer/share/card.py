"""The model card (README.md) of a pretrained folder: what the model is, how to load it, what
it was trained on and with which options, its latest metrics, a sample grid and a
reconstruction grid. `model_card` is a pure function of what it is given; `write_model_card`
gathers that from the model and its run folder and draws the grids."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pioneer.text import fmt
from pioneer.atomic import atomic_write_text

if TYPE_CHECKING:
    from pioneer.inference.facade import Pioneer
    from pioneer.data import DataSplit

CARD_NAME = "README.md"
CITATION = """@inproceedings{heljakka2020balanced,
  title     = {Towards Photographic Image Manipulation with Balanced Growing of Generative Autoencoders},
  author    = {Heljakka, Ari and Solin, Arno and Kannala, Juho},
  booktitle = {IEEE Winter Conference on Applications of Computer Vision (WACV)},
  year      = {2020}
}"""
FRONT_MATTER = """---
library_name: pioneer
license: mit
tags:
- pioneer
- generative-autoencoder
- image-generation
- pytorch
pipeline_tag: unconditional-image-generation
---
"""


def write_model_card(folder: Path, model: "Pioneer", config: dict[str, Any], run_dir: Path | None,
                     record: dict[str, Any], *, data: str | None = None, cache_dir: str | os.PathLike | None = None,
                     repo_id: str | None = None, progress: bool = False) -> Path:
    """Draw samples.png and reconstructions.png into `folder` and write its README.md."""
    from pioneer.share.report import report_grids

    split, note = _heldout(model, record, data, cache_dir, progress)
    images = [(caption, Path(rel).name) for caption, rel in report_grids(folder, model, split, folder)]
    if split is None and run_dir is not None:       # no data to reconstruct: the run's last grid
        grids = sorted((run_dir / "grids").glob("reconstructions-*.png"))
        if grids:
            shutil.copyfile(grids[-1], folder / "reconstructions.png")
            images.append((f"held-out inputs and reconstructions, drawn in training ({grids[-1].stem})",
                           "reconstructions.png"))
    text = model_card(config, config.get("metrics") or {}, images, record, repo_id=repo_id, note=note)
    path = folder / CARD_NAME
    atomic_write_text(path, text)
    return path


def _heldout(model: "Pioneer", record: dict[str, Any], data: str | None, cache_dir: str | os.PathLike | None,
             progress: bool) -> tuple["DataSplit | None", str]:
    """The data set whose held-out images the card reconstructs, or None and why not."""
    from pioneer.data import DataError, open_dataset
    from pioneer.run.files import cache_dir as resolve_cache_dir

    options = record.get("options", {}).get("config", {})
    spec = data or options.get("data") or model.extra.get("data")
    if not spec:
        return None, "No reconstruction grid: the data set the model was trained on is not known."
    holdout = options.get("holdout") if data is None else None
    try:
        split = open_dataset(spec, model.resolution, resolve_cache_dir(cache_dir),
                             holdout=holdout, progress=progress)
    except (DataError, OSError, ValueError) as e:
        return None, f"No fresh reconstruction grid: the data set {spec} could not be opened ({e})."
    return (split, "") if len(split.test) else (None, f"No reconstruction grid: {spec} has no held-out images.")


def model_card(config: dict[str, Any], metrics: dict[str, dict[str, Any]], images: list[tuple[str, str]],
               record: dict[str, Any], *, repo_id: str | None = None, note: str = "") -> str:
    """The card's markdown. config: the folder's config.json; metrics: the latest record of each
    metric (metrics.jsonl); images: (caption, file) in the folder; record: hub.run_record."""
    mc = config["model_config"]
    trained = config.get("trained_on", {})
    r, kimg = config["resolution"], config["images_seen"] / 1000
    data = trained.get("data") or "unknown data"
    name = repo_id or f"Balanced PIONEER, {r}x{r}, trained on {data}"
    where = repo_id or "PATH_OR_REPO_ID"
    kind = ("A Balanced PIONEER generative autoencoder (spectral norm in both networks)" if mc.get("decoder_norm") == "sn"
            else f"A PIONEER generative autoencoder (decoder normalisation {mc.get('decoder_norm')!r})")
    lines = [FRONT_MATTER, f"# {name}", "",
             f"{kind}, grown progressively and made with pioneer: it encodes {r}x{r} RGB images into "
             f"{config['latent_dim']}-d codes on the unit sphere, decodes codes into images, and so reconstructs, "
             f"samples, interpolates and edits images in its code space. Trained on `{data}` "
             f"for {kimg:g} kimg ({config['images_seen']:,} images seen).", ""]
    lines += _use_and_limits(data, r, metrics)
    lines += [
             "## Use", "", "```python", "from pioneer import Pioneer  # pip install 'pioneer[hub]'", "",
             f'm = Pioneer.from_pretrained("{where}")', 'z = m.encode(["a.png", "b.png"])      # (2, D) codes',
             f"x = m.decode(z)                         # (2, 3, {r}, {r}) images in [-1, 1]",
             "m.to_pil(m.sample(16, seed=0))[0].save(\"sample.png\")"]
    if config.get("attribute_vectors"):
        first = next(iter(config["attribute_vectors"]))
        lines.append(f'edited = m.edit("a.png", m.vectors["{first}"], 1.5)')
    lines += ["```", "", "With torch.hub, from a clone of pioneer or its repository:", "", "```python",
              f'm = torch.hub.load(PIONEER_REPO, "pioneer", weights="{where}")', "```", "",
              "`pioneer export --model DIR --format onnx -o onnx/` writes the encoder and decoder for "
              "onnxruntime.", ""]
    lines += _training(config, record)
    lines += ["", "## Metrics", ""]
    if metrics:
        lines += ["Latest value of each metric in the run's metrics.jsonl (`pioneer evaluate`); config.json "
                  "holds every number.", "",
                  "| metric | value | at kimg | samples | also |", "|---|---|---|---|---|"]
        for metric, rec in sorted(metrics.items()):
            res = rec.get("results", {})
            also = ", ".join(f"{k} {fmt(v)}" for k, v in res.items()
                             if k not in (metric, "num", "seconds") and isinstance(v, (int, float)))
            lines.append(f"| {metric} | {fmt(res.get(metric))} | {fmt(rec.get('kimg'))} | {fmt(res.get('num'))} "
                         f"| {also} |")
    else:
        lines.append("No metrics were recorded for this run (`pioneer evaluate --model RUN` adds them).")
    lines += ["", "## Images", ""]
    for caption, file in images:
        lines += [f"**{caption}**", "", f"![{caption}]({file})", ""]
    if note:
        lines += [note, ""]
    if config.get("attribute_vectors"):
        lines += ["## Attribute vectors", "",
                  "Directions in the code space (mean code with the attribute minus mean code without), for "
                  "`m.edit(x, m.vectors[NAME], strength)` or `pioneer edit --vector FILE`.", "",
                  "| attribute | file |", "|---|---|"]
        lines += [f"| {a} | `{f}` |" for a, f in config["attribute_vectors"].items()]
        lines.append("")
    lines += ["## License and citation", "",
              "MIT, as pioneer. The method is the paper's; please cite it:", "", "```bibtex", CITATION, "```", ""]
    lines += ["## Files", "",
              "| file | what |", "|---|---|",
              "| `config.json` | model configuration, level and alpha, images seen, what it was trained on, the run's options |",
              "| `model.safetensors` | EMA decoder and encoder, spectral norm folded into plain weights |"]
    if config.get("attribute_vectors"):
        lines.append("| `vectors/*.safetensors` | attribute vectors |")
    lines += [f"| `{file}` | {caption} |" for caption, file in images]
    return "\n".join(lines) + "\n"


def _use_and_limits(data: str, r: int, metrics: dict[str, dict[str, Any]]) -> list[str]:
    """What the model is for, what it is not for, and how good it is, one line each."""
    synthetic = data.startswith("synthetic")
    domain = "the built-in synthetic faces (drawn heads, not photographs)" if synthetic else f"`{data}`"
    lines = ["## Intended use and limits", "",
             f"- For research and trying things out: encode, reconstruct, sample, interpolate and edit "
             f"{r}x{r} images like its training data, {domain}.",
             "- Out of its domain it does not work: " + (
                 "real photos of faces come back as synthetic faces, and edits made with its vectors do not "
                 "transfer to them." if synthetic else "images unlike the training data reconstruct poorly."),
             "- Not for identifying people, or for any decision about a person."]
    res = metrics.get("collapse", {}).get("results", {})
    if isinstance(res.get("heldout_l1"), (int, float)) and isinstance(res.get("mean_face_l1"), (int, float)):
        lines.append(f"- Reconstruction: held-out L1 {fmt(res['heldout_l1'])} (images in [-1, 1]); the per-pixel "
                     f"mean of the same images scores {fmt(res['mean_face_l1'])}, what a model that ignores its "
                     "input would reach.")
    pr = metrics.get("pr1k", {}).get("results", {})
    if isinstance(pr.get("precision"), (int, float)):
        lines.append(f"- Samples from the prior: precision {fmt(pr['precision'])}, recall {fmt(pr.get('recall'))} "
                     "against training images (Kynkaanniemi et al. 2019; 1 = every sample lies among training "
                     "images); near 0, the samples are blurred or off the data.")
    return lines + [""]


def _training(config: dict[str, Any], record: dict[str, Any]) -> list[str]:
    mc, trained = config["model_config"], config.get("trained_on", {})
    options = config.get("training_options") or {}
    summary = record.get("summary", {})
    rows = [
        ("preset", trained.get("preset")),
        ("data", trained.get("data")),
        ("held-out split", trained.get("holdout") or "the data set's own split"),
        ("images seen", f"{config['images_seen']:,}"),
        ("resolution (level, alpha)", f"{config['resolution']}x{config['resolution']} ({config['level']}, {config['alpha']:g})"),
        ("model", ", ".join(f"{k}={fmt(v)}" for k, v in mc.items())),
        ("seed", options.get("seed")),
        ("total schedule", f"{options['schedule']['total_kimg']:g} kimg"
         if isinstance(options.get("schedule"), dict) and "total_kimg" in options["schedule"] else None),
        ("command", f"`pioneer {' '.join(command[1:])}`" if (command := record.get("options", {}).get("command")) else None),
        ("training time (last session)", f"{summary['seconds_this_session'] / 60:.1f} min"
         if isinstance(summary.get("seconds_this_session"), (int, float)) else None),
        ("held-out L1 at the end", fmt(summary.get("heldout_l1")) if summary.get("heldout_l1") is not None else None),
    ]
    lines = ["## Training", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows if v not in (None, "")]
    if options:
        lines += ["", "<details><summary>All training options (the run's options.json)</summary>", "", "```json",
                  json.dumps(options, indent=2), "```", "", "</details>"]
    return lines
