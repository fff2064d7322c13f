"""Drawing the synthetic faces: a face's parameters (FaceParams, sampled by faces.py) -> an RGB
image at any resolution.

Each part is drawn by its own function, back to front, on a supersampled Pillow canvas in
image-fraction coordinates, then box-filtered down and lit from one side. The layout shared by
the parts (face box, turn, where the eyes, nose and mouth sit) is computed once in `_Layout`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
HAIR_COLORS: tuple[str, ...] = ("black", "blond", "brown", "gray")


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


def lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * float(t)


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


@dataclass(frozen=True)
class _Layout:
    """Where the parts of one face go, in image fractions, and its colours."""

    p: FaceParams
    skin: RGB
    skin_shadow: RGB
    hair: RGB
    brow: RGB
    cx: float
    cy: float
    turn: float
    fw: float        # half-width of the face, narrower when turned
    fh: float        # half-height of the face
    dx: float        # features slide towards the turn
    hair_dx: float   # the back of the head shows on the far side
    mouth_x: float
    mouth_y: float
    mw: float
    eye_y: float

    @classmethod
    def of(cls, p: FaceParams) -> "_Layout":
        skin = _skin_rgb(p.skin_tone)
        hair = _hair_rgb(p.hair_color, p.hair_shade)
        turn = abs(p.yaw)
        fw = p.face_width * (1.0 - 0.12 * turn)
        fh = p.face_width * p.face_aspect
        dx = 0.40 * p.yaw * fw
        return cls(p, skin, _scale(skin, 0.84), hair, _scale(hair, _BROW_DARKEN[p.hair_color]),
                   p.center_x, p.center_y, turn, fw, fh, dx, -0.25 * dx,
                   mouth_x=p.center_x + 1.05 * dx, mouth_y=p.center_y + p.mouth_y * fh,
                   mw=p.mouth_width * fw * (1.0 - 0.15 * turn), eye_y=p.center_y - p.eye_height * fh)


def render_face(params: FaceParams, resolution: int) -> np.ndarray:
    """Draw one face as a ``(resolution, resolution, 3)`` uint8 RGB array.

    The face is drawn with Pillow at a supersampled size and box-filtered down, so edges are
    antialiased and a face rendered at 256 then box-downsampled to 64 closely matches the
    same face rendered at 64.
    """
    resolution = operator.index(resolution)
    if resolution < 4:
        raise ValueError(f"resolution {resolution} is too small: use at least 4")
    factor = _supersampling(resolution)
    cv = _Canvas(resolution * factor, _background(params, resolution * factor))
    f = _Layout.of(params)
    _behind_head(cv, f)
    _hair_cap(cv, f)
    _ears(cv, f)
    _face(cv, f)
    _beard(cv, f)
    _mouth(cv, f)
    _nose(cv, f)
    eyes = _eyes(cv, f)
    brow_y = _brows(cv, f, eyes)
    _fringe(cv, f, brow_y)
    _glasses(cv, f, eyes)
    return _downsample_and_light(cv.image, factor, params, resolution)


def _background(p: FaceParams, size: int) -> Image.Image:
    """A vertical two-colour gradient, built as one column then stretched."""
    t = np.linspace(0.0, 1.0, size)[:, None]
    column = np.asarray(p.background_top, float) * (1 - t) + np.asarray(p.background_bottom, float) * t
    column = np.round(column).astype(np.uint8)[:, None, :]
    return Image.fromarray(column, "RGB").resize((size, size), Image.Resampling.NEAREST)


def _behind_head(cv: _Canvas, f: _Layout) -> None:
    """Long hair, neck, clothes and neckline."""
    p, cx, cy, fh = f.p, f.cx, f.cy, f.fh
    if not p.bald and p.hair_style in (1, 2):
        if p.hair_style == 1:
            bottom = cy + fh * lerp(0.45, 0.85, p.hair_length)
        else:
            bottom = cy + fh * lerp(1.2, 1.9, p.hair_length)
        half = p.face_width * (1.12 + p.hair_volume)
        cv.rounded_rect(cx + f.hair_dx - half, cy - 0.5 * fh, cx + f.hair_dx + half, bottom,
                        radius=0.5 * half, fill=_scale(f.hair, 0.9))

    chin = cy + fh
    neck_w = 0.5 * f.fw
    shoulders = chin + p.neck_length
    size = cv.size
    cv.rounded_rect(cx + 0.3 * f.dx - neck_w, cy + 0.3 * fh, cx + 0.3 * f.dx + neck_w, 1.05,
                    radius=0.0, fill=f.skin_shadow)
    cv.ellipse(cx, shoulders + 0.32, 0.5, 0.34, fill=p.clothes_rgb)
    if p.neckline == 0:
        cv.draw.chord([(cx - 0.8 * neck_w) * size, (shoulders - 0.05) * size,
                       (cx + 0.8 * neck_w) * size, (shoulders + 0.05) * size],
                      0, 180, fill=f.skin_shadow)
    elif p.neckline == 1:
        cv.polygon(np.array([cx - 0.75 * neck_w, cx + 0.75 * neck_w, cx]),
                   np.array([shoulders - 0.005, shoulders - 0.005, shoulders + 0.09]), f.skin_shadow)
    else:
        # High collar: a band of clothing around the base of the neck.
        cv.rounded_rect(cx - 1.15 * neck_w, shoulders - 0.03, cx + 1.15 * neck_w, shoulders + 0.03,
                        radius=0.02, fill=_scale(p.clothes_rgb, 0.85))


def _hair_cap(cv: _Canvas, f: _Layout) -> None:
    """The hair behind the head."""
    p = f.p
    if not p.bald:
        vol = p.hair_volume
        cv.ellipse(f.cx + f.hair_dx, f.cy - 0.18 * f.fh - 0.5 * vol * f.fh,
                   p.face_width * (1.05 + vol), f.fh * (0.9 + 1.1 * vol), fill=f.hair)


def _ears(cv: _Canvas, f: _Layout) -> None:
    """Ears, hidden by long hair."""
    p = f.p
    if p.bald or p.hair_style in (0, 3):
        ear_rx, ear_ry = p.ear_size * f.fw, p.ear_size * f.fw * 1.6
        for side in (-1.0, 1.0):
            # The ear on the side the head turns towards slides behind the face.
            hide = max(0.0, side * p.yaw) * 0.5 * ear_rx
            cv.ellipse(f.cx + side * (f.fw - 0.15 * ear_rx - hide), f.cy + 0.02 * f.fh,
                       ear_rx, ear_ry, fill=f.skin_shadow)


def _face(cv: _Canvas, f: _Layout) -> None:
    """The face: elliptic top, superelliptic jaw."""
    xs_top = f.cx + f.fw * np.cos(_ANG_UP)
    ys_top = f.cy + f.fh * np.sin(_ANG_UP)
    xn = np.cos(_ANG_DOWN)
    xs_bot = f.cx + f.fw * xn
    ys_bot = f.cy + f.fh * _lower_face_y(xn, f.p.jaw)
    cv.polygon(np.concatenate([xs_top, xs_bot[1:-1]]), np.concatenate([ys_top, ys_bot[1:-1]]), f.skin)


def _beard(cv: _Canvas, f: _Layout) -> None:
    """Full beard, stubble or goatee, and the moustache."""
    p, cx, cy, fw, fh, mouth_x, mouth_y, mw = f.p, f.cx, f.cy, f.fw, f.fh, f.mouth_x, f.mouth_y, f.mw
    if not p.beard:
        return
    beard_rgb = _scale(f.hair, _BROW_DARKEN[p.hair_color])
    if p.beard_style == 1:
        beard_rgb = _mix(f.skin, beard_rgb, 0.6)  # stubble: a shadow of hair colour
    xb = cx + fw * 1.02 * _U24
    bottom_y = cy + fh * (1.0 + (0.06 if p.beard_style == 0 else 0.01)) * _lower_face_y(_U24, p.jaw)
    if p.beard_style == 2:
        # Goatee: chin patch plus moustache.
        g = np.abs((xb - mouth_x) / (1.3 * mw))
        top_y = np.where(g < 1.0, mouth_y + 0.1 * fh + 0.15 * fh * g ** 2, bottom_y)
        cv.polygon(np.concatenate([xb, xb[::-1]]),
                   np.concatenate([np.minimum(top_y, bottom_y), bottom_y[::-1]]), beard_rgb)
    else:
        rel = (xb - (cx + f.dx)) / fw
        # Upper edge: sideburns at ear level rising from the jaw, down under the nose.
        r2 = np.clip(rel ** 2, 0.0, 1.0)
        top_y = cy + fh * (lerp(0.20, 0.34, p.beard_line) + 0.16 * (1.0 - r2) - 0.3 * r2 ** 2)
        top_y = np.minimum(top_y, bottom_y)
        cv.polygon(np.concatenate([xb, xb[::-1]]), np.concatenate([top_y, bottom_y[::-1]]),
                   beard_rgb)
    # Moustache over the upper lip.
    cv.ellipse(mouth_x, mouth_y - 0.09 * fh, 1.05 * mw, 0.07 * fh, fill=beard_rgb)


def _mouth(cv: _Canvas, f: _Layout) -> None:
    """An open or closed smile, or a neutral mouth with a lower-lip hint."""
    p, skin, fw, fh, mouth_x, mouth_y, mw = f.p, f.skin, f.fw, f.fh, f.mouth_x, f.mouth_y, f.mw
    lip = _mix(skin, (176, 60, 72), p.lip_tone)
    lip_dark = _mix(skin, (110, 34, 44), 0.5 + 0.5 * p.lip_tone)
    mx = mouth_x + mw * _U12
    xn = _U12
    if p.smiling:
        curl = lerp(0.14, 0.28, p.smile_depth)
        if p.teeth:
            # Open "D" smile: corners up, dark mouth, a band of teeth under the upper lip.
            top = mouth_y - curl * mw * xn ** 2
            depth = lerp(0.42, 0.65, p.smile_depth) * mw
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
            y = mouth_y + lerp(0.3, 0.45, p.smile_depth) * mw * (1 - xn ** 2) - curl * mw * 0.5
            cv.line(sx, y, lip_dark, width=0.075 * fw)
    else:
        nx = mouth_x + 0.85 * mw * xn
        y = mouth_y + p.mouth_curve * mw * (1 - xn ** 2)
        cv.line(nx, y, lip_dark, width=0.055 * fw)
        # Lower lip hint.
        lower = mouth_y + p.mouth_curve * mw + 0.07 * fh
        cv.line([mouth_x - 0.4 * mw, mouth_x + 0.4 * mw], [lower, lower], _mix(skin, lip, 0.6),
                width=0.05 * fw)


def _nose(cv: _Canvas, f: _Layout) -> None:
    """A line, a round nose with nostrils, or a triangle; it points towards the turn."""
    p, skin, fw, fh, eye_y = f.p, f.skin, f.fw, f.fh, f.eye_y
    nose_x = f.cx + 1.35 * f.dx
    tip_y = f.cy + p.nose_length * fh
    nw = p.nose_width * fw
    nose_rgb = _scale(skin, 0.72)
    point = -1.0 if p.yaw < 0 else 1.0
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


def _eyes(cv: _Canvas, f: _Layout) -> list[tuple[float, float, float]]:
    """Both eyes (hidden under sunglasses); returns each eye's (centre x, half-width, half-height)."""
    p, eye_y = f.p, f.eye_y
    spacing = p.eye_spacing * f.fw * (1.0 - 0.2 * f.turn)
    ex0 = p.eye_size * p.face_width
    eyes = []
    for side in (-1.0, 1.0):
        # Foreshortening: the eye on the side the head turns towards narrows.
        squeeze = 1.0 - 0.35 * max(0.0, side * p.yaw)
        ex, ey = ex0 * squeeze, ex0 * 0.62
        ecx = f.cx + f.dx + side * spacing
        eyes.append((ecx, ex, ey))
        if not p.sunglasses:
            cv.ellipse(ecx, eye_y, ex, ey, fill=(250, 250, 248), outline=_scale(f.skin, 0.55),
                       width=0.02 * f.fw)
            ir = 0.78 * ey
            ix = ecx + 0.35 * p.yaw * ex
            cv.ellipse(ix, eye_y, ir * squeeze, ir, fill=p.iris_rgb)
            cv.ellipse(ix, eye_y, 0.5 * ir * squeeze, 0.5 * ir, fill=(12, 10, 10))
            cv.ellipse(ix - 0.3 * ir, eye_y - 0.3 * ir, 0.18 * ir, 0.18 * ir, fill=(255, 255, 255))
    return eyes


