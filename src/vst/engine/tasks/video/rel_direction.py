"""``video_rel_direction``: "standing at A and facing B, where is C?", asked about a video clip
of the scene (paper Table 31; VSI-Bench "Rel. Dir." easy / medium / hard).

Geometry, in the floor plane (world X-Y; the scene's world frame is Z-up, right-handed): the
facing direction is A->B between box centres, and the signed angle of C is
``theta = atan2(cross(AB, AC), dot(AB, AC))`` in degrees, positive counter-clockwise seen from
above, i.e. to the LEFT (left = facing direction rotated +90 degrees about +Z). ``theta`` = 0 is
straight ahead, +-180 straight behind.

Variants (``turn["variant"]``) split the circle into sectors of ``theta``:

* ``easy`` (VSI-Bench easy): left (0, 180) / right (-180, 0);
* ``medium`` (VSI-Bench medium): left (0, 135), right (-135, 0), back (|theta| >= 135: one would
  turn at least 135 degrees to face it);
* ``quadrant`` (VSI-Bench hard): front-left (0, 90), back-left (90, 180), back-right
  (-180, -90), front-right (-90, 0);
* ``octant`` (the paper's 8-way form): front, front-left, left, back-left, back, back-right,
  right, front-right, 45-degree sectors centred on 0, 45, ..., -45 (four of them offered).

Ambiguity filter: C lies at least :attr:`VideoRelDirection.MIN_BOUNDARY_DEG` from every sector
boundary of the variant, A-B (the baseline of the facing direction, ``dist_ab_m``) is at least
:attr:`VideoRelDirection.MIN_FACING_BASELINE_M` and A-C at least
:attr:`VideoRelDirection.MIN_SEPARATION_M` apart in the floor plane. Answers are balanced over
the directions of each variant (a direction is drawn first, then a triple that has it).

The clip and the object choice follow :mod:`.rel_distance` (at most 16 evenly subsampled frames;
objects visible in the clip whose category no other object shows in it, named by category).
Each sample is a conversation of 1-:attr:`VideoRelDirection.MAX_TURNS` questions about the same
clip (the video in the first user turn). Style per conversation (``meta["style"]``): ``mcq``
(lettered options, answer the letter, reward ``mcq``) or ``exact`` (answer the direction word,
reward ``exact``); the reward checks the last turn. No question (triple and variant) is asked
twice about a clip, in one conversation or across the scene's samples.

VSI-Bench agreement (checked against public copies of its QA templates and published questions):
its three questions are among the phrasings verbatim (:data:`VSI_QUESTIONS`), and the
definitions match its wording: easy = the side of the line from A towards B, medium = back when
turning at least 135 degrees, hard = the quadrants of a plane whose positive y-axis is the
facing direction. UNVERIFIED: that VSI-Bench places A and B at their box centres (its generator
is unpublished) and which side it gives angles exactly on a boundary (here excluded by
:attr:`VideoRelDirection.MIN_BOUNDARY_DEG`). The ``octant`` variant is this engine's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from vst.engine.choices import LETTERS, MCQ_INSTRUCTIONS, format_options, mcq_reply, pick
from vst.engine.context import EngineContext, visible_fractions
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import VIDEO, Sample, assistant, user
from vst.engine.tasks.video._clips import scene_clip
from vst.engine.tasks.video.rel_distance import _unique_objects
from vst.scenes.model import Scene

SECTORS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "easy": (("left", 0.0, 180.0), ("right", 180.0, 360.0)),
    "medium": (("left", 0.0, 135.0), ("back", 135.0, 225.0), ("right", 225.0, 360.0)),
    "quadrant": (
        ("front-left", 0.0, 90.0),
        ("back-left", 90.0, 180.0),
        ("back-right", 180.0, 270.0),
        ("front-right", 270.0, 360.0),
    ),
    "octant": tuple(
        (name, -22.5 + 45.0 * k, 22.5 + 45.0 * k)
        for k, name in enumerate(
            (
                "front",
                "front-left",
                "left",
                "back-left",
                "back",
                "back-right",
                "right",
                "front-right",
            )
        )
    ),
}
"""Per variant: ``(direction, start, end)`` sectors of ``theta`` (degrees, counter-clockwise
from the facing direction, start inclusive), covering the circle."""

VARIANTS: tuple[str, ...] = tuple(SECTORS)
DIRECTIONS: dict[str, tuple[str, ...]] = {v: tuple(s[0] for s in SECTORS[v]) for v in SECTORS}
WORD_ORDER: dict[str, tuple[str, ...]] = {
    "easy": ("left", "right"),
    "medium": ("left", "right", "back"),
    "quadrant": ("front-left", "front-right", "back-left", "back-right"),
    "octant": DIRECTIONS["octant"],
}
"""How ``exact`` questions list the allowed words (the order the ASKS name them in)."""
OCTANT_OPTIONS = 4
"""Options offered for an ``octant`` question (the answer and three other directions)."""


def floor_angle(a_xy: np.ndarray, b_xy: np.ndarray, c_xy: np.ndarray) -> np.ndarray:
    """Signed angle(s) (degrees, (-180, 180]) of C seen from A facing B, in the floor plane;
    positive = to the left (counter-clockwise about +Z). Arrays broadcast over leading axes."""
    f = np.asarray(b_xy, float) - np.asarray(a_xy, float)
    v = np.asarray(c_xy, float) - np.asarray(a_xy, float)
    cross = f[..., 0] * v[..., 1] - f[..., 1] * v[..., 0]
    dot = f[..., 0] * v[..., 0] + f[..., 1] * v[..., 1]
    return np.degrees(np.arctan2(cross, dot))


def classify(theta: np.ndarray, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """``(sector index, degrees to the nearest sector boundary)`` of angle(s) ``theta``."""
    sectors = SECTORS[variant]
    origin = sectors[0][1]
    ends = np.array([end - origin for _, _, end in sectors])  # cumulative, last = 360
    phi = np.mod(np.asarray(theta, float) - origin, 360.0)  # in [0, 360) from sector 0's start
    index = np.minimum(np.searchsorted(ends, phi, side="right"), len(sectors) - 1)
    starts = np.concatenate([[0.0], ends[:-1]])
    margin = np.minimum(phi - starts[index], ends[index] - phi)
    return index, margin


def direction_of(scene: Scene, a: int, b: int, c: int, variant: str) -> tuple[str, float]:
    """``(direction, theta)`` of object ``c`` standing at ``a`` facing ``b`` (world boxes)."""
    pa, pb, pc = (scene.object(o).box[:2] for o in (a, b, c))
    theta = float(floor_angle(pa, pb, pc))
    return DIRECTIONS[variant][int(classify(np.array(theta), variant)[0])], theta


# -- text -------------------------------------------------------------------------------------

STANCES: tuple[str, ...] = (
    "Suppose you are standing next to the {a} and looking towards the {b}.",
    "Picture yourself at the {a}, facing the {b}.",
    "You are positioned by the {a}, with your gaze fixed on the {b}.",
    "Imagine standing beside the {a} while facing the {b}.",
    "Assume you stand at the {a} and turn to face the {b}.",
    "Think of the room in this video: you are at the {a}, looking straight at the {b}.",
    "If I am standing by the {a} and facing the {b},",
)
"""How a question places the viewer (A) and the facing direction (B). The last one
(:data:`VSI_STANCE`) opens VSI-Bench's own questions (:data:`VSI_QUESTIONS`, whole) and is
offered only for their variants."""

VSI_STANCE = len(STANCES) - 1

VSI_QUESTIONS: dict[str, str] = {
    "easy": "If I am standing by the {a} and facing the {b}, is the {c} to the left or the right "
    "of the {b}?",
    "medium": "If I am standing by the {a} and facing the {b}, is the {c} to my left, right, or "
    "back? An object is to my back if I would have to turn at least 135 degrees in order to "
    "face it.",
    "quadrant": "If I am standing by the {a} and facing the {b}, is the {c} to my front-left, "
    "front-right, back-left, or back-right? The directions refer to the quadrants of a "
    "Cartesian plane (if I am standing at the origin and facing along the positive y-axis).",
}
"""VSI-Bench's questions (easy, medium, hard), verbatim."""

