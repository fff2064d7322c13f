"""Explicit configuration: the model, the losses, the schedule and the run, plus named presets.

Every module receives the piece of configuration it needs as an argument; nothing reads a
global. Configs are plain dataclasses so that they serialise to JSON (options.json in the run
folder, metadata in every snapshot) and back without loss.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from pioneer.errors import PioneerError

# Block output channels of the decoder per resolution (official code); the encoder mirrors it.
CHANNEL_TABLE: dict[int, int] = {
    4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16,
}
RESOLUTIONS: tuple[int, ...] = tuple(CHANNEL_TABLE)

# Normalisation of the decoder's convolutions (the encoder always uses spectral norm).
#   sn       spectral norm: Balanced PIONEER
#   pn       PixelNorm after every conv
#   eqlr     equalised learning rate
#   eqlr+pn  both: baseline PIONEER
#   none     no normalisation (the paper reports it fails to converge; kept for the ablation)
DECODER_NORMS: tuple[str, ...] = ("sn", "pn", "eqlr", "eqlr+pn", "none")


class ConfigError(PioneerError, ValueError):
    """An invalid option; the message names the option and a valid alternative."""


def _check_resolution(resolution: int, what: str) -> None:
    if resolution not in CHANNEL_TABLE:
        raise ConfigError(
            f"{what} {resolution} is not supported: use a power of two from 4 to 1024"
        )


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the encoder and decoder (saved in every snapshot)."""

    max_resolution: int = 256        # the networks are built up to this resolution
    latent_dim: int = 512            # size of the code on the unit sphere
    width: float = 1.0               # multiplier on CHANNEL_TABLE (1.0 = the paper's networks)
    min_channels: int = 8            # floor after applying width
    decoder_norm: str = "sn"         # one of DECODER_NORMS
    encoder_last_activation: bool = False  # LReLU after E's last conv (official bp flag; paper: off)
    # The decoder multiplies its unit-norm input code by this. A unit code in D dims has
    # coordinates of about 1/sqrt(D), and spectral-normalised convs cannot amplify them back;
    # sqrt(D) gives unit RMS per coordinate. 1.0 is the authors' networks.
    code_gain: float = 1.0

    def __post_init__(self) -> None:
        _check_resolution(self.max_resolution, "max_resolution")
        if self.decoder_norm not in DECODER_NORMS:
            raise ConfigError(
                f"decoder_norm {self.decoder_norm!r} is unknown: use one of {', '.join(DECODER_NORMS)}"
            )
        if self.latent_dim < 2:
            raise ConfigError(f"latent_dim {self.latent_dim} is too small: use at least 2")
        if not self.width > 0:
            raise ConfigError(f"width {self.width} must be positive")

    @property
    def num_levels(self) -> int:
        """Levels 0..num_levels-1 run at 4, 8, ..., max_resolution."""
        return int(math.log2(self.max_resolution)) - 1

    def resolution(self, level: int) -> int:
        return 4 * 2**level

    def channels(self, resolution: int) -> int:
        """Channels of the decoder block (and the encoder's from_rgb) at this resolution."""
        return max(self.min_channels, int(round(CHANNEL_TABLE[resolution] * self.width)))


@dataclass(frozen=True)
class LossConfig:
    """Loss weights as the authors' code effectively applies them (see model/loss.py)."""

    kl_weight: float = 0.1           # the official code scales every KL term by 0.1
    recon_weight_fade: float = 1.0   # lambda_X during a phase's fade-in
    recon_weight_stable: float = 1.5 # lambda_X once the phase is stable
    latent_weight: float = 100 / 512 # lambda_Z on (1 - cos): the code's mean over 512 dims x 100
    decoder_steps: int = 2           # decoder updates per encoder update
    # Not in the authors' recipe (0 = off there). The decoder's first step also minimises
    # decoder_recon_weight * |G(E(x)) - x| on the encoder step's real batch, E's codes held fixed:
    # G then learns images directly, not only through the encoder's KL verdicts.
    decoder_recon_weight: float = 0.0
    # The encoder also minimises encoder_cycle_weight * (1 - cos(z, E(G(z)))) on the prior codes
    # of its fake term: E is asked to invert G (as ALAE trains its encoder).
    encoder_cycle_weight: float = 0.0
    # The encoder also minimises encoder_prior_weight * MMD^2(E(x), prior codes): the batch KL
    # only matches per-dimension moments, so real codes may fill few directions of the sphere.
    encoder_prior_weight: float = 0.0
    # Reconstructions are decoded from E(x) moved by a random step of norm about code_noise and put
    # back on the sphere (both networks' L1 terms). G then learns to draw a face for every code near
    # a real one, and E must spread the codes further apart than the noise to keep them apart.
    code_noise: float = 0.0


