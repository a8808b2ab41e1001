"""Teacher-VLM prompts: pack images plus ground-truth object facts into a chat prompt.

The paper writes its scene captions (and VST-R's reasoning) with a large VLM that sees the image
together with the annotated objects and their relations (paper Table 26). This module builds
that input; it never calls a model.

Pieces (each reusable on its own):

* :class:`ObjectFact` — one object as the teacher is told about it: its ``name`` (how the text
  must refer to it, e.g. ``"chair (orange point-2)"``), centre and size in the camera frame, its
  depth, distance to the camera, 2D box and drawn mark. :func:`object_facts` reads them from a
  :class:`~vst.engine.context.FrameView`.
* :class:`Relation` — a fact between objects: ``left_of``, ``nearer_than``, ``distance``,
  ``same_category``, ``close_group``. :func:`spatial_relations` derives them with margins
  (:class:`RelationMargins`) so that no stated relation is borderline.
* :func:`render_object_facts` / :func:`render_relations` — those facts as plain text lines.
* :func:`build_caption_prompt` — the chat messages (sample format: ``{"type": "image"}`` items,
  then the instruction text) and the images to send. :func:`parse_caption` pulls the caption
  out of the teacher's reply.

Conventions: camera frame X right, Y down, Z forward, metres, origin at the camera (for several
images: the first image's camera, see ``ObjectFact.views``). ``depth`` is the median z-depth of
the object's visible pixels; ``center`` is its 3D box centre; ``distance`` is ``|center|``;
``size`` is the box's own ``(width, height, length)`` = VST box ``(z_size, y_size, x_size)``
(lateral, vertical, front-back). Left/right means smaller/larger camera-frame ``x``. 2D boxes
are ``[x1, y1, x2, y2]`` pixels of the image as sent.

Multi-image prompts extend this by giving several images, setting ``ObjectFact.views`` (the
0-based images an object is seen in) and passing ``context`` lines (e.g. camera poses). For a
:class:`~vst.engine.multiview.MultiView` (frame 1's camera frame is the world frame):
:func:`multiview_object_facts` (centres and sizes in frame 1, the images each object is seen
in and its 2D box in each), :func:`camera_context` (each camera's motion relative to camera 1
against gravity, in words and numbers), :func:`multiview_bev` (a top view of the objects
and cameras in frame 1, the paper's "prompting with BEV annotation", Tables 18-19) and
:func:`build_multiview_caption_prompt` / :func:`multiview_caption_prompt`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from vst.engine.context import FrameView
from vst.engine.multiview import MultiView
from vst.engine.sample import user
from vst.geometry.motion import camera_motion

__all__ = [
    "MULTIVIEW_CAPTION_GUIDELINES",
    "RELATION_KINDS",
    "TEACHER_MARGINS",
    "ObjectFact",
    "Relation",
    "RelationMargins",
    "TeacherPrompt",
    "build_caption_prompt",
    "build_multiview_caption_prompt",
    "camera_context",
    "caption_instruction",
    "frame_caption_prompt",
    "multiview_bev",
    "multiview_caption_instruction",
    "multiview_caption_prompt",
    "multiview_object_facts",
    "object_facts",
    "parse_caption",
    "render_object_facts",
    "render_relations",
    "spatial_relations",
]

RELATION_KINDS = ("left_of", "nearer_than", "distance", "same_category", "close_group")
"""Relation kinds: ``left_of`` (a is left of b, value = x gap m), ``nearer_than`` (a is nearer
the camera than b, value = depth gap m), ``distance`` (centre-to-centre m), ``same_category``
(2+ objects sharing a label), ``close_group`` (2+ objects whose centres are all pairwise closer
than the margin, value = the largest pairwise distance m)."""


@dataclass(frozen=True)
class ObjectFact:
    """One object as the teacher sees it (metres, camera frame; see the module docstring)."""

    object_id: int
    label: str
    name: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    depth: float
    distance: float
    bbox2d: tuple[int, int, int, int] | None = None
    mark: str | None = None
    views: tuple[int, ...] = (0,)
    view_boxes: tuple[tuple[int, int, int, int] | None, ...] = ()
    """Multi-image facts: the object's 2D box in each image (None where it is not seen);
    empty for single-image facts (``bbox2d`` is the box then)."""

    def to_meta(self) -> dict[str, Any]:
        """JSON-able record."""
        return {
            "object_id": self.object_id,
            "label": self.label,
            "name": self.name,
            "center": list(self.center),
            "size": list(self.size),
            "depth": self.depth,
            "distance": self.distance,
            "bbox2d": None if self.bbox2d is None else list(self.bbox2d),
            "mark": self.mark,
            "views": list(self.views),
            "view_boxes": [None if b is None else list(b) for b in self.view_boxes],
        }


@dataclass(frozen=True)
class Relation:
    """A relation between objects (by ``object_id``), see :data:`RELATION_KINDS`."""

    kind: str
    ids: tuple[int, ...]
    value: float | None = None


@dataclass(frozen=True)
class RelationMargins:
    """Margins below which a relation is not stated (it would be borderline).

    ``lateral``: minimum |x gap| (m) for left/right — the paper's teacher prompt treats
    > 0.5 m as a clear left/right; ``depth_abs`` and ``depth_rel``: a depth gap must exceed
    both (m, and fraction of the larger depth) for nearer/farther; ``close``: centre distance
    (m) below which objects count as close together; ``max_distance``: pairs farther apart than
    this get no ``distance`` relation (None: all pairs); ``neighbours``: relate each object only
    to its this many nearest objects (by centre distance), a sparse scene graph (None: all
    pairs)."""

    lateral: float = 0.5
    depth_abs: float = 0.15
    depth_rel: float = 0.10
    close: float = 1.0
    max_distance: float | None = None
    neighbours: int | None = None


TEACHER_MARGINS = RelationMargins(neighbours=2)
"""Default margins of teacher prompts: a sparse scene graph (each object related to its two
nearest objects), so that the teacher can cover every listed relation in 20 sentences."""


@dataclass
class TeacherPrompt:
    """A teacher request: ``messages`` in the sample chat format (one user turn: image items,
    then the instruction text) and the ``images`` filling the image items in order."""

    messages: list[dict[str, Any]]
    images: list[Image.Image]
    objects: list[ObjectFact] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The prompt's text items, one per line (e.g. "Image 1:", "Image 2:", instructions)."""
        return "\n".join(c["text"] for c in self.messages[0]["content"] if c["type"] == "text")


