import os

import pytest
import torch

from pioneer.atomic import atomic_write
from pioneer.run.checkpoint import (CheckpointError, load_snapshot, load_training_state, save_snapshot,
                                save_training_state)
from pioneer.model.networks import Decoder, Encoder, sample_prior
from pioneer.model.spectral import exact_spectral_vectors

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
    # The snapshot holds E's weights with exactly converged spectral-norm vectors.
    E.load_state_dict(exact_spectral_vectors(E), strict=False)
    z = sample_prior(4, cfg.latent_dim)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(G(z, 2, 0.25), G2(z, 2, 0.25))
        assert torch.equal(E(x, 2, 0.25), E2(x, 2, 0.25))


def test_snapshot_folds_the_exact_sigma(tmp_path):
    """Stale spectral-norm vectors in the networks; the snapshot's folded weights (as
    Pioneer.load uses them) have spectral norm 1 by exact SVD, and the networks are untouched."""
    from pioneer import Pioneer
    from pioneer.model.spectral import spectral_norm_layers
    torch.manual_seed(0)
    cfg = tiny_model()
    E, G = Encoder(cfg), Decoder(cfg)
    with torch.no_grad():  # the weights move, the vectors do not (as G_ema's did)
        for p in list(E.parameters()) + list(G.parameters()):
            p.mul_(1 + 0.5 * torch.rand_like(p))
    before = {k: v.clone() for k, v in (E.state_dict() | G.state_dict()).items()}
    save_snapshot(tmp_path / "snap.safetensors", G, E, cfg, level=2, alpha=1.0, images_seen=0)
    assert all(torch.equal(v, (E.state_dict() | G.state_dict())[k]) for k, v in before.items())
    model = Pioneer.load(tmp_path / "snap.safetensors", device="cpu")
    folded = [folded_net.get_submodule(prefix.split(".parametrizations")[0]).weight
              for net, folded_net in ((E, model.encoder), (G, model.decoder))
              for prefix, _, _ in spectral_norm_layers(net)]
    assert len(folded) == (2 * 2 + 2) + 2 * 3  # E: 2 blocks, final conv, to_code; G: 3 blocks
    sigmas = torch.stack([torch.linalg.matrix_norm(w.double().flatten(1), ord=2) for w in folded])
    torch.testing.assert_close(sigmas, torch.ones_like(sigmas), rtol=0, atol=1e-4)
    # The stale vectors would not have given 1.
    stale = E.eval().blocks["b16"].conv1.weight.flatten(1)
    assert abs(torch.linalg.matrix_norm(stale, ord=2).item() - 1) > 1e-3


def test_snapshot_errors_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_snapshot(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(os.urandom(64))
    with pytest.raises(CheckpointError, match="junk.safetensors is .*, not a pioneer snapshot"):
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
