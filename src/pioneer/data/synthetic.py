"""Procedurally drawn synthetic faces: the built-in default data set.

No face data set ships in any package and nothing may be downloaded, so the default training
run, the attribute vectors and the attribute-edit benchmark use these cartoon portraits instead
of CelebA-HQ. Each face is a pure function of ``(seed, index)``: its parameters come from
``numpy.random.default_rng([seed, index])`` and never from a global RNG, and they do not depend
on the resolution, so image ``i`` is the same face at 4x4 and at 1024x1024 on every machine.

The binary attributes mirror the paper's edits (smile, head turn, beard as the "male" proxy,
glasses, baldness, skin tone, hair colour) and are known exactly, which makes them ground truth
for edit benchmarks. Everything else (position, size, face shape, eyes, nose, brows, hair style,
background, clothes, lighting) is unlabelled nuisance variation, so a model has to learn a real
distribution rather than a few templates.

The labels can be written in CelebA's ``list_attr_celeba.txt`` format so that the folder loader
and the attribute tools treat an exported synthetic set exactly like the real one.
"""

from __future__ import annotations

import colorsys
import math
import operator
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "ATTRIBUTES",
    "HAIR_COLORS",
    "FaceParams",
    "face_params",
    "face_attributes",
    "render_face",
    "SyntheticFaces",
    "write_celeba_attributes",
    "read_celeba_attributes",
]

# The binary attribute names, in file column order (CelebA spelling where CelebA has one;
# CelebA has No_Beard rather than Beard, and no head-turn or skin-tone columns).
ATTRIBUTES: tuple[str, ...] = (
    "Smiling",
    "Turned_Left",
    "Turned_Right",
    "Beard",
    "Eyeglasses",
    "Sunglasses",
    "Bald",
    "Dark_Skin",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
)

HAIR_COLORS: tuple[str, ...] = ("black", "blond", "brown", "gray")

# Label thresholds on the continuous parameters.
TURN_THRESHOLD = 0.35      # |yaw| beyond this is a labelled turn
DARK_SKIN_THRESHOLD = 0.5  # skin_tone above this is Dark_Skin

# Bump the version whenever the drawing or the parameter sampling changes: on-disk caches
# are keyed by fingerprint() and would otherwise serve stale images.
_VERSION = 1

RGB = tuple[int, int, int]


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceParams:
    """Every parameter of one synthetic face.

    Coordinates and sizes are fractions of the image side, so the same parameters draw the
    same face at any resolution. The labelled attributes come first; flip one with
    ``dataclasses.replace`` to get the same face with only that attribute changed.
    """

    # --- labelled attributes -------------------------------------------------------------
    smiling: bool
    yaw: float            # head turn in [-1, 1]; < 0 turns towards the image's left
    beard: bool
    eyeglasses: bool      # thin frames, eyes visible
    sunglasses: bool      # dark filled lenses (exclusive with eyeglasses)
    bald: bool
    skin_tone: float      # 0 = very light .. 1 = very dark
    hair_color: str       # one of HAIR_COLORS; also colours brows and beard when bald
    # --- unlabelled variation ------------------------------------------------------------
    teeth: bool           # an open smile shows teeth; a closed one is a curved line
    smile_depth: float    # how strongly the smile curves
    beard_style: int      # 0 full beard, 1 stubble, 2 goatee with moustache
    beard_line: float     # height of the beard's upper edge on the cheeks
    hair_shade: float     # 0..1 within the hair colour family (dark .. light)
    hair_style: int       # 0 short, 1 chin length, 2 long, 3 voluminous
    hair_volume: float    # how far the hair stands off the head
    hair_length: float    # 0..1 within the style's length range
    fringe_depth: float   # how far the fringe comes down the forehead
    fringe_tilt: float    # side parting: the fringe edge slopes
    fringe_sides: float   # how far the hair comes down the temples
    fringe_wave: float    # scalloped bangs
    center_x: float       # face centre
    center_y: float
    face_width: float     # half-width of the face
    face_aspect: float    # half-height / half-width
    jaw: float            # superellipse exponent of the lower face (2 = round, higher = square)
    eye_size: float       # eye half-width relative to face_width
    eye_spacing: float    # eye offset from the centre relative to face_width
    eye_height: float     # eye line above the face centre relative to the half-height
    iris_rgb: RGB
    nose_style: int       # 0 hook line, 1 round tip with nostrils, 2 shaded wedge
    nose_length: float
    nose_width: float
    brow_thickness: float
    brow_tilt: float
    brow_height: float
    ear_size: float
    mouth_width: float
    mouth_y: float
    mouth_curve: float    # curvature of a neutral mouth (slightly down .. slightly up)
    lip_tone: float       # 0 = skin-like .. 1 = red lips
    frame_shape: int      # glasses: 0 round, 1 rectangular
    frame_rgb: RGB
    lens_rgb: RGB         # sunglasses lens tint
    background_top: RGB
    background_bottom: RGB
    clothes_rgb: RGB
    neckline: int         # 0 round, 1 V, 2 high collar
    neck_length: float
    brightness: float     # global lighting factor
    light_gradient: float  # left-right lighting slope

    def __post_init__(self) -> None:
        if self.eyeglasses and self.sunglasses:
            raise ValueError("eyeglasses and sunglasses are mutually exclusive: set at most one")
        if self.hair_color not in HAIR_COLORS:
            raise ValueError(
                f"hair_color {self.hair_color!r} is unknown: use one of {', '.join(HAIR_COLORS)}"
            )
        if not -1.0 <= self.yaw <= 1.0:
            raise ValueError(f"yaw {self.yaw} is out of range: use a value in [-1, 1]")
        if not 0.0 <= self.skin_tone <= 1.0:
            raise ValueError(f"skin_tone {self.skin_tone} is out of range: use a value in [0, 1]")


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * float(t)


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