# -- facts ---------------------------------------------------------------------------------------
def object_facts(
    view: FrameView,
    object_ids: Sequence[int],
    names: Mapping[int, str] | None = None,
    marks: Mapping[int, str] | None = None,
    depths: Mapping[int, float] | None = None,
    bboxes: Mapping[int, tuple[int, int, int, int]] | None = None,
) -> list[ObjectFact]:
    """Facts of ``object_ids`` (in this order) in ``view``'s camera frame.

    ``names``: how text refers to each object (default: its label); ``marks``: the drawn mark
    of each (e.g. ``"orange point-2"``); ``depths``/``bboxes``: precomputed median depths and
    model-image 2D boxes (default: computed from the view).
    """
    out = []
    for oid in object_ids:
        oid = int(oid)
        box = view.box_cam(oid)
        center = (float(box[0]), float(box[1]), float(box[2]))
        label = view.object(oid).label
        depth = float(depths[oid]) if depths is not None else view.object_depth(oid)
        bbox = tuple(bboxes[oid]) if bboxes is not None else view.model_bbox2d(oid)
        out.append(
            ObjectFact(
                object_id=oid,
                label=label,
                name=names[oid] if names is not None else label,
                center=center,
                size=(float(box[5]), float(box[4]), float(box[3])),
                depth=depth,
                distance=float(math.sqrt(sum(c * c for c in center))),
                bbox2d=tuple(int(v) for v in bbox),
                mark=None if marks is None else marks.get(oid),
            )
        )
    return out


