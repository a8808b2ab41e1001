"""Answer styles and instruction/target agreement over real samples of all 19 tasks.

* Every multiple-choice reply follows the run's ``answer_style`` ("paper": ``"B. northwest"`` /
  ``"B: point-B"``; "letter": ``"B"``), the stored answer and the reward's ground truth stay
  the letter, and ``derive_answer`` re-derives it.
* ``compute_reward`` gives 1.0 to the sample's own reply and 0.0 to another option's, in both
  styles.
* Each promise an instruction makes holds for its target (letter only -> the bare letter;
  "letter and text" -> letter and text; one word -> one word; centimetres -> cm; ...).
* Letters never mean two things: no lettered mark (``box-A``) in a question with lettered
  options, and a category containing "box" gets ``rectangle-A`` marks.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from functools import cache

import numpy as np
import pytest

from vst.engine.choices import (
    ANSWER_STYLES,
    LETTERS,
    MARK_INSTRUCTIONS,
    MCQ_INSTRUCTIONS,
    check_style,
    mcq_reply,
)
from vst.engine.config import ConfigError, load_config
from vst.engine.context import EngineContext, EngineSettings
from vst.engine.registry import get_task, task_names
from vst.engine.tasks.single_image import _refer
from vst.engine.tasks.single_image.distance import METRIC_REQUESTS
from vst.rewards import compute_reward
from vst.testing.tasks import generate_samples

SEEDS = range(4)
PER_SCENE = 40


def _text(message: dict) -> str:
    return "\n".join(c["text"] for c in message["content"] if c.get("type") == "text")


def turns(sample) -> list[tuple[str, str]]:
    """``(question, reply)`` of every user/assistant pair of a sample."""
    m = sample.messages
    return [(_text(m[i]), _text(m[i + 1])) for i in range(0, len(m) - 1, 2)]


@pytest.fixture(scope="module")
def by_style(engine_scenes):
    """``{style: [(task, scene, sample), ...]}`` for every task, several seeds."""
    out = {}
    for style in ANSWER_STYLES:
        ctx = EngineContext(settings=EngineSettings(answer_style=style))
        rows = []
        for name in task_names():
            for seed in SEEDS:
                for scene, s in generate_samples(
                    get_task(name), engine_scenes, PER_SCENE, seed=seed, ctx=ctx
                ):
                    rows.append((name, scene, s))
        out[style] = rows
    return out


def is_mcq(sample) -> bool:
    return sample.reward["mode"] == "mcq"


OPTION_RE = re.compile(r"^([A-J])\. (.+)$", re.M)


def options_of(question: str) -> dict[str, str]:
    """Lettered option lines ``A. text`` of a question."""
    return dict(OPTION_RE.findall(question))


def final_clause(reply: str) -> str:
    """The answer part of a reply: after "the answer is" when the reply reasons first."""
    m = re.search(r"the answer is (.+)\.$", reply)
    return m.group(1) if m else reply


# -- styles -----------------------------------------------------------------------------------


def test_every_mcq_task_writes_the_run_style(by_style):
    mcq_tasks = {}
    for style, rows in by_style.items():
        for name, scene, s in rows:
            if not is_mcq(s):
                continue
            mcq_tasks.setdefault(style, set()).add(name)
            letter = s.answer
            assert re.fullmatch(r"[A-J]", letter), (name, letter)
            assert s.reward["ground_truth"] == letter
            assert s.meta["answer_style"] == style, name
            assert get_task(name).derive_answer(scene, s.meta) == letter
            q, reply = turns(s)[-1]
            said = final_clause(reply)
            if style == "letter":
                assert said == letter, (name, reply)
                continue
            opts = options_of(q)
            if opts:  # options written as "A. text": the reply repeats the answer's line
                assert said == f"{letter}. {opts[letter]}", (name, q, reply)
            else:  # options are the lettered point marks themselves
                assert said == f"{letter}: point-{letter}", (name, q, reply)
    twelve = {
        "si_distance",
        "si_depth_order",
        "si_depth_point",
        "mi_correspondence",
        "mi_object_object",
        "mi_camera_object",
        "mi_camera_camera",
        "mi_camera_motion",
        "video_count",
        "video_appearance_order",
        "video_rel_distance",
        "video_rel_direction",
    }
    assert mcq_tasks == {"paper": twelve, "letter": twelve}


def test_reward_accepts_every_style_the_engine_writes(by_style):
    """1.0 for the sample's own reply, 0.0 for another option written the same way."""
    checked = Counter()
    for style, rows in by_style.items():
        for name, _, s in rows:
            if not is_mcq(s):
                continue
            q, reply = turns(s)[-1]
            letter = s.answer
            think = f"<think>reasoning</think>{reply}"
            assert compute_reward(think, s.reward)["accuracy"] == 1.0, (name, style, reply)
            opts = options_of(q)
            other = next(x for x in (opts or LETTERS[:2]) if x != letter)
            if style == "letter":
                wrong = other
            elif opts:
                wrong = mcq_reply(other, opts[other], style)
            else:
                wrong = mcq_reply(other, f"point-{other}", style, sep=":")
            assert compute_reward(f"<think>x</think>{wrong}", s.reward)["accuracy"] == 0.0, (
                name,
                style,
                wrong,
            )
            checked[style] += 1
    assert min(checked.values()) >= 500