_IRIS_COLORS: tuple[RGB, ...] = (
    (92, 56, 30), (48, 34, 26), (70, 120, 180), (78, 128, 82), (140, 108, 52), (110, 110, 125),
)
_FRAME_COLORS: tuple[RGB, ...] = (
    (22, 22, 24), (88, 50, 30), (170, 138, 60), (150, 32, 42), (32, 42, 100), (60, 60, 64),
)
_N_SLOTS = 64  # fixed-size random vector; new parameters take unused slots so old ones stay put


def face_params(index: int, seed: int = 0) -> FaceParams:
    """The parameters of face ``index`` of the set drawn with ``seed`` (pure, deterministic).

    Only ``Generator.random`` is used (one fixed-length draw, one slot per parameter) because
    its output is the most stable part of NumPy's stream-compatibility promise, and a fixed
    slot layout keeps existing parameters unchanged when a new one is added.
    """
    index = operator.index(index)
    seed = operator.index(seed)
    if index < 0:
        raise ValueError(f"face index {index} is negative: use an index >= 0")
    if seed < 0:
        raise ValueError(f"seed {seed} is negative: use a seed >= 0")
    u = np.random.default_rng([seed, index]).random(_N_SLOTS).tolist()

    smiling = u[0] < 0.45
    yaw = 2.0 * u[1] - 1.0  # uniform: about a third of faces turn each way past the threshold
    beard = u[2] < 0.35
    # Sunglasses and eyeglasses share one draw so they can never both be on.
    sunglasses = u[3] < 0.17
    eyeglasses = (not sunglasses) and u[3] < 0.42
    # Baldness is much likelier with a beard, as for CelebA's Bald given Male.
    bald = u[4] < (0.45 if beard else 0.10)
    # Skin tone is bimodal with a gap around the threshold so that Dark_Skin is unambiguous.
    dark = u[5] < 0.28
    skin_tone = _lerp(0.62, 1.0, u[6]) if dark else _lerp(0.0, 0.40, u[6])
    c = u[7]
    hair_color = "black" if c < 0.28 else "brown" if c < 0.54 else "blond" if c < 0.78 else "gray"

    style_u = u[20]
    hair_style = 0 if style_u < 0.3 else 1 if style_u < 0.55 else 2 if style_u < 0.85 else 3
    hair_volume = _lerp(0.02, 0.10, u[21]) if hair_style != 3 else _lerp(0.16, 0.30, u[21])

    return FaceParams(
        smiling=smiling,
        yaw=yaw,
        beard=beard,
        eyeglasses=eyeglasses,
        sunglasses=sunglasses,
        bald=bald,
        skin_tone=skin_tone,
        hair_color=hair_color,
        teeth=u[8] < 0.6,
        smile_depth=_lerp(0.0, 1.0, u[9]),
        beard_style=0 if u[10] < 0.55 else 1 if u[10] < 0.82 else 2,
        beard_line=_lerp(0.0, 1.0, u[11]),
        hair_shade=u[12],
        hair_style=hair_style,
        hair_volume=hair_volume,
        hair_length=u[22],
        fringe_depth=_lerp(0.18, 0.50, u[23]),
        fringe_tilt=_lerp(-0.22, 0.22, u[24]),
        fringe_sides=_lerp(0.0, 0.7, u[25]),
        fringe_wave=_lerp(0.0, 0.1, u[26]) if u[27] < 0.35 else 0.0,
        center_x=_lerp(0.46, 0.54, u[13]),
        center_y=_lerp(0.47, 0.53, u[14]),
        face_width=_lerp(0.205, 0.255, u[15]),
        face_aspect=_lerp(1.15, 1.35, u[16]),
        jaw=_lerp(2.0, 2.9, u[17]),
        eye_size=_lerp(0.13, 0.19, u[30]),
        eye_spacing=_lerp(0.36, 0.47, u[31]),
        eye_height=_lerp(0.0, 0.14, u[32]),
        iris_rgb=_IRIS_COLORS[min(int(u[33] * len(_IRIS_COLORS)), len(_IRIS_COLORS) - 1)],
        nose_style=min(int(u[34] * 3), 2),
        nose_length=_lerp(0.17, 0.30, u[35]),
        nose_width=_lerp(0.08, 0.15, u[36]),
        brow_thickness=_lerp(0.035, 0.075, u[37]),
        brow_tilt=_lerp(-0.5, 0.5, u[38]),
        brow_height=_lerp(0.16, 0.28, u[39]),
        ear_size=_lerp(0.11, 0.16, u[40]),
        mouth_width=_lerp(0.24, 0.36, u[41]),
        mouth_y=_lerp(0.46, 0.58, u[42]),
        mouth_curve=_lerp(-0.08, 0.05, u[43]),
        lip_tone=_lerp(0.3, 0.9, u[44]),
        frame_shape=0 if u[45] < 0.5 else 1,
        frame_rgb=_FRAME_COLORS[min(int(u[46] * len(_FRAME_COLORS)), len(_FRAME_COLORS) - 1)],
        lens_rgb=_hsv(u[47], 0.5, _lerp(0.06, 0.18, u[48])),
        background_top=_hsv(u[50], _lerp(0.08, 0.55, u[51]), _lerp(0.35, 0.95, u[52])),
        background_bottom=_hsv(
            u[50] + _lerp(-0.06, 0.06, u[53]),
            _lerp(0.08, 0.55, u[51]),
            _lerp(0.35, 0.95, u[52]) * _lerp(0.65, 1.05, u[54]),
        ),
        clothes_rgb=_hsv(u[55], _lerp(0.15, 0.8, u[56]), _lerp(0.18, 0.9, u[57])),
        neckline=min(int(u[58] * 3), 2),
        neck_length=_lerp(0.03, 0.09, u[59]),
        brightness=_lerp(0.9, 1.08, u[60]),
        light_gradient=_lerp(-0.09, 0.09, u[61]),
    )