def _complete_clusters(dist: np.ndarray, threshold: float) -> list[list[int]]:
    """Complete-linkage clusters (index lists, sorted, in order of their first index) of an
    (n, n) distance matrix: merge the two clusters whose farthest pair is closest while that
    pair is closer than ``threshold`` (ties: lowest indices), so every pair inside a cluster
    is closer than ``threshold``."""
    D = np.asarray(dist, dtype=np.float64).tolist()
    clusters = [[i] for i in range(len(D))]
    while len(clusters) > 1:
        best = None
        for p in range(len(clusters)):
            for q in range(p + 1, len(clusters)):
                d = max(D[i][j] for i in clusters[p] for j in clusters[q])
                if d < threshold and (best is None or d < best[0]):
                    best = (d, p, q)
        if best is None:
            break
        _, p, q = best
        clusters[p] = sorted(clusters[p] + clusters.pop(q))
    return sorted(clusters, key=lambda g: g[0])


def _same_image_order(a: ObjectFact, b: ObjectFact, dx: float) -> bool:
    """True if the horizontal image direction (x / z) of the centres orders a, b like ``dx``."""
    if a.center[2] <= 0 or b.center[2] <= 0:
        return False
    tan_gap = b.center[0] / b.center[2] - a.center[0] / a.center[2]
    return tan_gap * dx > 0


def spatial_relations(
    facts: Sequence[ObjectFact], margins: RelationMargins | None = None
) -> list[Relation]:
    """All clear relations among ``facts``: pairwise ``left_of`` (|x gap| > lateral, and the
    centres' image directions ``x / z`` in the same order, so the picture agrees), ``nearer_than``
    (depth gap beyond both depth margins), ``distance`` (centre to centre, up to
    ``max_distance``), then ``same_category`` groups and ``close_group`` clusters (complete
    linkage: every pair of centres in a cluster closer than ``close``). Pairwise relations cover
    all pairs, or each object with its ``neighbours`` nearest objects; pairs follow the order of
    ``facts``."""
    m = margins or RelationMargins()
    rels: list[Relation] = []
    n = len(facts)
    centers = np.array([f.center for f in facts], dtype=np.float64).reshape(n, 3)
    dist = np.linalg.norm(centers[:, None, :] - centers[None, :, :], axis=-1)
    if m.neighbours is None:
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    else:
        keep: set[tuple[int, int]] = set()
        for i in range(n):
            others = sorted((float(dist[i, j]), j) for j in range(n) if j != i)
            for _, j in others[: m.neighbours]:
                keep.add((min(i, j), max(i, j)))
        pairs = sorted(keep)
    for i, j in pairs:
        a, b = facts[i], facts[j]
        dx = b.center[0] - a.center[0]
        if abs(dx) > m.lateral and _same_image_order(a, b, dx):
            left, right = (a, b) if dx > 0 else (b, a)
            rels.append(Relation("left_of", (left.object_id, right.object_id), abs(dx)))
        dd = b.depth - a.depth
        if abs(dd) > m.depth_abs and abs(dd) > m.depth_rel * max(a.depth, b.depth):
            near, far = (a, b) if dd > 0 else (b, a)
            rels.append(Relation("nearer_than", (near.object_id, far.object_id), abs(dd)))
        if m.max_distance is None or dist[i, j] <= m.max_distance:
            rels.append(Relation("distance", (a.object_id, b.object_id), float(dist[i, j])))
    by_label: dict[str, list[int]] = {}
    for f in facts:
        by_label.setdefault(f.label, []).append(f.object_id)
    for label in sorted(by_label):
        if len(by_label[label]) > 1:
            rels.append(Relation("same_category", tuple(by_label[label])))
    for comp in _complete_clusters(dist, m.close):
        if len(comp) > 1:
            spread = float(dist[np.ix_(comp, comp)].max())
            rels.append(Relation("close_group", tuple(facts[i].object_id for i in comp), spread))
    return rels


# -- text ----------------------------------------------------------------------------------------
def _m(v: float) -> str:
    return f"{v:.2f}"