@dataclass(frozen=True)
class Rule:
    """From `start_kimg` on, train `phase` (level) with this learning rate and KL margin."""

    start_kimg: float
    phase: int
    lr: float
    margin: float                    # paper units on the raw KL gap; 0 disables the hinge


@dataclass(frozen=True)
class ScheduleConfig:
    """The progressive schedule as data; schedule.py evaluates it as a function of images seen."""

    rules: tuple[Rule, ...]
    fade_kimg: float = 1200.0        # alpha ramps 0 -> 1 over the first fade_kimg of each phase
    batch_sizes: dict[int, int] = field(default_factory=lambda: {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 32, 256: 32, 512: 4, 1024: 1})
    total_kimg: float = 25480.0      # length of the run
    # Half-cosine ramp of the lr to 0 over the last lr_rampdown_kimg (0 = none, as in the paper;
    # a run shorter than that ramps over its whole length).
    # Short runs need it: the EMA decoder only matches the encoder once the encoder stops moving.
    lr_rampdown_kimg: float = 0.0

    def __post_init__(self) -> None:
        if not self.rules:
            raise ConfigError("the schedule needs at least one rule")
        starts = [r.start_kimg for r in self.rules]
        if starts[0] != 0:
            raise ConfigError("the first schedule rule must start at 0 kimg")
        if any(b <= a for a, b in zip(starts, starts[1:])):
            raise ConfigError(f"schedule rules must start at increasing kimg, got {starts}")
        phases = [r.phase for r in self.rules]
        if any(b < a for a, b in zip(phases, phases[1:])):
            raise ConfigError(f"schedule phases must never decrease, got {phases}")
        if phases[0] != 0 or any(b > a + 1 for a, b in zip(phases, phases[1:])):
            raise ConfigError(f"schedule phases must start at 0 and grow one level at a time, got {phases}")
        for r in self.rules:
            if r.lr <= 0 or r.margin < 0:
                raise ConfigError(f"rule at {r.start_kimg} kimg: lr must be > 0 and margin >= 0")
        for res in RESOLUTIONS[: max(phases) + 1]:
            if self.batch_sizes.get(res, 0) < 1:
                raise ConfigError(f"no batch size for resolution {res}")
        if self.fade_kimg < 0 or self.total_kimg <= 0:
            raise ConfigError("fade_kimg must be >= 0 and total_kimg > 0")
        if self.lr_rampdown_kimg < 0:
            raise ConfigError(f"lr_rampdown_kimg {self.lr_rampdown_kimg} must be >= 0")

    @property
    def final_phase(self) -> int:
        return self.rules[-1].phase


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs besides the data path; written to options.json."""

    model: ModelConfig
    loss: LossConfig
    schedule: ScheduleConfig
    data: str | None = "synthetic"   # "synthetic", "synthetic:N", a folder, a .zip or an LMDB
    holdout: str | None = None       # list file or CelebA-HQ image_list.txt; None = default split
    seed: int = 0
    lr_betas: tuple[float, float] = (0.0, 0.99)  # Adam betas of the paper (bp code used 0.9)
    adam_eps: float = 1e-8
    ema_decay: float = 0.999         # per iteration, on the decoder's weights
    # The authors' image pool for the encoder's fake KL term (training/image_pool.py): this many fakes
    # kept below 256 px, half as many from 256 px on (authors: 200, so 100 at 256); emptied at
    # each phase change, used once the phase is stable (alpha = 1). 0 = off.
    image_pool: int = 0
    log_every: int = 20              # iterations between stats records (one host sync each)
    grid_kimg: float = 50.0          # image grids
    snapshot_kimg: float = 100.0     # numbered inference snapshots
    checkpoint_kimg: float = 25.0    # full training state (for resume)
    grid_size: int = 8               # samples / reconstructions per grid row and column count
    # Speed options (the "optimised path"); all off is the plain eager float32 path of the
    # authors' code. None of them changes the model, so they may differ between resumes.
    amp: bool = False                # bf16 autocast; KL, normalisation and losses stay float32
    channels_last: bool = False      # NHWC memory format (faster convolutions on GPU and CPU)
    sn_cache: bool = False           # spectral-norm weights once per step, not once per forward
    compile: bool = False            # torch.compile the conv blocks (no gain measured on CPU)
    metrics: tuple[str, ...] = ()    # metrics computed during training (see `pioneer evaluate --list`)
    metrics_kimg: float = 0.0        # their interval; 0 = at the end of the run only
    on_divergence: str = "rollback"  # NaN or runaway KL gap: "rollback" to the last checkpoint, "stop" or "warn"
    gap_threshold: float = 20.0      # |KL_real - KL_fake| (raw) that counts as a runaway gap
    # Code collapse (the same policy): effective rank of a batch of real codes E(x) below this for
    # `patience` records in a row, from phase 1 on; 0 = off. 32 random unit codes: about 31;
    # codes that vary along one direction: about 1. On synthetic64 (batch 32) the small recipe
    # logs 15-26 from phase 1 on, the authors' recipe, collapsed by every other measure, 5-11:
    # the default catches only a collapse onto a few directions (dead_cycle catches the rest).
    collapse_rank: float = 4.0
    # Dead latent cycle: batch mean 1 - cos(z, E(G(z))) above this for `patience` records, from
    # phase 2 (16 px) on. 0 = off: the paper's recipe itself runs with a dead cycle (about 1) for
    # a long time at the start. 0.98 when on.
    dead_cycle: float = 0.0

    def __post_init__(self) -> None:
        if self.image_pool < 0:
            raise ConfigError(f"image_pool {self.image_pool} must be >= 0 (0 = off)")

    def eager(self) -> "TrainConfig":
        """The same run on the plain eager float32 path (every speed option off)."""
        return dataclasses.replace(self, **{k: False for k in SPEED_OPTIONS})

    def optimised(self, compile: bool = False, amp: bool = True) -> "TrainConfig":
        """The same run on the optimised path: bf16, channels_last, spectral norm once per step."""
        return dataclasses.replace(self, amp=amp, channels_last=True, sn_cache=True, compile=compile)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["schedule"]["batch_sizes"] = {str(k): v for k, v in self.schedule.batch_sizes.items()}
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        s = dict(d.pop("schedule"))
        s["rules"] = tuple(Rule(**r) for r in s["rules"])
        s["batch_sizes"] = {int(k): int(v) for k, v in s["batch_sizes"].items()}
        return TrainConfig(
            model=ModelConfig(**d.pop("model")),
            loss=LossConfig(**d.pop("loss")),
            schedule=ScheduleConfig(**s),
            lr_betas=tuple(d.pop("lr_betas")),
            metrics=tuple(d.pop("metrics", ())),
            **d,
        )


SPEED_OPTIONS = ("amp", "channels_last", "sn_cache", "compile")

# ----------------------------------------------------------------------------------------------
# Recipes: how the two networks are trained, independent of the schedule and the data.
#   authors  the authors' losses and networks: the paper presets use it.
#   small    what narrow networks on short phases need to learn (docs/collapse.md): the code
#            enters the decoder with unit RMS per coordinate, the decoder also reconstructs the
#            real batch, the encoder also inverts the decoder on prior codes. The default preset
#            uses it; without it the default run collapses to one face.
RECIPES: tuple[str, ...] = ("authors", "small")


def with_recipe(cfg: TrainConfig, recipe: str) -> TrainConfig:
    """`cfg` with the named recipe's fields (ModelConfig.code_gain, LossConfig.decoder_recon_weight,
    LossConfig.encoder_cycle_weight); everything else, the schedule included, is kept."""
    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}: use one of {', '.join(RECIPES)}")
    small = recipe == "small"
    model = dataclasses.replace(cfg.model, code_gain=math.sqrt(cfg.model.latent_dim) if small else 1.0)
    loss = dataclasses.replace(cfg.loss, decoder_recon_weight=SMALL_DECODER_RECON if small else 0.0,
                               encoder_cycle_weight=SMALL_ENCODER_CYCLE if small else 0.0)
    return dataclasses.replace(cfg, model=model, loss=loss)


def recipe_of(cfg: TrainConfig) -> str:
    """The recipe a config follows, or "custom" when its fields match neither."""
    for name in RECIPES:
        if with_recipe(cfg, name) == cfg:
            return name
    return "custom"


SMALL_DECODER_RECON = 1.0   # weight of |G(E(x)) - x| in the decoder's loss, as lambda_X's fade-in value
# Weight of 1 - cos(z, E(G(z))) in the encoder's loss. Higher closes the cycle further but E
# then learns to read patterns G hides in its samples, which stop looking like faces (1.0 and 3.0
# did; docs/collapse.md).
SMALL_ENCODER_CYCLE = 0.3

# ----------------------------------------------------------------------------------------------
# Presets. Margins are in paper units (the official code's values x 10).


def _celebahq_rules() -> tuple[Rule, ...]:
    # Official rule 0 was never applied (a bug: phase 0 ran at lr 1e-3, no margin); we apply it.
    early = tuple(Rule(2400.0 * p, p, 5e-4, 0.5) for p in range(4))
    return early + (
        Rule(9600.0, 4, 1e-3, 0.0),
        Rule(13000.0, 4, 1e-3, 0.2),
        Rule(16520.0, 5, 1e-3, 0.2),
        Rule(20040.0, 6, 1e-3, 0.4),
    )


def _lsun_rules() -> tuple[Rule, ...]:
    early = tuple(Rule(2400.0 * p, p, 1e-3, 0.0) for p in range(4))
    return early + (
        Rule(9600.0, 4, 1e-3, 0.0),
        Rule(12360.0, 4, 1e-3, 0.6),
        Rule(15400.0, 5, 1e-3, 0.6),
        Rule(21400.0, 6, 1e-3, 0.4),
    )


def _paper_batches() -> dict[int, int]:
    return {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 32, 256: 32, 512: 4, 1024: 1}


def _synthetic64() -> TrainConfig:
    # Sized for ~15 minutes on 2 CPU cores: narrow networks, phases 300x shorter than the paper's,
    # the margin once the 64px phase is stable (the paper switches it on after pre-training),
    # and channels_last (faster convolutions on CPU too). With the encoder still moving fast,
    # G_ema(E(x)) only matches when the EMA horizon is short (100 iterations) and the lr ramps
    # down at the end: with 0.998 and no ramp the final held-out L1 was 0.30 to 0.96 from run to
    # run while G(E(x)) was 0.26 to 0.53.
    kimg = (0.0, 8.0, 20.0, 36.0, 60.0)
    rules = tuple(Rule(k, p, 1e-3, 0.0) for p, k in enumerate(kimg)) + (Rule(72.0, 4, 1e-3, 0.2),)
    # The authors' recipe collapses at this width and length (docs/collapse.md): use the small one.
    return with_recipe(TrainConfig(
        # A 128-d code: these networks carry about 45 independent directions through E(G(z)) at
        # this budget (docs/collapse.md), so most of a 512-d prior code would be noise to them.
        model=ModelConfig(max_resolution=64, latent_dim=128, width=1 / 16, min_channels=16),
        loss=LossConfig(),
        schedule=ScheduleConfig(
            rules=rules,
            fade_kimg=6.0,
            batch_sizes={4: 32, 8: 32, 16: 32, 32: 32, 64: 32},
            total_kimg=86.0,
            lr_rampdown_kimg=10.0,
        ),
        ema_decay=0.99,
        grid_kimg=10.0,
        snapshot_kimg=20.0,
        checkpoint_kimg=5.0,
        log_every=10,
        channels_last=True,
        sn_cache=True,
        # The small recipe's cycle is 0.45-0.52 from 16 px on; the authors' recipe here sits at
        # 0.99 (docs/collapse.md). A run stuck there is a collapse: roll back, then stop.
        dead_cycle=0.98,
    ), "small")


def _celebahq256() -> TrainConfig:
    return TrainConfig(
        model=ModelConfig(max_resolution=256),
        loss=LossConfig(),
        schedule=ScheduleConfig(rules=_celebahq_rules(), batch_sizes=_paper_batches(), total_kimg=25480.0),
        data=None,  # the user names the data set
        lr_betas=(0.0, 0.99),
        image_pool=200,  # the authors' code has it (100 at 256 px); lsun256 and pioneer-celebahq256 inherit it
        grid_kimg=200.0,
        snapshot_kimg=1000.0,
        checkpoint_kimg=200.0,
        log_every=50,
        # NHWC only: bf16 (--amp) made the small default run on CPU noticeably less stable, so
        # it stays opt-in (--optimised) until a GPU run shows it trains as well as float32.
        channels_last=True,
    )


def _lsun256() -> TrainConfig:
    base = _celebahq256()
    return dataclasses.replace(
        base,
        schedule=ScheduleConfig(rules=_lsun_rules(), batch_sizes=_paper_batches(), total_kimg=25400.0),
    )


def _pioneer_celebahq256() -> TrainConfig:
    # Baseline PIONEER: PixelNorm + equalised LR in the decoder, final encoder LReLU, no margin.
    base = _celebahq256()
    rules = tuple(dataclasses.replace(r, margin=0.0) for r in _celebahq_rules())
    return dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, decoder_norm="eqlr+pn", encoder_last_activation=True),
        schedule=dataclasses.replace(base.schedule, rules=rules),
    )


PRESETS: dict[str, Any] = {
    "synthetic64": _synthetic64,
    "celebahq256": _celebahq256,
    "lsun256": _lsun256,
    "pioneer-celebahq256": _pioneer_celebahq256,
}
PRESET_HELP: dict[str, str] = {
    "synthetic64": "built-in synthetic faces up to 64x64, narrow networks, ~15 min on 2 CPU cores",
    "celebahq256": "Balanced PIONEER, CelebA-HQ 256x256 schedule of the paper (SN + margin)",
    "lsun256": "Balanced PIONEER, LSUN Bedrooms 256x256 schedule of the paper",
    "pioneer-celebahq256": "baseline PIONEER (PixelNorm + equalised LR, no margin), CelebA-HQ",
}


def preset(name: str) -> TrainConfig:
    """A fresh TrainConfig for a named preset."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name]()