def face_attributes(params: FaceParams) -> dict[str, bool]:
    """The binary ground-truth attributes of a face, keyed by ATTRIBUTES (in that order)."""
    hair = None if params.bald else params.hair_color  # bald faces have no hair colour
    values = {
        "Smiling": params.smiling,
        "Turned_Left": params.yaw < -TURN_THRESHOLD,
        "Turned_Right": params.yaw > TURN_THRESHOLD,
        "Beard": params.beard,
        "Eyeglasses": params.eyeglasses,
        "Sunglasses": params.sunglasses,
        "Bald": params.bald,
        "Dark_Skin": params.skin_tone > DARK_SKIN_THRESHOLD,
        "Black_Hair": hair == "black",
        "Blond_Hair": hair == "blond",
        "Brown_Hair": hair == "brown",
        "Gray_Hair": hair == "gray",
    }
    return {name: bool(values[name]) for name in ATTRIBUTES}


# --------------------------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------------------------

_SKIN_T = np.array([0.0, 0.2, 0.4, 0.62, 0.8, 1.0])
_SKIN_RGB = np.array([
    [255, 228, 210],
    [246, 208, 176],
    [228, 180, 140],
    [170, 118, 80],
    [132, 88, 58],
    [88, 58, 40],
], dtype=np.float64)

# Each hair family runs from its dark shade to its light shade.
_HAIR_RGB: dict[str, tuple[RGB, RGB]] = {
    "black": ((18, 16, 18), (52, 42, 40)),
    "brown": ((78, 46, 26), (140, 92, 52)),
    "blond": ((205, 162, 82), (246, 218, 142)),
    "gray": ((148, 148, 150), (214, 214, 208)),
}
# Brows and beards are drawn a little darker than the hair so that light hair stays visible.
_BROW_DARKEN = {"black": 1.0, "brown": 0.8, "blond": 0.72, "gray": 0.7}


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> RGB:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def _scale(a: Sequence[float], f: float) -> RGB:
    return tuple(int(min(255, max(0, round(x * f)))) for x in a)  # type: ignore[return-value]


def _skin_rgb(tone: float) -> RGB:
    return tuple(int(round(np.interp(tone, _SKIN_T, _SKIN_RGB[:, k]))) for k in range(3))  # type: ignore[return-value]


