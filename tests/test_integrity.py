import torch
import pytest

from pioneer.run import integrity
from pioneer.run.checkpoint import CheckpointError, load_training_state, save_training_state


def _state(v: float) -> dict:
    return {"images_seen": int(v * 100), "encoder": {"w": torch.full((4, 4), v)}, "betas": (0.0, 0.99),
            "opt": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 1e-3, "params": [0]}]}}


def test_payload_digest_is_canonical_and_sensitive():
    a = integrity.payload_digest(_state(1.0))
    assert a == integrity.payload_digest(dict(reversed(list(_state(1.0).items()))))  # key order does not matter
    b = _state(1.0)
    b["encoder"]["w"][2, 3] = 1.0000001
    assert integrity.payload_digest(b) != a
    c = _state(1.0)
    c["betas"] = [0.0, 0.99]                                   # a tuple read back as a list: same digest
    assert integrity.payload_digest(c) == a


def test_each_write_keeps_the_previous_state_and_a_damaged_one_falls_back(tmp_path):
    path = tmp_path / integrity.STATE_FILE
    save_training_state(path, _state(1.0))
    assert not (tmp_path / integrity.PREVIOUS_STATE_FILE).exists()
    save_training_state(path, _state(2.0))
    assert load_training_state(tmp_path / integrity.PREVIOUS_STATE_FILE)["images_seen"] == 100
    # flip bytes inside the tensor data of the newest state: the checksum refuses it
    data = bytearray(path.read_bytes())
    pos = bytes(data).find(torch.full((4, 4), 2.0).numpy().tobytes())
    assert pos > 0
    data[pos + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_training_state(path)
    notes = []
    state = integrity.load_with_fallback(tmp_path, load_training_state, notes.append)
    assert state["images_seen"] == 100 and "previous checkpoint" in notes[0] and "checksum" in notes[0]
    # both damaged: one error that says so
    (tmp_path / integrity.PREVIOUS_STATE_FILE).write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="previous state .* unusable too"):
        integrity.load_with_fallback(tmp_path, load_training_state, notes.append)


def test_stale_temps_are_removed_and_nothing_else(tmp_path):
    (tmp_path / "snapshots").mkdir()
    stale = [tmp_path / ".training-state.pt.abc123.tmp", tmp_path / "snapshots" / ".snapshot-000001.safetensors.x.tmp"]
    for p in stale:
        p.write_bytes(b"x" * 1000)
    keep = [tmp_path / "options.json", tmp_path / "notes.tmp"]
    for p in keep:
        p.write_text("{}")
    removed = integrity.remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted(stale) and all(p.exists() for p in keep)
    assert "2 temporary file(s)" in integrity.describe_removed(removed)


def test_discard_unstarted_run_removes_only_a_run_without_checkpoint(tmp_path):
    run = tmp_path / "run"
    (run / "grids").mkdir(parents=True)
    (run / "options.json").write_text("{}")
    integrity.discard_unstarted_run(run, created=True)
    assert not run.exists()
    (run / "grids").mkdir(parents=True)
    (run / "mine.txt").write_text("user data")
    integrity.discard_unstarted_run(run, created=True)
    assert (run / "mine.txt").exists() and not (run / "grids").exists()
    save_training_state(run / integrity.STATE_FILE, _state(1.0))
    (run / "options.json").write_text("{}")
    integrity.discard_unstarted_run(run, created=True)
    assert (run / "options.json").exists()