def render_object_facts(facts: Sequence[ObjectFact], multi_view: bool = False) -> str:
    """One line per object, e.g.::

        - chair (orange point-2): center (x -0.41, y 0.32, z 1.80) m; size width 0.44,
          height 0.86, length 0.53 m; depth 1.72 m; distance to camera 1.87 m;
          2D box [12, 40, 88, 130]

    (one line in the output). ``multi_view`` adds the images each object is seen in (1-based)
    and, when the facts carry ``view_boxes``, its 2D box in each of them instead of ``bbox2d``.
    """
    lines = []
    for f in facts:
        x, y, z = f.center
        w, h, ln = f.size
        parts = [
            f"center (x {_m(x)}, y {_m(y)}, z {_m(z)}) m",
            f"size width {_m(w)}, height {_m(h)}, length {_m(ln)} m",
            f"depth {_m(f.depth)} m",
            f"distance to camera {_m(f.distance)} m",
        ]
        if multi_view and f.view_boxes:
            for k, b in enumerate(f.view_boxes):
                if b is not None:
                    parts.append(f"2D box in image {k + 1} [" + ", ".join(map(str, b)) + "]")
        elif f.bbox2d is not None:
            parts.append("2D box [" + ", ".join(str(int(v)) for v in f.bbox2d) + "]")
        if multi_view:
            parts.append("seen in image " + ", ".join(str(v + 1) for v in f.views))
        lines.append(f"- {f.name}: " + "; ".join(parts))
    return "\n".join(lines)


def render_relations(relations: Sequence[Relation], facts: Sequence[ObjectFact]) -> str:
    """Relations as lines grouped by kind (pairwise facts, groups, distances), using the
    objects' names. Empty string if there are none."""
    name = {f.object_id: f.name for f in facts}
    pair_lines, group_lines, dist_lines = [], [], []
    for r in relations:
        if r.kind == "left_of":
            a, b = r.ids
            pair_lines.append(f"- {name[a]} is left of {name[b]} (horizontal gap {_m(r.value)} m)")
        elif r.kind == "nearer_than":
            a, b = r.ids
            pair_lines.append(
                f"- {name[a]} is nearer to the camera than {name[b]} by {_m(r.value)} m"
            )
        elif r.kind == "distance":
            a, b = r.ids
            dist_lines.append(f"- {name[a]} <-> {name[b]}: {_m(r.value)} m apart")
        elif r.kind == "same_category":
            group_lines.append("- same category: " + ", ".join(name[i] for i in r.ids))
        elif r.kind == "close_group":
            group_lines.append(
                f"- close together (all within {_m(r.value)} m of each other): "
                + ", ".join(name[i] for i in r.ids)
            )
        else:
            raise ValueError(f"unknown relation kind {r.kind!r}")
    blocks = []
    if pair_lines:
        blocks.append("Pairwise relations (camera viewpoint):\n" + "\n".join(pair_lines))
    if group_lines:
        blocks.append("Groups:\n" + "\n".join(group_lines))
    if dist_lines:
        blocks.append("Distances between object centres:\n" + "\n".join(dist_lines))
    return "\n\n".join(blocks)


CAPTION_GUIDELINES: tuple[str, ...] = (
    "Describe the layout as seen from the camera: begin with the object closest to the camera "
    "and move progressively deeper into the scene, giving depths in metres where helpful.",
    "Compare depths with 'closer' or 'farther' and say by how many metres (for example "
    "'0.8 m farther than ...').",
    "Use left and right strictly from the camera's point of view. Treat a horizontal gap "
    "above 0.5 m as clearly left or right, a vertical gap above 0.3 m as clearly higher or "
    "lower, and a depth gap above 1 m as clearly in front or behind.",
    "Mention every pairwise relation and group listed above, and at least seven in ten of the "
    "distances, shorter ones (under 3 m) first.",
    "When the listed relations and the raw numbers seem to disagree, trust the listed "
    "relations; use distances to add numbers, never to change a direction.",
    "Organise the text: from the camera outwards, then around the largest or most central "
    "object, then groups before single objects.",
    "Write between 4 and 20 sentences of plain prose: no lists, no markdown, no headings.",
    "Refer to each object exactly by the name given above, including its mark in brackets.",
    "Give a unit with every number, and say what the number is (depth, distance, gap).",
    "Do not mention coordinates, axes, 'the data', 'the relations' or the object list; do not "
    "copy the lists. When you state how many objects of a kind there are, count them; do not "
    "infer a count from mark numbers.",
)
"""What the teacher is asked to do (paper Table 26 describes the content; wording is ours)."""


