"""A vst sample as a model request, and what its answer is checked against.

:func:`sample_request` takes a sample (a shard row as :func:`vst.engine.writer.iter_rows` yields
it, or a :class:`vst.engine.sample.Sample`) and returns a :class:`SampleRequest`: the
:class:`~vst.models.requests.Request` the model answers and the sample's task, reference
answer and reward spec.

The request's chat is the sample's chat without its answer turn: when the chat ends with an
assistant turn, that turn is left out and everything before it stays as given (earlier
assistant turns of a multi-turn sample are teacher-forced); a chat that does not end with an
assistant turn is sent whole. A system turn is put first on request (``system="plain"`` or
``"think"``; see :func:`vst.models.prompts.with_system`). Images are decoded from the row's bytes
(never read from a path: a shard is untrusted input); each video becomes a
:class:`~vst.models.requests.Video` at ``meta["video_fps"]`` frames per second.
``Request.id`` is the sample id.

A row that cannot become a request (no id, undecodable picture, item and picture counts that
differ, no ``video_fps`` for a video, bad reward spec) raises ``ValueError`` with one line naming
the shard file (when given) and the sample id.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from vst.engine.imaging import decode_image
from vst.engine.sample import Sample
from vst.models.prompts import system_prompt, with_system
from vst.models.requests import Request, Video, count_items, normalize_messages
from vst.rewards import compute_reward, load_reward_spec

__all__ = ["SampleRequest", "prompt_turns", "sample_chat", "sample_request"]


@dataclass(frozen=True)
class SampleRequest:
    """A sample ready to run: the ``request`` (``request.id`` = sample id), the sample's
    ``task`` and ``scenario``, its reference ``answer``, its ``reward`` spec (a dict with a known
    mode) and its ``meta``."""

    request: Request
    task: str
    scenario: str
    answer: str
    reward: dict[str, Any]
    meta: dict[str, Any]

    @property
    def id(self) -> str:
        return self.request.id


def prompt_turns(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The turns a model answers: ``messages`` without a final assistant turn (earlier turns,
    assistant ones included, stay). Raises ``ValueError`` if no user turn is left."""
    turns = list(messages)
    if turns and turns[-1].get("role") == "assistant":
        turns = turns[:-1]
    if not any(t.get("role") == "user" for t in turns):
        raise ValueError("no user turn before the answer")
    return turns


def _json_field(value: Any, name: str) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            raise ValueError(f"{name} is not valid JSON") from None
    return value


def _picture(item: Any, what: str) -> Image.Image:
    """A PIL image from a Sample's picture or a shard's ``{"bytes", "path"}`` dict."""
    if isinstance(item, Image.Image):
        return item
    data = item.get("bytes") if isinstance(item, Mapping) else None
    if not isinstance(data, bytes | bytearray) or not data:
        raise ValueError(f"{what} has no image bytes")
    try:
        return decode_image(bytes(data))
    except Exception as exc:  # PIL raises many types on hostile bytes; all mean "bad row"
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"{what} cannot be decoded ({reason})") from None


def _video_fps(meta: Mapping[str, Any]) -> float:
    fps = meta.get("video_fps")
    if isinstance(fps, bool) or not isinstance(fps, int | float):
        raise ValueError(f"meta.video_fps is {'missing' if fps is None else repr(fps)}")
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"meta.video_fps must be a positive number, got {fps!r}")
    return float(fps)


def _fields(sample: Mapping[str, Any] | Sample) -> dict[str, Any]:
    if isinstance(sample, Sample):
        return {
            "id": sample.id,
            "task": sample.task,
            "scenario": sample.scenario,
            "messages": sample.messages,
            "images": sample.images,
            "videos": sample.videos,
            "answer": sample.answer,
            "reward": sample.reward,
            "meta": sample.meta,
        }
    if not isinstance(sample, Mapping):
        raise ValueError(f"a sample must be a row dict or a Sample, got {type(sample).__name__}")
    return dict(sample)


