"""Directions on the floor for the multi-image relation tasks (``mi_object_object``,
``mi_camera_object``, ``mi_camera_camera``).

Conventions:

* The floor plane is the scene's gravity-aligned world X-Y plane (world Z up, right-handed):
  directions do not depend on which camera is the reference, so they are computed from world
  coordinates (object box centres, camera centres and optical axes) and hold in frame 1's camera
  frame as well.
* A *bearing* is the angle in degrees, in ``[0, 360)``, measured **clockwise seen from above**
  from a reference direction (``north``, or a camera's heading) to a target direction. Looking
  down on the floor with north up, east is to the right: east = north rotated by -90 degrees
  about +Z. For a camera, bearing 90 is its right (its image X axis, for an upright camera).
* Eight sectors, 45 degrees wide and centred on the directions; sector ``k`` is centred on
  bearing ``45 k``. A bearing closer than a margin to a sector boundary (``22.5 + 45 k``) is
  ambiguous and the question is skipped (:func:`boundary_margin`).
* A camera's heading is its optical axis (camera +Z) projected onto the floor; cameras looking
  nearly straight up or down have none (:func:`camera_heading` returns ``None``).
* Minimum baselines: a reference direction defined by two points on the floor (north = the
  floor vector between two objects, or from a camera to an object) is asked only when the two
  points are at least :data:`MIN_OBJECT_BASELINE_M` apart; a direction between two camera
  positions only when they are at least :data:`MIN_CAMERA_BASELINE_M` apart. Closer points
  leave the direction to the size and placement of the objects (or to small camera shifts).
  The tasks record the baseline of each direction question as ``meta["baseline_m"]``.

Also here: the answer formats shared by the three tasks (:func:`mcq_options`,
:func:`metres_text`, :func:`round_metres`) and the labels before the two images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vst.engine.choices import LETTERS, format_options, mcq_instruction, mcq_reply, pick

COMPASS: tuple[str, ...] = (
    "north",
    "northeast",
    "east",
    "southeast",
    "south",
    "southwest",
    "west",
    "northwest",
)
"""The eight compass directions, clockwise from north (index = sector = bearing / 45)."""

RELATIVE: tuple[str, ...] = (
    "front",
    "front right",
    "right",
    "back right",
    "back",
    "back left",
    "left",
    "front left",
)
"""The eight directions around a camera, clockwise from its heading (index = sector)."""

SECTOR_DEG = 45.0

MIN_OBJECT_BASELINE_M = 1.0
"""Floor distance (m) the two points defining a reference direction (north) must have at least
when one of them is an object: two objects, or a camera and an object."""

MIN_CAMERA_BASELINE_M = 0.5
"""Floor distance (m) two camera positions must have at least to define a direction."""


def bearing_deg(reference_xy: np.ndarray, target_xy: np.ndarray) -> np.ndarray:
    """Clockwise angle (degrees, ``[0, 360)``, seen from above with world Z up) from
    ``reference_xy`` to ``target_xy`` (floor vectors ``(..., 2)``; broadcast)."""
    r = np.asarray(reference_xy, dtype=float)
    t = np.asarray(target_xy, dtype=float)
    cross = r[..., 0] * t[..., 1] - r[..., 1] * t[..., 0]  # > 0: counter-clockwise
    dot = r[..., 0] * t[..., 0] + r[..., 1] * t[..., 1]
    return np.mod(-np.degrees(np.arctan2(cross, dot)), 360.0)


def sector(bearing: np.ndarray | float) -> np.ndarray | int:
    """Index (0-7) of the 45-degree sector centred on ``45 k`` that holds ``bearing``."""
    k = np.floor(np.mod(np.asarray(bearing, dtype=float) + SECTOR_DEG / 2, 360.0) / SECTOR_DEG)
    k = k.astype(int) % 8
    return int(k) if k.ndim == 0 else k


def boundary_margin(bearing: np.ndarray | float) -> np.ndarray | float:
    """Degrees from ``bearing`` to the nearest sector boundary (0 on a boundary, 22.5 at a
    sector's centre)."""
    off = np.mod(np.asarray(bearing, dtype=float) + SECTOR_DEG / 2, SECTOR_DEG)
    m = np.minimum(off, SECTOR_DEG - off)
    return float(m) if m.ndim == 0 else m


def camera_heading(cam_to_world: np.ndarray, min_horizontal: float = 0.5) -> np.ndarray | None:
    """Unit floor vector (2,) of a camera's optical axis (camera +Z) projected on the floor, from
    its 4x4 camera-to-world pose; ``None`` when the axis' horizontal part is shorter than
    ``min_horizontal`` (camera looking nearly straight up or down: no meaningful heading)."""
    axis = np.asarray(cam_to_world, dtype=float)[:3, 2]
    n = math.hypot(axis[0], axis[1])
    if n < min_horizontal:
        return None
    return axis[:2] / n


def camera_roll_deg(cam_to_world: np.ndarray) -> float:
    """How far (degrees) the camera's X axis (image right) leaves the horizontal plane: 0 for an
    upright camera, whatever its pan and tilt."""
    x_axis = np.asarray(cam_to_world, dtype=float)[:3, 0]
    return math.degrees(math.asin(min(1.0, abs(float(x_axis[2])))))


def round_metres(value: float) -> float:
    """Metres rounded half up to 2 decimals (the stated and rewarded value)."""
    return math.floor(float(value) * 100.0 + 0.5) / 100.0


def metres_text(value: float) -> str:
    """``"2.35 m"``: the answer text of a numeric distance."""
    return f"{round_metres(value):.2f} m"


def mcq_options(answer: int, n_options: int, n_total: int, rng: np.random.Generator) -> list[int]:
    """``n_options`` distinct direction indices in ``range(n_total)`` including ``answer``, in a
    uniformly random order (the distractors and the positions both come from ``rng``): the
    answer letter is uniform over the letters."""
    others = [k for k in range(n_total) if k != answer]
    picked = [others[i] for i in rng.choice(len(others), size=n_options - 1, replace=False)]
    shown = [answer, *picked]
    return [shown[i] for i in rng.permutation(n_options)]


def mcq_letter(options: Sequence[int], answer: int) -> str:
    """The letter of ``answer`` among the shown ``options`` (direction indices)."""
    return LETTERS[list(options).index(answer)]


def direction_options_text(options: Sequence[int], words: Sequence[str]) -> str:
    """``"A. north\\nB. west ..."`` for direction indices ``options``."""
    return format_options([words[k] for k in options])


EXACT_SUFFIXES: tuple[str, ...] = (
    "Answer with one of: {words}.",
    "Reply with a single direction ({words}).",
    "Choose from {words}.",
    "Give one of these directions: {words}.",
    "Respond with one entry from this list: {words}.",
)
"""Appended to ``exact`` direction questions (``words``: the eight directions)."""

MCQ_SUFFIXES: tuple[str, ...] = (
    "\n{options}",
    "\nOptions:\n{options}",
    "\n{options}\n{instruction}",
    "\nChoose one:\n{options}",
    "\nOptions:\n{options}\n{instruction}",
)
"""Appended to ``mcq`` questions (``options``: ``A. ...`` lines; ``instruction``: one of the
run's answer style, :func:`mcq_tail`)."""


def mcq_tail(rng: np.random.Generator, options_text: str, answer_style: str) -> tuple[int, str]:
    """``(suffix index, tail)``: a :data:`MCQ_SUFFIXES` entry picked with ``rng`` and filled
    with ``options_text`` and, where it has one, an instruction of ``answer_style``."""
    s_idx, suffix = pick(rng, MCQ_SUFFIXES)
    instruction = mcq_instruction(rng, answer_style)[1] if "{instruction}" in suffix else ""
    return s_idx, suffix.format(options=options_text, instruction=instruction)


def direction_answer(
    style: str,
    k: int,
    words: Sequence[str],
    n_options: int,
    rng: np.random.Generator,
    answer_style: str = "paper",
) -> tuple[str, str, str, list[int] | None, int]:
    """The end of a direction question whose answer is ``words[k]``: ``(question tail, answer,
    reply, shown options or None, suffix index)``. ``mcq``: lettered options drawn with
    :func:`mcq_options`, answer the letter, reply in ``answer_style`` (``"B. north"`` or
    ``"B"``, :func:`vst.engine.choices.mcq_reply`); ``exact``: the allowed words listed, answer
    and reply the word."""
    if style == "mcq":
        options = mcq_options(k, n_options, len(words), rng)
        answer = mcq_letter(options, k)
        s_idx, tail = mcq_tail(rng, direction_options_text(options, words), answer_style)
        return tail, answer, mcq_reply(answer, words[k], answer_style), options, s_idx
    s_idx, suffix = pick(rng, EXACT_SUFFIXES)
    return " " + suffix.format(words=", ".join(words)), words[k], words[k], None, s_idx


IMAGE_LABELS: tuple[str, str] = ("Image 1:", "Image 2:")
"""Texts before the two images; object mentions say "in image 1" / "in image 2"."""
