"""Tests of the Python facade `pioneer.Pioneer` on tiny trained models."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from pioneer import Pioneer
from pioneer.inference.inputs import InputError
from pioneer.inference.selection import labelled_images, synthetic_images
from pioneer.run.checkpoint import CheckpointError, load_snapshot
from pioneer.data import ImageError, SyntheticFaces
from pioneer.data.faces import ATTRIBUTES
from pioneer.inference.latent import AttributeVector
from pioneer.model.networks import Decoder, Encoder

pytest_plugins = ["model_fixtures"]


@pytest.fixture(scope="module")
def model(tiny_snapshot) -> Pioneer:
    return Pioneer.load(tiny_snapshot, device="cpu")


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    """Held-out synthetic faces at 32x32 (twice the model's resolution)."""
    return [SyntheticFaces().load(i, 32) for i in range(11000, 11006)]


def _unit(z: torch.Tensor) -> None:
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(z.shape[:-1]), atol=1e-5, rtol=0)


def test_load_and_properties(model, tiny_snapshot):
    assert (model.resolution, model.latent_dim, model.level) == (16, 32, 2)
    assert model.alpha == 1.0 and model.device == torch.device("cpu")
    assert model.extra["data"] == "synthetic:64" and model.images_seen >= 600
    assert len(model.fingerprint) == 16 and "16x16" in repr(model)
    # the fingerprint follows the weights, not the file
    assert Pioneer.load(tiny_snapshot, device="cpu").fingerprint == model.fingerprint