def _hair_rgb(color: str, shade: float) -> RGB:
    dark, light = _HAIR_RGB[color]
    return _mix(dark, light, shade)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _supersampling(resolution: int) -> int:
    """Supersampling factor: 4x normally, more for tiny images, less for huge ones.

    The canvas is at least 64 pixels so that tiny renders are averages of a real drawing, and
    at most 2048 (or the resolution itself) so that 1024x1024 stays affordable.
    """
    factor = max(4, math.ceil(64 / resolution))
    return max(1, min(factor, 2048 // resolution))


class _Canvas:
    """ImageDraw in image-fraction coordinates (the face parameters are resolution-free)."""

    def __init__(self, size: int, background: Image.Image) -> None:
        self.size = size
        self.image = background
        self.draw = ImageDraw.Draw(background)

    def width(self, w: float) -> int:
        return max(1, int(round(w * self.size)))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: RGB | None = None,
                outline: RGB | None = None, width: float = 0.0) -> None:
        s = self.size
        rx, ry = max(rx, 0.5 / s), max(ry, 0.5 / s)
        box = [(cx - rx) * s, (cy - ry) * s, (cx + rx) * s, (cy + ry) * s]
        self.draw.ellipse(box, fill=fill, outline=outline,
                          width=self.width(width) if outline is not None else 1)

    def rounded_rect(self, x0: float, y0: float, x1: float, y1: float, radius: float,
                     fill: RGB | None = None, outline: RGB | None = None,
                     width: float = 0.0) -> None:
        s = self.size
        box = [x0 * s, y0 * s, max(x1, x0 + 1.0 / s) * s, max(y1, y0 + 1.0 / s) * s]
        r = max(0.0, min(radius * s, (box[2] - box[0]) / 2 - 0.5, (box[3] - box[1]) / 2 - 0.5))
        self.draw.rounded_rectangle(box, radius=r, fill=fill, outline=outline,
                                    width=self.width(width) if outline is not None else 1)

    def polygon(self, xs: np.ndarray, ys: np.ndarray, fill: RGB) -> None:
        pts = np.stack([xs, ys], axis=1) * self.size
        self.draw.polygon(pts.ravel().tolist(), fill=fill)

    def line(self, xs: np.ndarray | Sequence[float], ys: np.ndarray | Sequence[float],
             fill: RGB, width: float) -> None:
        pts = np.stack([np.asarray(xs, float), np.asarray(ys, float)], axis=1) * self.size
        w = self.width(width)
        self.draw.line(pts.ravel().tolist(), fill=fill, width=w, joint="curve")
        if w >= 3:
            # Round caps: PIL's wide lines have square ends that look like chopped strokes.
            for x, y in (pts[0], pts[-1]):
                self.draw.ellipse([x - w / 2, y - w / 2, x + w / 2, y + w / 2], fill=fill)


# Unit sample grids reused by every face.
_U24 = np.linspace(-1.0, 1.0, 24)
_U12 = np.linspace(-1.0, 1.0, 12)
_ANG_UP = np.linspace(math.pi, 2 * math.pi, 25)
_ANG_DOWN = np.linspace(0.0, math.pi, 25)


def _lower_face_y(xn: np.ndarray, jaw: float) -> np.ndarray:
    """Lower half of the face outline as a fraction of the half-height (superellipse)."""
    return np.power(np.clip(1.0 - np.abs(xn) ** jaw, 0.0, 1.0), 1.0 / jaw)


def render_face(params: FaceParams, resolution: int) -> np.ndarray:
    """Draw one face as a ``(resolution, resolution, 3)`` uint8 RGB array.

    The face is drawn with Pillow at a supersampled size and box-filtered down, so edges are
    antialiased and a face rendered at 256 then box-downsampled to 64 closely matches the
    same face rendered at 64.
    """
    resolution = operator.index(resolution)
    if resolution < 4:
        raise ValueError(f"resolution {resolution} is too small: use at least 4")
    p = params
    factor = _supersampling(resolution)
    size = resolution * factor

    # Background: a vertical two-colour gradient, built as one column then stretched.
    t = np.linspace(0.0, 1.0, size)[:, None]
    column = np.asarray(p.background_top, float) * (1 - t) + np.asarray(p.background_bottom, float) * t
    column = np.round(column).astype(np.uint8)[:, None, :]
    background = Image.fromarray(column, "RGB").resize((size, size), Image.Resampling.NEAREST)
    cv = _Canvas(size, background)

    skin = _skin_rgb(p.skin_tone)
    skin_shadow = _scale(skin, 0.84)
    hair = _hair_rgb(p.hair_color, p.hair_shade)
    brow = _scale(hair, _BROW_DARKEN[p.hair_color])

    cx, cy = p.center_x, p.center_y
    turn = abs(p.yaw)
    fw = p.face_width * (1.0 - 0.12 * turn)          # turned heads look narrower
    fh = p.face_width * p.face_aspect
    dx = 0.40 * p.yaw * fw                             # features slide towards the turn
    hair_dx = -0.25 * dx                               # the back of the head shows on the far side

    # --- behind the head: long hair, neck, clothes ------------------------------------------
    if not p.bald and p.hair_style in (1, 2):
        if p.hair_style == 1:
            bottom = cy + fh * _lerp(0.45, 0.85, p.hair_length)
        else:
            bottom = cy + fh * _lerp(1.2, 1.9, p.hair_length)
        half = p.face_width * (1.12 + p.hair_volume)
        cv.rounded_rect(cx + hair_dx - half, cy - 0.5 * fh, cx + hair_dx + half, bottom,
                        radius=0.5 * half, fill=_scale(hair, 0.9))

    chin = cy + fh
    neck_w = 0.5 * fw
    shoulders = chin + p.neck_length
    cv.rounded_rect(cx + 0.3 * dx - neck_w, cy + 0.3 * fh, cx + 0.3 * dx + neck_w, 1.05,
                    radius=0.0, fill=skin_shadow)
    cv.ellipse(cx, shoulders + 0.32, 0.5, 0.34, fill=p.clothes_rgb)
    if p.neckline == 0:
        cv.draw.chord([(cx - 0.8 * neck_w) * size, (shoulders - 0.05) * size,
                       (cx + 0.8 * neck_w) * size, (shoulders + 0.05) * size],
                      0, 180, fill=skin_shadow)
    elif p.neckline == 1:
        cv.polygon(np.array([cx - 0.75 * neck_w, cx + 0.75 * neck_w, cx]),
                   np.array([shoulders - 0.005, shoulders - 0.005, shoulders + 0.09]), skin_shadow)
    else:
        # High collar: a band of clothing around the base of the neck.
        cv.rounded_rect(cx - 1.15 * neck_w, shoulders - 0.03, cx + 1.15 * neck_w, shoulders + 0.03,
                        radius=0.02, fill=_scale(p.clothes_rgb, 0.85))

    # --- hair cap behind the head ------------------------------------------------------------
    if not p.bald:
        vol = p.hair_volume
        cv.ellipse(cx + hair_dx, cy - 0.18 * fh - 0.5 * vol * fh,
                   p.face_width * (1.05 + vol), fh * (0.9 + 1.1 * vol), fill=hair)

    # --- ears (hidden by long hair) ----------------------------------------------------------
    if p.bald or p.hair_style in (0, 3):
        ear_rx, ear_ry = p.ear_size * fw, p.ear_size * fw * 1.6
        for side in (-1.0, 1.0):
            # The ear on the side the head turns towards slides behind the face.
            hide = max(0.0, side * p.yaw) * 0.5 * ear_rx
            cv.ellipse(cx + side * (fw - 0.15 * ear_rx - hide), cy + 0.02 * fh,
                       ear_rx, ear_ry, fill=skin_shadow)

    # --- face: elliptic top, superelliptic jaw -----------------------------------------------
    xs_top = cx + fw * np.cos(_ANG_UP)
    ys_top = cy + fh * np.sin(_ANG_UP)
    xn = np.cos(_ANG_DOWN)
    xs_bot = cx + fw * xn
    ys_bot = cy + fh * _lower_face_y(xn, p.jaw)
    cv.polygon(np.concatenate([xs_top, xs_bot[1:-1]]), np.concatenate([ys_top, ys_bot[1:-1]]), skin)

    # --- beard --------------------------------------------------------------------------------
    mouth_x = cx + 1.05 * dx
    mouth_y = cy + p.mouth_y * fh
    mw = p.mouth_width * fw * (1.0 - 0.15 * turn)
    if p.beard:
        beard_rgb = _scale(hair, _BROW_DARKEN[p.hair_color])
        if p.beard_style == 1:
            beard_rgb = _mix(skin, beard_rgb, 0.6)  # stubble: a shadow of hair colour
        xb = cx + fw * 1.02 * _U24
        bottom_y = cy + fh * (1.0 + (0.06 if p.beard_style == 0 else 0.01)) * _lower_face_y(_U24, p.jaw)
        if p.beard_style == 2:
            # Goatee: chin patch plus moustache.
            g = np.abs((xb - mouth_x) / (1.3 * mw))
            top_y = np.where(g < 1.0, mouth_y + 0.1 * fh + 0.15 * fh * g ** 2, bottom_y)
            cv.polygon(np.concatenate([xb, xb[::-1]]),
                       np.concatenate([np.minimum(top_y, bottom_y), bottom_y[::-1]]), beard_rgb)
        else:
            rel = (xb - (cx + dx)) / fw
            # Upper edge: sideburns at ear level rising from the jaw, down under the nose.
            r2 = np.clip(rel ** 2, 0.0, 1.0)
            top_y = cy + fh * (_lerp(0.20, 0.34, p.beard_line) + 0.16 * (1.0 - r2) - 0.3 * r2 ** 2)
            top_y = np.minimum(top_y, bottom_y)
            cv.polygon(np.concatenate([xb, xb[::-1]]), np.concatenate([top_y, bottom_y[::-1]]),
                       beard_rgb)
        # Moustache over the upper lip.
        cv.ellipse(mouth_x, mouth_y - 0.09 * fh, 1.05 * mw, 0.07 * fh, fill=beard_rgb)

    # --- mouth --------------------------------------------------------------------------------
    lip = _mix(skin, (176, 60, 72), p.lip_tone)
    lip_dark = _mix(skin, (110, 34, 44), 0.5 + 0.5 * p.lip_tone)
    mx = mouth_x + mw * _U12
    xn = _U12
    if p.smiling:
        curl = _lerp(0.14, 0.28, p.smile_depth)
        if p.teeth:
            # Open "D" smile: corners up, dark mouth, a band of teeth under the upper lip.
            top = mouth_y - curl * mw * xn ** 2
            depth = _lerp(0.42, 0.65, p.smile_depth) * mw
            bottom = top + depth * np.sqrt(1 - xn ** 2)
            cv.polygon(np.concatenate([mx, mx[::-1]]), np.concatenate([top, bottom[::-1]]),
                       (96, 26, 34))
            teeth_bottom = top + 0.38 * depth * np.sqrt(1 - xn ** 2)
            cv.polygon(np.concatenate([mx, mx[::-1]]), np.concatenate([top, teeth_bottom[::-1]]),
                       (246, 244, 238))
            cv.line(mx, top, lip, width=0.04 * fw)
        else:
            # Closed smile: a wide U with raised corners.
            sx = mouth_x + 1.1 * mw * xn
            y = mouth_y + _lerp(0.3, 0.45, p.smile_depth) * mw * (1 - xn ** 2) - curl * mw * 0.5
            cv.line(sx, y, lip_dark, width=0.075 * fw)
    else:
        nx = mouth_x + 0.85 * mw * xn
        y = mouth_y + p.mouth_curve * mw * (1 - xn ** 2)
        cv.line(nx, y, lip_dark, width=0.055 * fw)
        # Lower lip hint.
        lower = mouth_y + p.mouth_curve * mw + 0.07 * fh
        cv.line([mouth_x - 0.4 * mw, mouth_x + 0.4 * mw], [lower, lower], _mix(skin, lip, 0.6),
                width=0.05 * fw)

    # --- nose ---------------------------------------------------------------------------------
    nose_x = cx + 1.35 * dx
    eye_y = cy - p.eye_height * fh
    tip_y = cy + p.nose_length * fh
    nw = p.nose_width * fw
    nose_rgb = _scale(skin, 0.72)
    point = -1.0 if p.yaw < 0 else 1.0  # the nose points towards the turn
    if p.nose_style == 0:
        cv.line([nose_x - 0.1 * nw * point, nose_x + 0.35 * nw * point, nose_x - 0.5 * nw * point],
                [eye_y + 0.12 * fh, tip_y, tip_y + 0.04 * fh], nose_rgb, width=0.035 * fw)
    elif p.nose_style == 1:
        cv.ellipse(nose_x, tip_y - 0.02 * fh, 0.6 * nw, 0.4 * nw, fill=_scale(skin, 0.9))
        for side in (-1.0, 1.0):
            cv.ellipse(nose_x + side * 0.45 * nw, tip_y + 0.01 * fh, 0.18 * nw, 0.12 * nw,
                       fill=_scale(skin, 0.6))
    else:
        cv.polygon(np.array([nose_x + 0.1 * nw * point, nose_x + 0.7 * nw, nose_x - 0.7 * nw]),
                   np.array([eye_y + 0.1 * fh, tip_y, tip_y]), _scale(skin, 0.88))
        cv.line([nose_x - 0.5 * nw, nose_x + 0.5 * nw], [tip_y, tip_y], nose_rgb, width=0.03 * fw)

    # --- eyes ---------------------------------------------------------------------------------
    spacing = p.eye_spacing * fw * (1.0 - 0.2 * turn)
    ex0 = p.eye_size * p.face_width
    eyes = []
    for side in (-1.0, 1.0):
        # Foreshortening: the eye on the side the head turns towards narrows.
        squeeze = 1.0 - 0.35 * max(0.0, side * p.yaw)
        ex, ey = ex0 * squeeze, ex0 * 0.62
        ecx = cx + dx + side * spacing
        eyes.append((ecx, ex, ey))
        if not p.sunglasses:
            cv.ellipse(ecx, eye_y, ex, ey, fill=(250, 250, 248), outline=_scale(skin, 0.55),
                       width=0.02 * fw)
            ir = 0.78 * ey
            ix = ecx + 0.35 * p.yaw * ex
            cv.ellipse(ix, eye_y, ir * squeeze, ir, fill=p.iris_rgb)
            cv.ellipse(ix, eye_y, 0.5 * ir * squeeze, 0.5 * ir, fill=(12, 10, 10))
            cv.ellipse(ix - 0.3 * ir, eye_y - 0.3 * ir, 0.18 * ir, 0.18 * ir, fill=(255, 255, 255))

    # --- brows --------------------------------------------------------------------------------
    by = eye_y - p.brow_height * fh
    for side, (ecx, ex, _) in zip((-1.0, 1.0), eyes):
        bx = ecx + ex * np.array([-1.1, 0.0, 1.1])
        tilt = side * p.brow_tilt * 0.05 * fh  # positive tilt: outer ends lower (kind look)
        bys = by + np.array([-tilt, -0.05 * fh, tilt])
        cv.line(bx, bys, brow, width=p.brow_thickness * fw)

    # --- fringe on the forehead ---------------------------------------------------------------
    if not p.bald:
        vol = p.hair_volume
        hw = fw * 1.03
        hx = cx + hair_dx + hw * _U24
        arc_y = cy - 0.18 * fh - 0.5 * vol * fh - fh * (0.9 + 1.1 * vol) * np.sqrt(1 - _U24 ** 2)
        rel = (hx - (cx + 0.6 * dx)) / fw
        edge = (cy - fh * (1.0 - p.fringe_depth)
                + p.fringe_tilt * fh * rel
                + p.fringe_sides * fh * rel ** 2
                + p.fringe_wave * fh * np.abs(np.sin(9.0 * rel)))
        # Keep the fringe above the eyebrows in the middle of the face.
        edge = np.minimum(edge, np.where(np.abs(rel) < 0.7, by - 0.07 * fh, cy + 0.1 * fh))
        edge = np.maximum(edge, arc_y)
        cv.polygon(np.concatenate([hx, hx[::-1]]), np.concatenate([arc_y, edge[::-1]]), hair)
    else:
        # Scalp highlight sells the bald head.
        cv.ellipse(cx - 0.3 * fw, cy - 0.78 * fh, 0.25 * fw, 0.09 * fh, fill=_mix(skin, (255, 255, 255), 0.28))

    # --- glasses ------------------------------------------------------------------------------
    if p.eyeglasses or p.sunglasses:
        frame = p.frame_rgb if p.eyeglasses else _scale(p.lens_rgb, 0.7)
        lens = p.lens_rgb if p.sunglasses else None
        fwid = 0.045 * fw if p.eyeglasses else 0.05 * fw
        inner, outer = [], []
        for side, (ecx, ex, ey) in zip((-1.0, 1.0), eyes):
            lx = 1.55 * ex
            ly = (0.8 if p.frame_shape == 0 else 0.66) * 1.55 * ex0
            if p.frame_shape == 0:
                cv.ellipse(ecx, eye_y, lx, ly, fill=lens, outline=frame, width=fwid)
            else:
                cv.rounded_rect(ecx - lx, eye_y - ly, ecx + lx, eye_y + ly, radius=0.35 * ly,
                                fill=lens, outline=frame, width=fwid)
            inner.append(ecx - side * lx)
            outer.append((ecx + side * lx, side))
        bridge_y = eye_y - 0.25 * ex0
        cv.line([inner[0], inner[1]], [bridge_y, bridge_y], frame, width=fwid)
        for x, side in outer:
            edge_x = cx + side * fw
            if side * (edge_x - x) > 0:
                cv.line([x, edge_x], [bridge_y, bridge_y - 0.01 * fh], frame, width=fwid)

    # --- downsample and light -----------------------------------------------------------------
    image = cv.image.reduce(factor) if factor > 1 else cv.image
    out = np.asarray(image, dtype=np.float32)
    ramp = np.linspace(-1.0, 1.0, resolution, dtype=np.float32)
    light = p.brightness + p.light_gradient * ramp  # light from one side
    out = out * light[None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Data set
# --------------------------------------------------------------------------------------------


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} {value} is too small: use at least {minimum}")
    return value


class SyntheticFaces:
    """The synthetic face data set: images 0..num_images-1; the last num_test are the fixed test split."""

    def __init__(self, num_images: int = 12000, num_test: int = 1000, seed: int = 0) -> None:
        self.num_images = _check_int(num_images, "num_images", 2)
        self.num_test = _check_int(num_test, "num_test", 0)
        self.seed = _check_int(seed, "seed", 0)
        if self.num_test >= self.num_images:
            raise ValueError(
                f"num_test {self.num_test} leaves no training images out of num_images "
                f"{self.num_images}: use num_test < num_images"
            )
        self._params: dict[int, FaceParams] = {}  # parameters are cheap but labels() asks for all

    def __len__(self) -> int:
        return self.num_images

    def __repr__(self) -> str:
        return f"SyntheticFaces(num_images={self.num_images}, num_test={self.num_test}, seed={self.seed})"

    def _index(self, index: int) -> int:
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"image index must be an integer, got {index!r}") from None
        if not 0 <= i < self.num_images:
            raise IndexError(f"image index {i} is out of range: the set has images 0..{self.num_images - 1}")
        return i

    def params(self, index: int) -> FaceParams:
        """The parameters of image ``index`` (cached)."""
        i = self._index(index)
        p = self._params.get(i)
        if p is None:
            p = self._params[i] = face_params(i, self.seed)
        return p

    def key(self, index: int) -> str:
        """The file name of image ``index``, e.g. ``"000123.png"``."""
        return f"{self._index(index):06d}.png"

    def load(self, index: int, resolution: int) -> np.ndarray:
        """Image ``index`` as a ``(resolution, resolution, 3)`` uint8 RGB array."""
        return render_face(self.params(index), resolution)

    def fingerprint(self) -> str:
        """A stable id for on-disk caches; changes whenever the images would change."""
        return f"synthetic-v{_VERSION}-seed{self.seed}-n{self.num_images}"

    @property
    def train_indices(self) -> np.ndarray:
        """Training images: 0..num_images-num_test-1 (int64)."""
        return np.arange(self.num_images - self.num_test, dtype=np.int64)

    @property
    def test_indices(self) -> np.ndarray:
        """The fixed test split: the last num_test images (int64)."""
        return np.arange(self.num_images - self.num_test, self.num_images, dtype=np.int64)

    def _indices(self, indices: Iterable[int] | np.ndarray | None) -> list[int]:
        if indices is None:
            return list(range(self.num_images))
        return [self._index(i) for i in np.asarray(indices).reshape(-1).tolist()]

    def labels(self, indices: Iterable[int] | np.ndarray | None = None) -> np.ndarray:
        """Ground-truth attributes, ``(N, len(ATTRIBUTES))`` bool, from the parameters (no rendering)."""
        idx = self._indices(indices)
        out = np.zeros((len(idx), len(ATTRIBUTES)), dtype=bool)
        for row, i in enumerate(idx):
            out[row] = list(face_attributes(self.params(i)).values())
        return out

    def yaw(self, indices: Iterable[int] | np.ndarray | None = None) -> np.ndarray:
        """The continuous head turn in [-1, 1] per image, ``(N,)`` float32."""
        idx = self._indices(indices)
        return np.array([self.params(i).yaw for i in idx], dtype=np.float32)

    def export(self, folder: str | os.PathLike[str], resolution: int,
               indices: Iterable[int] | np.ndarray | None = None,
               labels_file: bool = True) -> list[Path]:
        """Write images as PNG files named by key() into ``folder`` (created if needed).

        With ``labels_file`` the labels of the written images go to
        ``folder/list_attr_celeba.txt`` so that the folder can stand in for CelebA.
        Returns the paths of the written images.
        """
        from tqdm import tqdm  # only exporting needs it

        resolution = _check_int(resolution, "resolution", 4)
        idx = self._indices(indices)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in tqdm(idx, desc=f"export {resolution}x{resolution}", unit="img",
                      disable=len(idx) <= 16):
            path = folder / self.key(i)
            Image.fromarray(self.load(i, resolution), "RGB").save(path)
            paths.append(path)
        if labels_file:
            write_celeba_attributes(folder / "list_attr_celeba.txt",
                                    [self.key(i) for i in idx], self.labels(idx))
        return paths