def caption_instruction(
    facts: Sequence[ObjectFact],
    relations: Sequence[Relation],
    n_images: int = 1,
    context: Sequence[str] = (),
    guidelines: Sequence[str] = CAPTION_GUIDELINES,
) -> str:
    """The instruction text of a caption request (see :func:`build_caption_prompt`)."""
    multi = n_images > 1
    scope = (
        f"these {n_images} images (the first image's camera is the reference frame)"
        if multi
        else "this image"
    )
    sections = [
        "You are an expert in 3D scene understanding. Write a description of the spatial "
        f"layout of {scope}, as seen from the camera.",
        "Reference frame: the camera sits at the origin (0, 0, 0); x grows to the right, y "
        "grows downwards and z grows forwards (z is the depth). All values are in metres.",
        "Each object below has: its name as the text must write it; its 3D centre (x, y, z); "
        "its size (width, height, length); its depth (how far its visible surface is along "
        "the viewing direction); its straight-line distance from the camera to its centre; "
        "and its 2D box in pixels [x1, y1, x2, y2] of the image.",
    ]
    if context:
        sections.append("Cameras:\n" + "\n".join(f"- {c}" for c in context))
    sections.append("Objects:\n" + render_object_facts(facts, multi_view=multi))
    rel_text = render_relations(relations, facts)
    if rel_text:
        sections.append(rel_text)
    sections.append("Guidelines:\n" + "\n".join(f"{k}. {g}" for k, g in enumerate(guidelines, 1)))
    sections.append(
        "Now write the description, using what you see in the image and the facts above, and "
        "put it between <caption> and </caption>."
    )
    return "\n\n".join(sections)


def build_caption_prompt(
    images: Image.Image | Sequence[Image.Image],
    facts: Sequence[ObjectFact],
    relations: Sequence[Relation] | None = None,
    context: Sequence[str] = (),
    margins: RelationMargins | None = None,
) -> TeacherPrompt:
    """A caption request for a teacher VLM: the image(s) (with their marks drawn), every object
    fact, and the relations (when not given: :func:`spatial_relations` with ``margins``,
    default :data:`TEACHER_MARGINS`).

    Returns a :class:`TeacherPrompt` whose ``messages`` is ``[user(image, ..., text)]`` in the
    sample chat format and ``images`` the pictures in order.
    """
    imgs = [images] if isinstance(images, Image.Image) else list(images)
    if relations is None:
        relations = spatial_relations(facts, margins or TEACHER_MARGINS)
    rels = list(relations)
    text = caption_instruction(facts, rels, n_images=len(imgs), context=context)
    messages = [user(*imgs, text)]
    return TeacherPrompt(messages=messages, images=imgs, objects=list(facts), relations=rels)


def frame_caption_prompt(
    view: FrameView,
    object_ids: Sequence[int] | None = None,
    names: Mapping[int, str] | None = None,
    marks: Mapping[int, str] | None = None,
    image: Image.Image | None = None,
    margins: RelationMargins | None = None,
) -> TeacherPrompt:
    """:func:`build_caption_prompt` for one frame: facts of ``object_ids`` (default: the view's
    visible objects) with their ``names``/``marks``, on ``image`` (default: the plain model
    image; pass the image with the marks drawn when the names mention marks)."""
    ids = list(view.visible_ids if object_ids is None else object_ids)
    facts = object_facts(view, ids, names=names, marks=marks)
    return build_caption_prompt(
        image if image is not None else view.model_image(), facts, margins=margins
    )


_CAPTION_RE = re.compile(r"<caption>(.*?)</caption>", re.DOTALL | re.IGNORECASE)


def parse_caption(reply: str) -> str | None:
    """The text between ``<caption>`` and ``</caption>`` in a teacher reply (stripped, spaces
    collapsed), or None when the tags are missing or empty."""
    m = _CAPTION_RE.search(reply)
    if m is None:
        return None
    text = " ".join(m.group(1).split())
    return text or None


