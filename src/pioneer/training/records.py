"""The stats record: losses summed on the device over `log_every` iterations, read back with one
host sync per record, together with the collapse signals of the last batch."""

from __future__ import annotations

import time
from typing import Any

import torch

from pioneer import distributed as dist
from pioneer.model.loss import DecoderLoss, EncoderLoss
from pioneer.model.diagnostics import SIGNAL_KEYS, batch_signals
from pioneer.training.schedule import SchedulePoint



class RecordMeter:
    """Accumulates each iteration's losses without syncing; `record()` averages them over the
    iterations since the last record and over ranks. Which values, and their names, the losses
    say (EncoderLoss.logged, DecoderLoss.logged): a new loss term is recorded without a change here."""

    def __init__(self, device: torch.device, images_seen: int) -> None:
        self._keys: list[str] = []
        self._sum = torch.zeros(0, device=device)
        self.count = 0
        self.reset(images_seen)

    def reset(self, images_seen: int) -> None:
        """Start a new record at `images_seen` (after a record, or a rollback)."""
        self._sum.zero_()
        self.count, self._t, self._images = 0, time.perf_counter(), images_seen

    def add(self, le: EncoderLoss, lg: DecoderLoss) -> None:
        values = {**le.logged(), **lg.logged()}
        if not self._keys:                              # the first iteration names the columns
            self._keys = list(values)
            self._sum = torch.zeros(len(values), device=self._sum.device)
        self._sum += torch.stack(list(values.values()))
        self.count += 1

    def record(self, images_seen: int, iteration: int, st: SchedulePoint, le: EncoderLoss) -> dict[str, Any]:
        """The record at this point; collective (every rank calls it), one host sync.

        The collapse signals come from this iteration's encoder batch only (one SVD per record),
        on the global batch: a local slice of a few codes would look collapsed. Every rank gets
        the same numbers, so every rank's monitor reaches the same verdict."""
        signals = batch_signals(dist.gather_with_grad(le.real_z), dist.gather_with_grad(le.fake_z))
        vals = dist.all_reduce_mean(torch.cat([self._sum / self.count, signals])).tolist()
        now = time.perf_counter()
        rec = {"images_seen": images_seen, "kimg": images_seen / 1000, "iteration": iteration,
               "phase": st.phase, "resolution": st.resolution, "alpha": st.alpha, "lr": st.lr,
               "margin": st.margin, "batch": st.batch_size,
               "images_per_s": (images_seen - self._images) / max(now - self._t, 1e-9),
               **dict(zip([*self._keys, *SIGNAL_KEYS], vals))}
        self.reset(images_seen)
        return rec


def progress_text(rec: dict[str, Any]) -> str:
    """The progress bar's summary of a record."""
    return (f"phase {rec['phase']} {rec['resolution']}px a={rec['alpha']:.2f} E={rec['loss_E']:.3f} "
            f"G={rec['loss_G']:.3f} kl={rec['kl_real']:.2f}/{rec['kl_fake']:.2f} L1={rec['recon_l1']:.3f}")
