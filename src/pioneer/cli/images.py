"""`pioneer` commands for a trained snapshot: reconstruct, sample, interpolate, attributes, edit,
and align. Thin: they validate, read inputs, call `pioneer.inference` (facade,
latent, figures, align), and write PNGs; `COMMANDS` lists them for the `pioneer` group.

Output rule shared by the commands that write images: `-o` ending in `.png` writes one grid
image; anything else is a folder that receives one PNG per image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import torch

from pioneer.cli.common import fail, load_model, model_option, user_errors
from pioneer.inference.sampler import FIT_NUM, SAMPLERS
from pioneer.validate import MAX_GRID_IMAGES, MAX_STRENGTH, MAX_STRIP, Number, finite

if TYPE_CHECKING:  # the heavy imports wait until a command runs, so `pioneer --help` stays fast
    from pioneer.inference.align import FaceAligner
    from pioneer.inference.facade import Pioneer

Item = tuple[str, torch.Tensor]      # output name (relative, no suffix), image (3, r, r) in [-1, 1]


def _model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1),
                     help="Images per network call.")(f)
    f = click.option("--device", default="auto", show_default=True, help='"auto", "cpu", "cuda" or "cuda:N".')(f)
    return model_option()(f)


def _align_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--align", is_flag=True,
                        help="Align faces FFHQ-style first (dlib 68 landmarks; one crop per face).")(f)


def _progress(total: int, desc: str, show: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not show, leave=False, dynamic_ncols=True)


# ------------------------------------------------------------------------------------------------
# Inputs


def _expand(inputs: Sequence[str]) -> list[tuple[str, Path, bool]]:
    """Files and folders -> (name, path, explicit) per image; folders are listed recursively and
    their images named by their path relative to the folder."""
    from pioneer.data.sources import FolderSource

    out = []
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_dir():
            source = FolderSource(path)       # DataError names the folder when it has no images
            out += [(str(Path(source.key(i)).with_suffix("")), path / source.key(i), False) for i in range(len(source))]
        elif path.is_file():
            out.append((path.stem, path, True))
        else:
            fail(f"input {path} does not exist: give image files or folders")
    return out


def _aligner(align: bool, size: int) -> "FaceAligner | None":
    if not align:
        return None
    from pioneer.inference.align import FaceAligner

    return FaceAligner(size=max(size, 64))


def _read(model: "Pioneer", inputs: Sequence[str], aligner: "FaceAligner | None", first_face_only: bool = False,
          progress: bool | None = None) -> Iterator[Item]:
    """Prepared images with output names, one file at a time. Files named on the command line
    must be readable; unreadable files found in folders are reported and skipped. With an
    aligner every face becomes an item (name, name_1, ...); files without a face are reported."""
    from pioneer.inference.inputs import InputError
    from pioneer.data import DataError

    files = _expand(inputs)
    show = progress if progress is not None else (len(files) > 8 or any(not explicit for _, _, explicit in files))
    used: set[str] = set()
    no_face: list[str] = []
    with _progress(len(files), "read", show) as bar:
        for name, path, explicit in files:
            bar.update(1)
            try:
                images = aligner.align_file(path) if aligner is not None else [path]
                prepared = [model.prepare(img)[0] for img in images]
            except (DataError, InputError) as e:
                if explicit:
                    raise
                click.echo(f"warning: skipped {path}: {e}", err=True)
                continue
            if not prepared:
                no_face.append(str(path))
                continue
            for k, image in enumerate(prepared[:1] if first_face_only else prepared):
                yield _unique(name if k == 0 else f"{name}_{k}", used), image
    if no_face:
        listed = ", ".join(no_face[:5]) + (f" and {len(no_face) - 5} more" if len(no_face) > 5 else "")
        click.echo(f"warning: no face found in {len(no_face)} file(s): {listed}", err=True)


def _unique(name: str, used: set[str]) -> str:
    candidate, k = name, 1
    while candidate in used:
        candidate, k = f"{name}-{k}", k + 1
    used.add(candidate)
    return candidate


def _chunks(items: Iterator[Item], size: int) -> Iterator[tuple[list[str], torch.Tensor]]:
    names: list[str] = []
    images: list[torch.Tensor] = []
    for name, image in items:
        names.append(name)
        images.append(image)
        if len(names) == size:
            yield names, torch.stack(images)
            names, images = [], []
    if names:
        yield names, torch.stack(images)


def _read_all(model: "Pioneer", inputs: Sequence[str], aligner: "FaceAligner | None", what: str,
              first_face_only: bool = False) -> tuple[list[str], torch.Tensor]:
    items = list(_read(model, inputs, aligner, first_face_only))
    if not items:
        fail(f"no usable images for {what} in {', '.join(inputs)}" + (" (no face found)" if aligner else ""))
    return [n for n, _ in items], torch.stack([x for _, x in items])


# ------------------------------------------------------------------------------------------------
# Outputs


def _is_grid(out: str) -> bool:
    return out.lower().endswith(".png")


def _save_grid(path: str | Path, images: torch.Tensor, cols: int) -> None:
    from pioneer.images import make_grid, save_png

    save_png(path, make_grid(images, min(cols, len(images))))
    click.echo(f"wrote {path} ({len(images)} images)")


def _save_each(folder: Path, names: Sequence[str], images: torch.Tensor) -> None:
    from pioneer.images import save_png, to_uint8

    arrays = to_uint8(images).permute(0, 2, 3, 1).numpy()
    for name, array in zip(names, arrays):
        save_png(folder / f"{name}.png", array)


# ------------------------------------------------------------------------------------------------
# Commands


@click.command()
@_model_options
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", default="reconstructions", show_default=True,
              help="Folder for one PNG per image, or a .png file for a grid of input / reconstruction pairs.")
@click.option("--cols", default=8, show_default=True, type=click.IntRange(min=2), help="Grid columns (pairs take two).")
@_align_option
def reconstruct(model_path: str | None, device: str, batch_size: int, inputs: tuple[str, ...], out: str, cols: int,
                align: bool) -> None:
    """Encode images and decode them again: G(E(x)).

    INPUTS are image files and folders (searched recursively).

    \b
    Examples:
      pioneer reconstruct --model runs/00000-synthetic64/snapshot.safetensors photos/ -o out/
      pioneer reconstruct --model snapshot.safetensors a.jpg b.jpg -o pairs.png --align
    """
    with user_errors():
        model = load_model(model_path, device)
        items = _read(model, inputs, _aligner(align, model.resolution))
        grid: list[torch.Tensor] = []
        count = 0
        for names, x in _chunks(items, batch_size):
            rec = model.reconstruct(x, batch_size)
            count += len(names)
            if _is_grid(out):
                grid += [x, rec]
            else:
                _save_each(Path(out), names, rec)
        if count == 0:
            fail(f"no usable images in {', '.join(inputs)}" + (" (no face found)" if align else ""))
        if _is_grid(out):
            from pioneer.images import interleave

            pairs = interleave(torch.cat(grid[0::2]), torch.cat(grid[1::2]))
            _save_grid(out, pairs, cols - cols % 2)
        else:
            click.echo(f"wrote {count} reconstructions to {out}/")


@click.command()
@_model_options
@click.option("-n", "--num", default=16, show_default=True, type=click.IntRange(1, 100_000), help="Number of samples.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed: the same seed gives the same faces.")
@click.option("-o", "--out", default="samples.png", show_default=True,
              help="A .png file for a grid, or a folder for one PNG per sample.")
@click.option("--cols", type=click.IntRange(min=1), help="Grid columns (default: about the square root of -n).")
@click.option("--sampler", type=click.Choice(SAMPLERS), default="prior", show_default=True,
              help="prior: the codes the model was trained to decode; fitted: a Gaussian fitted to the "
                   "codes of training images (samples like reconstructions of unseen images).")
@click.option("--data", "data", default=None, metavar="SPEC",
              help="With --sampler fitted: the images to fit to (default: the data set the snapshot was trained on).")
@click.option("--fit-num", default=FIT_NUM, show_default=True, type=click.IntRange(2, 1_000_000),
              help="With --sampler fitted: training images encoded for the fit.")
def sample(model_path: str | None, device: str, batch_size: int, num: int, seed: int, out: str, cols: int | None,
           sampler: str, data: str | None, fit_num: int) -> None:
    """Decode random codes: from the prior (N(0, I) projected onto the sphere), or from a Gaussian
    fitted to the codes of training images (--sampler fitted).

    \b
    Examples:
      pioneer sample -n 64 -o samples.png                  # the model that ships with pioneer
      pioneer sample --model runs/00000-synthetic64/snapshot.safetensors -n 64 -o samples.png
      pioneer sample --model snapshot.safetensors -n 1000 --seed 1 -o samples/
      pioneer sample --model runs/00000-synthetic64/snapshot.safetensors --sampler fitted -n 64 -o fitted.png
    """
    if _is_grid(out) and num > MAX_GRID_IMAGES:
        fail(f"-n {num} is too many for one grid image: use at most {MAX_GRID_IMAGES}, or write a folder (-o DIR)")
    if data is not None and sampler != "fitted":
        fail("--data is for --sampler fitted: add --sampler fitted, or leave --data out")
    with user_errors():
        model = load_model(model_path, device)
        density = model.fit_sampler(data, fit_num, progress=True) if sampler == "fitted" else None
        images = model.sample(num, seed=seed, batch_size=batch_size, sampler=density)
        if _is_grid(out):
            _save_grid(out, images, cols or max(1, round(num ** 0.5)))
        else:
            _save_each(Path(out), [f"sample-{seed}-{i:05d}" for i in range(num)], images)
            click.echo(f"wrote {num} samples to {out}/")


@click.command()
@_model_options
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", default="interpolation.png", show_default=True, help="Output PNG.")
@click.option("--steps", default=8, show_default=True, type=click.IntRange(2, MAX_STRIP),
              help="Images along each edge, both ends included.")
@click.option("--linear", is_flag=True, help="Linear interpolation (re-normalised) instead of spherical (slerp).")
@click.option("--no-inputs", is_flag=True, help="Show only decoded images, not the inputs next to them.")
@_align_option
def interpolate(model_path: str | None, device: str, batch_size: int, inputs: tuple[str, ...], out: str, steps: int,
                linear: bool, no_inputs: bool, align: bool) -> None:
    """Interpolate between the codes of 2, 4 or 6 images.

    \b
    2 images: a strip from the first to the second;
    4 images: a grid with corners top-left, top-right, bottom-left, bottom-right
              (bilinear slerp, as in the paper's supplement);
    6 images: a hexagon with corners clockwise from the top-left (the paper's Fig. 1),
              the inputs in a row below it.
    The corners are the reconstructions; the inputs are shown beside them unless --no-inputs.

    \b
    Examples:
      pioneer interpolate --model snapshot.safetensors a.png b.png -o strip.png
      pioneer interpolate --model snapshot.safetensors a.png b.png c.png d.png -o grid.png
      pioneer interpolate --model snapshot.safetensors 1.png 2.png 3.png 4.png 5.png 6.png --steps 4 -o hex.png
    """
    from pioneer.images import save_png
    from pioneer.inference.figures import grid_figure, hex_figure, strip_figure

    if len(inputs) not in (2, 4, 6) and not any(Path(p).is_dir() for p in inputs):
        fail(f"interpolate takes 2, 4 or 6 images, got {len(inputs)}")
    method = "lerp" if linear else "slerp"
    with user_errors():
        model = load_model(model_path, device)
        names, x = _read_all(model, inputs, _aligner(align, model.resolution), "interpolation", first_face_only=True)
        if any(Path(p).is_dir() for p in inputs):  # folders count by the images in them
            if len(x) not in (2, 4, 6):
                fail(f"interpolate takes 2, 4 or 6 images; {' '.join(inputs)} hold {len(x)} usable images")
        elif len(x) != len(inputs):
            fail(f"interpolate needs {len(inputs)} images but only {len(x)} could be used")
        z = model.encode(x, batch_size)
        shown = None if no_inputs else x
        if len(x) == 2:
            figure = strip_figure(model.interpolate(z[0], z[1], steps, method), shown)
        elif len(x) == 4:
            grid = model.interpolation_grid(z, steps, steps, method)          # (steps * steps, 3, r, r)
            figure = grid_figure(grid.unflatten(0, (steps, steps)), shown)
        else:
            figure = hex_figure(*model.interpolation_hex(z, steps - 1, method), shown)
        save_png(out, figure)
        click.echo(f"wrote {out}")


@click.command()
@_model_options
@click.option("--attribute", help="Attribute name (a column of the labels file, or of the synthetic faces).")
@click.option("--labels", type=click.Path(dir_okay=False), help="CelebA-style attribute file (list_attr_celeba.txt).")
@click.option("--images", "images_dir", type=click.Path(file_okay=False), help="Folder holding the images of --labels.")
@click.option("--with", "with_dir", type=click.Path(file_okay=False), help="Folder of images WITH the attribute.")
@click.option("--without", "without_dir", type=click.Path(file_okay=False), help="Folder of images WITHOUT it.")
@click.option("--synthetic", is_flag=True, help="Use the built-in synthetic faces and their ground-truth labels.")
@click.option("--count", default=64, show_default=True, type=click.IntRange(min=1),
              help="Images of each group (the paper used 32 to 64).")
@click.option("-o", "--out", help="Output file (default: ATTRIBUTE.safetensors).")
@_align_option
def attributes(model_path: str | None, device: str, batch_size: int, attribute: str | None, labels: str | None,
               images_dir: str | None, with_dir: str | None, without_dir: str | None, synthetic: bool, count: int,
               out: str | None, align: bool) -> None:
    """Make an attribute vector: the mean code of images with an attribute minus the mean code
    of images without it (the paper's Sec. 3.4). Use it with `pioneer edit --vector`.

    \b
    Examples:
      pioneer attributes --model snapshot.safetensors --labels list_attr_celeba.txt --images img_align_celeba/ --attribute Smiling
      pioneer attributes --model snapshot.safetensors --with glasses/ --without no-glasses/ --attribute Eyeglasses
      pioneer attributes --model runs/00000-synthetic64/snapshot.safetensors --synthetic --attribute Sunglasses
    """
    from pioneer.inference import selection

    sources = [labels is not None or images_dir is not None, with_dir is not None or without_dir is not None, synthetic]
    if sum(sources) != 1:
        fail("choose one source: --labels FILE --images DIR, --with DIR --without DIR, or --synthetic")
    if sources[0] and (labels is None or images_dir is None):
        fail("--labels and --images go together: the attribute file and the folder of its images")
    if sources[1] and (with_dir is None or without_dir is None):
        fail("--with and --without go together: a folder of images with the attribute and one without")
    if (sources[0] or synthetic) and not attribute:
        fail("--attribute is required with --labels and --synthetic (e.g. --attribute Smiling)")
    with user_errors():
        model = load_model(model_path, device)
        aligner = _aligner(align, model.resolution)
        if synthetic:
            # The faces the model was trained on when it was ("synthetic:N"), else the default set.
            data = str(model.extra.get("data") or "")
            data = data if data.startswith("synthetic") else "synthetic"
            with_images, without_images = selection.synthetic_images(attribute, count, model.resolution, data)
            source = f"synthetic faces ({data}), training split"
        else:
            if sources[0]:
                try:
                    paths = selection.labelled_images(labels, images_dir, attribute, count)
                except ValueError as e:   # a malformed labels file: the message names the line
                    fail(str(e))
                source = f"labels {labels}, images {images_dir}"
            else:
                paths = (selection.folder_images(with_dir, count), selection.folder_images(without_dir, count))
                attribute = attribute or Path(with_dir).name
                source = f"folders {with_dir} (with) and {without_dir} (without)"
            with_images, without_images = (
                _read_all(model, [str(p) for p in group], aligner, "attribute vector", first_face_only=True)[1]
                for group in paths)
        vec = model.attribute_vector(with_images, without_images, attribute, source, batch_size, progress=True)
        path = out or f"{attribute}.safetensors"
        vec.save(path)
        click.echo(f"wrote {path}: {vec.describe()}")
        if min(vec.count_with, vec.count_without) < min(count, 32):
            click.echo(f"warning: few images ({vec.count_with} with, {vec.count_without} without); "
                       "the paper used 32 to 64 of each", err=True)


@click.command()
@_model_options
@click.argument("inputs", nargs=-1, required=True)
@click.option("--vector", "vectors", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Attribute vector file from `pioneer attributes` (repeatable).")
@click.option("--strength", default="-2:2:5", show_default=True,
              help="Strengths lambda: START:STOP:COUNT, a comma-separated list or one number.")
@click.option("--combo", "combos", multiple=True,
              help='A combination of vectors, e.g. "Smiling=1,Sunglasses=1.5" (repeatable; one column each).')
@click.option("-o", "--out", default="edit.png", show_default=True, help="Output PNG grid.")
@_align_option
def edit(model_path: str | None, device: str, batch_size: int, inputs: tuple[str, ...], vectors: tuple[str, ...],
         strength: str, combos: tuple[str, ...], out: str, align: bool) -> None:
    """Edit images along attribute vectors: decode E(x) + lambda * v, re-normalised.

    Each row shows the input, its reconstruction, then the edits. Without --combo a row holds
    one vector over the --strength range (the paper's Fig. 7; one row per image and vector).
    With --combo each column adds several vectors at once (the paper's Fig. 8).

    \b
    Examples:
      pioneer edit --model snapshot.safetensors photo.png --vector Smiling.safetensors -o smile.png
      pioneer edit --model snapshot.safetensors photos/ --vector Smiling.safetensors --strength -1,1,2 --align
      pioneer edit --model snapshot.safetensors a.png --vector Smiling.safetensors --vector Sunglasses.safetensors \\
          --combo Smiling=1 --combo "Smiling=1,Sunglasses=1.5" -o combos.png
    """
    from pioneer.inference.latent import AttributeVector, parse_strengths

    if combos and click.get_current_context().get_parameter_source("strength") != click.core.ParameterSource.DEFAULT:
        fail("--strength and --combo exclude each other: a combination gives each vector its own strength")
    try:
        strengths = parse_strengths(strength)
    except ValueError as e:
        fail(f"--strength: {e}")
    with user_errors():
        loaded: dict[str, AttributeVector] = {}
        for path in vectors:
            try:
                vec = AttributeVector.load(path)
            except ValueError as e:
                fail(str(e))
            name = vec.attribute or Path(path).stem
            if name in loaded:
                fail(f"two vectors are named {name!r} (--vector {path}): rename one file's attribute")
            loaded[name] = vec
        combinations = [_parse_combo(c, loaded) for c in combos]
        model = load_model(model_path, device)
        names, x = _read_all(model, inputs, _aligner(align, model.resolution), "editing")
        z = model.encode(x, batch_size, progress=len(x) > 8)
        rec = model.decode(z, batch_size)
        rows = []
        for i in range(len(x)):
            if combinations:
                edits = torch.cat([model.edit(z[i], [loaded[n] for n in combo], list(combo.values()))
                                   for combo in combinations])
                rows.append(torch.cat([x[i:i + 1], rec[i:i + 1], edits]))
            else:
                for vec in loaded.values():
                    edits = model.edit_strip(z[i], vec, strengths)[0]
                    rows.append(torch.cat([x[i:i + 1], rec[i:i + 1], edits]))
        _save_grid(out, torch.cat(rows), len(rows[0]))


def _parse_combo(text: str, loaded: dict[str, Any]) -> dict[str, float]:
    """'Smiling=1,Sunglasses=1.5' -> {'Smiling': 1.0, 'Sunglasses': 1.5}, names checked."""
    combo: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            combo[name] = finite(float(value), "strength", -MAX_STRENGTH, MAX_STRENGTH) if sep else 1.0
        except ValueError as e:
            why = e if "strength" in str(e) else f"{value!r} is not a number"
            fail(f"--combo {text!r}: {why} (write NAME=STRENGTH, ...)")
        if name not in loaded:
            fail(f"--combo {text!r}: no vector named {name!r}; loaded: {', '.join(loaded) or 'none'}")
    return combo


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", default="aligned", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the aligned crops.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(min=16), help="Side of the crops.")
@click.option("--min-score", default=0.3, show_default=True, type=Number(-10, 10),
              help="Ignore detections the face detector scores lower.")
def align(inputs: tuple[str, ...], out: str, size: int, min_score: float) -> None:
    """Align faces FFHQ-style: dlib's 68 landmarks -> an upright square crop per face.

    One PNG per face: NAME.png, or NAME.png, NAME_1.png, ... when a photo holds several faces
    (best detection first). Needs `pip install dlib-bin face-recognition-models`.

    \b
    Examples:
      pioneer align photo.jpg -o aligned/
      pioneer align photos/ -o aligned/ --size 1024
    """
    import numpy as np

    from pioneer.inference.align import FaceAligner
    from pioneer.data import DataError
    from pioneer.images import save_png

    with user_errors():
        aligner = FaceAligner(size=size, min_score=min_score)
        files = _expand(inputs)
        faces, no_face, skipped = 0, [], 0
        used: set[str] = set()
        with _progress(len(files), "align", len(files) > 1) as bar:
            for name, path, explicit in files:
                bar.update(1)
                try:
                    crops = aligner.align_file(path)
                except DataError as e:
                    if explicit:
                        raise
                    click.echo(f"warning: skipped {path}: {e}", err=True)
                    skipped += 1
                    continue
                if not crops:
                    no_face.append(str(path))
                for k, crop in enumerate(crops):
                    save_png(Path(out) / f"{_unique(name if k == 0 else f'{name}_{k}', used)}.png", np.asarray(crop))
                faces += len(crops)
        for path in no_face:
            click.echo(f"no face found in {path}", err=True)
        if faces == 0:
            fail(f"no face found in {', '.join(inputs)}: use photos with a visible, roughly frontal face")
        click.echo(f"wrote {faces} aligned face(s) from {len(files) - skipped - len(no_face)} of {len(files)} file(s) to {out}/")


COMMANDS = (reconstruct, sample, interpolate, attributes, edit, align)