def test_mcq_reply_and_style_check():
    assert mcq_reply("B", "northwest", "paper") == "B. northwest"
    assert mcq_reply("B", "point-B", "paper", sep=":") == "B: point-B"
    assert mcq_reply("B", "northwest", "letter") == "B"
    with pytest.raises(ValueError, match="unknown answer style 'bare'"):
        check_style("bare")


def test_answer_style_is_a_config_setting(tmp_path):
    base = (
        "output: {out}\nsources: [{{kind: scenes, path: {out}}}]\n"
        "tasks: [{{name: si_distance, per_scene: 1}}]\n"
    )
    good = tmp_path / "good.yaml"
    good.write_text(base.format(out=tmp_path) + "answer_style: letter\n", encoding="utf-8")
    cfg = load_config(good)
    assert cfg.settings().answer_style == "letter"
    default = tmp_path / "default.yaml"
    default.write_text(base.format(out=tmp_path), encoding="utf-8")
    assert load_config(default).settings().answer_style == "paper"
    assert cfg.output_key() != load_config(default).output_key()  # a different data set
    bad = tmp_path / "bad.yaml"
    bad.write_text(base.format(out=tmp_path) + "answer_style: bare\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="answer_style"):
        load_config(bad)


# -- instructions and targets -----------------------------------------------------------------

IMPERATIVE = re.compile(
    r"\b(answer|reply|respond|give|choose|pick|select|write|name|list|arrange|rank|sort)\b",
    re.I,
)


BOX_FORMAT = re.compile(
    r"_cent|_size|bounding box|centre in met|sizes in met|size in metres along|centre position"
)
"""Sentences that describe the 3D box format (metres there are no answer unit)."""


def sentences(question: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.?!])\s+|\n", question) if s.strip()]


