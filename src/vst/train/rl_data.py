"""RL prompts for the GRPO stage: the rule-checkable examples of the data sources as the rows
TRL's ``GRPOTrainer`` reads.

The sources and the weighted mix are SFT's (:mod:`vst.train.data`), opened for RL
(:func:`~vst.train.data.open_source` with ``rl=True``: vst shards keep only rule-checkable image
samples). Each drawn :class:`~vst.train.examples.TrainExample` becomes one row
(:meth:`RLPrompts.row`):

* ``prompt``: the chat without its answer turn (:func:`vst.models.samples.prompt_turns`), in
  TRL's conversational form with ``{"type": "image"}`` placeholders; a system turn is put first
  unless the chat has one: the source's ``system`` if set, else the run's (``think`` in the
  preset), except for 3D detection (a ``det3d`` reward spec), which gets none, so the chat
  template's default applies (the release's RL prompts, VST-RELEASE.md §3);
* ``images``: the pictures, fitted once to the run's pixel budget
  (:func:`vst.models.vision.fit_request`; the processor does not resize them again);
* ``reward``: the reward spec as JSON (``meta["reward"]``: one spec dict, or a list of specs
  meaning "any of", the release's multi-mode rows); ``task`` (the engine task, else the
  source name), ``mode`` (:func:`mode_label`), ``id``, ``source`` and ``index`` (the row's
  position in the mix, used to refill dropped groups).

An example that cannot be a prompt (no reward spec, only caption specs, a video, a prompt
longer than ``max_prompt_length`` tokens, a picture that does not decode) is skipped with its id
and reason (:attr:`RLPrompts.skipped`) and replaced by the next usable example of the mix, so the
batch keeps its size; the skips are counted in the run's metrics.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from vst.models.chat import render_chat
from vst.models.prompts import system_prompt, with_system
from vst.models.requests import Request
from vst.models.samples import prompt_turns
from vst.models.vision import PixelLimits, fit_request
from vst.rewards import load_reward_specs
from vst.train.examples import TrainExample
from vst.train.sources import ItemError

__all__ = ["RLPrompts", "mode_label", "reward_specs"]

MERGE_PATCH = 28
"""Pixels per side of one visual token of Qwen2.5-VL (14-pixel patches merged 2 x 2)."""


def reward_specs(value: Any) -> list[dict[str, Any]]:
    """The reward spec(s) of an example's ``meta["reward"]`` (a spec, a list of specs meaning
    "any of", or their JSON) as a list of validated specs; ``ValueError`` otherwise."""
    if value is None:
        raise ValueError("no reward spec (meta['reward'] is missing)")
    return load_reward_specs(value)


def mode_label(specs: Sequence[Mapping[str, Any]]) -> str:
    """The mode of a spec list for reports: ``"mcq"``, or ``"any(exact,mcq)"`` for several."""
    modes = sorted({s["mode"] for s in specs})
    return modes[0] if len(modes) == 1 else f"any({','.join(modes)})"


class RLPrompts:
    """The mixed examples as GRPO prompt rows (module docstring). ``systems`` maps a source
    name to its ``system`` setting (None: the run's ``system``)."""

    def __init__(
        self,
        examples: Sequence[TrainExample],
        *,
        system: str,
        systems: Mapping[str, str | None] | None = None,
        limits: PixelLimits | None = None,
        tokenizer: Any = None,
        max_prompt_length: int | None = None,
    ) -> None:
        if not len(examples):
            raise ValueError("no RL examples")
        system_prompt(system)  # refuse unknown names early
        self.examples = examples
        self.system = system
        self.systems = dict(systems or {})
        self.limits = limits or PixelLimits()
        self.tokenizer = tokenizer
        self.max_prompt_length = max_prompt_length
        self.skipped: list[tuple[str, str]] = []
        self.skip_counts: Counter[str] = Counter()
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.examples)

    def _system_for(self, example: TrainExample, specs: list[dict[str, Any]]) -> str | None:
        if any(s["mode"] == "det3d" for s in specs):
            return None
        kind = self.systems.get(example.source) or self.system
        return system_prompt(kind)

    def prompt_length(self, messages: list[dict[str, Any]], images: Sequence[Any]) -> int:
        """Tokens of the prompt as the model sees it: the chat text (generation prompt
        included) plus one token per 28 x 28 pixels of each fitted picture."""
        text = render_chat(messages, add_generation_prompt=True)
        n = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        for im in images:  # each <|image_pad|> (one token in the text) stands for w*h/28^2
            n += (im.width // MERGE_PATCH) * (im.height // MERGE_PATCH) - 1
        return n

    def build(self, i: int) -> dict[str, Any]:
        """Row ``i`` of the mix (module docstring); ``ItemError`` when it cannot be a prompt."""
        ex = self.examples[i]
        try:
            specs = reward_specs(ex.meta.get("reward"))
        except ValueError as exc:
            raise ItemError(ex.id, str(exc)) from None
        if all(s["mode"] == "caption" for s in specs):
            raise ItemError(ex.id, "caption mode: not rule-checkable")
        if ex.videos:
            raise ItemError(ex.id, "video: GRPO rollouts take images only")
        try:
            turns = prompt_turns(ex.messages)
        except ValueError as exc:
            raise ItemError(ex.id, str(exc)) from None
        if turns[0]["role"] != "system":
            turns = with_system(turns, self._system_for(ex, specs))
        request = fit_request(Request(turns, ex.images, id=ex.id), self.limits)
        messages = [
            {"role": m["role"], "content": [dict(c) for c in m["content"]]}
            for m in request.messages
        ]
        if self.tokenizer is not None and self.max_prompt_length is not None:
            n = self.prompt_length(messages, request.images)
            if n > self.max_prompt_length:
                raise ItemError(
                    ex.id, f"prompt of {n} tokens is longer than {self.max_prompt_length}"
                )
        spec: Any = specs[0] if len(specs) == 1 else specs
        return {
            "prompt": messages,
            "images": list(request.images),
            "reward": json.dumps(spec, sort_keys=True),
            "task": str(ex.meta.get("task") or ex.source),
            "mode": mode_label(specs),
            "id": ex.id,
            "source": ex.source,
            "index": i,
        }

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i``, or the next usable one in mix order when ``i`` cannot be a prompt (the
        skip is recorded once per example)."""
        n = len(self)
        for step in range(n):
            j = (i + step) % n
            if j in self._bad:
                continue
            try:
                return self.build(j)
            except ItemError as exc:
                self._bad.add(j)
                self.skipped.append((exc.id, exc.reason))
                self.skip_counts[_reason_key(exc.reason)] += 1
        raise ValueError("no example of the RL data can be a prompt (see the skipped reasons)")

    def rows(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """:meth:`row` of each index."""
        return [self.row(int(i)) for i in indices]

    def dataset(self) -> Any:
        """A ``datasets.Dataset`` of the mix positions that builds each row when read (TRL's
        trainer requires that type; nothing is decoded up front)."""
        import datasets

        def transform(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            rows = self.rows(batch["position"])
            return {key: [r[key] for r in rows] for key in rows[0]}

        table = datasets.Dataset.from_dict({"position": list(range(len(self)))})
        return table.with_transform(transform)


def _reason_key(reason: str) -> str:
    """A short key of a skip reason for counts (``too_long``, ``video``, ...)."""
    if "longer than" in reason:
        return "too_long"
    if reason.startswith("video"):
        return "video"
    if reason.startswith("caption"):
        return "caption"
    if "reward" in reason:
        return "no_reward"
    return "unreadable"