# --------------------------------------------------------------------------------------------
# CelebA attribute files
# --------------------------------------------------------------------------------------------


def write_celeba_attributes(path: str | os.PathLike[str], keys: Sequence[str], labels: np.ndarray,
                            names: Sequence[str] = ATTRIBUTES) -> None:
    """Write labels in CelebA's ``list_attr_celeba.txt`` format, atomically.

    Line 1 is the number of images, line 2 the attribute names, then one line per image:
    the key followed by ``1`` or ``-1`` per attribute. ``labels`` is ``(len(keys), len(names))``,
    bool or numeric (``> 0`` is true).
    """
    keys = [str(k) for k in keys]
    names = [str(n) for n in names]
    labels = np.asarray(labels)
    if labels.shape != (len(keys), len(names)):
        raise ValueError(
            f"labels have shape {labels.shape}, expected ({len(keys)}, {len(names)}) "
            f"for {len(keys)} keys and {len(names)} attribute names"
        )
    for what, items in (("key", keys), ("attribute name", names)):
        for item in items:
            if not item or any(ch.isspace() for ch in item):
                raise ValueError(f"{what} {item!r} is empty or contains whitespace")
    lines = [str(len(keys)), " ".join(names)]
    # Booleans as they are; numbers as > 0 so that both 0/1 and -1/1 inputs mean what they say.
    values = np.where(labels if labels.dtype == bool else labels > 0, "1", "-1")
    lines += [key + " " + " ".join(row) for key, row in zip(keys, values.tolist())]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary file next to the target and rename, so readers never see half a file.
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_celeba_attributes(path: str | os.PathLike[str]) -> tuple[list[str], list[str], np.ndarray]:
    """Read a CelebA-style attribute file: ``(keys, names, labels)`` with labels bool ``(N, A)``.

    Values ``1`` are true and ``-1`` (or ``0``) false. Malformed input raises ValueError
    naming the file and the line.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a count on line 1 and attribute names on line 2")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise ValueError(f"{path}, line 1: expected the number of images, got {lines[0]!r}") from None
    names = lines[1].split()
    if not names:
        raise ValueError(f"{path}, line 2: expected attribute names, found none")
    rows = lines[2:]
    if len(rows) != count:
        raise ValueError(f"{path}, line 1: says {count} images but the file has {len(rows)} lines of labels")
    keys: list[str] = []
    labels = np.zeros((count, len(names)), dtype=bool)
    truth = {"1": True, "-1": False, "0": False}
    for row, line in enumerate(rows):
        lineno = row + 3
        parts = line.split()
        if len(parts) != len(names) + 1:
            raise ValueError(
                f"{path}, line {lineno}: expected a key and {len(names)} values, got {len(parts)} fields"
            )
        keys.append(parts[0])
        for col, value in enumerate(parts[1:]):
            if value not in truth:
                raise ValueError(
                    f"{path}, line {lineno}: value {value!r} for {names[col]} is not 1 or -1"
                )
            labels[row, col] = truth[value]
    return keys, names, labels

