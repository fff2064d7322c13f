import os

import pytest
import torch

from pioneer.checkpoint import (CheckpointError, atomic_write, load_snapshot, load_training_state, save_snapshot,
                                save_training_state)
from pioneer.networks import Decoder, Encoder, sample_prior

from conftest import tiny_model


def test_snapshot_round_trip_gives_identical_outputs(tmp_path):
    cfg = tiny_model(decoder_norm="eqlr+pn", encoder_last_activation=True)
    E, G = Encoder(cfg), Decoder(cfg)
    for _ in range(3):  # move the spectral-norm vectors away from their initial values
        E(torch.randn(2, 3, 16, 16), 2)
    E.eval(), G.eval()
    path = tmp_path / "snap.safetensors"
    save_snapshot(path, G, E, cfg, level=2, alpha=0.25, images_seen=1234, extra={"data": "synthetic"})
    snap = load_snapshot(path)
    assert snap.config == cfg and snap.level == 2 and snap.alpha == 0.25 and snap.images_seen == 1234
    assert snap.extra == {"data": "synthetic"}
    E2, G2 = Encoder(snap.config), Decoder(snap.config)
    E2.load_state_dict(snap.encoder_state)
    G2.load_state_dict(snap.decoder_state)
    E2.eval(), G2.eval()
    z = sample_prior(4, cfg.latent_dim)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(G(z, 2, 0.25), G2(z, 2, 0.25))
        assert torch.equal(E(x, 2, 0.25), E2(x, 2, 0.25))


def test_snapshot_errors_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_snapshot(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(os.urandom(64))
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_snapshot(junk)
    from safetensors.torch import save_file
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(CheckpointError, match="not a pioneer snapshot"):
        load_snapshot(other)


def test_training_state_round_trip_and_errors(tmp_path):
    path = tmp_path / "state.pt"
    g = torch.Generator().manual_seed(3)
    save_training_state(path, {"images_seen": 7, "generator": g.get_state(), "opt": {"lr": 1e-3, "betas": (0.0, 0.99)}})
    s = load_training_state(path)
    assert s["images_seen"] == 7 and torch.equal(s["generator"], g.get_state())
    path.write_bytes(path.read_bytes()[:100])  # truncated, as by a full disk
    with pytest.raises(CheckpointError, match="corrupt"):
        load_training_state(path)
    torch.save({"something": 1}, path)
    with pytest.raises(CheckpointError, match="not a pioneer training state"):
        load_training_state(path)


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def broken(f):
        f.write(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual permissions, not mkstemp's 0600
