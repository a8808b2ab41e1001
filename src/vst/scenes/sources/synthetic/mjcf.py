"""Room appearance and the MuJoCo model (MJCF XML text) of a furnished room.

Pure Python (no mujoco import). Every geom of object ``k`` is named ``obj{k}_{part}``; room
geoms are ``floor``, ``ceiling`` and ``wall{i}``; the one camera is ``cam`` (posed per frame at
render time). Geoms have no collisions: the model is only rendered and ray-cast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vst.scenes.sources.synthetic.catalog import Part
from vst.scenes.sources.synthetic.layout import PlacedObject, RoomShape

WALL_THICKNESS = 0.12
CAMERA_NAME = "cam"
NEAR_PLANE = 0.03
"""OpenGL near clipping plane (metres): cameras keep further than this from any surface."""
FAR_PLANE = 40.0

WALL_COLORS = [
    (0.93, 0.91, 0.86),
    (0.88, 0.86, 0.80),
    (0.80, 0.85, 0.88),
    (0.86, 0.82, 0.74),
    (0.78, 0.84, 0.76),
    (0.92, 0.84, 0.78),
    (0.70, 0.72, 0.76),
    (0.95, 0.95, 0.95),
    (0.84, 0.78, 0.86),
    (0.90, 0.88, 0.70),
]
FLOOR_COLORS = {
    "wood": [
        ((0.55, 0.38, 0.22), (0.50, 0.34, 0.20)),
        ((0.72, 0.56, 0.38), (0.66, 0.50, 0.33)),
        ((0.38, 0.25, 0.15), (0.34, 0.22, 0.13)),
    ],
    "tiles": [
        ((0.85, 0.85, 0.83), (0.75, 0.75, 0.73)),
        ((0.60, 0.55, 0.50), (0.52, 0.48, 0.43)),
        ((0.25, 0.25, 0.27), (0.85, 0.85, 0.85)),
        ((0.70, 0.62, 0.50), (0.62, 0.55, 0.44)),
    ],
    "carpet": [
        ((0.45, 0.45, 0.48), (0.40, 0.40, 0.43)),
        ((0.55, 0.42, 0.35), (0.50, 0.38, 0.31)),
        ((0.30, 0.36, 0.48), (0.27, 0.32, 0.43)),
        ((0.62, 0.60, 0.52), (0.57, 0.55, 0.48)),
    ],
}


@dataclass
class RoomStyle:
    """Colours, textures and lights of a room."""

    floor: str
    floor_rgb: tuple[tuple[float, float, float], tuple[float, float, float]]
    floor_repeat: tuple[float, float]
    wall_rgb: tuple[float, float, float]
    ceiling_rgb: tuple[float, float, float]
    lights: list[tuple[tuple[float, float, float], float]] = field(default_factory=list)
    ambient: float = 0.3


def sample_style(rng: np.random.Generator, room: RoomShape) -> RoomStyle:
    """Random floor (wood planks, tiles or carpet), wall and ceiling colours and 2-4 ceiling
    lights inside the room."""
    floor = ("wood", "tiles", "carpet")[int(rng.integers(3))]
    palette = FLOOR_COLORS[floor]
    rgb = palette[int(rng.integers(len(palette)))]
    if floor == "wood":
        plank_w = float(rng.uniform(0.12, 0.22))
        repeat = (1.0 / 1.2, 1.0 / plank_w)  # long planks along x
    elif floor == "tiles":
        tile = float(rng.uniform(0.3, 0.6))
        repeat = (1.0 / (2 * tile), 1.0 / (2 * tile))
    else:
        repeat = (4.0, 4.0)
    wall = WALL_COLORS[int(rng.integers(len(WALL_COLORS)))]
    wall = tuple(float(c) for c in np.clip(np.asarray(wall) * rng.uniform(0.95, 1.03), 0, 1))
    n_lights = int(rng.integers(2, 5))
    lights = []
    x0, y0, x1, y1 = room.bbox
    tries = 0
    while len(lights) < n_lights and tries < 200:
        tries += 1
        p = rng.uniform([x0 + 0.5, y0 + 0.5], [x1 - 0.5, y1 - 0.5])
        if not room.contains_point(p, 0.4):
            continue
        lights.append(
            (
                (float(p[0]), float(p[1]), room.height - 0.1),
                float(rng.uniform(0.35, 0.6)) / math.sqrt(n_lights),
            )
        )
    return RoomStyle(
        floor=floor,
        floor_rgb=(tuple(map(float, rgb[0])), tuple(map(float, rgb[1]))),
        floor_repeat=repeat,
        wall_rgb=wall,
        ceiling_rgb=(0.95, 0.95, 0.94),
        lights=lights,
        ambient=float(rng.uniform(0.28, 0.4)),
    )


def _f(*v: float) -> str:
    return " ".join(f"{float(x):.10g}" for x in v)


def _part_geom(name: str, part: Part, origin: np.ndarray, yaw: float) -> str:
    lo, hi = np.asarray(part.lo), np.asarray(part.hi)
    c_local = (lo + hi) / 2
    half = (hi - lo) / 2
    c, s = math.cos(yaw), math.sin(yaw)
    pos = origin + np.array(
        [c * c_local[0] - s * c_local[1], s * c_local[0] + c * c_local[1], c_local[2]]
    )
    # rotation about world z by yaw, then the part's own axis alignment
    qz = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
    if part.shape == "box":
        typ, size, quat = "box", _f(*half), qz
    elif part.shape == "ellipsoid":
        typ, size, quat = "ellipsoid", _f(*half), qz
    elif part.shape == "sphere":
        typ, size, quat = "sphere", _f(half[0]), qz
    elif part.shape == "cylinder":
        if part.axis == "z":
            typ, size, quat = "cylinder", _f(half[0], half[2]), qz
        elif part.axis == "x":  # rotate the cylinder's z axis onto local x: +90 deg about y
            qy = (math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0)
            typ, size, quat = "cylinder", _f(half[1], half[0]), _qmul(qz, qy)
        else:  # y: -90 deg about x
            qx = (math.cos(math.pi / 4), -math.sin(math.pi / 4), 0.0, 0.0)
            typ, size, quat = "cylinder", _f(half[0], half[1]), _qmul(qz, qx)
    else:  # pragma: no cover - catalog only makes the shapes above
        raise ValueError(f"unknown part shape {part.shape!r}")
    return (
        f'<geom name="{name}" type="{typ}" size="{size}" pos="{_f(*pos)}" '
        f'quat="{_f(*quat)}" rgba="{_f(*part.rgba)}" material="matte"/>'
    )


def _qmul(a, b) -> tuple[float, float, float, float]:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return (
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    )


def build_mjcf(
    room: RoomShape,
    objects: list[PlacedObject],
    style: RoomStyle,
    width: int,
    height: int,
    shadows: bool = True,
) -> str:
    """MJCF XML of the room, its objects, lights and one camera, for offscreen images of
    ``width`` x ``height`` pixels."""
    x0, y0, x1, y1 = room.bbox
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hx, hy = (x1 - x0) / 2 + WALL_THICKNESS, (y1 - y0) / 2 + WALL_THICKNESS
    H = room.height
    (f1, f2), (rx, ry) = style.floor_rgb, style.floor_repeat
    if style.floor == "carpet":
        floor_tex = (
            f'<texture name="floor" type="2d" builtin="flat" rgb1="{_f(*f1)}" '
            f'rgb2="{_f(*f2)}" mark="random" random="0.15" markrgb="{_f(*f2)}" '
            f'width="256" height="256"/>'
        )
    else:
        floor_tex = (
            f'<texture name="floor" type="2d" builtin="checker" rgb1="{_f(*f1)}" '
            f'rgb2="{_f(*f2)}" mark="edge" markrgb="{_f(*(np.array(f2) * 0.8))}" '
            f'width="256" height="256"/>'
        )
    # walls: plain paint (MuJoCo maps cube textures radially on long boxes, which looks wrong)
    wall_mat = (
        f'<material name="wall" rgba="{_f(*style.wall_rgb, 1)}" specular="0.05" shininess="0.05"/>'
    )
    lines = [
        '<mujoco model="vst_synthetic_room">',
        '<compiler angle="radian"/>',
        f'<statistic extent="1" center="{_f(cx, cy, H / 2)}"/>',
        "<visual>",
        f'<global offwidth="{int(width)}" offheight="{int(height)}"/>',
        '<quality shadowsize="2048" offsamples="0"/>',
        f'<map znear="{NEAR_PLANE}" zfar="{FAR_PLANE}"/>',
        f'<headlight ambient="{_f(*[style.ambient] * 3)}" diffuse="{_f(0.25, 0.25, 0.25)}" '
        'specular="0 0 0" active="1"/>',
        "</visual>",
        '<default><geom contype="0" conaffinity="0"/></default>',
        "<asset>",
        floor_tex,
        f'<material name="floor" texture="floor" texuniform="true" texrepeat="{_f(rx, ry)}" '
        'specular="0.1" shininess="0.1" reflectance="0"/>',
        wall_mat,
        f'<material name="ceiling" rgba="{_f(*style.ceiling_rgb, 1)}" specular="0"/>',
        '<material name="matte" specular="0.15" shininess="0.15" reflectance="0"/>',
        "</asset>",
        "<worldbody>",
        f'<camera name="{CAMERA_NAME}" pos="0 0 1.5" quat="1 0 0 0" fovy="50"/>',
    ]
    for i, (pos, power) in enumerate(style.lights):
        cast = "true" if shadows and i == 0 else "false"
        lines.append(
            f'<light name="light{i}" pos="{_f(*pos)}" dir="0 0 -1" directional="false" '
            f'diffuse="{_f(power, power, power * 0.95)}" specular="0.05 0.05 0.05" '
            f'attenuation="1 0 0" cutoff="85" exponent="1" castshadow="{cast}"/>'
        )
    lines.append(
        f'<geom name="floor" type="plane" size="{_f(hx, hy, 0.1)}" pos="{_f(cx, cy, 0)}" '
        'material="floor"/>'
    )
    lines.append(
        f'<geom name="ceiling" type="box" size="{_f(hx, hy, 0.05)}" '
        f'pos="{_f(cx, cy, H + 0.05)}" material="ceiling"/>'
    )
    for i, wall in enumerate(room.walls):
        d, n = wall.direction, wall.normal
        mid = (np.asarray(wall.p0) + np.asarray(wall.p1)) / 2 - n * WALL_THICKNESS / 2
        yaw = math.atan2(d[1], d[0])
        size = _f(wall.length / 2 + WALL_THICKNESS, WALL_THICKNESS / 2, H / 2 + 0.05)
        quat = _f(math.cos(yaw / 2), 0, 0, math.sin(yaw / 2))
        lines.append(
            f'<geom name="wall{i}" type="box" size="{size}" pos="{_f(*mid, H / 2)}" '
            f'quat="{quat}" material="wall"/>'
        )
    for obj in objects:
        for k, part in enumerate(obj.built.model.parts):
            lines.append(_part_geom(f"obj{obj.id}_{k}", part, obj.origin, obj.yaw))
    lines += ["</worldbody>", "</mujoco>"]
    return "\n".join(line for line in lines if line) + "\n"


def geom_object_ids(geom_names: list[str]) -> np.ndarray:
    """Object id per geom (0 for room geoms) from geom names ``obj{k}_{part}``."""
    out = np.zeros(len(geom_names), dtype=np.int32)
    for g, name in enumerate(geom_names):
        if name.startswith("obj"):
            out[g] = int(name[3:].split("_", 1)[0])
    return out
