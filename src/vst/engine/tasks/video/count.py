"""``video_count``: how many objects of a category appear in a video (VSI-Bench "object count").

Clips: the scene's whole trajectory plus :attr:`VideoCount.WINDOWS` random windows of it
(:func:`~vst.engine.tasks.video._clips.candidate_clips`), each subsampled evenly to at most
:attr:`VideoCount.MAX_FRAMES` frames; ``meta["frame_ids"]`` / ``meta["video_fps"]`` record
which frames the model sees and their effective rate.

Counting rule (pixel counts are instance-mask pixels at the frame's own resolution):

* an instance *appears* when it covers at least ``clear`` pixels in some clip frame
  (``clear`` = the run's ``EngineSettings.min_object_pixels``, 400 by default) and shows at
  least ``min_visible_fraction`` of its silhouette there (0.5 by default);
* an instance with ``>= faint`` pixels (``faint`` = ``clear`` x
  :attr:`VideoCount.FAINT_FRACTION`, 50 px by default) in some frame that never appears is
  only glimpsed or mostly hidden: its category is **skipped** (the true count is unclear);
  instances below ``faint`` are treated as unseen;
* the same instance seen in several frames counts once (object ids).

The answer is the number of appearing instances. Styles (``meta["style"]``): ``numeric``
(answer ``"3"``, reward ``numeric``) and ``mcq`` (four integer options around the count,
shuffled with the sample's rng, answer the letter, reward ``mcq``).

A window whose counted instances of a category are the same as in an earlier clip (the whole
video comes first) is not asked about again for that category. Balance: within a scene,
candidate questions are drawn without replacement with weights ``1 / (number of candidates
with the same count)``, so every count value present gets the same share of draws (scenes hold
many single objects; counts of 2+ are not drowned out). Each fact (clip, category) is asked
once, in one style drawn per fact (not once per style).

VSI-Bench agreement: its question "How many X(s) are in this room?" is one of the phrasings
(verified against public copies of its templates and published questions) and asks for the
number of instances in the room (its metadata's ``object_counts``), so it is used only for the
whole video when every instance of the category in the scene is counted in it; the answer is a
bare integer as its ground truths. UNVERIFIED: which categories VSI-Bench leaves out (it is said
to ask only categories with 2+ instances).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import ClassVar

import numpy as np

from vst.engine.choices import (
    LETTERS,
    format_options,
    mcq_instruction,
    mcq_reply,
    pick,
    shuffle_options,
)
from vst.engine.context import EngineContext, visible_fractions
from vst.engine.registry import register
from vst.engine.sample import VIDEO, Sample, assistant, user
from vst.engine.tasks.single_image.scene_caption import plural
from vst.engine.tasks.video._clips import (
    Clip,
    SightingTask,
    candidate_clips,
    clip_from_meta,
    label_sightings,
    pixel_series,
)
from vst.scenes.model import Scene

QUESTIONS: tuple[str, ...] = (
    "How many {plural} appear in this video?",
    "How many {plural} can you spot in the video?",
    "Count the {plural} that show up over the course of the video. How many are there?",
    "What is the number of distinct {plural} seen in this video?",
    "Across all frames of the video, how many different {plural} are visible? An object seen "
    "in several frames counts once.",
    "How many {plural} does the camera capture while it moves through the scene?",
    "Watching the whole video, how many separate {plural} are there?",
)
"""Question text (``{plural}``: the category's plural)."""

ROOM_QUESTION = "How many {label}(s) are in this room?"
"""VSI-Bench's counting question, verbatim: asked (as one more phrasing, index
``len(QUESTIONS)``) only about the whole video when it shows every instance of the category in
the scene, so the clip's count is the room's."""

NUMERIC_SUFFIXES: tuple[str, ...] = (
    " Answer with a single number.",
    " Reply with just the number.",
    " Give the count as an integer.",
    " Respond using a single word or number.",
    " Answer the question using a single number.",
)
STYLES: tuple[str, ...] = ("numeric", "mcq")


def count_options(count: int, rng: np.random.Generator, n: int = 4) -> list[int]:
    """``n`` distinct integer options: ``count`` and ``n - 1`` distractors drawn from
    ``[max(0, count - 3), count + 3]``, shuffled uniformly (answer letters uniform)."""
    pool = [v for v in range(max(0, count - 3), count + 4) if v != count]
    picked = [pool[int(i)] for i in sorted(rng.choice(len(pool), n - 1, replace=False))]
    options, _, _ = shuffle_options([count, *picked], 0, rng)
    return [int(v) for v in options]


def format_answer(style: str, count: int, options: list[int] | None) -> tuple[str, object]:
    """``(answer text, reward ground truth)``."""
    if style == "numeric":
        return str(count), count
    if style == "mcq":
        if options is None:
            raise ValueError("mcq style needs options")
        letter = LETTERS[options.index(count)]
        return letter, letter
    raise ValueError(f"unknown style {style!r}")


@register
class VideoCount(SightingTask):
    """Count the instances of a category seen in a video (see the module docstring): an instance
    peaking in ``[faint, clear)`` pixels makes its category ambiguous (skipped)."""

    name = "video_count"
    version = "2"

    MCQ_OPTIONS: ClassVar[int] = 4
    STYLES: ClassVar[tuple[str, ...]] = STYLES

    def candidates(
        self, clip: Clip, ctx: EngineContext, clear: int, faint: int
    ) -> list[tuple[str, list[int]]]:
        """``(label, counted object ids)`` of every unambiguous category appearing in
        ``clip``, sorted by label."""
        if not clip.has_pixel_info:
            return []
        sights = label_sightings(clip.views(ctx), clear, faint, ctx.settings.min_visible_fraction)
        return [
            (s.label, list(s.clear_ids)) for s in sights.values() if s.clear_ids and not s.ambiguous
        ]

    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        if budget <= 0:
            return
        clips = candidate_clips(scene, rng, self.WINDOWS, max_frames=self.MAX_FRAMES)
        clear, faint = self.thresholds(ctx)
        pool: list[tuple[int, str, list[int], str]] = []
        in_scene = scene.categories()
        asked: set[tuple[str, tuple[int, ...]]] = set()
        for c, clip in enumerate(clips):
            for label, ids in self.candidates(clip, ctx, clear, faint):
                if (label, tuple(ids)) in asked:  # same instances in an earlier clip
                    continue
                asked.add((label, tuple(ids)))
                style = self.STYLES[int(rng.integers(len(self.STYLES)))]  # one per fact
                pool.append((c, label, ids, style))
        if not pool:
            return
        freq = Counter(len(p[2]) for p in pool)
        weights = np.array([1.0 / freq[len(p[2])] for p in pool])
        alive = np.ones(len(pool), dtype=bool)
        for _ in range(min(budget, len(pool))):
            w = np.where(alive, weights, 0.0)
            k = int(rng.choice(len(pool), p=w / w.sum()))
            alive[k] = False
            c, label, ids, style = pool[k]
            room = c == 0 and len(ids) == in_scene.get(label, 0)  # whole video, every instance
            yield self._build(clips[c], ctx, label, ids, style, clear, faint, rng, room)

    def _build(
        self,
        clip: Clip,
        ctx: EngineContext,
        label: str,
        ids: list[int],
        style: str,
        clear: int,
        faint: int,
        rng: np.random.Generator,
        room: bool = False,
    ) -> Sample:
        """One sample; ``room``: the clip shows every instance in the scene (the VSI-Bench
        question may be asked)."""
        count = len(ids)
        q_idx, template = pick(rng, (*QUESTIONS, ROOM_QUESTION) if room else QUESTIONS)
        question = template.format(plural=plural(label), label=label)
        options = None
        if style == "mcq":
            options = count_options(count, rng, self.MCQ_OPTIONS)
            s_idx, suffix = mcq_instruction(rng, ctx.settings.answer_style)
            question += "\nOptions:\n" + format_options([str(v) for v in options]) + "\n" + suffix
        else:
            s_idx, suffix = pick(rng, NUMERIC_SUFFIXES)
            question += suffix
        answer, truth = format_answer(style, count, options)
        reply = answer
        if style == "mcq":
            reply = mcq_reply(answer, str(count), ctx.settings.answer_style)
        views = clip.views(ctx)
        peaks = {str(o): max(s) for o, s in pixel_series(views, ids).items()}
        meta = {
            "scene_id": clip.scene.id,
            **clip.meta(),
            "label": label,
            "object_ids": ids,
            "count": count,
            "peak_pixels": peaks,
            "clear_pixels": clear,
            "faint_pixels": faint,
            "min_visible_fraction": ctx.settings.min_visible_fraction,
            "visible_fraction": visible_fractions(views, ids),
            "style": style,
            "phrasing": [q_idx, s_idx],
            "options": options,
        }
        if style == "mcq":
            meta["answer_style"] = ctx.settings.answer_style
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=[user(VIDEO, question), assistant(reply)],
            images=[],
            videos=[clip.images(ctx)],
            answer=answer,
            reward={"mode": "numeric" if style == "numeric" else "mcq", "ground_truth": truth},
            meta=meta,
        )

    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """Recount the category's instances from the clip frames' pixel counts."""
        clip = clip_from_meta(scene, meta)
        sights = label_sightings(
            clip.gt_views(),
            meta["clear_pixels"],
            meta["faint_pixels"],
            meta.get("min_visible_fraction", 0.0),
        )
        seen = sights.get(meta["label"])
        count = 0 if seen is None else len(seen.clear_ids)
        return format_answer(meta["style"], count, meta["options"])[0]
