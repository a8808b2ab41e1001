"""Object categories of the synthetic source: size priors, colours and multi-part models.

Object frame (every model is built in it)::

    origin  centre of the footprint, on the floor (the model's lowest point is at z = 0)
    +X      front (the side a person faces: the seat of a chair, the screen of a tv)
    +Y      the object's left (right-handed: Y = Z x X)
    +Z      up

Dimensions are ``(L, W, H)``: L along X (depth, front-back), W along Y (width), H along Z
(height), metres. A model is a list of :class:`Part` primitives (boxes, cylinders, spheres,
ellipsoids) that are axis-aligned in the object frame, so the object's tight box is exactly the
min/max of its parts (:meth:`Model.extent`). Supporting surfaces (:class:`Surface`) say where
small objects may stand (table tops, shelf boards, a sofa seat, a bed's mattress).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Range = tuple[float, float]
RGBA = tuple[float, float, float, float]

COLORS: dict[str, tuple[float, float, float]] = {
    "white": (0.92, 0.92, 0.90),
    "cream": (0.93, 0.89, 0.78),
    "beige": (0.82, 0.74, 0.60),
    "light gray": (0.72, 0.72, 0.72),
    "gray": (0.50, 0.50, 0.52),
    "dark gray": (0.28, 0.28, 0.30),
    "black": (0.10, 0.10, 0.11),
    "light wood": (0.78, 0.62, 0.42),
    "wood": (0.58, 0.40, 0.24),
    "dark wood": (0.36, 0.23, 0.14),
    "red": (0.75, 0.16, 0.14),
    "orange": (0.90, 0.50, 0.15),
    "yellow": (0.92, 0.80, 0.25),
    "green": (0.25, 0.55, 0.28),
    "olive": (0.45, 0.48, 0.22),
    "teal": (0.15, 0.52, 0.52),
    "blue": (0.20, 0.35, 0.72),
    "navy": (0.12, 0.16, 0.36),
    "purple": (0.45, 0.25, 0.55),
    "pink": (0.88, 0.55, 0.62),
    "brown": (0.45, 0.30, 0.20),
    "silver": (0.78, 0.79, 0.80),
}
"""Named base colours (RGB 0..1); an object's main colour name is kept in its attributes."""

WOODS = ("light wood", "wood", "dark wood")
NEUTRALS = ("white", "cream", "beige", "light gray", "gray", "dark gray", "black")
FABRICS = (
    "beige",
    "gray",
    "dark gray",
    "navy",
    "blue",
    "green",
    "teal",
    "red",
    "brown",
    "olive",
    "cream",
    "purple",
)
BRIGHT = ("red", "orange", "yellow", "green", "teal", "blue", "purple", "pink", "white", "black")


@dataclass(frozen=True)
class Part:
    """One primitive of a model, axis-aligned in the object frame.

    ``lo``/``hi`` are its min/max corners (metres). ``shape`` is ``"box"``, ``"ellipsoid"``
    (radii = half extents), ``"sphere"`` (a cube extent) or ``"cylinder"`` whose axis is local
    ``axis`` (``"x"``, ``"y"`` or ``"z"``; the two other extents must be equal: the diameter).
    """

    shape: str
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    rgba: RGBA
    axis: str = "z"


@dataclass(frozen=True)
class Surface:
    """A horizontal rectangle in the object frame where small objects may stand:
    ``x``/``y`` ranges, height ``z`` and free ``clearance`` above it (metres)."""

    x: Range
    y: Range
    z: float
    clearance: float = 10.0


@dataclass
class Model:
    """A built object: its parts and supporting surfaces, in the object frame."""

    parts: list[Part]
    surfaces: list[Surface] = field(default_factory=list)

    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        """Tight axis-aligned bounds ``(lo, hi)`` of all parts in the object frame."""
        lo = np.min([p.lo for p in self.parts], axis=0)
        hi = np.max([p.hi for p in self.parts], axis=0)
        return lo, hi


