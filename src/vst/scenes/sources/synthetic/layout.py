"""Rooms and object placement for the synthetic source.

World frame: Z up, metres, the floor at z = 0, the room centred near the origin. A room is its
axis-aligned bounding rectangle minus at most one corner rectangle (the notch of an L-shaped
room); its floor polygon goes counter-clockwise seen from above.

World boxes of placed objects (see :mod:`vst.scenes.sources.synthetic.catalog` for the object
frame): ``[x, y, z, L, W, H, 0, 0, yaw]`` where the box's local X is the object's front, local Y
its left, local Z up (so ``z_size`` is the height), and ``yaw`` (degrees, the THIRD Euler angle,
a rotation about world Z) turns local X away from world +X toward world +Y.

Placement is rejection sampling of yaw-rotated footprints: an object is accepted when its
footprint lies inside the room and its 3D box (footprint x height interval) is disjoint from
every other box except its supporter's, with a small clearance on the floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vst.scenes.sources.synthetic.catalog import (
    BuiltObject,
    Variant,
    build_object,
    sample_variant,
    variants_of,
)

FLOOR_CLEARANCE = 0.04
"""Minimum gap (metres) between the footprints of two floor objects."""

WALL_GAP = 0.003
"""Gap between a wall and the back of an object placed against it (avoids z-fighting)."""

PLACEMENT_TRIES = 60
"""Rejection-sampling attempts per object."""


# ------------------------------------------------------------------------------ 2D geometry
def rect_corners(cx: float, cy: float, hx: float, hy: float, yaw: float) -> np.ndarray:
    """Corners (4, 2) of a rectangle centred at (cx, cy), half sizes hx, hy, yaw radians."""
    c, s = math.cos(yaw), math.sin(yaw)
    local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    R = np.array([[c, -s], [s, c]])
    return local @ R.T + np.array([cx, cy])


def polygons_overlap(a: np.ndarray, b: np.ndarray, margin: float = 0.0) -> bool:
    """Separating-axis test for two convex polygons (K, 2); ``margin`` inflates the test (two
    polygons closer than ``margin`` count as overlapping)."""
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        normals = np.stack([-edges[:, 1], edges[:, 0]], axis=1)
        norms = np.linalg.norm(normals, axis=1, keepdims=True)
        normals = normals / np.where(norms > 0, norms, 1.0)
        pa = a @ normals.T
        pb = b @ normals.T
        sep = (pa.max(axis=0) + margin <= pb.min(axis=0)) | (
            pb.max(axis=0) + margin <= pa.min(axis=0)
        )
        if np.any(sep):
            return False
    return True


# ------------------------------------------------------------------------------------- room
@dataclass(frozen=True)
class Wall:
    """A wall segment along the floor polygon: ``p0 -> p1`` with the room on its left;
    ``normal`` points into the room."""

    p0: tuple[float, float]
    p1: tuple[float, float]

    @property
    def length(self) -> float:
        return float(math.dist(self.p0, self.p1))

    @property
    def direction(self) -> np.ndarray:
        d = np.subtract(self.p1, self.p0)
        return d / np.linalg.norm(d)

    @property
    def normal(self) -> np.ndarray:
        d = self.direction
        return np.array([-d[1], d[0]])


@dataclass
class RoomShape:
    """Floor polygon (K, 2) counter-clockwise, its bounding rectangle ``(xmin, ymin, xmax, ymax)``,
    the notch rectangle cut from it (or None) and the ceiling height (metres)."""

    polygon: np.ndarray
    bbox: tuple[float, float, float, float]
    notch: tuple[float, float, float, float] | None
    height: float
    kind: str

    @property
    def walls(self) -> list[Wall]:
        pts = [tuple(map(float, p)) for p in self.polygon]
        return [Wall(pts[i], pts[(i + 1) % len(pts)]) for i in range(len(pts))]

    def contains_polygon(self, poly: np.ndarray, margin: float = 0.0) -> bool:
        """True if the convex polygon lies inside the room, at least ``margin`` from walls."""
        x0, y0, x1, y1 = self.bbox
        if (
            poly[:, 0].min() < x0 + margin
            or poly[:, 0].max() > x1 - margin
            or poly[:, 1].min() < y0 + margin
            or poly[:, 1].max() > y1 - margin
        ):
            return False
        if self.notch is not None:
            nx0, ny0, nx1, ny1 = self.notch
            notch = np.array([[nx0, ny0], [nx1, ny0], [nx1, ny1], [nx0, ny1]])
            if polygons_overlap(poly, notch, margin):
                return False
        return True

    def contains_point(self, xy, margin: float = 0.0) -> bool:
        """True if the point lies inside the room, at least ``margin`` from walls."""
        p = np.asarray(xy, dtype=float).reshape(1, 2)
        return self.contains_polygon(
            np.repeat(p, 3, axis=0) + np.array([[0, 0], [1e-9, 0], [0, 1e-9]]), margin
        )

    @property
    def area(self) -> float:
        x, y = self.polygon[:, 0], self.polygon[:, 1]
        return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def sample_room(
    rng: np.random.Generator,
    side: tuple[float, float],
    height: tuple[float, float],
    shape: str = "any",
    l_probability: float = 0.35,
) -> RoomShape:
    """A rectangular or L-shaped room: bounding sides in ``side`` (metres), ceiling height in
    ``height``; ``shape`` is ``"rect"``, ``"l"`` or ``"any"``. The L's arms stay >= 1.8 m wide
    (or the room is rectangular if the sides are too short for that)."""
    sx = float(rng.uniform(*side))
    sy = float(rng.uniform(*side))
    h = float(rng.uniform(*height))
    x0, y0, x1, y1 = -sx / 2, -sy / 2, sx / 2, sy / 2
    want_l = shape == "l" or (shape == "any" and rng.random() < l_probability)
    min_arm = 1.8
    if want_l and min(sx, sy) >= 2 * min_arm:
        cx = float(rng.uniform(0.3, 0.55)) * sx
        cy = float(rng.uniform(0.3, 0.55)) * sy
        cx = min(cx, sx - min_arm)
        cy = min(cy, sy - min_arm)
        corner = int(rng.integers(4))
        ax = x0 if corner in (0, 3) else x1
        ay = y0 if corner in (0, 1) else y1
        bx = ax + cx if corner in (0, 3) else ax - cx
        by = ay + cy if corner in (0, 1) else ay - cy
        notch = (min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))
        pts = _l_polygon((x0, y0, x1, y1), corner, (bx, by))
        return RoomShape(pts, (x0, y0, x1, y1), notch, h, "l_shaped")
    pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    return RoomShape(pts, (x0, y0, x1, y1), None, h, "rectangular")


def _l_polygon(bbox, corner: int, inner: tuple[float, float]) -> np.ndarray:
    """Counter-clockwise polygon of ``bbox`` whose corner ``corner`` (0: (x0, y0), 1: (x1, y0),
    2: (x1, y1), 3: (x0, y1)) is cut back to the inner point ``inner``."""
    x0, y0, x1, y1 = bbox
    rect = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    axis_in = 1 if corner in (0, 2) else 0  # axis of the edge arriving at the corner
    out: list[tuple[float, float]] = []
    for i, p in enumerate(rect):
        if i != corner:
            out.append(p)
            continue
        p_in = list(p)
        p_in[axis_in] = inner[axis_in]
        p_out = list(p)
        p_out[1 - axis_in] = inner[1 - axis_in]
        out.extend([(p_in[0], p_in[1]), (inner[0], inner[1]), (p_out[0], p_out[1])])
    return np.array(out, dtype=float)


# ---------------------------------------------------------------------------------- objects
@dataclass
class PlacedObject:
    """An object in the room: id (>= 1), built model, origin of its object frame in the world
    (the footprint centre on its support, metres), yaw (radians about world Z)."""

    id: int
    built: BuiltObject
    origin: np.ndarray
    yaw: float
    placement: str
    support: int | None = None
    wall: int | None = None

    @property
    def category(self) -> str:
        return self.built.category

    def box(self) -> np.ndarray:
        """World box (9,) ``[x, y, z, L, W, H, 0, 0, yaw_deg]`` (see the module docstring)."""
        lo, hi = self.built.model.extent()
        c_local = (lo + hi) / 2.0
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        center = self.origin + np.array(
            [c * c_local[0] - s * c_local[1], s * c_local[0] + c * c_local[1], c_local[2]]
        )
        yaw_deg = math.degrees(math.atan2(s, c))
        return np.array([*center, *(hi - lo), 0.0, 0.0, yaw_deg], dtype=np.float64)

    def footprint(self) -> np.ndarray:
        """World footprint corners (4, 2) of the box."""
        b = self.box()
        return rect_corners(b[0], b[1], b[3] / 2, b[4] / 2, self.yaw)

    def z_range(self) -> tuple[float, float]:
        b = self.box()
        return float(b[2] - b[5] / 2), float(b[2] + b[5] / 2)


@dataclass
class _Blocker:
    """A keep-out volume (e.g. the swing area of a door): footprint and height interval."""

    footprint: np.ndarray
    z: tuple[float, float]


ROOM_TYPES: dict[str, list[tuple[str, int, int]]] = {
    "living_room": [
        ("door", 1, 1),
        ("window", 1, 2),
        ("sofa", 1, 2),
        ("armchair", 0, 2),
        ("shelf", 0, 2),
        ("cabinet", 1, 2),
        ("table", 1, 2),
        ("stool", 0, 1),
        ("plant", 1, 3),
        ("lamp", 1, 2),
        ("trash can", 0, 1),
        ("box", 0, 2),
        ("tv", 1, 1),
        ("picture", 1, 3),
        ("clock", 0, 1),
        ("pillow", 1, 4),
        ("book", 2, 5),
        ("cup", 0, 3),
        ("bottle", 0, 2),
        ("vase", 0, 2),
    ],
    "bedroom": [
        ("door", 1, 1),
        ("window", 1, 2),
        ("bed", 1, 1),
        ("nightstand", 1, 2),
        ("dresser", 0, 1),
        ("cabinet", 0, 1),
        ("desk", 0, 1),
        ("chair", 0, 1),
        ("shelf", 0, 1),
        ("plant", 0, 2),
        ("trash can", 0, 1),
        ("box", 0, 2),
        ("lamp", 1, 2),
        ("tv", 0, 1),
        ("picture", 1, 2),
        ("mirror", 0, 1),
        ("pillow", 2, 3),
        ("book", 1, 4),
        ("laptop", 0, 1),
        ("cup", 0, 2),
        ("vase", 0, 1),
    ],
    "kitchen": [
        ("door", 1, 1),
        ("window", 1, 2),
        ("refrigerator", 1, 1),
        ("cabinet", 2, 4),
        ("sink", 1, 1),
        ("table", 1, 1),
        ("chair", 2, 6),
        ("stool", 0, 2),
        ("trash can", 1, 1),
        ("plant", 0, 2),
        ("box", 0, 2),
        ("microwave", 1, 1),
        ("clock", 0, 1),
        ("picture", 0, 1),
        ("bottle", 1, 4),
        ("cup", 2, 5),
        ("vase", 0, 1),
        ("book", 0, 2),
    ],
    "office": [
        ("door", 1, 1),
        ("window", 1, 2),
        ("desk", 1, 3),
        ("chair", 1, 3),
        ("shelf", 1, 2),
        ("cabinet", 1, 2),
        ("table", 0, 1),
        ("plant", 1, 2),
        ("trash can", 1, 2),
        ("box", 1, 3),
        ("lamp", 0, 2),
        ("monitor", 1, 3),
        ("laptop", 0, 2),
        ("picture", 0, 2),
        ("clock", 0, 1),
        ("book", 3, 8),
        ("cup", 0, 3),
        ("bottle", 0, 2),
    ],
    "bathroom": [
        ("door", 1, 1),
        ("window", 0, 1),
        ("toilet", 1, 1),
        ("sink", 1, 2),
        ("bathtub", 0, 1),
        ("cabinet", 0, 1),
        ("shelf", 0, 1),
        ("trash can", 1, 1),
        ("plant", 0, 1),
        ("box", 0, 1),
        ("mirror", 1, 1),
        ("picture", 0, 1),
        ("bottle", 2, 4),
        ("cup", 0, 1),
        ("vase", 0, 1),
    ],
}
"""Per room type: (category, min count, max count)."""

_ORDER = {
    "wall_mount_door": 0,
    "wall_mount_window": 1,
    "wall": 2,
    "free_big": 3,
    "around": 4,
    "free": 5,
    "wall_mount": 6,
    "surface": 7,
}
_ALIGNED = {"monitor", "tv", "laptop", "microwave", "book"}


def _stage(v: Variant) -> int:
    if v.placement == "wall_mount":
        if v.category in ("door", "window"):
            return _ORDER[f"wall_mount_{v.category}"]
        return _ORDER["wall_mount"]
    if v.placement == "free" and v.dims[0][1] * v.dims[1][1] > 0.5:
        return _ORDER["free_big"]
    return _ORDER[v.placement]


@dataclass
class Layout:
    """A furnished room: its shape, room type and placed objects (ids 1..N in placing order)."""

    room: RoomShape
    room_type: str
    objects: list[PlacedObject] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class _Placer:
    def __init__(self, rng: np.random.Generator, room: RoomShape):
        self.rng = rng
        self.room = room
        self.objects: list[PlacedObject] = []
        self.blockers: list[_Blocker] = []

    # -- collision --------------------------------------------------------------------------
    def free(
        self,
        fp: np.ndarray,
        z: tuple[float, float],
        ignore: int | None = None,
        margin: float = FLOOR_CLEARANCE,
    ) -> bool:
        for o in self.objects:
            if o.id == ignore:
                continue
            oz = o.z_range()
            if z[1] <= oz[0] + 1e-6 or oz[1] <= z[0] + 1e-6:
                continue
            if polygons_overlap(fp, o.footprint(), margin):
                return False
        for b in self.blockers:
            if z[1] <= b.z[0] or b.z[1] <= z[0]:
                continue
            if polygons_overlap(fp, b.footprint, 0.0):
                return False
        return True

    def _candidate(self, built: BuiltObject, origin, yaw, placement, **kw) -> PlacedObject:
        return PlacedObject(
            len(self.objects) + 1, built, np.asarray(origin, dtype=float), yaw, placement, **kw
        )

    def _accept_floor(self, cand: PlacedObject, wall_margin: float = 0.0) -> bool:
        fp = cand.footprint()
        if not self.room.contains_polygon(fp, wall_margin):
            return False
        return self.free(fp, cand.z_range())

    # -- strategies ------------------------------------------------------------------------
    def place(self, variant: Variant) -> PlacedObject | None:
        rng = self.rng
        built = build_object(rng, variant)
        strategy = {
            "wall": self._wall,
            "free": self._free,
            "around": self._around,
            "surface": self._surface,
            "wall_mount": self._wall_mount,
        }[variant.placement]
        for _ in range(PLACEMENT_TRIES):
            cand = strategy(built)
            if cand is not None:
                self.objects.append(cand)
                if variant.category == "door":
                    self._block_door(cand)
                return cand
        return None

    def _wall_pose(self, built: BuiltObject, gap: float):
        walls = self.room.walls
        lengths = np.array([w.length for w in walls])
        k = int(self.rng.choice(len(walls), p=lengths / lengths.sum()))
        wall = walls[k]
        lo, hi = built.model.extent()
        half_w = (hi[1] - lo[1]) / 2
        if wall.length < 2 * half_w + 0.1:
            return None
        s = float(self.rng.uniform(half_w + 0.05, wall.length - half_w - 0.05))
        n = wall.normal
        depth_back = -lo[0]  # distance from the origin to the object's back
        xy = np.asarray(wall.p0) + s * wall.direction + n * (depth_back + gap)
        yaw = math.atan2(n[1], n[0])
        return k, xy, yaw

    def _wall(self, built: BuiltObject) -> PlacedObject | None:
        pose = self._wall_pose(built, WALL_GAP + float(self.rng.uniform(0.0, 0.04)))
        if pose is None:
            return None
        k, xy, yaw = pose
        cand = self._candidate(built, [xy[0], xy[1], 0.0], yaw, "wall", wall=k)
        return cand if self._accept_floor(cand) else None

    def _wall_mount(self, built: BuiltObject) -> PlacedObject | None:
        pose = self._wall_pose(built, WALL_GAP)
        if pose is None:
            return None
        k, xy, yaw = pose
        z0 = float(self.rng.uniform(*built.variant.mount_z))
        _, hi = built.model.extent()
        if z0 + hi[2] > self.room.height - 0.05:
            z0 = self.room.height - 0.05 - hi[2]
            if z0 < 0:
                return None
        cand = self._candidate(built, [xy[0], xy[1], z0], yaw, "wall_mount", wall=k)
        fp = cand.footprint()
        if not self.room.contains_polygon(fp, -0.01):
            return None
        return cand if self.free(fp, cand.z_range(), margin=0.02) else None

    def _block_door(self, door: PlacedObject) -> None:
        b = door.box()
        c, s = math.cos(door.yaw), math.sin(door.yaw)
        depth = 0.9
        cx = b[0] + c * (b[3] / 2 + depth / 2)
        cy = b[1] + s * (b[3] / 2 + depth / 2)
        fp = rect_corners(cx, cy, depth / 2, b[4] / 2, door.yaw)
        self.blockers.append(_Blocker(fp, (0.0, b[2] + b[5] / 2)))

    def _free(self, built: BuiltObject) -> PlacedObject | None:
        x0, y0, x1, y1 = self.room.bbox
        xy = self.rng.uniform([x0, y0], [x1, y1])
        yaw = float(self.rng.uniform(-math.pi, math.pi))
        cand = self._candidate(built, [xy[0], xy[1], 0.0], yaw, "free")
        return cand if self._accept_floor(cand, 0.05) else None

    def _around(self, built: BuiltObject) -> PlacedObject | None:
        targets = [
            o
            for o in self.objects
            if o.category in ("table", "desk") and o.built.variant.name != "coffee"
        ]
        if not targets or self.rng.random() < 0.15:
            return self._free(built)
        t = targets[int(self.rng.integers(len(targets)))]
        tb = t.box()
        lo, hi = built.model.extent()
        side = 0 if t.category == "desk" else int(self.rng.integers(4))  # desk: in front
        # side 0: +X of the target, 1: +Y, 2: -X, 3: -Y (target frame)
        ang = t.yaw + side * math.pi / 2
        half_along = tb[3] / 2 if side % 2 == 0 else tb[4] / 2
        half_side = tb[4] / 2 if side % 2 == 0 else tb[3] / 2
        gap = float(self.rng.uniform(0.03, 0.15))
        dist = half_along + gap + hi[0]  # the chair's front (+X) faces the target
        offset = float(self.rng.uniform(-1, 1)) * max(half_side - (hi[1] - lo[1]) / 2, 0.0)
        ca, sa = math.cos(ang), math.sin(ang)
        xy = tb[:2] + dist * np.array([ca, sa]) + offset * np.array([-sa, ca])
        yaw = ang + math.pi + float(self.rng.uniform(-0.2, 0.2))
        cand = self._candidate(built, [xy[0], xy[1], 0.0], yaw, "around", support=None)
        return cand if self._accept_floor(cand, 0.02) else None

    def _surface(self, built: BuiltObject) -> PlacedObject | None:
        v = built.variant
        lo, hi = built.model.extent()
        height = hi[2] - lo[2]
        options = [
            (o, s)
            for o in self.objects
            if o.category in v.supporters
            for s in o.built.model.surfaces
            if s.clearance >= height + 0.005
        ]
        if not options:
            return None
        sup, surf = options[int(self.rng.integers(len(options)))]
        if v.category in _ALIGNED:
            local_yaw = float(self.rng.normal(0.0, 0.12))
        elif v.category == "pillow":
            local_yaw = float(self.rng.integers(4)) * math.pi / 2 + float(self.rng.normal(0, 0.2))
        else:
            local_yaw = float(self.rng.uniform(-math.pi, math.pi))
        # the footprint of the model in the supporter frame must fit in the surface rectangle
        c_local = (lo + hi) / 2
        hx, hy = (hi[0] - lo[0]) / 2, (hi[1] - lo[1]) / 2
        u = float(self.rng.uniform(*surf.x))
        w = float(self.rng.uniform(*surf.y))
        cl, sl = math.cos(local_yaw), math.sin(local_yaw)
        bc = np.array(
            [u + cl * c_local[0] - sl * c_local[1], w + sl * c_local[0] + cl * c_local[1]]
        )
        corners = rect_corners(bc[0], bc[1], hx, hy, local_yaw)
        if (
            corners[:, 0].min() < surf.x[0]
            or corners[:, 0].max() > surf.x[1]
            or corners[:, 1].min() < surf.y[0]
            or corners[:, 1].max() > surf.y[1]
        ):
            return None
        cs, ss = math.cos(sup.yaw), math.sin(sup.yaw)
        origin = sup.origin + np.array([cs * u - ss * w, ss * u + cs * w, surf.z])
        cand = self._candidate(built, origin, sup.yaw + local_yaw, "surface", support=sup.id)
        if not self.free(cand.footprint(), cand.z_range(), ignore=sup.id, margin=0.01):
            return None
        return cand


def place_objects(
    rng: np.random.Generator, room: RoomShape, counts: list[tuple[str, int]], room_type: str
) -> Layout:
    """Place ``counts`` (category, how many) in ``room``; objects that find no spot after
    :data:`PLACEMENT_TRIES` attempts are listed in ``Layout.skipped``."""
    placer = _Placer(rng, room)
    todo: list[Variant] = []
    for category, n in counts:
        for _ in range(n):
            todo.append(sample_variant(rng, category))
    todo.sort(key=_stage)  # stable: keeps the recipe order within a stage
    skipped = []
    for v in todo:
        if placer.place(v) is None:
            skipped.append(v.category)
    return Layout(room, room_type, placer.objects, skipped)


def sample_counts(
    rng: np.random.Generator,
    room_type: str | None,
    categories: list[str] | None,
    area: float = 20.0,
) -> tuple[str, list[tuple[str, int]]]:
    """Choose the room type (unless given) and how many objects of each category to place.

    Categories that may appear several times get more instances in larger rooms (the recipe's
    maximum grows with ``area`` / 20 m2, up to twice). With ``categories`` the recipe keeps
    only those (each requested category at least once); categories the room type does not list
    are added with 1-3 instances.
    """
    if room_type is None:
        names = sorted(ROOM_TYPES)
        room_type = names[int(rng.integers(len(names)))]
    recipe = ROOM_TYPES[room_type]
    scale = float(np.clip(area / 20.0, 1.0, 2.0))
    counts: list[tuple[str, int]] = []
    if categories is None:
        for cat, lo, hi in recipe:
            if hi > 1 and cat not in ("door",):
                hi = round(hi * scale)
            n = int(rng.integers(lo, hi + 1))
            if n:
                counts.append((cat, n))
        return room_type, counts
    for cat in categories:
        variants_of(cat)  # raises on unknown names
    listed = {c: (lo, hi) for c, lo, hi in recipe}
    for cat in categories:
        lo, hi = listed.get(cat, (1, 3))
        counts.append((cat, int(rng.integers(max(lo, 1), max(round(hi * scale), 1) + 1))))
    return room_type, counts