def _brows(cv: _Canvas, f: _Layout, eyes: list[tuple[float, float, float]]) -> float:
    """Both eyebrows; returns their height (the fringe stays above it)."""
    p, fh = f.p, f.fh
    by = f.eye_y - p.brow_height * fh
    for side, (ecx, ex, _) in zip((-1.0, 1.0), eyes):
        bx = ecx + ex * np.array([-1.1, 0.0, 1.1])
        tilt = side * p.brow_tilt * 0.05 * fh  # positive tilt: outer ends lower (kind look)
        bys = by + np.array([-tilt, -0.05 * fh, tilt])
        cv.line(bx, bys, f.brow, width=p.brow_thickness * f.fw)
    return by


def _fringe(cv: _Canvas, f: _Layout, by: float) -> None:
    """The fringe on the forehead, or the highlight of a bald scalp."""
    p, cx, cy, fw, fh = f.p, f.cx, f.cy, f.fw, f.fh
    if not p.bald:
        vol = p.hair_volume
        hw = fw * 1.03
        hx = cx + f.hair_dx + hw * _U24
        arc_y = cy - 0.18 * fh - 0.5 * vol * fh - fh * (0.9 + 1.1 * vol) * np.sqrt(1 - _U24 ** 2)
        rel = (hx - (cx + 0.6 * f.dx)) / fw
        edge = (cy - fh * (1.0 - p.fringe_depth)
                + p.fringe_tilt * fh * rel
                + p.fringe_sides * fh * rel ** 2
                + p.fringe_wave * fh * np.abs(np.sin(9.0 * rel)))
        # Keep the fringe above the eyebrows in the middle of the face.
        edge = np.minimum(edge, np.where(np.abs(rel) < 0.7, by - 0.07 * fh, cy + 0.1 * fh))
        edge = np.maximum(edge, arc_y)
        cv.polygon(np.concatenate([hx, hx[::-1]]), np.concatenate([arc_y, edge[::-1]]), f.hair)
    else:
        # Scalp highlight sells the bald head.
        cv.ellipse(cx - 0.3 * fw, cy - 0.78 * fh, 0.25 * fw, 0.09 * fh, fill=_mix(f.skin, (255, 255, 255), 0.28))


def _glasses(cv: _Canvas, f: _Layout, eyes: list[tuple[float, float, float]]) -> None:
    """Eyeglasses (clear lenses) or sunglasses (tinted), round or rectangular, with temples."""
    p, fw, fh, eye_y = f.p, f.fw, f.fh, f.eye_y
    if not (p.eyeglasses or p.sunglasses):
        return
    ex0 = p.eye_size * p.face_width
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
        edge_x = f.cx + side * fw
        if side * (edge_x - x) > 0:
            cv.line([x, edge_x], [bridge_y, bridge_y - 0.01 * fh], frame, width=fwid)


def _downsample_and_light(image: Image.Image, factor: int, p: FaceParams, resolution: int) -> np.ndarray:
    """Box-filter the supersampled canvas down and light it from one side."""
    image = image.reduce(factor) if factor > 1 else image
    out = np.asarray(image, dtype=np.float32)
    ramp = np.linspace(-1.0, 1.0, resolution, dtype=np.float32)
    light = p.brightness + p.light_gradient * ramp
    out = out * light[None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