def promises(question: str) -> list[str]:
    """What the question's instructions promise about the reply's form."""
    out = []
    for sent in sentences(question):
        low = sent.lower()
        if "letter" in low and IMPERATIVE.search(sent):
            if re.search(r"\bletters\b", low):
                out.append("letters")
            elif re.search(r"letter (and|followed by)|and (its|the) text|and what it says", low):
                out.append("letter+text")
            else:
                out.append("letter_only")
        if re.search(r"\b(one|single) word\b(?! or)", low) and IMPERATIVE.search(sent):
            out.append("one_word")
        if re.search(r"single word or|short phrase|keep the answer brief|short numeric", low):
            out.append("short")
        if re.search(r"centimet", low):
            out.append("cm")
        if re.search(r"square met", low):
            out.append("m2")
        elif re.search(r"(?<!centi)\bmet(er|re)s\b", low) and not BOX_FORMAT.search(low):
            out.append("m")
        if re.search(r"\bdegrees\b", low) and IMPERATIVE.search(sent):
            out.append("deg")
        if re.search(r"\bjson\b", low):
            out.append("json")
        if re.search(r"single number|just the number|as an integer", low):
            out.append("number")
        if re.search(r"separated by commas|comma-separated", low):
            out.append("commas")
        if "name: [x1, y1, x2, y2]" in low:
            out.append("name+box2d")
        elif re.search(r"category name only|just the object's name|category of the object", low):
            out.append("name_only")
        words = listed_choices(sent)
        if words:
            out.append("choice:" + "|".join(words))
    if any(r in question for r in METRIC_REQUESTS):
        out.append("metric")
    return out


CHOICE_PATTERNS = (
    re.compile(
        r"(?:one of(?: these \w+)?:?|from this list:|choose from|possible answers:)"
        r"\s+(.+?)(?:;.*)?\.$",
        re.I,
    ),
    re.compile(r"single (?:direction|word) \((.+?)\)\.$", re.I),
    re.compile(r"^(?:reply|say|answer with one word:|one word, please:)\s+(\S+ or \S+)\.$", re.I),
)
"""Sentences that list the allowed answers ("Answer with one of: left, right.")."""


def listed_choices(sentence: str) -> list[str]:
    """The answers a sentence allows, or [] when it lists none."""
    for pattern in CHOICE_PATTERNS:
        m = pattern.search(sentence)
        if m:
            return [w.strip() for w in re.split(r", | / | or ", m.group(1)) if w.strip()]
    return []


def keeps(promise: str, reply: str) -> bool:
    if promise.startswith("choice:"):
        return reply in promise[len("choice:") :].split("|")
    return {
        "letters": lambda: re.fullmatch(r"[A-J](, [A-J])+", reply) is not None,
        # the whole reply: "letter only" means no reasoning before it either
        "letter+text": lambda: re.fullmatch(r"[A-J][.:] \S.*", reply) is not None,
        "letter_only": lambda: re.fullmatch(r"[A-J]", reply) is not None,
        "one_word": lambda: len(reply.split()) == 1,
        "short": lambda: len(reply.split()) <= 4,
        "cm": lambda: re.search(r"\d cm\b", reply) is not None,
        "m2": lambda: re.search(r"\d square met(er|re)s", reply) is not None,
        "m": lambda: re.search(r"\d ?m\b", reply) is not None,
        "deg": lambda: re.search(r"\d degrees", reply) is not None,
        "json": lambda: reply.lstrip().startswith(("```json", "[")),
        "number": lambda: re.fullmatch(r"-?\d+(\.\d+)?( \w+)?", reply) is not None,
        "commas": lambda: ", " in reply,
        "metric": lambda: reply.startswith("Distance[") and "the answer is" in reply,
        "name+box2d": lambda: re.fullmatch(r"[^:]+: \[\d+, \d+, \d+, \d+\]", reply) is not None,
        "name_only": lambda: re.search(r"[\d\[\]:]", reply) is None,
    }[promise]()


