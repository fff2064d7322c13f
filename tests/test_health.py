"""Training health: the divergence monitor, rollback to the last good state, the KL plot."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pioneer.run.checkpoint import save_training_state
from pioneer.run.checkpoint import last_good_state, state_is_finite
from pioneer.run.plots import plot_kl
from pioneer.training.health import Action, DivergenceMonitor


def _rec(i: int, gap: float = 0.1, loss: float = 1.0) -> dict:
    return {"images_seen": 1000 * i, "loss_E": loss, "loss_G": 0.5, "kl_real": 3.0 + gap, "kl_fake": 3.0, "gap": gap}


def test_healthy_records_are_ok():
    mon = DivergenceMonitor()
    assert all(v.action is Action.OK for v in mon.scan(_rec(i) for i in range(20)))
    assert mon.healthy and mon.last_ok_images == 19_000
    assert mon.update({"images_seen": 5, "heldout_l1": 0.3}).action is Action.OK   # no loss fields


def test_nan_loss_triggers_at_once():
    mon = DivergenceMonitor()
    mon.update(_rec(0))
    v = mon.update(_rec(1, loss=float("nan")))
    assert v.action is Action.ROLLBACK and "loss_E" in v.reason and v.diverged and not mon.healthy
    assert DivergenceMonitor(policy="stop").update(_rec(1, gap=math.inf)).action is Action.STOP
    assert DivergenceMonitor(policy="warn").update(_rec(1, loss=float("nan"))).action is Action.WARN


def test_runaway_gap_warns_then_diverges_after_patience():
    mon = DivergenceMonitor(gap_threshold=5.0, patience=3)
    actions = [mon.update(_rec(i, gap=g)).action for i, g in enumerate([0.1, 6.0, -7.0, 0.2, 6.0, 8.0, 9.0])]
    # a single healthy record resets the streak; three in a row diverge
    assert actions == [Action.OK, Action.WARN, Action.WARN, Action.OK, Action.WARN, Action.WARN, Action.ROLLBACK]


def test_rollbacks_are_limited_then_the_run_stops():
    mon = DivergenceMonitor(max_rollbacks=2)
    for k in range(2):
        assert mon.update(_rec(k, loss=float("nan"))).action is Action.ROLLBACK
        mon.rolled_back(0)
    v = mon.update(_rec(3, loss=float("nan")))
    assert v.action is Action.STOP and "2 rollbacks" in v.reason
    with pytest.raises(ValueError):
        DivergenceMonitor(policy="explode")


def _signals(i: int, phase: int, rank: float = 12.0, cycle: float = 0.5, batch: int = 32) -> dict:
    return {**_rec(i), "phase": phase, "batch": batch, "rank_real": rank, "rank_fake": rank, "cycle": cycle}


def test_code_collapse_rolls_back_after_patience_once_phase_0_is_over():
    mon = DivergenceMonitor(collapse_rank=4.0, patience=3)
    # Phase 0 (4x4) cannot be judged: low ranks there are fine.
    assert all(mon.update(_signals(i, 0, rank=1.5)).action is Action.OK for i in range(6))
    actions = [mon.update(_signals(6 + i, 1, rank=r)).action for i, r in enumerate([1.8, 1.7, 9.0, 1.8, 1.6, 1.5])]
    # one healthy record resets the streak; three low ones in a row diverge
    assert actions == [Action.WARN, Action.WARN, Action.OK, Action.WARN, Action.WARN, Action.ROLLBACK]
    reason = mon.history[-1].reason
    assert reason == "code collapse: effective rank of real codes 1.5 below 4 for 3 records in a row at 11 kimg"
    assert not mon.healthy
    mon.rolled_back(5000)
    assert mon.healthy and mon.collapse_streak == 0
    # Switched off, or a batch too small to tell (8 codes have rank <= 7): never judged.
    assert all(DivergenceMonitor(collapse_rank=0.0, patience=1).update(_signals(i, 2, rank=1.0)).action
               is Action.OK for i in range(3))
    assert DivergenceMonitor(patience=1).update(_signals(1, 2, rank=3.0, batch=8)).action is Action.OK
    assert DivergenceMonitor(patience=1, policy="stop").update(_signals(1, 2, rank=3.0)).action is Action.STOP


def test_dead_cycle_is_judged_only_when_enabled_and_from_phase_2():
    dead = [_signals(i, 2, cycle=0.995) for i in range(5)]
    assert all(v.action is Action.OK for v in DivergenceMonitor().scan(dead))    # off by default
    mon = DivergenceMonitor(dead_cycle=0.98, patience=2)
    assert all(mon.update(_signals(i, p, cycle=0.999)).action is Action.OK for i, p in enumerate([0, 1, 1, 1]))
    assert mon.update(_signals(4, 2, cycle=0.99)).action is Action.WARN
    v = mon.update(_signals(5, 2, cycle=0.99))
    assert v.action is Action.ROLLBACK and v.reason.startswith("dead latent cycle:") and "0.98" in v.reason
    assert "for 2 records in a row at 5 kimg" in v.reason
    assert mon.update(_signals(6, 2, cycle=0.3)).action is Action.OK and mon.healthy
    with pytest.raises(ValueError):
        DivergenceMonitor(dead_cycle=-1.0)


def test_state_check_and_last_good_state(tmp_path):
    assert state_is_finite({"a": torch.ones(3), "b": [torch.zeros(2), 1.0], "n": 5})
    assert not state_is_finite({"a": {"w": torch.tensor([1.0, float("nan")])}})
    assert last_good_state(tmp_path / "training-state.pt") is None  # nothing written yet
    save_training_state(tmp_path / "training-state.pt", {"images_seen": 7, "w": torch.ones(2)})
    assert last_good_state(tmp_path / "training-state.pt")["images_seen"] == 7
    save_training_state(tmp_path / "training-state.pt", {"images_seen": 9, "w": torch.tensor([float("inf")])})
    assert last_good_state(tmp_path / "training-state.pt") is None  # a poisoned checkpoint


def test_rolled_back_run_continues(tmp_path):
    """A toy loop wired as DivergenceMonitor's docstring says: NaN injected at step 12, rolled
    back to the checkpoint of step 10, then trained on to the end with finite weights."""
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    mon = DivergenceMonitor(policy="rollback")
    step, injected, rollbacks, log = 0, False, 0, []
    while step < 30:
        loss = torch.nn.functional.mse_loss(net(x), y)
        if step == 12 and not injected:                  # the injected divergence
            injected = True
            with torch.no_grad():
                net.weight.fill_(float("nan"))
            loss = torch.nn.functional.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        verdict = mon.update({"images_seen": step, "loss_E": loss.item(), "gap": 0.0})
        log.append(verdict.action)
        if verdict.action is Action.ROLLBACK:
            state = last_good_state(tmp_path / "training-state.pt")
            assert state is not None
            net.load_state_dict(state["net"])
            opt.load_state_dict(state["opt"])
            step = state["images_seen"]
            mon.rolled_back(step)
            rollbacks += 1
            continue
        assert verdict.action is Action.OK
        if step % 5 == 0 and mon.healthy:                # checkpoints only while healthy
            save_training_state(tmp_path / "training-state.pt",
                                {"images_seen": step, "net": net.state_dict(), "opt": opt.state_dict()})
    assert rollbacks == 1 and step == 30
    assert torch.isfinite(net.weight).all() and math.isfinite(loss.item())
    assert last_good_state(tmp_path / "training-state.pt")["images_seen"] == 30


def test_kl_plot_has_kl_terms_and_fid_points(tmp_path):
    pytest.importorskip("matplotlib")
    with open(tmp_path / "stats.jsonl", "w") as f:
        for i in range(1, 30):
            f.write(json.dumps(_rec(i, gap=0.1 * math.sin(i))) + "\n")
        f.write(json.dumps({"images_seen": 29000, "heldout_l1": 0.2}) + "\n")
    with open(tmp_path / "metrics.jsonl", "w") as f:
        for i in (10, 20):
            f.write(json.dumps({"metric": "fid1k", "results": {"fid1k": 50.0 - i}, "images_seen": 1000 * i}) + "\n")
    path = plot_kl(tmp_path)
    assert path == tmp_path / "kl.png" and path.stat().st_size > 5000
    with pytest.raises(ValueError, match="no KL records"):
        plot_kl(tmp_path / "nothing")
