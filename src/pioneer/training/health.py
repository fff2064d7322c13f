"""Training health: a divergence monitor.

`DivergenceMonitor`: pure logic on the stream of logged records. It answers each record with
  an action: OK, WARN, ROLLBACK or STOP. NaN / inf losses diverge at once; a KL gap
  (kl_real - kl_fake) beyond `gap_threshold` warns, and diverges after `patience` consecutive
  records. So do two signs of collapse: code collapse (`rank_real`, the effective rank of a
  batch of real codes, below `collapse_rank` once phase 0 is over) and a dead latent cycle
  (the batch `cycle` error above `dead_cycle` from phase 2 on; off by default). On divergence
  the policy decides: "rollback" (to the last good checkpoint, at most
  `max_rollbacks` times, then stop), "stop", or "warn" (log only).
The state to roll back to comes from `pioneer.run.checkpoint.last_good_state`.
The monitor does not touch the networks; the training loop acts on its verdict (see
`DivergenceMonitor` for how it is meant to be wired).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

WATCHED = ("loss_E", "loss_G", "kl_real", "kl_fake", "gap", "recon_l1", "latent_cos")


class Action(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    ROLLBACK = "rollback"
    STOP = "stop"


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str = ""
    images_seen: int | None = None

    @property
    def diverged(self) -> bool:
        return self.action in (Action.ROLLBACK, Action.STOP)


POLICIES = ("rollback", "stop", "warn")


@dataclass
class DivergenceMonitor:
    """Watches logged training records for divergence.

    gap_threshold:  |kl_real - kl_fake| (paper units, as logged) counted as a runaway gap
    collapse_rank:  rank_real below this counts as code collapse (0 = off); judged from phase 1
                    on, since 4x4 codes of phase 0 cannot be told apart from collapsed ones, and
                    only for batches of more than 2 * collapse_rank codes (N codes have rank at
                    most N - 1: a healthy batch of 8 can score 4)
    dead_cycle:     cycle above this counts as a dead latent cycle (0 = off); judged from phase 2
                    (16 px) on: at 4 and 8 px an image holds too few numbers for the cycle to close
    patience:       consecutive runaway records before the run is declared diverged (each signal
                    keeps its own streak)
    policy:         "rollback", "stop" or "warn" (what a divergence asks the loop to do)
    max_rollbacks:  after this many rollbacks a further divergence stops the run
    keys:           record fields that must stay finite

    Wiring in a training loop (per stats record, before any checkpoint is written):

        verdict = monitor.update(record)
        if verdict.action is Action.WARN:      log verdict.reason
        if verdict.action is Action.ROLLBACK:  state = last_good_state(RUN/training-state.pt); restore it;
                                               monitor.rolled_back(state["images_seen"])
        if verdict.action is Action.STOP:      checkpoint nothing, exit with verdict.reason
        write checkpoints only while monitor.healthy
    """

    gap_threshold: float = 20.0
    collapse_rank: float = 4.0
    dead_cycle: float = 0.0
    patience: int = 5
    policy: str = "rollback"
    max_rollbacks: int = 3
    keys: Sequence[str] = WATCHED
    rollbacks: int = 0
    streak: int = 0                  # runaway-gap records in a row
    collapse_streak: int = 0         # low-rank records in a row
    cycle_streak: int = 0            # dead-cycle records in a row
    last_ok_images: int | None = None
    history: list[Verdict] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy {self.policy!r} is unknown: use one of {', '.join(POLICIES)}")
        if self.patience < 1 or not self.gap_threshold > 0:
            raise ValueError("patience must be >= 1 and gap_threshold > 0")
        if not (self.collapse_rank >= 0 and self.dead_cycle >= 0):
            raise ValueError("collapse_rank and dead_cycle must be >= 0 (0 = off)")

    @property
    def healthy(self) -> bool:
        """No non-finite value, runaway gap or sign of collapse in the latest record."""
        streaks = self.streak + self.collapse_streak + self.cycle_streak
        return streaks == 0 and (not self.history or not self.history[-1].diverged)

    def _diverge(self, reason: str, images: int | None) -> Verdict:
        if self.policy == "warn":
            action = Action.WARN
        elif self.policy == "rollback" and self.rollbacks < self.max_rollbacks:
            action = Action.ROLLBACK
        else:
            action = Action.STOP
            if self.policy == "rollback":
                reason += f" (after {self.rollbacks} rollbacks)"
        return Verdict(action, reason, images)

    def _streak(self, name: str, hit: bool | None, what: str, images: int | None) -> Verdict | None:
        """Advance the streak attribute `name`: hit None = the record does not judge this signal
        (streak kept), False = fine (streak cleared, no verdict), True = one more bad record."""
        if hit is None:
            return None
        if not hit:
            setattr(self, name, 0)
            return None
        count = getattr(self, name) + 1
        if count >= self.patience:
            setattr(self, name, 0)
            return self._diverge(f"{what} for {self.patience} records in a row at {_kimg(images)}", images)
        setattr(self, name, count)
        return Verdict(Action.WARN, f"{what} at {_kimg(images)} ({count}/{self.patience})", images)

    def update(self, record: dict[str, Any]) -> Verdict:
        """The action for one logged record (records without loss fields, e.g. heldout_l1, are OK)."""
        images = record.get("images_seen")
        phase = int(record.get("phase", 0))
        bad = [k for k in self.keys if k in record and not _finite(record[k])]
        if bad:
            self.streak = self.collapse_streak = self.cycle_streak = 0
            verdict = self._diverge(f"non-finite {', '.join(bad)} at {_kimg(images)}", images)
        else:
            gap = float(record.get("gap", 0.0))
            rank = float(record.get("rank_real", math.inf))
            cycle = float(record.get("cycle", 0.0))
            # Every signal advances its own streak; the most severe answer wins, the gap first.
            answers = [
                self._streak("streak", abs(gap) > self.gap_threshold if "gap" in record else None,
                             f"KL gap {gap:+.3g} beyond +-{self.gap_threshold:g}", images),
                self._streak("collapse_streak", rank < self.collapse_rank
                             if "rank_real" in record and self.collapse_rank > 0 and phase >= 1
                             and int(record.get("batch", 1 << 30)) > 2 * self.collapse_rank else None,
                             f"code collapse: effective rank of real codes {rank:.2g} below {self.collapse_rank:g}",
                             images),
                self._streak("cycle_streak", cycle > self.dead_cycle
                             if "cycle" in record and self.dead_cycle > 0 and phase >= 2 else None,
                             f"dead latent cycle: 1 - cos(z, E(G(z))) {cycle:.3g} above {self.dead_cycle:g}", images),
            ]
            answers = [a for a in answers if a is not None]
            verdict = next((a for a in answers if a.diverged), answers[0] if answers else None)
            if verdict is None:
                self.last_ok_images = images if images is not None else self.last_ok_images
                verdict = Verdict(Action.OK, "", images)
        self.history.append(verdict)
        return verdict

    def rolled_back(self, images_seen: int) -> None:
        """Tell the monitor the loop went back to `images_seen`: counts the rollback, clears the streak."""
        self.rollbacks += 1
        self.streak = self.collapse_streak = self.cycle_streak = 0
        self.last_ok_images = images_seen
        self.history.append(Verdict(Action.OK, f"rolled back to {_kimg(images_seen)}", images_seen))

    def scan(self, records: Iterable[dict[str, Any]]) -> list[Verdict]:
        """Verdicts for a finished log (e.g. stats.jsonl), without acting on them."""
        return [self.update(r) for r in records]


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _kimg(images: int | None) -> str:
    return "?" if images is None else f"{images / 1000:g} kimg"