def _request(
    turns: list[dict[str, Any]],
    images: Sequence[Any],
    videos: Sequence[Any],
    meta: Mapping[str, Any],
    system: str | None,
    sid: str,
) -> Request:
    """The request of ``turns`` (normalised messages) with the pictures their items take, in
    order, decoded (videos at ``meta["video_fps"]``)."""
    n_images, n_videos = count_items(turns, "image"), count_items(turns, "video")
    pictures = [_picture(im, f"image {i}") for i, im in enumerate(images[:n_images])]
    clips: list[Video] = []
    if n_videos:
        fps = _video_fps(meta)
        for v, frames in enumerate(videos[:n_videos]):
            if not isinstance(frames, list | tuple) or not frames:
                raise ValueError(f"video {v} has no frames")
            decoded = [_picture(fr, f"video {v} frame {k}") for k, fr in enumerate(frames)]
            clips.append(Video(tuple(decoded), fps))
    chat = with_system(turns, system_prompt(system) if system is not None else None)
    return Request(chat, tuple(pictures), tuple(clips), id=sid)


def _checked_media(f: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any], list[Any], Any]:
    """A row's normalised messages, images, videos and meta dict, their counts checked."""
    meta = _json_field(f.get("meta") or {}, "meta")
    if not isinstance(meta, Mapping):
        raise ValueError("meta is not a JSON object")
    raw_messages = f.get("messages")
    if not isinstance(raw_messages, list | tuple):
        raise ValueError("messages is not a list of turns")
    messages = normalize_messages(raw_messages)
    images, videos = f.get("images") or [], f.get("videos") or []
    if not isinstance(images, list | tuple) or not isinstance(videos, list | tuple):
        raise ValueError("images / videos are not lists")
    for kind, given in (("image", images), ("video", videos)):
        slots = count_items(messages, kind)
        if slots != len(given):
            raise ValueError(
                f"messages have {slots} {kind} item(s) but the sample has {len(given)}"
            )
    return messages, list(images), list(videos), meta


def _build(f: dict[str, Any], system: str | None) -> SampleRequest:
    task = f.get("task")
    if not isinstance(task, str) or not task:
        raise ValueError("task is missing")
    reward = load_reward_spec(f.get("reward"))
    compute_reward("", reward)  # a ground truth its mode cannot score fails here, not later
    answer = f.get("answer")
    if not isinstance(answer, str):
        raise ValueError("answer is missing")
    messages, images, videos, meta = _checked_media(f)
    turns = prompt_turns(messages)
    request = _request(turns, images, videos, meta, system, f["id"])
    scenario = f.get("scenario")
    return SampleRequest(
        request=request,
        task=task,
        scenario=scenario if isinstance(scenario, str) else "",
        answer=answer,
        reward=reward,
        meta=dict(meta),
    )


def sample_request(
    sample: Mapping[str, Any] | Sample, system: str | None = None, where: str = ""
) -> SampleRequest:
    """``sample`` (a shard row or a :class:`~vst.engine.sample.Sample`) as a request plus what to
    check (see the module docstring). ``system`` is ``"plain"``, ``"think"`` or None (chat as
    given); ``where`` (a shard file) starts every error message. Raises ``ValueError``
    ``"<where>: sample <id>: <reason>"`` for a row that cannot be used."""
    if system is not None:
        system_prompt(system)  # an unknown name is the caller's error, not the row's
    prefix = f"{where}: " if where else ""
    f = _fields(sample)
    sid = f.get("id")
    if not isinstance(sid, str) or not sid:
        raise ValueError(f"{prefix}a sample has no id")
    try:
        return _build(f, system)
    except ValueError as exc:
        raise ValueError(f"{prefix}sample {sid}: {exc}") from None


def sample_chat(
    sample: Mapping[str, Any] | Sample, system: str | None = None, where: str = ""
) -> Request:
    """The whole conversation of ``sample`` (answer turns included) as a :class:`Request` with
    every picture decoded, for training; ``system`` and ``where`` as in :func:`sample_request`.
    Raises ``ValueError`` ``"<where>: sample <id>: <reason>"`` for a row that cannot be used
    (the reward spec is not checked: training does not score)."""
    if system is not None:
        system_prompt(system)
    prefix = f"{where}: " if where else ""
    f = _fields(sample)
    sid = f.get("id")
    if not isinstance(sid, str) or not sid:
        raise ValueError(f"{prefix}a sample has no id")
    try:
        messages, images, videos, meta = _checked_media(f)
        if not any(m["role"] == "assistant" for m in messages):
            raise ValueError("no assistant turn")
        return _request(messages, images, videos, meta, system, sid)
    except ValueError as exc:
        raise ValueError(f"{prefix}sample {sid}: {exc}") from None