# -- several images (frame 1's camera frame is the world frame) ----------------------------------
def multiview_object_facts(
    mv: MultiView,
    object_ids: Sequence[int],
    names: Mapping[int, str] | None = None,
    marks: Mapping[int, str] | None = None,
) -> list[ObjectFact]:
    """Facts of ``object_ids`` (in this order) for a multi-view set, in the reference (first)
    camera's frame: ``center``/``size`` from :meth:`MultiView.box_ref`; ``distance`` to camera
    1; ``depth`` the median visible z-depth in image 1 when the object is seen there, else its
    centre's z in frame 1; ``views`` the images it is visible enough in
    (:meth:`MultiView.seen_in`, 0-based); ``view_boxes`` its model-image 2D box in each of them
    (None elsewhere); ``bbox2d`` the box in the first image that sees it."""
    out = []
    for oid in object_ids:
        oid = int(oid)
        box = mv.box_ref(oid)
        center = (float(box[0]), float(box[1]), float(box[2]))
        seen = tuple(mv.seen_in(oid))
        boxes = tuple(
            tuple(int(v) for v in mv.views[k].model_bbox2d(oid)) if k in seen else None
            for k in range(len(mv.frames))
        )
        depth = mv.views[0].object_depth(oid) if 0 in seen else center[2]
        first = next((b for b in boxes if b is not None), None)
        out.append(
            ObjectFact(
                object_id=oid,
                label=mv.scene.object(oid).label,
                name=names[oid] if names is not None else mv.scene.object(oid).label,
                center=center,
                size=(float(box[5]), float(box[4]), float(box[3])),
                depth=float(depth),
                distance=float(math.sqrt(sum(c * c for c in center))),
                bbox2d=first,
                mark=None if marks is None else marks.get(oid),
                views=seen,
                view_boxes=boxes,
            )
        )
    return out


def _signed(value: float, negative: str, positive: str, unit: str, digits: int) -> str:
    word = positive if value >= 0 else negative
    return f"{abs(value):.{digits}f}{unit} {word}"


def _turn(name: str, deg: float, negative: str, positive: str) -> str:
    """``"pan 27.3 deg (turned right)"``; ``"tilt 0.0 deg (none)"`` below 0.05 degrees."""
    if abs(deg) < 0.05:
        return f"{name} 0.0 deg (none)"
    return f"{name} {deg:.1f} deg ({positive if deg > 0 else negative})"


def camera_context(mv: MultiView) -> list[str]:
    """One line per camera after the first: its motion relative to camera 1 against gravity
    (:func:`vst.geometry.motion.camera_motion`, the decomposition the caption tasks use):
    translation on camera 1's levelled axes (right and forward along the floor from where
    camera 1 faces, up along gravity) and pan / tilt / roll (pan > 0 turned right about the
    vertical, tilt > 0 the view tilted up, roll > 0 clockwise seen from behind the camera),
    e.g.::

        image 2: relative to image 1, measured against gravity: moved 0.30 m right, 1.10 m
        forward and 0.05 m up (right and forward along the floor from where camera 1 faces);
        pan 27.3 deg (turned right), tilt -0.8 deg (tilted down), roll 2.4 deg (rolled
        clockwise)

    An angle under 0.05 degrees reads ``"0.0 deg (none)"``. When a camera looks (almost)
    straight up or down the angles are undefined: the line gives camera 2's centre in camera
    1's frame instead.
    """
    lines = ["image 1: the reference camera, at (0, 0, 0) looking along +z"]
    for k in range(1, len(mv.frames)):
        m = camera_motion(mv.frames[0].cam_to_world, mv.frames[k].cam_to_world)
        if m.angles is None or m.translation is None:
            x, y, z = (float(v) for v in mv.camera_pose(k)[:3, 3])
            lines.append(
                f"image {k + 1}: camera centre at (x {_m(x)}, y {_m(y)}, z {_m(z)}) m in image "
                f"1's camera frame, {_m(m.distance)} m from camera 1; a camera looks almost "
                "straight up or down, so no turn angles are given"
            )
            continue
        x, y, z = m.translation
        pan, tilt, roll = m.angles
        lines.append(
            f"image {k + 1}: relative to image 1, measured against gravity: moved "
            f"{_signed(x, 'left', 'right', ' m', 2)}, {_signed(z, 'backward', 'forward', ' m', 2)}"
            f" and {_signed(-y, 'down', 'up', ' m', 2)} (right and forward along the floor from "
            f"where camera 1 faces); {_turn('pan', pan, 'turned left', 'turned right')}, "
            f"{_turn('tilt', tilt, 'tilted down', 'tilted up')}, "
            f"{_turn('roll', roll, 'rolled counter-clockwise', 'rolled clockwise')}"
        )
    return lines