class _Builder:
    """Collects parts; helpers take min/max corners so extents stay exact."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.surfaces: list[Surface] = []

    def box(self, lo, hi, rgba: RGBA) -> None:
        self.parts.append(Part("box", _t(lo), _t(hi), rgba))

    def ellipsoid(self, lo, hi, rgba: RGBA) -> None:
        self.parts.append(Part("ellipsoid", _t(lo), _t(hi), rgba))

    def sphere(self, c, r: float, rgba: RGBA) -> None:
        c = np.asarray(c, dtype=float)
        self.parts.append(Part("sphere", _t(c - r), _t(c + r), rgba))

    def cyl(self, cx: float, cy: float, z0: float, z1: float, r: float, rgba: RGBA) -> None:
        """Vertical cylinder of radius ``r`` from ``z0`` to ``z1``."""
        self.parts.append(Part("cylinder", (cx - r, cy - r, z0), (cx + r, cy + r, z1), rgba, "z"))

    def cyl_x(self, x0: float, x1: float, cy: float, cz: float, r: float, rgba: RGBA) -> None:
        """Cylinder along X (a disc facing front, e.g. a clock face)."""
        self.parts.append(Part("cylinder", (x0, cy - r, cz - r), (x1, cy + r, cz + r), rgba, "x"))

    def surface(self, x: Range, y: Range, z: float, clearance: float = 10.0) -> None:
        self.surfaces.append(
            Surface(
                (float(x[0]), float(x[1])), (float(y[0]), float(y[1])), float(z), float(clearance)
            )
        )

    def model(self) -> Model:
        return Model(self.parts, self.surfaces)


def _t(v) -> tuple[float, float, float]:
    a = [float(x) for x in v]
    return (a[0], a[1], a[2])


def shade(rgb: tuple[float, float, float], factor: float) -> RGBA:
    """``rgb`` scaled by ``factor`` (darker < 1 < lighter), clipped, as opaque RGBA."""
    c = np.clip(np.asarray(rgb) * factor, 0.0, 1.0)
    return (float(c[0]), float(c[1]), float(c[2]), 1.0)


# ---------------------------------------------------------------------------------- builders
# Each builder: (rng, L, W, H, main rgb, accent rgb) -> Model, filling exactly
# [-L/2, L/2] x [-W/2, W/2] x [0, H].
Builder = Callable[[np.random.Generator, float, float, float, tuple, tuple], Model]


def _legs(b: _Builder, L, W, h, t, inset, rgba, round_legs=False):
    for sx in (-1, 1):
        for sy in (-1, 1):
            cx, cy = sx * (L / 2 - inset - t / 2), sy * (W / 2 - inset - t / 2)
            if round_legs:
                b.cyl(cx, cy, 0.0, h, t / 2, rgba)
            else:
                b.box((cx - t / 2, cy - t / 2, 0.0), (cx + t / 2, cy + t / 2, h), rgba)


def build_table(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    top = rng.uniform(0.03, 0.05)
    b.box((-L / 2, -W / 2, H - top), (L / 2, W / 2, H), shade(main, 1.0))
    _legs(
        b,
        L,
        W,
        H - top,
        rng.uniform(0.04, 0.07),
        rng.uniform(0.0, 0.06),
        shade(accent, 0.9),
        round_legs=bool(rng.random() < 0.4),
    )
    b.surface((-L / 2 + 0.03, L / 2 - 0.03), (-W / 2 + 0.03, W / 2 - 0.03), H)
    return b.model()


def build_round_table(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    r = min(L, W) / 2
    top = rng.uniform(0.03, 0.05)
    b.cyl(0, 0, H - top, H, r, shade(main, 1.0))
    b.cyl(0, 0, 0.03, H - top, rng.uniform(0.04, 0.06), shade(accent, 0.9))
    b.cyl(0, 0, 0.0, 0.03, r * 0.55, shade(accent, 0.8))
    b.surface((-r * 0.65, r * 0.65), (-r * 0.65, r * 0.65), H)
    return b.model()


def build_chair(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    seat_h = rng.uniform(0.42, 0.48)
    seat_t = 0.05
    back_t = rng.uniform(0.04, 0.07)
    leg = rng.uniform(0.03, 0.045)
    _legs(b, L, W, seat_h - seat_t, leg, 0.01, shade(accent, 0.8), round_legs=rng.random() < 0.5)
    b.box((-L / 2, -W / 2, seat_h - seat_t), (L / 2, W / 2, seat_h), shade(main, 1.0))
    b.box((-L / 2, -W / 2, seat_h), (-L / 2 + back_t, W / 2, H), shade(main, 0.9))
    return b.model()


def build_stool(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    r = min(L, W) / 2
    b.cyl(0, 0, H - 0.04, H, r, shade(main, 1.0))
    leg = 0.03
    for sx in (-1, 1):
        for sy in (-1, 1):
            c = r * 0.6
            b.box(
                (sx * c - leg / 2, sy * c - leg / 2, 0.0),
                (sx * c + leg / 2, sy * c + leg / 2, H - 0.04),
                shade(accent, 0.8),
            )
    b.cyl(0, 0, H * 0.3, H * 0.3 + 0.02, r * 0.62, shade(accent, 0.8))
    return b.model()


def _seating(rng, L, W, H, main, accent, seats: int) -> Model:
    """Sofa / armchair: base, seat cushions, backrest (at -X) and two arms."""
    b = _Builder()
    arm_w = rng.uniform(0.12, 0.2)
    arm_h = rng.uniform(0.55, 0.68)
    back_t = rng.uniform(0.15, 0.22)
    base_h = rng.uniform(0.2, 0.28)
    seat_h = rng.uniform(0.42, 0.48)
    fabric = shade(main, 1.0)
    darker = shade(main, 0.85)
    b.box((-L / 2, -W / 2, 0.06), (L / 2, W / 2, base_h), darker)
    foot = 0.04
    for sx in (-1, 1):
        for sy in (-1, 1):
            cx, cy = sx * (L / 2 - 0.06), sy * (W / 2 - 0.06)
            b.box(
                (cx - foot / 2, cy - foot / 2, 0.0),
                (cx + foot / 2, cy + foot / 2, 0.06),
                shade(accent, 0.5),
            )
    inner = W - 2 * arm_w
    for k in range(seats):
        y0 = -W / 2 + arm_w + k * inner / seats
        b.box(
            (-L / 2 + back_t, y0 + 0.005, base_h),
            (L / 2, y0 + inner / seats - 0.005, seat_h),
            fabric,
        )
    b.box((-L / 2, -W / 2, base_h), (-L / 2 + back_t, W / 2, H), darker)
    for sy in (-1, 1):
        y0, y1 = (-W / 2, -W / 2 + arm_w) if sy < 0 else (W / 2 - arm_w, W / 2)
        b.box((-L / 2 + back_t, y0, base_h), (L / 2, y1, arm_h), darker)
    b.surface(
        (-L / 2 + back_t + 0.02, L / 2 - 0.05),
        (-W / 2 + arm_w + 0.02, W / 2 - arm_w - 0.02),
        seat_h,
    )
    return b.model()


def build_sofa(rng, L, W, H, main, accent) -> Model:
    return _seating(rng, L, W, H, main, accent, seats=int(rng.integers(2, 4)))


def build_armchair(rng, L, W, H, main, accent) -> Model:
    return _seating(rng, L, W, H, main, accent, seats=1)


def build_bed(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    frame_h = rng.uniform(0.25, 0.35)
    mat_h = rng.uniform(0.18, 0.26)
    head_t = rng.uniform(0.05, 0.1)
    wood = shade(accent, 1.0)
    b.box((-L / 2, -W / 2, 0.0), (L / 2, W / 2, frame_h), wood)
    b.box(
        (-L / 2 + head_t, -W / 2 + 0.02, frame_h),
        (L / 2 - 0.02, W / 2 - 0.02, frame_h + mat_h),
        shade(COLORS["white"], 0.97),
    )
    blanket_x0 = -L / 2 + head_t + rng.uniform(0.45, 0.6)
    b.box(
        (blanket_x0, -W / 2 + 0.01, frame_h + 0.02),
        (L / 2 - 0.01, W / 2 - 0.01, frame_h + mat_h + 0.03),
        shade(main, 1.0),
    )
    b.box((-L / 2, -W / 2, frame_h), (-L / 2 + head_t, W / 2, H), shade(accent, 0.85))
    top = frame_h + mat_h
    b.surface((-L / 2 + head_t + 0.03, blanket_x0 - 0.02), (-W / 2 + 0.05, W / 2 - 0.05), top)
    return b.model()


def build_cabinet(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    body = shade(main, 1.0)
    door_t = 0.02
    plinth = 0.06
    b.box((-L / 2, -W / 2, plinth), (L / 2 - door_t, W / 2, H), body)
    b.box(
        (-L / 2 + 0.02, -W / 2 + 0.02, 0.0),
        (L / 2 - door_t - 0.03, W / 2 - 0.02, plinth),
        shade(main, 0.6),
    )
    n_doors = 1 if W < 0.55 else 2 if W < 1.2 else 3
    dw = W / n_doors
    for k in range(n_doors):
        y0 = -W / 2 + k * dw
        b.box(
            (L / 2 - door_t, y0 + 0.004, plinth + 0.004),
            (L / 2, y0 + dw - 0.004, H - 0.004),
            shade(main, 0.93),
        )
    handle = shade(accent, 1.0)
    for k in range(n_doors):
        y = -W / 2 + (k + 0.5) * dw + (0.35 * dw if k % 2 == 0 else -0.35 * dw)
        zc = min(H - 0.15, 1.05) if H > 1.2 else H - 0.12
        b.box(
            (L / 2 - door_t - 0.001, y - 0.01, zc - 0.06),
            (L / 2 - 0.001, y + 0.01, zc + 0.06),
            handle,
        )
    if H <= 1.3:
        b.surface((-L / 2 + 0.03, L / 2 - 0.05), (-W / 2 + 0.03, W / 2 - 0.03), H)
    return b.model()


def build_dresser(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    front_t = 0.02
    b.box((-L / 2, -W / 2, 0.05), (L / 2 - front_t, W / 2, H), shade(main, 1.0))
    b.box(
        (-L / 2 + 0.02, -W / 2 + 0.02, 0.0),
        (L / 2 - front_t - 0.02, W / 2 - 0.02, 0.05),
        shade(main, 0.6),
    )
    rows = int(rng.integers(3, 5))
    cols = 2 if W > 1.0 else 1
    rh = (H - 0.05 - 0.03) / rows
    cw = W / cols
    for r in range(rows):
        for c in range(cols):
            z0 = 0.05 + r * rh
            y0 = -W / 2 + c * cw
            b.box(
                (L / 2 - front_t, y0 + 0.006, z0 + 0.006),
                (L / 2 - 0.0, y0 + cw - 0.006, z0 + rh - 0.006),
                shade(main, 0.92),
            )
    b.surface((-L / 2 + 0.03, L / 2 - 0.05), (-W / 2 + 0.03, W / 2 - 0.03), H)
    return b.model()


def build_nightstand(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    front_t = 0.02
    legs = rng.uniform(0.05, 0.12)
    _legs(b, L - front_t, W, legs, 0.03, 0.01, shade(main, 0.6))
    b.box((-L / 2, -W / 2, legs), (L / 2 - front_t, W / 2, H), shade(main, 1.0))
    b.box(
        (L / 2 - front_t, -W / 2 + 0.01, legs + 0.02),
        (L / 2, W / 2 - 0.01, H - 0.03),
        shade(main, 0.9),
    )
    b.surface((-L / 2 + 0.03, L / 2 - 0.05), (-W / 2 + 0.03, W / 2 - 0.03), H)
    return b.model()


def build_desk(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    top = 0.035
    b.box((-L / 2, -W / 2, H - top), (L / 2, W / 2, H), shade(main, 1.0))
    side_t = 0.03
    drawer_w = rng.uniform(0.35, 0.45) if W > 1.1 else 0.0
    for sy in (-1, 1):
        y0, y1 = (-W / 2, -W / 2 + side_t) if sy < 0 else (W / 2 - side_t, W / 2)
        b.box((-L / 2 + 0.02, y0, 0.0), (L / 2 - 0.04, y1, H - top), shade(accent, 0.85))
    if drawer_w:
        b.box(
            (-L / 2 + 0.02, W / 2 - side_t - drawer_w, 0.05),
            (L / 2 - 0.04, W / 2 - side_t, H - top),
            shade(main, 0.85),
        )
    b.box(
        (-L / 2 + 0.02, -W / 2 + side_t, H - top - 0.25),
        (-L / 2 + 0.04, W / 2 - side_t, H - top - 0.02),
        shade(accent, 0.8),
    )
    b.surface((-L / 2 + 0.03, L / 2 - 0.03), (-W / 2 + 0.03, W / 2 - 0.03), H)
    return b.model()


def build_shelf(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    t = 0.025
    wood = shade(main, 1.0)
    b.box((-L / 2, -W / 2, 0.0), (L / 2, -W / 2 + t, H), wood)
    b.box((-L / 2, W / 2 - t, 0.0), (L / 2, W / 2, H), wood)
    b.box((-L / 2, -W / 2 + t, 0.0), (-L / 2 + 0.012, W / 2 - t, H), shade(main, 0.75))
    levels = int(rng.integers(3, 6))
    zs = np.linspace(0.04, H - t, levels + 1)
    for k, z in enumerate(zs):
        z0 = 0.0 if k == 0 else z
        b.box((-L / 2 + 0.012, -W / 2 + t, z0), (L / 2, W / 2 - t, z + t), wood)
        if k < levels:
            clearance = zs[k + 1] - (z + t) - 0.01
            b.surface(
                (-L / 2 + 0.03, L / 2 - 0.02),
                (-W / 2 + t + 0.01, W / 2 - t - 0.01),
                z + t,
                clearance,
            )
    b.surface((-L / 2 + 0.03, L / 2 - 0.02), (-W / 2 + 0.02, W / 2 - 0.02), H)
    return b.model()


def build_table_lamp(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    r = min(L, W) / 2
    base_h = 0.03
    shade_h = H * rng.uniform(0.35, 0.45)
    b.cyl(0, 0, 0.0, base_h, r * 0.55, shade(accent, 0.8))
    b.cyl(0, 0, base_h, H - shade_h + 0.02, 0.012, shade(accent, 0.9))
    b.cyl(0, 0, H - shade_h, H, r, shade(main, 1.1))
    return b.model()


def build_floor_lamp(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    r = min(L, W) / 2
    shade_h = rng.uniform(0.25, 0.35)
    b.cyl(0, 0, 0.0, 0.03, r * 0.7, shade(accent, 0.7))
    b.cyl(0, 0, 0.03, H - shade_h + 0.02, 0.015, shade(accent, 0.9))
    b.cyl(0, 0, H - shade_h, H, r, shade(main, 1.1))
    return b.model()


def build_monitor(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    dark = shade(COLORS["black"], 1.0)
    screen_t = 0.03
    screen_h = min(H - 0.08, W * rng.uniform(0.55, 0.62))
    b.box((-L / 2, -0.12, 0.0), (L / 2, 0.12, 0.015), shade(main, 1.0))
    b.box((-0.03, -0.03, 0.015), (0.0, 0.03, H - screen_h * 0.5), shade(main, 1.0))
    b.box((0.0, -W / 2, H - screen_h), (screen_t, W / 2, H), shade(main, 0.9))
    b.box(
        (screen_t, -W / 2 + 0.012, H - screen_h + 0.012),
        (screen_t + 0.003, W / 2 - 0.012, H - 0.012),
        dark,
    )
    # keep the box exactly L deep: the screen may not reach +L/2
    return b.model()


def build_tv(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    panel_t = 0.05
    screen_h = W * rng.uniform(0.54, 0.58)
    screen_h = min(screen_h, H - 0.06)
    b.box((-L / 2, -W * 0.2, 0.0), (L / 2, W * 0.2, 0.02), shade(main, 0.8))
    b.box((-0.02, -0.04, 0.02), (0.02, 0.04, H - screen_h + 0.05), shade(main, 0.8))
    b.box((-panel_t / 2, -W / 2, H - screen_h), (panel_t / 2, W / 2, H), shade(main, 1.0))
    b.box(
        (panel_t / 2, -W / 2 + 0.015, H - screen_h + 0.015),
        (panel_t / 2 + 0.004, W / 2 - 0.015, H - 0.015),
        shade(COLORS["black"], 0.6),
    )
    return b.model()


def build_wall_tv(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    b.box((-L / 2, -W / 2, 0.0), (L / 2 - 0.004, W / 2, H), shade(main, 1.0))
    b.box(
        (L / 2 - 0.004, -W / 2 + 0.015, 0.015),
        (L / 2, W / 2 - 0.015, H - 0.015),
        shade(COLORS["black"], 0.6),
    )
    return b.model()


def build_plant(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    r = min(L, W) / 2
    pot_h = H * rng.uniform(0.25, 0.4)
    pot_r = r * rng.uniform(0.5, 0.7)
    b.cyl(0, 0, 0.0, pot_h, pot_r, shade(accent, 1.0))
    leaf = shade(main, 1.0)
    fol_h = H - pot_h
    b.ellipsoid((-r, -r, pot_h + fol_h * 0.25), (r, r, H), leaf)
    b.ellipsoid(
        (-r * 0.6, -r * 0.6, pot_h - 0.02),
        (r * 0.6, r * 0.6, pot_h + fol_h * 0.6),
        shade(main, 0.8),
    )
    return b.model()


def build_box(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    lid = min(0.03, H * 0.12)
    b.box(
        (-L / 2 + 0.005, -W / 2 + 0.005, 0.0),
        (L / 2 - 0.005, W / 2 - 0.005, H - lid),
        shade(main, 1.0),
    )
    b.box((-L / 2, -W / 2, H - lid), (L / 2, W / 2, H), shade(main, 0.85))
    return b.model()


def build_trash_can(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    r = min(L, W) / 2
    if rng.random() < 0.6:
        b.cyl(0, 0, 0.0, H - 0.03, r * 0.92, shade(main, 1.0))
        b.cyl(0, 0, H - 0.03, H, r, shade(main, 0.75))
    else:
        b.box(
            (-L / 2 + 0.01, -W / 2 + 0.01, 0.0),
            (L / 2 - 0.01, W / 2 - 0.01, H - 0.03),
            shade(main, 1.0),
        )
        b.box((-L / 2, -W / 2, H - 0.03), (L / 2, W / 2, H), shade(main, 0.75))
    return b.model()


def build_toilet(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    ceramic = shade(main, 1.0)
    tank_l = rng.uniform(0.18, 0.22)
    seat_h = rng.uniform(0.38, 0.43)
    b.box((-L / 2 + tank_l, -0.12, 0.0), (L / 2 - 0.15, 0.12, seat_h - 0.1), shade(main, 0.95))
    b.ellipsoid(
        (-L / 2 + tank_l - 0.02, -W / 2 + 0.02, seat_h - 0.22),
        (L / 2, W / 2 - 0.02, seat_h - 0.02),
        ceramic,
    )
    b.box(
        (-L / 2 + tank_l, -W / 2 + 0.01, seat_h - 0.03),
        (L / 2 - 0.03, W / 2 - 0.01, seat_h),
        shade(accent, 1.0),
    )
    b.box((-L / 2, -W / 2, seat_h - 0.05), (-L / 2 + tank_l, W / 2, H), ceramic)
    return b.model()


def build_sink(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    ceramic = shade(main, 1.0)
    basin_h = 0.16
    if rng.random() < 0.5:  # pedestal sink
        b.cyl(-L * 0.1, 0, 0.0, H - basin_h, 0.08, ceramic)
        b.box((-L / 2, -W / 2, H - basin_h), (L / 2, W / 2, H - 0.12), ceramic)
        body_top = H - 0.12
    else:  # vanity
        b.box((-L / 2, -W / 2, 0.0), (L / 2, W / 2, H - 0.12), shade(accent, 1.0))
        body_top = H - 0.12
    b.box((-L / 2, -W / 2, body_top), (L / 2, W / 2, H - 0.09), ceramic)
    b.box(
        (-L / 2 + 0.06, -W / 2 + 0.05, H - 0.09),
        (L / 2 - 0.02, W / 2 - 0.05, H - 0.085),
        shade(main, 0.8),
    )
    b.box((-L / 2, -W / 2, H - 0.09), (-L / 2 + 0.05, W / 2, H - 0.07), ceramic)
    b.cyl(-L / 2 + 0.03, 0, H - 0.07, H, 0.012, shade(COLORS["silver"], 1.0))
    return b.model()


def build_refrigerator(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    door_t = 0.04
    b.box((-L / 2, -W / 2, 0.0), (L / 2 - door_t, W / 2, H), shade(main, 0.95))
    split = H * rng.uniform(0.55, 0.68)
    b.box((L / 2 - door_t, -W / 2, 0.02), (L / 2 - 0.02, W / 2, split - 0.01), shade(main, 1.0))
    b.box((L / 2 - door_t, -W / 2, split + 0.01), (L / 2 - 0.02, W / 2, H), shade(main, 1.0))
    handle = shade(accent, 1.0)
    y = W / 2 - 0.08
    b.box((L / 2 - 0.02, y - 0.015, split - 0.45), (L / 2, y + 0.015, split - 0.1), handle)
    b.box((L / 2 - 0.02, y - 0.015, split + 0.1), (L / 2, y + 0.015, split + 0.4), handle)
    return b.model()


def build_bathtub(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    rim = rng.uniform(0.06, 0.1)
    c = shade(main, 1.0)
    b.box((-L / 2, -W / 2, 0.0), (L / 2, W / 2, 0.12), c)
    b.box((-L / 2, -W / 2, 0.12), (-L / 2 + rim, W / 2, H), c)
    b.box((L / 2 - rim, -W / 2, 0.12), (L / 2, W / 2, H), c)
    b.box((-L / 2 + rim, -W / 2, 0.12), (L / 2 - rim, -W / 2 + rim, H), c)
    b.box((-L / 2 + rim, W / 2 - rim, 0.12), (L / 2 - rim, W / 2, H), c)
    b.box((-L / 2 + rim, -W / 2 + rim, 0.12), (L / 2 - rim, W / 2 - rim, 0.14), shade(main, 0.85))
    return b.model()


def build_door(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    frame_w = 0.06
    frame = shade(accent, 1.0)
    b.box((-L / 2, -W / 2, 0.0), (L / 2, -W / 2 + frame_w, H), frame)
    b.box((-L / 2, W / 2 - frame_w, 0.0), (L / 2, W / 2, H), frame)
    b.box((-L / 2, -W / 2 + frame_w, H - frame_w), (L / 2, W / 2 - frame_w, H), frame)
    b.box(
        (-L / 2, -W / 2 + frame_w, 0.0),
        (L / 2 - 0.02, W / 2 - frame_w, H - frame_w),
        shade(main, 1.0),
    )
    knob_y = W / 2 - frame_w - 0.08 if rng.random() < 0.5 else -W / 2 + frame_w + 0.08
    b.box(
        (L / 2 - 0.02, knob_y - 0.02, 0.98),
        (L / 2, knob_y + 0.02, 1.06),
        shade(COLORS["silver"], 0.9),
    )
    return b.model()


def build_window(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    fw = rng.uniform(0.04, 0.07)
    frame = shade(main, 1.0)
    glass = (0.62, 0.78, 0.92, 1.0)
    b.box((-L / 2, -W / 2 + fw, fw), (-L / 2 + 0.01, W / 2 - fw, H - fw), glass)
    b.box((-L / 2, -W / 2, 0.0), (L / 2, -W / 2 + fw, H), frame)
    b.box((-L / 2, W / 2 - fw, 0.0), (L / 2, W / 2, H), frame)
    b.box((-L / 2, -W / 2 + fw, H - fw), (L / 2, W / 2 - fw, H), frame)
    b.box((-L / 2, -W / 2 + fw, 0.0), (L / 2, W / 2 - fw, fw), frame)
    if W > 0.9:
        b.box((-L / 2, -fw / 3, fw), (L / 2 - 0.01, fw / 3, H - fw), frame)
    return b.model()


def build_picture(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    fw = rng.uniform(0.02, 0.05)
    b.box((-L / 2, -W / 2, 0.0), (L / 2 - 0.005, W / 2, H), shade(accent, 1.0))
    b.box((L / 2 - 0.005, -W / 2 + fw, fw), (L / 2, W / 2 - fw, H - fw), shade(main, 1.0))
    # a second colour block so pictures read as pictures
    other = COLORS[BRIGHT[int(rng.integers(len(BRIGHT)))]]
    y0 = rng.uniform(-W / 2 + fw, 0)
    z0 = rng.uniform(fw, H / 2)
    b.box(
        (L / 2 - 0.004, y0, z0),
        (L / 2 + 0.0, y0 + (W / 2 - fw) * 0.8, z0 + (H / 2 - fw) * 0.8),
        shade(other, 1.0),
    )
    return b.model()


def build_mirror(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    fw = rng.uniform(0.02, 0.04)
    b.box((-L / 2, -W / 2, 0.0), (L / 2 - 0.005, W / 2, H), shade(main, 1.0))
    b.box((L / 2 - 0.005, -W / 2 + fw, fw), (L / 2, W / 2 - fw, H - fw), (0.80, 0.86, 0.88, 1.0))
    return b.model()


def build_clock(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    r = min(W, H) / 2
    b.cyl_x(-L / 2, L / 2 - 0.004, 0.0, H / 2, r, shade(main, 1.0))
    b.cyl_x(L / 2 - 0.004, L / 2, 0.0, H / 2, r * 0.85, shade(COLORS["white"], 1.0))
    return b.model()


def build_pillow(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    b.ellipsoid((-L / 2, -W / 2, 0.0), (L / 2, W / 2, H), shade(main, 1.0))
    b.box((-L * 0.35, -W * 0.35, H * 0.1), (L * 0.35, W * 0.35, H * 0.9), shade(main, 0.95))
    return b.model()


def build_bottle(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    r = min(L, W) / 2
    body = H * rng.uniform(0.6, 0.7)
    b.cyl(0, 0, 0.0, body, r, (*shade(main, 1.0)[:3], 1.0))
    b.cyl(0, 0, body, H - 0.025, r * 0.4, shade(main, 0.9))
    b.cyl(0, 0, H - 0.025, H, r * 0.45, shade(accent, 1.0))
    return b.model()


def build_cup(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    r = W / 2
    b.cyl(-L / 2 + r, 0, 0.0, H, r, shade(main, 1.0))
    b.box((-L / 2 + 2 * r, -0.006, H * 0.25), (L / 2, 0.006, H * 0.75), shade(main, 0.9))
    return b.model()


def build_vase(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    r = min(L, W) / 2
    b.ellipsoid((-r, -r, 0.0), (r, r, H * 0.7), shade(main, 1.0))
    b.cyl(0, 0, H * 0.6, H, r * 0.45, shade(main, 0.9))
    return b.model()


def build_book(rng, L, W, H, main, accent) -> Model:
    """A book lying flat (H is its thickness) or standing (W is its thickness)."""
    b = _Builder()
    cover = shade(main, 1.0)
    pages = shade(COLORS["cream"], 1.0)
    if min(L, W) > H:  # lying
        c = min(0.004, H * 0.15)
        b.box((-L / 2, -W / 2, 0.0), (L / 2, W / 2, c), cover)
        b.box((-L / 2, -W / 2, H - c), (L / 2, W / 2, H), cover)
        b.box((-L / 2, -W / 2, c), (-L / 2 + c, W / 2, H - c), cover)
        b.box((-L / 2 + c, -W / 2 + 0.003, c), (L / 2 - 0.003, W / 2 - 0.003, H - c), pages)
    else:  # standing, spine facing front (+X)
        c = min(0.004, W * 0.15)
        b.box((-L / 2, -W / 2, 0.0), (L / 2, -W / 2 + c, H), cover)
        b.box((-L / 2, W / 2 - c, 0.0), (L / 2, W / 2, H), cover)
        b.box((L / 2 - c, -W / 2 + c, 0.0), (L / 2, W / 2 - c, H), cover)
        b.box((-L / 2 + 0.003, -W / 2 + c, 0.003), (L / 2 - c, W / 2 - c, H - 0.003), pages)
    return b.model()


def build_microwave(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    b.box((-L / 2, -W / 2, 0.0), (L / 2 - 0.005, W / 2, H), shade(main, 1.0))
    b.box(
        (L / 2 - 0.005, -W / 2 + 0.03, 0.03),
        (L / 2, W / 2 - 0.14, H - 0.03),
        shade(COLORS["black"], 0.8),
    )
    b.box((L / 2 - 0.005, W / 2 - 0.12, 0.04), (L / 2, W / 2 - 0.03, H - 0.04), shade(accent, 1.0))
    return b.model()


def build_laptop(rng, L, W, H, main, accent) -> Model:
    b = _Builder()
    base_t = 0.018
    b.box((-L / 2 + 0.012, -W / 2, 0.0), (L / 2, W / 2, base_t), shade(main, 1.0))
    b.box(
        (-L / 2 + 0.02, -W / 2 + 0.02, base_t),
        (L / 2 - 0.03, W / 2 - 0.02, base_t + 0.002),
        shade(COLORS["dark gray"], 1.0),
    )
    b.box((-L / 2, -W / 2, 0.0), (-L / 2 + 0.008, W / 2, H), shade(main, 1.0))
    b.box(
        (-L / 2 + 0.008, -W / 2 + 0.015, base_t + 0.01),
        (-L / 2 + 0.012, W / 2 - 0.015, H - 0.01),
        shade(COLORS["navy"], 0.7),
    )
    return b.model()


# ---------------------------------------------------------------------------------- variants
PLACEMENTS = ("wall", "free", "around", "surface", "wall_mount")
"""How a variant is placed: ``wall`` back (-X) against a wall, ``free`` anywhere on the floor
with any yaw, ``around`` facing a table or desk (else free), ``surface`` on a supporter's
surface, ``wall_mount`` hung on a wall (bottom at ``mount_z``)."""

SUPPORT_TABLES = ("table", "desk", "nightstand", "dresser", "cabinet", "shelf")


@dataclass(frozen=True)
class Variant:
    """A way to build a category: size priors ``(L, W, H)`` ranges (metres), placement,
    supporters (for ``surface``), wall-mount bottom height range, colour choices, weight."""

    category: str
    name: str
    dims: tuple[Range, Range, Range]
    placement: str
    build: Builder
    colors: tuple[str, ...]
    accents: tuple[str, ...] = NEUTRALS
    supporters: tuple[str, ...] = ()
    mount_z: Range = (0.0, 0.0)
    weight: float = 1.0
    square: bool = False
    """Round or square in plan: W is set to L (for wall-mounted discs, H is set to W)."""


def _v(category, name, dims, placement, build, colors, **kw) -> Variant:
    return Variant(category, name, dims, placement, build, tuple(colors), **kw)


VARIANTS: tuple[Variant, ...] = (
    _v(
        "table",
        "dining",
        ((0.8, 1.0), (1.2, 1.8), (0.72, 0.78)),
        "free",
        build_table,
        (*WOODS, "white"),
        accents=(*WOODS, "black", "silver"),
    ),
    _v(
        "table",
        "coffee",
        ((0.5, 0.7), (0.9, 1.3), (0.38, 0.48)),
        "free",
        build_table,
        (*WOODS, "white", "black"),
        accents=(*WOODS, "black"),
    ),
    _v(
        "table",
        "round",
        ((0.8, 1.1), (0.8, 1.1), (0.72, 0.76)),
        "free",
        build_round_table,
        (*WOODS, "white"),
        accents=("black", "silver", *WOODS),
        square=True,
    ),
    _v(
        "chair",
        "dining",
        ((0.45, 0.55), (0.42, 0.52), (0.8, 1.0)),
        "around",
        build_chair,
        WOODS + FABRICS[:6],
        accents=(*WOODS, "black", "silver"),
    ),
    _v(
        "stool",
        "bar",
        ((0.3, 0.4), (0.3, 0.4), (0.45, 0.75)),
        "free",
        build_stool,
        (*WOODS, "black", "red", "white"),
        accents=("black", "silver", *WOODS),
        square=True,
    ),
    _v(
        "sofa",
        "sofa",
        ((0.8, 0.95), (1.6, 2.4), (0.75, 0.9)),
        "wall",
        build_sofa,
        FABRICS,
        accents=("black", "dark wood"),
    ),
    _v(
        "armchair",
        "armchair",
        ((0.75, 0.9), (0.75, 0.95), (0.75, 0.95)),
        "free",
        build_armchair,
        FABRICS,
        accents=("black", "dark wood"),
    ),
    _v(
        "bed",
        "bed",
        ((1.95, 2.15), (0.95, 1.8), (0.9, 1.2)),
        "wall",
        build_bed,
        (*FABRICS, "white"),
        accents=(*WOODS, "white", "gray"),
    ),
    _v(
        "cabinet",
        "low",
        ((0.4, 0.55), (0.6, 1.4), (0.7, 1.0)),
        "wall",
        build_cabinet,
        WOODS + NEUTRALS[:5],
        accents=("silver", "black", "dark gray"),
    ),
    _v(
        "cabinet",
        "tall",
        ((0.5, 0.62), (0.8, 1.4), (1.7, 2.1)),
        "wall",
        build_cabinet,
        WOODS + NEUTRALS[:5],
        accents=("silver", "black", "dark gray"),
        weight=0.6,
    ),
    _v(
        "dresser",
        "dresser",
        ((0.45, 0.55), (0.8, 1.6), (0.75, 1.0)),
        "wall",
        build_dresser,
        (*WOODS, "white", "cream", "gray"),
    ),
    _v(
        "nightstand",
        "nightstand",
        ((0.35, 0.45), (0.4, 0.55), (0.45, 0.65)),
        "wall",
        build_nightstand,
        (*WOODS, "white", "cream", "gray"),
    ),
    _v(
        "desk",
        "desk",
        ((0.6, 0.8), (1.0, 1.6), (0.72, 0.76)),
        "wall",
        build_desk,
        (*WOODS, "white", "black", "light gray"),
        accents=("black", "silver", "white", *WOODS),
    ),
    _v(
        "shelf",
        "bookshelf",
        ((0.28, 0.4), (0.6, 1.2), (1.2, 2.0)),
        "wall",
        build_shelf,
        (*WOODS, "white", "black"),
    ),
    _v(
        "lamp",
        "table",
        ((0.2, 0.35), (0.2, 0.35), (0.35, 0.6)),
        "surface",
        build_table_lamp,
        ("white", "cream", "beige", "yellow", "light gray"),
        accents=("black", "silver", "wood"),
        supporters=("nightstand", "desk", "table", "dresser", "cabinet"),
        square=True,
    ),
    _v(
        "lamp",
        "floor",
        ((0.3, 0.45), (0.3, 0.45), (1.4, 1.8)),
        "free",
        build_floor_lamp,
        ("white", "cream", "beige", "yellow"),
        accents=("black", "silver"),
        square=True,
        weight=0.6,
    ),
    _v(
        "monitor",
        "monitor",
        ((0.18, 0.25), (0.45, 0.7), (0.38, 0.52)),
        "surface",
        build_monitor,
        ("black", "dark gray", "silver", "white"),
        supporters=("desk", "table"),
    ),
    _v(
        "tv",
        "stand",
        ((0.2, 0.3), (0.8, 1.4), (0.5, 0.85)),
        "surface",
        build_tv,
        ("black", "dark gray"),
        supporters=("cabinet", "dresser", "table"),
    ),
    _v(
        "tv",
        "wall",
        ((0.05, 0.08), (0.9, 1.5), (0.5, 0.85)),
        "wall_mount",
        build_wall_tv,
        ("black", "dark gray"),
        mount_z=(0.9, 1.3),
        weight=0.6,
    ),
    _v(
        "plant",
        "floor",
        ((0.35, 0.6), (0.35, 0.6), (0.6, 1.5)),
        "free",
        build_plant,
        ("green", "olive", "teal"),
        accents=("white", "brown", "orange", "gray", "black"),
        square=True,
    ),
    _v(
        "plant",
        "small",
        ((0.12, 0.25), (0.12, 0.25), (0.2, 0.4)),
        "surface",
        build_plant,
        ("green", "olive"),
        accents=("white", "brown", "orange", "gray"),
        supporters=SUPPORT_TABLES,
        square=True,
    ),
    _v(
        "box",
        "floor",
        ((0.3, 0.6), (0.3, 0.7), (0.2, 0.5)),
        "free",
        build_box,
        ("brown", "beige", "white", "blue", "red", "gray"),
    ),
    _v(
        "box",
        "small",
        ((0.1, 0.25), (0.12, 0.3), (0.06, 0.2)),
        "surface",
        build_box,
        ("brown", "beige", "white", "blue", "red", "green", "yellow"),
        supporters=SUPPORT_TABLES,
    ),
    _v(
        "trash can",
        "trash can",
        ((0.25, 0.4), (0.25, 0.4), (0.3, 0.7)),
        "free",
        build_trash_can,
        ("gray", "black", "silver", "white", "blue", "green"),
        square=True,
    ),
    _v(
        "toilet",
        "toilet",
        ((0.65, 0.75), (0.36, 0.42), (0.75, 0.85)),
        "wall",
        build_toilet,
        ("white",),
        accents=("white", "black", "light wood"),
    ),
    _v(
        "sink",
        "sink",
        ((0.45, 0.55), (0.5, 0.7), (0.82, 0.92)),
        "wall",
        build_sink,
        ("white",),
        accents=(*WOODS, "white", "gray"),
    ),
    _v(
        "bathtub",
        "bathtub",
        ((0.7, 0.8), (1.5, 1.8), (0.5, 0.6)),
        "wall",
        build_bathtub,
        ("white", "cream"),
    ),
    _v(
        "refrigerator",
        "refrigerator",
        ((0.6, 0.75), (0.6, 0.9), (1.6, 1.9)),
        "wall",
        build_refrigerator,
        ("white", "silver", "black", "cream"),
        accents=("silver", "black", "gray"),
    ),
    _v(
        "microwave",
        "microwave",
        ((0.3, 0.4), (0.45, 0.55), (0.25, 0.32)),
        "surface",
        build_microwave,
        ("white", "black", "silver"),
        accents=("dark gray", "silver"),
        supporters=("cabinet", "table", "dresser"),
    ),
    _v(
        "door",
        "door",
        ((0.04, 0.06), (0.8, 1.0), (1.95, 2.1)),
        "wall_mount",
        build_door,
        (*WOODS, "white", "cream", "gray"),
        accents=("white", *WOODS),
    ),
    _v(
        "window",
        "window",
        ((0.04, 0.08), (0.8, 1.6), (0.9, 1.4)),
        "wall_mount",
        build_window,
        ("white", "black", "wood", "dark gray"),
        mount_z=(0.8, 1.0),
    ),
    _v(
        "picture",
        "picture",
        ((0.02, 0.04), (0.3, 1.0), (0.3, 0.8)),
        "wall_mount",
        build_picture,
        (*BRIGHT, "beige", "cream"),
        accents=("black", "white", "wood", "dark wood", "silver"),
        mount_z=(1.1, 1.5),
    ),
    _v(
        "mirror",
        "mirror",
        ((0.02, 0.04), (0.4, 0.8), (0.6, 1.1)),
        "wall_mount",
        build_mirror,
        ("black", "silver", "wood", "white"),
        mount_z=(1.0, 1.3),
    ),
    _v(
        "clock",
        "clock",
        ((0.03, 0.05), (0.25, 0.4), (0.25, 0.4)),
        "wall_mount",
        build_clock,
        ("black", "white", "red", "wood", "silver"),
        mount_z=(1.7, 1.9),
        square=True,
    ),
    _v(
        "pillow",
        "pillow",
        ((0.35, 0.5), (0.45, 0.65), (0.1, 0.16)),
        "surface",
        build_pillow,
        FABRICS + BRIGHT[:8],
        supporters=("bed", "sofa", "armchair"),
    ),
    _v(
        "bottle",
        "bottle",
        ((0.06, 0.1), (0.06, 0.1), (0.2, 0.33)),
        "surface",
        build_bottle,
        ("green", "teal", "blue", "white", "brown", "red", "orange"),
        accents=("white", "black", "red", "silver"),
        supporters=SUPPORT_TABLES,
        square=True,
    ),
    _v(
        "cup",
        "cup",
        ((0.09, 0.12), (0.07, 0.09), (0.08, 0.12)),
        "surface",
        build_cup,
        ("white", "red", "blue", "yellow", "black", "green", "pink"),
        supporters=("table", "desk", "nightstand", "dresser", "cabinet"),
    ),
    _v(
        "vase",
        "vase",
        ((0.1, 0.18), (0.1, 0.18), (0.2, 0.4)),
        "surface",
        build_vase,
        ("blue", "white", "red", "teal", "yellow", "black"),
        supporters=SUPPORT_TABLES,
        square=True,
    ),
    _v(
        "book",
        "lying",
        ((0.15, 0.24), (0.2, 0.3), (0.02, 0.06)),
        "surface",
        build_book,
        (*BRIGHT, "navy", "brown"),
        supporters=SUPPORT_TABLES,
    ),
    _v(
        "book",
        "standing",
        ((0.15, 0.24), (0.02, 0.06), (0.2, 0.3)),
        "surface",
        build_book,
        (*BRIGHT, "navy", "brown"),
        supporters=("shelf",),
        weight=1.5,
    ),
    _v(
        "laptop",
        "laptop",
        ((0.22, 0.28), (0.3, 0.38), (0.2, 0.25)),
        "surface",
        build_laptop,
        ("silver", "black", "dark gray", "white"),
        supporters=("desk", "table"),
    ),
)
"""Every variant of every category."""

CATEGORIES: tuple[str, ...] = tuple(sorted({v.category for v in VARIANTS}))
"""Category names, sorted."""


def variants_of(category: str) -> list[Variant]:
    """The variants of ``category`` (ValueError listing the known categories otherwise)."""
    found = [v for v in VARIANTS if v.category == category]
    if not found:
        raise ValueError(
            f"unknown category {category!r}; known categories: {', '.join(CATEGORIES)}"
        )
    return found


def sample_variant(rng: np.random.Generator, category: str) -> Variant:
    """Pick a variant of ``category`` by weight."""
    vs = variants_of(category)
    w = np.array([v.weight for v in vs])
    return vs[int(rng.choice(len(vs), p=w / w.sum()))]


def sample_dims(rng: np.random.Generator, variant: Variant) -> tuple[float, float, float]:
    """Sample ``(L, W, H)`` uniformly in the variant's size priors (L = W for round things)."""
    L, W, H = (float(rng.uniform(lo, hi)) for lo, hi in variant.dims)
    if variant.square and variant.placement == "wall_mount":
        H = W
    elif variant.square:
        W = L
    return L, W, H


@dataclass
class BuiltObject:
    """A sampled and built object: category, variant, dims, colour names and its model."""

    category: str
    variant: Variant
    dims: tuple[float, float, float]
    color: str
    accent: str
    model: Model


def build_object(
    rng: np.random.Generator, variant: Variant, dims: tuple[float, float, float] | None = None
) -> BuiltObject:
    """Sample dims (unless given) and colours, and build the model of ``variant``."""
    L, W, H = dims if dims is not None else sample_dims(rng, variant)
    color = variant.colors[int(rng.integers(len(variant.colors)))]
    accent = variant.accents[int(rng.integers(len(variant.accents)))]
    jitter = rng.uniform(0.9, 1.08, size=3)
    main = tuple(float(c) for c in np.clip(np.asarray(COLORS[color]) * jitter, 0, 1))
    model = variant.build(rng, L, W, H, main, COLORS[accent])
    return BuiltObject(variant.category, variant, (L, W, H), color, accent, model)