ASKS: dict[str, tuple[str, ...]] = {
    "easy": (
        "Is the {c} on your left or on your right?",
        "Would the {c} be to your left or to your right?",
        "On which side, left or right, is the {c}?",
        "Is the {c} located on your left-hand side or your right-hand side?",
        "Which side of you is the {c} on: left or right?",
    ),
    "medium": (
        "Is the {c} to your left, to your right, or behind you?",
        "Where is the {c}: left, right, or back?",
        "Would you find the {c} on your left, on your right, or at your back?",
        "Relative to you, is the {c} to the left, to the right, or to the back?",
        "Which way is the {c}: left, right, or behind?",
    ),
    "quadrant": (
        "In which quadrant around you is the {c}: front-left, front-right, back-left or "
        "back-right?",
        "Is the {c} to your front-left, front-right, back-left or back-right?",
        "Which of the four quadrants (front-left, front-right, back-left, back-right) contains "
        "the {c}?",
        "Where does the {c} lie: front-left, front-right, back-left or back-right of you?",
        "Relative to you, which quadrant holds the {c}: front-left, front-right, back-left or "
        "back-right?",
    ),
    "octant": (
        "In which direction is the {c}?",
        "Where is the {c} relative to you?",
        "Which direction would you point to indicate the {c}?",
        "Where does the {c} lie from your position?",
        "Determine the direction of the {c} relative to you.",
    ),
}
"""The question about C, per variant."""

