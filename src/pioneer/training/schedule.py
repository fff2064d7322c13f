"""The progressive schedule: a pure function of the number of images seen.

Unlike the official scheduler (state mutated as training goes), everything here is computed
from `images_seen` and the ScheduleConfig, so it can be tested, printed (--dry-run) and resumed
without bookkeeping.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from pioneer.config import RESOLUTIONS, LossConfig, ScheduleConfig
from pioneer.text import table


@dataclass(frozen=True)
class SchedulePoint:
    """What the training loop needs to know at one moment of the run."""

    images_seen: int
    rule_index: int
    phase: int              # level of the networks being trained (0 = 4x4)
    resolution: int
    alpha: float            # fade-in of the newest level, 1.0 when stable
    lr: float
    margin: float           # paper units; 0 = no hinge
    batch_size: int         # global batch (all ranks together)
    recon_weight: float     # lambda_X
    phase_start_kimg: float


def phase_start_kimg(cfg: ScheduleConfig, phase: int) -> float:
    """kimg at which a phase begins: the start of its first rule."""
    for r in cfg.rules:
        if r.phase == phase:
            return r.start_kimg
    raise ValueError(f"phase {phase} does not occur in the schedule")


def _rampdown(cfg: ScheduleConfig, kimg: float) -> float:
    """lr factor: 1, then a half cosine to 0 over the last lr_rampdown_kimg of the run."""
    if cfg.lr_rampdown_kimg <= 0:
        return 1.0
    ramp = min(cfg.lr_rampdown_kimg, cfg.total_kimg)
    t = (kimg - (cfg.total_kimg - ramp)) / ramp
    return 0.5 * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0)))


def state_at(cfg: ScheduleConfig, loss: LossConfig, images_seen: int) -> SchedulePoint:
    """Evaluate the schedule after `images_seen` training images."""
    kimg = images_seen / 1000.0
    starts = [r.start_kimg for r in cfg.rules]
    i = bisect.bisect_right(starts, kimg) - 1
    rule = cfg.rules[i]
    start = phase_start_kimg(cfg, rule.phase)
    in_phase = kimg - start
    in_fade = in_phase < cfg.fade_kimg
    if rule.phase == 0 or cfg.fade_kimg == 0:
        alpha = 1.0  # nothing to fade from at the first level
    else:
        alpha = min(1.0, in_phase / cfg.fade_kimg)
    resolution = RESOLUTIONS[rule.phase]
    return SchedulePoint(
        images_seen=images_seen,
        rule_index=i,
        phase=rule.phase,
        resolution=resolution,
        alpha=alpha,
        lr=rule.lr * _rampdown(cfg, kimg),
        margin=rule.margin,
        batch_size=cfg.batch_sizes[resolution],
        recon_weight=loss.recon_weight_fade if in_fade else loss.recon_weight_stable,
        phase_start_kimg=start,
    )


def describe(cfg: ScheduleConfig) -> list[dict[str, object]]:
    """One row per schedule segment (rule, split at the end of each fade-in), for --dry-run."""
    rows: list[dict[str, object]] = []
    for i, r in enumerate(cfg.rules):
        end = cfg.rules[i + 1].start_kimg if i + 1 < len(cfg.rules) else cfg.total_kimg
        if r.start_kimg >= cfg.total_kimg:
            break
        end = min(end, cfg.total_kimg)
        res = RESOLUTIONS[r.phase]
        fade_end = phase_start_kimg(cfg, r.phase) + cfg.fade_kimg
        ramp_start = max(0.0, cfg.total_kimg - cfg.lr_rampdown_kimg)
        cuts = [r.start_kimg]
        if r.phase > 0 and r.start_kimg < fade_end < end:
            cuts.append(fade_end)
        if cfg.lr_rampdown_kimg > 0 and cuts[-1] < ramp_start < end:
            cuts.append(ramp_start)
        cuts.append(end)
        for a, b in zip(cuts, cuts[1:]):
            fading = r.phase > 0 and a < fade_end
            rows.append({
                "kimg": f"{a:g}-{b:g}",
                "phase": r.phase,
                "resolution": f"{res}x{res}",
                "stage": "fade-in" if fading else "stable",
                "batch": cfg.batch_sizes[res],
                "lr": f"{r.lr:g}" if b <= ramp_start or cfg.lr_rampdown_kimg == 0 else f"{r.lr:g}->0",
                "margin": f"{r.margin:g}" if r.margin > 0 else "off",
                "iterations": int(round((b - a) * 1000 / cfg.batch_sizes[res])),
            })
    return rows


def format_table(rows: list[dict[str, object]]) -> str:
    """`describe`'s rows as a plain-text table with aligned columns."""
    if not rows:
        return "(empty schedule)"
    return table([list(rows[0]), *(list(r.values()) for r in rows)])