def multiview_bev(
    mv: MultiView, object_ids: Sequence[int], names: Mapping[int, str] | None = None
) -> Image.Image:
    """Top view (:func:`~vst.geometry.bev.render_bev`, ``frame="camera"``) of the objects'
    boxes and every camera of ``mv``, in camera 1's frame (X right, Z forward up the page),
    boxes labelled with ``names`` (default: labels), cameras "cam 1", "cam 2", ... with their
    horizontal FoV. 800x800 RGB."""
    from vst.geometry.bev import render_bev
    from vst.geometry.cameras import Intrinsics

    ids = [int(o) for o in object_ids]
    boxes = np.array([mv.box_ref(o) for o in ids]).reshape(-1, 9)
    labels = [names[o] if names is not None else mv.scene.object(o).label for o in ids]
    poses = [mv.camera_pose(k) for k in range(len(mv.frames))]
    intr = [Intrinsics.from_K(f.K, f.width, f.height) for f in mv.frames]
    return render_bev(boxes, labels, poses, frame="camera", intrinsics=intr)


MULTIVIEW_CAPTION_GUIDELINES: tuple[str, ...] = (
    "First describe what the first image shows, then what the second image shows, pointing "
    "out which objects are the same in both and which are new.",
    "Say which objects stay in view, which leave the view and which come into view from the "
    "first image to the second.",
    "Describe how the camera moved between the shots in words with numbers (for example "
    "'the camera moved about 1.1 m forward and turned 20 degrees to the right'), using the "
    "camera lines above.",
    "Then summarise the layout of the whole scene as seen from the first camera: where the "
    "objects of the second image lie relative to the first camera and to the objects of the "
    "first image (left/right, in front/behind, distances in metres).",
    "Use left and right strictly from the first camera's point of view. Treat a horizontal "
    "gap above 0.5 m as clearly left or right and a depth gap above 1 m as clearly in front "
    "or behind.",
    "Mention every pairwise relation and group listed above, and most of the distances, "
    "shorter ones (under 3 m) first.",
    "When the listed relations and the raw numbers seem to disagree, trust the listed "
    "relations; use distances to add numbers, never to change a direction.",
    "Write between 4 and 20 sentences of plain prose: no lists, no markdown, no headings.",
    "Refer to each object exactly by the name given above, including its mark in brackets "
    "if it has one.",
    "Give a unit with every number, and say what the number is (distance, gap, angle).",
    "Do not mention coordinates, axes, 'the data', 'the relations', the object list or the "
    "top view; do not copy the lists.",
)
"""What the teacher is asked to do for a multi-image caption (paper Tables 19 and 26 describe
the content; the wording is ours)."""


