"""Does a trained model learn, or has it collapsed? Every number of issue 9, from one script.

    python benchmarks/learning.py measure runs/00000-synthetic64          # a finished run
    python benchmarks/learning.py proxy --out /tmp/p0                    # the short proxy, today's recipe
    python benchmarks/learning.py proxy --out /tmp/p1 --set loss.decoder_recon_weight=1
    python benchmarks/learning.py proxy --out /tmp/p2 --recipe small      # the recipe of the default preset
    python benchmarks/learning.py train --out /tmp/full --seed 1         # the full default run, then measure

Measured on the first 256 held-out faces at the model's resolution:
  heldout_l1      mean |G_ema(E(x)) - x| (images in [-1, 1])
  mean_face_l1    the same for the per-pixel mean of those faces (what a collapsed model scores)
  cycle           mean 1 - cos(z, E(G_ema(z))) over 256 prior codes
  rank_real       effective rank of E(x) (256 random unit codes: about 236; collapse: ~1)
  rank_fake       effective rank of E(G_ema(z))
  var_real        mean per-dimension variance of E(x) (isotropic: 1/D)
  attr_agreement  share of (face, attribute) predictions equal on input and reconstruction
  attr_gain / attr_kept   the attr_edit benchmark (synthetic faces only)

`proxy` trains the default networks on phases 0-2 (up to 16 px, 32 kimg, a few minutes);
`--set section.field=value` changes one field of the config (model., loss., schedule. or a
TrainConfig field), e.g. `--set loss.latent_weight=6.0 --set lr_betas=[0,0.9]`.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pioneer.config import RECIPES, Rule, TrainConfig, preset, with_recipe  # noqa: E402


def apply_overrides(cfg: TrainConfig, sets: list[str]) -> TrainConfig:
    """--set a.b=value: replace one field of the (nested, frozen) config."""
    for item in sets:
        key, _, raw = item.partition("=")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        if key == "schedule.rules":                  # [[start_kimg, phase, lr, margin], ...]
            value = [Rule(*map(float, r[:1]), int(r[1]), *map(float, r[2:])) for r in value]
        if isinstance(value, list):
            value = tuple(value)
        parts = key.split(".")
        if len(parts) == 1:
            cfg = dataclasses.replace(cfg, **{parts[0]: value})
        else:
            section = getattr(cfg, parts[0])
            cfg = dataclasses.replace(cfg, **{parts[0]: dataclasses.replace(section, **{parts[1]: value})})
    return cfg


def proxy_config(sets: list[str], seed: int, recipe: str = "authors") -> TrainConfig:
    """The default preset cut to phases 0-2 (4, 8, 16 px) and 32 kimg, with a 4 kimg lr ramp,
    on the given recipe (default: the authors', so that --set tests one change against it)."""
    cfg = with_recipe(preset("synthetic64"), recipe)
    kimg = {0: 0.0, 1: 8.0, 2: 20.0}
    rules = tuple(Rule(k, p, cfg.schedule.rules[0].lr, 0.0) for p, k in kimg.items())
    cfg = dataclasses.replace(
        cfg, seed=seed, model=dataclasses.replace(cfg.model, max_resolution=16),
        schedule=dataclasses.replace(cfg.schedule, rules=rules, total_kimg=32.0, lr_rampdown_kimg=4.0),
        grid_kimg=8.0, snapshot_kimg=1000.0)
    return apply_overrides(cfg, sets)


def measure(snapshot: str | Path, n: int = 256, attributes: bool = True, cache_dir: str | None = None) -> dict:
    """Every number of the issue for one snapshot (see the module docstring): the `collapse`
    metric on n held-out faces and n prior codes (seed 12345), plus the attribute benchmark."""
    from pioneer.metrics import MetricContext, MetricError, compute

    ctx = MetricContext.from_snapshot(snapshot, cache_dir=cache_dir, device="cpu", seed=12345)
    ctx.num = n
    out = {"resolution": ctx.model.resolution, **compute("collapse", ctx)}
    if attributes:
        ctx.num = None                            # attr_edit's own counts (64 edits per attribute)
        try:
            r = compute("attr_edit", ctx)
            out.update(attr_agreement=r["attr_agreement"], attr_gain=r["attr_edit"], attr_kept=r["attr_edit_kept"],
                       classifier_accuracy=r["classifier_accuracy"])
        except MetricError as e:
            out["attr_error"] = str(e)
    return out


def _train(cfg: TrainConfig, out: Path, cache_dir: str | None) -> dict:
    from pioneer.training.loop import train

    out.mkdir(parents=True, exist_ok=True)
    (out / "options.json").write_text(json.dumps({"config": cfg.to_dict()}, indent=2))
    t = time.perf_counter()
    res = train(cfg, out, cache_dir=cache_dir, progress=False)
    return {"train_seconds": round(time.perf_counter() - t, 1), "diverged": res.diverged}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pm = sub.add_parser("measure", help="measure a run folder or snapshot")
    pm.add_argument("model")
    for name in ("proxy", "train"):
        q = sub.add_parser(name, help=f"train the {name} run, then measure it")
        q.add_argument("--out", required=True)
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
        q.add_argument("--preset", default="synthetic64")
        q.add_argument("--recipe", choices=RECIPES, default="authors" if name == "proxy" else None,
                       help="recipe before --set (proxy default: authors; train default: the preset's)")
    for q in sub.choices.values():
        q.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
        q.add_argument("--no-attributes", action="store_true", help="skip the attribute classifier")
        q.add_argument("--cache-dir", default=None)
        q.add_argument("--json", default=None, help="also append the result as one JSON line to this file")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    record: dict = {"cmd": " ".join(sys.argv[1:])}
    if a.cmd == "measure":
        path = Path(a.model)
        snapshot = path / "snapshot.safetensors" if path.is_dir() else path
    else:
        if a.cmd == "proxy":
            cfg = proxy_config(a.set, a.seed, a.recipe)
        else:
            cfg = dataclasses.replace(preset(a.preset), seed=a.seed)
            cfg = apply_overrides(with_recipe(cfg, a.recipe) if a.recipe else cfg, a.set)
        record.update(_train(cfg, Path(a.out), a.cache_dir))
        snapshot = Path(a.out) / "snapshot.safetensors"
    record.update(measure(snapshot, attributes=not a.no_attributes, cache_dir=a.cache_dir))
    print(json.dumps(record))
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