RULES: dict[str, tuple[str, ...]] = {
    "easy": ("",),
    "medium": (
        " An object counts as behind you if you would have to turn at least 135 degrees to face "
        "it.",
        " Call it back when facing it would take a turn of 135 degrees or more.",
        " Treat anything you would need to turn 135 degrees or more to face as being behind you.",
    ),
    "quadrant": (
        " The quadrants are split by your facing direction and the line through your shoulders.",
        " Divide the floor around you into four quadrants by the line you face along and the "
        "line across it.",
        " Think of yourself at the origin of a plane looking along its positive y-axis.",
    ),
    "octant": ("",),
}
"""Sector conventions stated after the question (where the words alone are not enough)."""

EXACT_TAILS: tuple[str, ...] = (
    " Answer with one of: {choices}.",
    " Reply with one of these words: {choices}.",
    " Choose from {choices}; answer with the word only.",
    " Possible answers: {choices}.",
    " Respond using one of {choices}.",
)
"""Endings of ``exact`` questions: the allowed direction words."""


def mcq_tails(answer_style: str) -> tuple[str, ...]:
    """Endings of ``mcq`` questions, after the options: none, or an instruction of the run's
    answer style (:data:`~vst.engine.choices.MCQ_INSTRUCTIONS`)."""
    return ("", *("\n" + s for s in MCQ_INSTRUCTIONS[answer_style]))


STYLES = ("mcq", "exact")


@dataclass
class _Triples:
    """Candidate questions of a clip: index triples into ``objects`` and their geometry."""

    abc: np.ndarray  # (T, 3) indices
    theta: np.ndarray  # (T,) degrees
    d_ab: np.ndarray  # (T,) floor-plane metres
    d_ac: np.ndarray
    pools: dict[str, dict[int, np.ndarray]]  # variant -> sector index -> triple indices
    margins: dict[str, np.ndarray]  # variant -> (T,) degrees to the nearest boundary