def test_round_trip_shapes_norms_and_determinism(model, faces):
    z = model.encode(faces)
    assert z.shape == (6, 32) and z.dtype == torch.float32
    _unit(z)
    assert torch.equal(model.encode(faces), z)                   # eval mode: no hidden state moves
    x = model.decode(z)
    assert x.shape == (6, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(model.reconstruct(faces), x)
    assert model.decode(z[0]).shape == (1, 3, 16, 16)           # one code (D,)
    s1, s2 = model.sample(5, seed=3), model.sample(5, seed=3)
    assert torch.equal(s1, s2) and not torch.equal(s1, model.sample(5, seed=4))
    _unit(model.sample_codes(7, seed=0))
    assert not torch.equal(model.sample_codes(2), model.sample_codes(2))   # no seed: fresh codes
    # batching does not change the result
    torch.testing.assert_close(model.encode(faces, batch_size=4), z, atol=1e-6, rtol=0)
    torch.testing.assert_close(model.decode(z, batch_size=4), x, atol=1e-6, rtol=0)


def test_matches_the_raw_networks(model, tiny_snapshot, faces):
    """Folding spectral norm into the weights changes nothing but speed."""
    snap = load_snapshot(tiny_snapshot)
    E, G = Encoder(snap.config).eval(), Decoder(snap.config).eval()
    E.load_state_dict(snap.encoder_state), G.load_state_dict(snap.decoder_state)
    x = model.prepare(faces)
    with torch.no_grad():
        z = E(x, snap.level, snap.alpha)
        rec = G(z, snap.level, snap.alpha).clamp(-1, 1)
    torch.testing.assert_close(model.encode(x), z, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.decode(z), rec, atol=1e-5, rtol=1e-5)


def test_every_input_kind_gives_the_same_code(model, faces, tmp_path):
    array = faces[0]                                             # (32, 32, 3) uint8
    path = tmp_path / "face.png"
    Image.fromarray(array).save(path)
    ref = model.encode(path)
    kinds = {
        "str path": str(path),
        "PIL": Image.fromarray(array),
        "uint8 array": array,
        "float array in [0, 1]": array / 255.0,
        "uint8 tensor": torch.from_numpy(array).permute(2, 0, 1),
        "float tensor in [-1, 1]": torch.from_numpy(array).permute(2, 0, 1).float() / 127.5 - 1,
        "batched array": array[None],
        "RGBA PIL": Image.fromarray(array).convert("RGBA"),
    }
    for name, value in kinds.items():
        torch.testing.assert_close(model.encode(value), ref, atol=1e-5, rtol=0, msg=name)
    # a non-square, larger image is center-cropped and resized like the training data
    wide = np.concatenate([np.zeros((32, 8, 3), np.uint8), array, np.zeros((32, 8, 3), np.uint8)], axis=1)
    torch.testing.assert_close(model.encode(wide), ref, atol=2e-3, rtol=0)      # resampling differs slightly
    squashed = np.asarray(Image.fromarray(wide).resize((32, 32)))
    assert (model.encode(squashed) - ref).abs().max() > 1e-2                       # ... a squashed face more
    # lists mix kinds; a 4-D tensor at the model's resolution passes straight through
    batch = model.prepare([path, Image.fromarray(faces[1])])
    assert batch.shape == (2, 3, 16, 16)
    torch.testing.assert_close(model.encode(batch), model.encode([path, faces[1]]))
    grey = model.prepare(np.asarray(Image.fromarray(array).convert("L")))
    assert grey.shape == (1, 3, 16, 16) and torch.equal(grey[0, 0], grey[0, 1])


def test_input_errors_name_the_input(model, tmp_path):
    with pytest.raises(InputError, match="missing.png does not exist"):
        model.encode(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageError, match="bad.png"):
        model.encode([bad])
    with pytest.raises(InputError, match="cannot use a dict"):
        model.encode([{"x": 1}])
    with pytest.raises(InputError, match="channels last"):
        model.encode(torch.zeros(1, 16, 16, 3))
    with pytest.raises(InputError, match="uint8 or float"):
        model.encode(np.zeros((16, 16, 3), np.int32))
    with pytest.raises(InputError, match=r"\(N, 32\)"):
        model.decode(torch.zeros(2, 31))
    with pytest.raises(InputError, match="at least 1"):
        model.sample(0)


def test_load_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Pioneer.load(tmp_path / "nope.safetensors")
    (tmp_path / "text.safetensors").write_text("hello")
    with pytest.raises(CheckpointError, match="text.safetensors is a text file, not a pioneer snapshot"):
        Pioneer.load(tmp_path / "text.safetensors")
    save_file({"w": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="not a pioneer snapshot"):
        Pioneer.load(tmp_path / "other.safetensors")
    with pytest.raises(InputError, match="'gpu' is not understood"):
        Pioneer.load(tmp_path / "other.safetensors", device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="not available"):
            Pioneer.load(tmp_path / "other.safetensors", device="cuda")


def test_interpolation_and_edits(model, faces):
    z = model.encode(faces[:6])
    strip = model.interpolate(z[0], z[1], steps=5)
    assert strip.shape == (5, 3, 16, 16)
    torch.testing.assert_close(strip[0], model.decode(z[0])[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(strip[-1], model.decode(z[1])[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(model.interpolate(faces[0], faces[1], steps=5), strip, atol=1e-5, rtol=0)
    grid = model.interpolation_grid(z[:4], rows=3, cols=4)
    assert grid.shape == (12, 3, 16, 16)
    torch.testing.assert_close(grid[11], model.decode(z[3])[0], atol=1e-5, rtol=0)
    hexagon, pos = model.interpolation_hex(faces[:6], radius=2)
    assert hexagon.shape == (19, 3, 16, 16) and pos.shape == (19, 2)
    with pytest.raises(InputError, match="exactly 4"):
        model.interpolation_grid(z[:3])

    vec = model.attribute_vector(faces[:3], faces[3:], "Test")
    assert vec.count_with == 3 and vec.model == model.fingerprint and vec.latent_dim == 32
    torch.testing.assert_close(model.edit(z[:2], vec, 0.0), model.decode(z[:2]), atol=1e-5, rtol=0)
    strip = model.edit_strip(z[:2], vec, [-1.0, 0.0, 1.0])
    assert strip.shape == (2, 3, 3, 16, 16)
    torch.testing.assert_close(strip[:, 1], model.decode(z[:2]), atol=1e-5, rtol=0)
    combo = model.edit(faces[0], [vec, vec.vector], [1.0, 1.0])
    torch.testing.assert_close(combo, model.edit(faces[0], vec, 2.0), atol=1e-5, rtol=0)
    with pytest.raises(InputError, match=r"shape \(32,\)"):
        model.edit(z, torch.zeros(8), 1.0)
    foreign = AttributeVector(vec.vector, "Other", 1, 1, model="0123456789abcdef")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.edit(z[:1], foreign, 1.0)
    assert any("another model" in str(w.message) for w in caught)


def test_attribute_vector_points_the_right_way(attribute_snapshot):
    """The claim behind the paper's edits, on faces the model never saw:

    1. a Dark_Skin vector from 64 + 64 labelled training faces is a direction along which
       held-out faces with the attribute lie further than faces without it (AUC, effect size);
    2. decoding light-skinned faces moved along it darkens them, step by step.

    Margins measured for this setup over training seeds 0-3: AUC 0.73-0.95, effect size
    0.9-2.4, darkening of the face centre from lambda -2 to 2 by 0.06-1.1 with >= 98% of the
    steps darker. Skin tone is a global colour, so untrained networks also separate (1) (AUC
    0.83-0.93); (2) needs the trained decoder (untrained: 0.000-0.001).
    """
    model = Pioneer.load(attribute_snapshot, device="cpu")
    with_images, without_images = synthetic_images("Dark_Skin", 64, model.resolution, "synthetic:512")
    assert len(with_images) == len(without_images) == 64
    vec = model.attribute_vector(with_images, without_images, "Dark_Skin")
    faces = SyntheticFaces()
    test = np.arange(11000, 11400)                              # the fixed test split: never trained on
    has = torch.from_numpy(faces.labels(test)[:, ATTRIBUTES.index("Dark_Skin")])
    proj = model.encode([faces.load(i, model.resolution) for i in test]) @ (vec.vector / vec.norm)
    pos, neg = proj[has], proj[~has]
    auc = (pos[:, None] > neg[None, :]).float().mean().item()
    pooled = torch.cat([pos - pos.mean(), neg - neg.mean()]).std()
    effect = ((pos.mean() - neg.mean()) / pooled).item()
    assert auc > 0.65 and effect > 0.5, (auc, effect)

    light = [faces.load(i, model.resolution) for i in test[~has.numpy()][:32]]
    strip = model.edit_strip(light, vec, [-2.0, -1.0, 0.0, 1.0, 2.0])      # (32, 5, 3, 16, 16)
    centre = strip[..., 5:11, 5:11].mean(dim=(2, 3, 4))                    # (32, 5) brightness of the face
    darker = (centre[:, 1:] < centre[:, :-1]).float().mean().item()
    drop = (centre[:, 0] - centre[:, -1]).mean().item()
    assert darker > 0.9 and drop > 0.03, (darker, drop)


def test_attribute_sources(tmp_path):
    with pytest.raises(InputError, match="they have: Smiling"):
        synthetic_images("Smiles", 4, 8)
    faces = SyntheticFaces(num_images=40, num_test=4)
    faces.export(tmp_path / "img", 16, indices=range(20))
    with_paths, without_paths = labelled_images(tmp_path / "img" / "list_attr_celeba.txt", tmp_path / "img", "Smiling", 3)
    labels = faces.labels(range(20))[:, 0]
    expect_with = [f"{i:06d}.png" for i in range(20) if labels[i]][:3]
    assert [p.name for p in with_paths] == expect_with and len(without_paths) == 3
    with pytest.raises(InputError, match="it has: Smiling"):
        labelled_images(tmp_path / "img" / "list_attr_celeba.txt", tmp_path / "img", "Smile", 3)
    with pytest.raises(InputError, match="image folder"):
        labelled_images(tmp_path / "img" / "list_attr_celeba.txt", tmp_path / "nope", "Smiling", 3)