def multiview_caption_instruction(
    facts: Sequence[ObjectFact],
    relations: Sequence[Relation],
    n_images: int,
    context: Sequence[str] = (),
    with_bev: bool = False,
    guidelines: Sequence[str] = MULTIVIEW_CAPTION_GUIDELINES,
) -> str:
    """The instruction text of a multi-image caption request (see
    :func:`build_multiview_caption_prompt`)."""
    sections = [
        "You are an expert in 3D scene understanding. The images above were taken one after "
        f"the other in the same scene ({n_images} views). Write a description of what each "
        "view shows, how the view changed, and the spatial layout of the scene.",
        "Reference frame: the first image's camera sits at the origin (0, 0, 0); x grows to "
        "its right, y grows downwards and z grows forwards along its viewing direction. All "
        "positions are in this frame, in metres.",
        "Each object below has: its name as the text must write it; its 3D centre (x, y, z); "
        "its size (width, height, length); its depth (how far it lies along the first "
        "camera's viewing direction); its straight-line distance from the first camera to its "
        "centre; its 2D box [x1, y1, x2, y2] in pixels of each image it is seen in; and the "
        "images it is clearly seen in.",
    ]
    if context:
        sections.append("Cameras:\n" + "\n".join(f"- {c}" for c in context))
    if with_bev:
        sections.append(
            "The top view shows the same objects and cameras from above in the first camera's "
            "frame: x to the right, the first camera's viewing direction up the page; each "
            "camera is a triangle spanning its field of view. Use it to keep every spatial "
            "statement consistent with the layout."
        )
    sections.append("Objects:\n" + render_object_facts(facts, multi_view=True))
    rel_text = render_relations(relations, facts)
    if rel_text:
        sections.append(rel_text.replace("(camera viewpoint)", "(first camera's viewpoint)"))
    sections.append("Guidelines:\n" + "\n".join(f"{k}. {g}" for k, g in enumerate(guidelines, 1)))
    sections.append(
        "Now write the description, using what you see in the images and the facts above, "
        "and put it between <caption> and </caption>."
    )
    return "\n\n".join(sections)


def build_multiview_caption_prompt(
    images: Sequence[Image.Image],
    facts: Sequence[ObjectFact],
    context: Sequence[str] = (),
    bev: Image.Image | None = None,
    relations: Sequence[Relation] | None = None,
    margins: RelationMargins | None = None,
) -> TeacherPrompt:
    """A multi-image caption request: ``"Image 1:"``, image 1, ``"Image 2:"``, image 2, ...,
    optionally a top-view (BEV) image, then the instruction with every object fact (use
    :func:`multiview_object_facts`), the camera ``context`` lines (:func:`camera_context`) and
    the relations in the first camera's frame (default: :func:`spatial_relations` with
    ``margins``, default :data:`TEACHER_MARGINS`). ``images`` of the returned prompt are the
    views in order, then the BEV image if any."""
    imgs = list(images)
    if relations is None:
        relations = spatial_relations(facts, margins or TEACHER_MARGINS)
    rels = list(relations)
    items: list[Any] = []
    for k, img in enumerate(imgs):
        items += [f"Image {k + 1}:", img]
    if bev is not None:
        items += ["Top view of the objects and cameras (first camera's frame):", bev]
    text = multiview_caption_instruction(
        facts, rels, len(imgs), context=context, with_bev=bev is not None
    )
    messages = [user(*items, text)]
    all_imgs = imgs + ([bev] if bev is not None else [])
    return TeacherPrompt(messages=messages, images=all_imgs, objects=list(facts), relations=rels)


def multiview_caption_prompt(
    mv: MultiView,
    object_ids: Sequence[int] | None = None,
    names: Mapping[int, str] | None = None,
    marks: Mapping[int, str] | None = None,
    images: Sequence[Image.Image] | None = None,
    bev: bool = True,
    margins: RelationMargins | None = None,
) -> TeacherPrompt:
    """:func:`build_multiview_caption_prompt` for a :class:`MultiView`: facts of
    ``object_ids`` (default: ``mv.visible_any``) with their ``names``/``marks``, the camera
    context, a BEV image of those objects and the cameras when ``bev``, on ``images`` (default:
    the plain model images; pass the marked images when the names mention marks)."""
    ids = list(mv.visible_any if object_ids is None else object_ids)
    facts = multiview_object_facts(mv, ids, names=names, marks=marks)
    imgs = list(images) if images is not None else [v.model_image() for v in mv.views]
    bev_img = multiview_bev(mv, ids, names) if bev and ids else None
    return build_multiview_caption_prompt(
        imgs, facts, context=camera_context(mv), bev=bev_img, margins=margins
    )