@register
class VideoRelDirection(Task):
    """Direction of C standing at A facing B, over a video clip (see the module docstring)."""

    name = "video_rel_direction"
    scenario = "video"
    needs = TaskNeeds(mask=True, min_frames=2)
    version = "2"

    CLIP_FRAMES: ClassVar[int] = 16
    """Clips hold at most this many frames (the trajectory is subsampled evenly)."""
    MIN_BOUNDARY_DEG: ClassVar[float] = 10.0
    """Skip C within this many degrees of a sector boundary of the variant."""
    MIN_SEPARATION_M: ClassVar[float] = 0.5
    """Skip when A-C are closer than this in the floor plane (metres)."""
    MIN_FACING_BASELINE_M: ClassVar[float] = 1.0
    """Skip when A-B, which defines the facing direction, are closer than this (metres)."""
    MAX_TURNS: ClassVar[int] = 4
    """At most this many questions per conversation."""
    MAX_OBJECTS: ClassVar[int] = 16
    """A call works on at most this many of the clip's nameable objects (a random subset when
    there are more), bounding its setup at 16 * 15 * 14 = 3360 ordered triples."""
    VARIANTS: ClassVar[tuple[str, ...]] = VARIANTS
    STYLES: ClassVar[tuple[str, ...]] = STYLES

    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        """Up to ``budget`` distinct conversations about the scene's clip."""
        clip = scene_clip(scene, self.CLIP_FRAMES)
        if budget <= 0 or clip is None:
            return
        objects = _unique_objects(clip, ctx)
        if len(objects) > self.MAX_OBJECTS:
            keep = rng.choice(len(objects), self.MAX_OBJECTS, replace=False)
            objects = sorted(objects[int(i)] for i in keep)
        triples = self._triples(scene, objects)
        if triples is None:
            return
        images = clip.images(ctx)
        fractions = visible_fractions(clip.views(ctx), objects)
        seen: set[str] = set()
        # questions not yet asked about this clip: variant -> answer -> triple rows
        left = {v: {k: list(rows) for k, rows in p.items()} for v, p in triples.pools.items()}
        made = fails = 0
        while made < budget and fails < 5 * budget + 20:
            sample = self._conversation(
                scene,
                clip,
                objects,
                triples,
                images,
                rng,
                left,
                fractions,
                ctx.settings.answer_style,
            )
            if sample is None:  # every question of the clip asked
                return
            if sample.id in seen:
                fails += 1
                continue
            seen.add(sample.id)
            made += 1
            yield sample

    def _triples(self, scene: Scene, objects: list[int]) -> _Triples | None:
        """Every ordered triple of distinct objects passing the distance filter, with the
        triples passing each variant's boundary margin grouped by answer."""
        n = len(objects)
        if n < 3:
            return None
        xy = np.stack([scene.object(o).box[:2] for o in objects])
        grid = np.stack(np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij"), -1)
        abc = grid.reshape(-1, 3)
        abc = abc[(abc[:, 0] != abc[:, 1]) & (abc[:, 0] != abc[:, 2]) & (abc[:, 1] != abc[:, 2])]
        pa, pb, pc = xy[abc[:, 0]], xy[abc[:, 1]], xy[abc[:, 2]]
        d_ab = np.linalg.norm(pb - pa, axis=1)
        d_ac = np.linalg.norm(pc - pa, axis=1)
        keep = (d_ab >= self.MIN_FACING_BASELINE_M) & (d_ac >= self.MIN_SEPARATION_M)
        abc, d_ab, d_ac = abc[keep], d_ab[keep], d_ac[keep]
        theta = floor_angle(pa[keep], pb[keep], pc[keep])
        pools: dict[str, dict[int, np.ndarray]] = {}
        margins: dict[str, np.ndarray] = {}
        for variant in self.VARIANTS:
            index, margin = classify(theta, variant)
            margins[variant] = margin
            ok = margin >= self.MIN_BOUNDARY_DEG
            by_answer = {k: np.flatnonzero(ok & (index == k)) for k in range(len(SECTORS[variant]))}
            by_answer = {k: v for k, v in by_answer.items() if len(v)}
            if by_answer:
                pools[variant] = by_answer
        if not pools:
            return None
        return _Triples(abc, theta, d_ab, d_ac, pools, margins)

    @staticmethod
    def _draw(left: dict[str, dict[int, list]], rng) -> tuple[int, str, int] | None:
        """``(triple row, variant, answer index)`` taken out of ``left`` (the questions not yet
        asked): a variant, then an answer, then a triple, each uniformly among those left
        (answers stay balanced until one runs out); None when nothing is left."""
        variants = [v for v in sorted(left) if any(left[v].values())]
        if not variants:
            return None
        variant = variants[int(rng.integers(len(variants)))]
        answers = [k for k in sorted(left[variant]) if left[variant][k]]
        k = answers[int(rng.integers(len(answers)))]
        rows = left[variant][k]
        return int(rows.pop(int(rng.integers(len(rows))))), variant, k

    def _conversation(
        self,
        scene,
        clip,
        objects,
        triples: _Triples,
        images,
        rng,
        left: dict,
        fractions: dict,
        answer_style: str = "paper",
    ) -> Sample | None:
        """One conversation; its questions are taken out of ``left`` (shared by the clip's
        samples); None when none is left."""
        style = self.STYLES[int(rng.integers(len(self.STYLES)))]
        n_turns = int(rng.integers(1, self.MAX_TURNS + 1))
        messages: list[dict] = []
        turns: list[dict] = []
        for t in range(n_turns):
            drawn = self._draw(left, rng)
            if drawn is None:
                break
            row, variant, k = drawn
            turns.append(
                self._turn(scene, objects, triples, row, variant, k, style, rng, answer_style)
            )
            q = turns[-1].pop("question")
            messages.append(user(VIDEO, q) if t == 0 else user(q))
            reply = turns[-1]["answer"]
            if style == "mcq":
                reply = mcq_reply(reply, turns[-1]["direction"], answer_style)
            messages.append(assistant(reply))
        if not turns:
            return None
        last = turns[-1]
        ids = sorted({o for tr in turns for o in tr["ids"]})
        mode = "mcq" if style == "mcq" else "exact"
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=messages,
            images=[],
            videos=[list(images)],
            answer=last["answer"],
            reward={"mode": mode, "ground_truth": last["answer"]},
            meta={
                "scene_id": scene.id,
                **clip.meta(),
                "object_ids": ids,
                "visible_fraction": {str(o): fractions[str(o)] for o in ids},
                "style": style,
                **({"answer_style": answer_style} if style == "mcq" else {}),
                "turns": turns,
            },
        )

    def _turn(
        self, scene, objects, triples, row, variant, k, style, rng, answer_style: str = "paper"
    ) -> dict:
        ids = [objects[int(i)] for i in triples.abc[row]]
        labels = [scene.object(o).label for o in ids]
        direction = DIRECTIONS[variant][k]
        s_idx, stance = pick(rng, STANCES if variant in VSI_QUESTIONS else STANCES[:VSI_STANCE])
        a_idx, ask = pick(rng, ASKS[variant])
        r_idx, rule = pick(rng, RULES[variant])
        names = {"a": labels[0], "b": labels[1], "c": labels[2]}
        if s_idx == VSI_STANCE:  # VSI-Bench's question as it is (ask and rule unused)
            question = VSI_QUESTIONS[variant].format(**names)
        else:
            question = stance.format(**names) + " " + ask.format(**names) + rule
        if style == "mcq":
            choices = list(DIRECTIONS[variant])
            if variant == "octant":
                others = [d for d in choices if d != direction]
                picked = rng.choice(len(others), OCTANT_OPTIONS - 1, replace=False)
                choices = [direction, *(others[int(i)] for i in picked)]
            options = [choices[int(i)] for i in rng.permutation(len(choices))]
            t_idx, tail = pick(rng, mcq_tails(answer_style))
            question += "\n" + format_options(options) + tail
            answer = LETTERS[options.index(direction)]
        else:
            options = None
            t_idx, tail = pick(rng, EXACT_TAILS)
            question += tail.format(choices=", ".join(WORD_ORDER[variant]))
            answer = direction
        theta = float(triples.theta[row])
        return {
            "ids": ids,
            "labels": labels,
            "variant": variant,
            "theta_deg": theta,
            "boundary_margin_deg": float(triples.margins[variant][row]),
            "dist_ab_m": float(triples.d_ab[row]),
            "dist_ac_m": float(triples.d_ac[row]),
            "direction": direction,
            "options": options,
            "answer": answer,
            "phrasing": [s_idx, a_idx, r_idx, t_idx],
            "question": question,
        }

    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """The last turn's answer from the world boxes: the direction word (``exact``) or the
        letter of that direction among the turn's options (``mcq``)."""
        last = meta["turns"][-1]
        direction, _ = direction_of(scene, *last["ids"], last["variant"])
        if meta["style"] == "exact":
            return direction
        options = last["options"]
        return LETTERS[options.index(direction)] if direction in options else ""