def test_instructions_and_targets_agree(by_style):
    seen: Counter = Counter()
    for style, rows in by_style.items():
        for name, _, s in rows:
            for q, reply in turns(s):
                for p in promises(q):
                    seen[(name, p)] += 1
                    assert keeps(p, reply), (name, style, p, q, reply)
                if is_mcq(s) and style == "paper":
                    assert "letter_only" not in promises(q), (name, q)
                if is_mcq(s) and style == "letter":
                    assert "letter+text" not in promises(q), (name, q)
    # the checks bite: each kind of promise was met in the samples
    kinds = {p for _, p in seen}
    assert kinds >= {"letters", "letter+text", "letter_only", "one_word", "cm", "m", "json"}
    assert kinds >= {"m2", "deg", "number", "commas", "metric", "name+box2d", "name_only"}
    lists = {(name, p) for name, p in seen if p.startswith("choice:")}
    assert {name for name, _ in lists} >= {
        "mi_camera_camera",
        "mi_camera_object",
        "mi_object_object",
        "mi_camera_motion",
        "video_rel_direction",
    }


@cache
def _instruction_texts() -> dict[str, set[str]]:
    return {
        style: set(MCQ_INSTRUCTIONS[style]) | set(MARK_INSTRUCTIONS[style])
        for style in ANSWER_STYLES
    }


def test_every_style_instruction_is_used(by_style):
    for style, rows in by_style.items():
        used = {
            text
            for _, _, s in rows
            if is_mcq(s)
            for q, _ in turns(s)
            for text in _instruction_texts()[style]
            if text in q
        }
        assert used == _instruction_texts()[style], style
        other = _instruction_texts()["letter" if style == "paper" else "paper"]
        assert not any(t in q for _, _, s in rows for q, _ in turns(s) for t in other)


# -- letters that mean one thing --------------------------------------------------------------


def test_lettered_marks_never_meet_lettered_options(by_style):
    tagged = re.compile(r"\b(box|point|rectangle|dot)-[A-J]\b")
    for rows in by_style.values():
        for name, _, s in rows:
            if not is_mcq(s) or name in ("mi_correspondence", "si_depth_point"):
                continue  # there the options *are* the lettered marks ("B: point-B")
            q, _ = turns(s)[-1]
            assert not tagged.search(q), (name, q)


def test_box_category_gets_rectangle_marks(engine_scenes):
    scene = engine_scenes[0]
    ctx = EngineContext()
    view = next(
        v
        for v in (ctx.view(scene, f) for f in sorted(scene.frames, key=lambda f: f.id))
        if v.mask is not None and len(v.visible_ids) >= 2
    )
    a, b = view.visible_ids[:2]
    rng = np.random.default_rng(0)
    plain = _refer.refer(view, [a, b], "box_mark", rng)
    assert [r.handle for r in plain] == ["box-A", "box-B"]
    # relabel one object "storage box": its marks are no longer called boxes
    objects = [replace(o, label="storage box") if o.id == a else o for o in scene.objects]
    boxed = EngineContext().view(replace(scene, objects=objects), view.frame)
    refs = _refer.refer(boxed, [a, b], "box_mark", rng)
    assert [r.handle for r in refs] == ["rectangle-A", "rectangle-B"]
    points = _refer.refer(boxed, [a, b], "point_mark", rng)
    assert [r.handle for r in points] == ["point-A", "point-B"]
    assert _refer.mark_word("point_mark", ["point cloud"]) == "dot"
    assert _refer.mark_word("box_mark", ["boxing bag"]) == "box"
    # named marks of a repeated label carry digits, never letters
    twin = [replace(o, label="box") if o.id in (a, b) else o for o in scene.objects]
    named = _refer.refer(
        EngineContext().view(replace(scene, objects=twin), view.frame),
        [a, b],
        "named_box_mark",
        rng,
    )
    assert [r.handle for r in named] == ["box-1", "box-2"]


UNNATURAL = (
    "least far",
    "less far",
    "the nearest one to",
    "the farthest one from",
    "lies the ",
    "using their option letters",
    "relative to the camera of image 1, from the point of view",
)
"""Wordings an annotator rejected (audit of issue 11)."""


def test_no_unnatural_wording(by_style):
    for rows in by_style.values():
        for name, _, s in rows:
            for q, _ in turns(s):
                low = q.lower()
                assert not any(w in low for w in UNNATURAL), (name, q)
