"""The demo's session layer (no browser): input checks, code cache, edits, interpolation,
samples, attribute vectors from a folder or the synthetic labels, examples, and the command's
own errors. The page itself is tested in a real browser in test_demo_browser.py."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from pioneer.inference import latent, selection
from pioneer.inference.facade import Pioneer
from pioneer.cli import main
from pioneer.data import SyntheticFaces
from pioneer.demo import DemoConfig, DemoError, DemoSession
from pioneer.demo.examples import build_examples
from pioneer.demo.vectors import (
    load_vector_dir,
    synthetic_vectors,
    trained_on_synthetic,
)
from pioneer.inference.latent import AttributeVector

pytest_plugins = ["model_fixtures"]


@pytest.fixture(scope="module")
def model(tiny_snapshot) -> Pioneer:
    return Pioneer.load(tiny_snapshot, device="cpu")


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> list[Path]:
    """Three held-out synthetic faces as 48x48 PNGs."""
    folder = tmp_path_factory.mktemp("demo-faces")
    SyntheticFaces().export(folder, 48, indices=range(11000, 11003))
    return sorted(folder.glob("*.png"))


def _vector(model: Pioneer, name: str, seed: int, **kw) -> AttributeVector:
    g = torch.Generator().manual_seed(seed)
    return AttributeVector(0.3 * latent.normalize(torch.randn(model.latent_dim, generator=g)), name, 8, 8,
                           model=kw.pop("fingerprint", model.fingerprint), **kw)


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


def _count_encodes(model: Pioneer, monkeypatch) -> list[int]:
    calls: list[int] = []
    original = model.encode
    monkeypatch.setattr(model, "encode", lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    return calls


def test_prepare_encodes_each_input_once(model, faces, monkeypatch):
    session = DemoSession(model)
    calls = _count_encodes(model, monkeypatch)
    first = session.prepare(faces[0])
    again = session.prepare(faces[0])
    assert len(calls) == 1 and session.cached_codes == 1
    assert torch.equal(first.code, again.code)
    torch.testing.assert_close(first.code, model.encode(str(faces[0]))[0])
    assert first.crop is None and first.photo.size == (48, 48)
    session.prepare(faces[1])
    assert session.cached_codes == 2 and len(calls) == 3      # one more for the new face (and one by the check above)


def test_large_photos_decode_reduced_and_preview_small(model, tmp_path):
    """A camera-sized JPEG decodes at a reduced scale (both sides still >= decode_size) and the
    page gets a preview of at most preview_size; small inputs pass through untouched."""
    big = tmp_path / "camera.jpg"
    Image.fromarray(SyntheticFaces().load(11000, 64)).resize((4000, 3000)).save(big, quality=80)
    session = DemoSession(model, config=DemoConfig(decode_size=1024, preview_size=800))
    p = session.prepare(big)
    assert p.photo.size == (2000, 1500)                          # 1/2 scale: 1/4 would be under 1024
    assert session.preview(p.photo).size == (800, 600)
    full = DemoSession(model, config=DemoConfig(decode_size=10**6)).prepare(big)
    assert full.photo.size == (4000, 3000)
    small = Image.new("RGB", (64, 48))
    assert session.preview(small) is small


def test_page_messages_never_show_server_paths(monkeypatch, tmp_path):
    from pioneer.demo.app import scrub

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    inside = tmp_path / "gradio" / "4f2a" / "notes.txt"
    message = f"cannot identify image file '{inside}' ({tempfile.gettempdir()}/x/y.png)"
    assert scrub(message) == "cannot identify image file 'notes.txt' (y.png)"
    assert scrub("wide.png is 2500x1500 pixels") == "wide.png is 2500x1500 pixels"


def test_code_cache_is_bounded(model, faces):
    session = DemoSession(model, config=DemoConfig(cache_size=2))
    for f in faces:
        session.prepare(f)
    assert session.cached_codes == 2


def test_edits_only_decode_and_match_the_facade(model, faces, monkeypatch):
    a, b = _vector(model, "A", 0), _vector(model, "B", 1)
    session = DemoSession(model, [a, b])
    code = session.prepare(faces[0]).code
    monkeypatch.setattr(model, "encode", lambda *a, **k: pytest.fail("an edit must not encode"))
    rec = session.reconstruction(code)
    assert rec.size == (256, 256)                              # 16 px enlarged 16x for the page
    assert np.array_equal(_pixels(session.edit(code, [0.0, 0.0])), _pixels(rec))
    edited = session.edit(code, [2.0, -1.0])
    assert np.abs(_pixels(edited) - _pixels(rec)).mean() > 1.0
    expected = model.decode(latent.edit(code[None], [a.vector, b.vector], [2.0, -1.0]))
    small = np.asarray(edited.resize((16, 16), Image.Resampling.NEAREST))
    assert np.array_equal(small, np.asarray(model.to_pil(expected)[0]))
    with pytest.raises(DemoError, match="2 attribute vectors"):
        session.edit(code, [1.0])
    with pytest.raises(DemoError, match="no input yet"):
        session.edit(None, [0.0, 0.0])
    with pytest.raises(DemoError, match="shape"):
        session.edit(np.zeros(5, np.float32), [0.0, 0.0])


def test_interpolation_strip_and_samples(model, faces):
    session = DemoSession(model, config=DemoConfig(display_size=64))
    za, zb = session.prepare(faces[0]).code, session.prepare(faces[1]).code
    assert np.array_equal(_pixels(session.interpolation(za, zb, 0.0)), _pixels(session.reconstruction(za)))
    assert np.array_equal(_pixels(session.interpolation(za, zb, 1.0)), _pixels(session.reconstruction(zb)))
    assert not np.array_equal(_pixels(session.interpolation(za, zb, 0.5)), _pixels(session.reconstruction(za)))
    strip = session.strip(za, zb, 5)
    assert strip.width > 4 * strip.height                     # five cells in a row
    one, same, other = session.samples(3, 4), session.samples(3, 4), session.samples(4, 4)
    assert np.array_equal(_pixels(one), _pixels(same)) and not np.array_equal(_pixels(one), _pixels(other))
    with pytest.raises(DemoError, match="at least 2 steps"):
        session.strip(za, zb, 1)
    with pytest.raises(DemoError, match="whole number"):
        session.samples("x")
    with pytest.raises(DemoError, match="1 to 64"):
        session.samples(0, 0)


def test_bad_inputs_get_messages(model, faces, tmp_path):
    session = DemoSession(model, config=DemoConfig(max_pixels=40 * 40, max_file_bytes=50_000))
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    with pytest.raises(DemoError, match="notes.txt is not an image"):
        session.prepare(text)
    with pytest.raises(DemoError, match=r"48x48 pixels .* more than the 0.0016 MP"):
        session.prepare(faces[0])
    big = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 3000, 3), dtype=np.uint8)).save(big)
    with pytest.raises(DemoError, match=r"noise.png is .* MB|noise.png is .* kB"):
        session.prepare(big)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(faces[0].read_bytes()[:200])
    with pytest.raises(DemoError, match="cut.png is not an image"):
        DemoSession(model).prepare(truncated)
    with pytest.raises(DemoError, match="could not be found"):
        session.prepare(tmp_path / "gone.png")


def test_alignment_without_a_face_is_a_message(model, tmp_path):
    pytest.importorskip("dlib")
    session = DemoSession(model)
    flat = tmp_path / "wall.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 200, dtype=np.uint8)[None, :, None], (200, 1, 3))).save(flat)
    with pytest.raises(DemoError, match="no face was found in wall.png: turn alignment off"):
        session.prepare(flat, align=True)
    assert session.prepare(flat, align=False).code.shape == (model.latent_dim,)


def test_alignment_shows_the_crop(model):
    pytest.importorskip("dlib")
    from pioneer.demo.examples import packaged_file

    astronaut = packaged_file("skimage", "data/astronaut.png")
    if astronaut is None:
        pytest.skip("scikit-image is not installed")
    p = DemoSession(model, config=DemoConfig(align_size=64)).prepare(astronaut, align=True)
    assert p.crop is not None and p.crop.size == (64, 64) and p.photo.size == (512, 512)


def test_vector_folder_skips_vectors_of_other_models(model, tmp_path):
    _vector(model, "Good", 0).save(tmp_path / "Good.safetensors")
    _vector(model, "Foreign", 1, fingerprint="0123456789abcdef").save(tmp_path / "Foreign.safetensors")
    AttributeVector(torch.ones(7), "Short", 1, 1).save(tmp_path / "Short.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 10)
    vectors, notices = load_vector_dir(tmp_path, model)
    assert [v.attribute for v in vectors] == ["Good"]
    text = "\n".join(notices)
    assert "Foreign.safetensors: it was made for another model" in text
    assert "Short.safetensors: it has 7 dimensions" in text
    assert "junk.safetensors" in text and len(notices) == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    expected = f"no attribute vectors (*.safetensors) in {empty}: make some with `pioneer attributes`"
    assert load_vector_dir(empty, model)[1] == [expected]
    with pytest.raises(ValueError, match="is not a folder"):
        load_vector_dir(tmp_path / "nowhere", model)
    with pytest.raises(DemoError, match="7 dimensions"):
        DemoSession(model, [AttributeVector(torch.ones(7), "Short", 1, 1)])


def test_synthetic_vectors_are_those_of_the_attributes_command(model):
    data = trained_on_synthetic(model)
    assert data == "synthetic:64"
    vectors = synthetic_vectors(model, data, count=8)
    by_name = {v.attribute: v for v in vectors}
    assert "Dark_Skin" in by_name and all(v.model == model.fingerprint for v in vectors)
    with_images, without_images = selection.synthetic_images("Dark_Skin", 8, model.resolution, data)
    expected = model.attribute_vector(with_images, without_images, "Dark_Skin")
    torch.testing.assert_close(by_name["Dark_Skin"].vector, expected.vector, atol=1e-5, rtol=1e-4)
    assert (by_name["Dark_Skin"].count_with, by_name["Dark_Skin"].count_without) == (8, 8)


def test_examples_are_held_out_faces_and_packaged_portraits(model, tmp_path):
    examples = build_examples(tmp_path, synthetic=2, size=64)
    names = [e.name for e in examples]
    assert names[:2] == ["held-out synthetic face 11000", "held-out synthetic face 11001"]
    assert 11000 in SyntheticFaces().test_indices
    if pytest.importorskip("skimage"):
        assert "Eileen Collins (scikit-image)" in names
    session = DemoSession(model)
    for e in examples:
        assert e.path.parent == tmp_path
        assert session.prepare(e.path).code.shape == (model.latent_dim,)


def test_demo_command_errors(tiny_snapshot, tmp_path):
    def run(*args):
        return CliRunner().invoke(main, ["demo", *map(str, args)], catch_exceptions=False)

    h = run("--help")
    assert h.exit_code == 0 and "Examples:" in h.output and "pioneer demo" in h.output
    for r, needle in ((run("--model", tmp_path / "none.safetensors"), "does not exist"),
                      (run("--model", tiny_snapshot, "--vectors", tmp_path / "none"), "is not a folder")):
        assert r.exit_code != 0 and "Traceback" not in r.output
        assert [line for line in r.output.splitlines() if line.startswith("Error:") and needle in line], r.output


def test_session_and_page_name_skipped_vectors(tiny_snapshot, model, tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))    # the page's initial images go there
    from pioneer.demo.app import build_app
    from pioneer.demo.server import ServeConfig, make_session

    _vector(model, "Good", 0).save(tmp_path / "Good.safetensors")
    _vector(model, "Foreign", 1, fingerprint="0123456789abcdef").save(tmp_path / "Foreign.safetensors")
    said: list[str] = []
    session = make_session(tiny_snapshot, tmp_path, ServeConfig(device="cpu"), echo=said.append)
    assert session.vector_names == ["Good"]
    assert any(line.startswith("warning: skipped Foreign.safetensors: it was made for another model") for line in said)
    app = build_app(session, [])
    blocks = {getattr(b, "elem_id", None): b for b in app.blocks.values()}
    assert "Foreign.safetensors: it was made for another model" in blocks["notices"].value
    assert blocks["notices"].visible and "slider-0" in blocks and "slider-1" not in blocks
