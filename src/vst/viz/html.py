"""HTML of the viewer site: the page frame, a sample's card, the task pages' navigation and the
failures view. Every text from the dataset is escaped; links are relative (the site opens from
disk). Functions return strings; :mod:`vst.viz.site` writes them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from vst.viz.predictions import Prediction

__all__ = [
    "FAILURES_BODY",
    "Figure",
    "SampleView",
    "document",
    "page_name",
    "page_nav",
    "sample_card",
]


def document(title: str, body: str, root: str, scripts: Sequence[str] = ()) -> str:
    """A whole page: ``root`` is the relative path to the site root (``""`` or ``"../../"``)."""
    tags = "".join(f'<script src="{escape(s)}"></script>' for s in scripts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        f'<link rel="stylesheet" href="{root}assets/style.css"></head>\n<body>\n'
        f'<p><a href="{root}index.html">index</a></p>\n{body}\n{tags}</body></html>\n'
    )


@dataclass(frozen=True)
class Figure:
    """An image file of the site (path relative to the site root) with a caption."""

    path: str
    caption: str


@dataclass
class SampleView:
    """What a sample's card shows; image paths are relative to the site root."""

    id: str
    task: str
    scenario: str
    messages: list[dict[str, Any]]
    images: list[str]
    videos: list[list[str]]
    answer: str
    reward: dict[str, Any]
    meta: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    prediction: Prediction | None = None


def _img(root: str, path: str, alt: str, cls: str = "view") -> str:
    return f'<img class="{cls}" src="{root}{escape(path)}" alt="{escape(alt)}">'


def _pretty(value: Any) -> str:
    return escape(json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False))


def _turns(view: SampleView, root: str) -> str:
    """Every turn, with the images and video strips where the messages place them."""
    out = []
    n_img = n_vid = 0
    for m in view.messages:
        role = str(m.get("role"))
        parts = []
        for c in m.get("content") or []:
            kind = c.get("type")
            if kind == "image" and n_img < len(view.images):
                parts.append(_img(root, view.images[n_img], f"image {n_img + 1}"))
                n_img += 1
            elif kind == "video" and n_vid < len(view.videos):
                frames = view.videos[n_vid]
                strip = "".join(
                    _img(root, p, f"video {n_vid + 1} frame {t + 1}", "frame")
                    for t, p in enumerate(frames)
                )
                parts.append(f'<div class="strip" title="{len(frames)} frames">{strip}</div>')
                n_vid += 1
            else:
                parts.append(f'<div class="text">{escape(c.get("text") or "")}</div>')
        out.append(
            f'<div class="turn {escape(role)}"><div class="role">{escape(role)}</div>'
            + "".join(parts)
            + "</div>"
        )
    return "".join(out)


def _parts(pred: Prediction) -> str:
    parts = [
        f"{name} {value:.3f}"
        for name, value in (("accuracy", pred.accuracy), ("format", pred.format))
        if value is not None
    ]
    return f" ({', '.join(parts)})" if parts else ""


def sample_card(view: SampleView, root: str) -> str:
    """One sample as an ``<article id=SAMPLE_ID>``: header, turns (images as the model sees
    them), answer, prediction and score (if any), figures, reward spec and meta."""
    meta = view.meta
    pred = view.prediction
    cls = "sample" if pred is None else ("sample pass" if pred.score >= 1.0 else "sample fail")
    head = (
        f'<div class="head">{escape(view.id)} &middot; {escape(view.task)} &middot; '
        f"{escape(view.scenario)} &middot; scene {escape(str(meta.get('scene_id', '?')))}"
        f" &middot; split {escape(str(meta.get('split', '?')))}</div>"
    )
    body = [head, _turns(view, root)]
    body.append(f'<p>answer: <span class="answer">{escape(view.answer)}</span></p>')
    if pred is not None:
        body.append(
            f'<p>model ({escape(pred.model)}): <span class="answer pred">'
            f'{escape(pred.answer)}</span> &middot; score <span class="score">'
            f"{pred.score:.3f}</span>{_parts(pred)}</p>"
            "<details><summary>raw model text</summary>"
            f'<pre class="text">{escape(pred.text)}</pre></details>'
        )
    if view.figures:
        figs = "".join(
            f"<figure>{_img(root, f.path, f.caption, 'fig')}"
            f"<figcaption>{escape(f.caption)}</figcaption></figure>"
            for f in view.figures
        )
        body.append(f'<div class="figs">{figs}</div>')
    body.append(
        f"<details><summary>reward spec</summary><pre>{_pretty(view.reward)}</pre></details>"
    )
    body.append(f"<details><summary>meta</summary><pre>{_pretty(meta)}</pre></details>")
    return f'<article class="{cls}" id="{escape(view.id)}">{"".join(body)}</article>'


def page_name(number: int) -> str:
    """File name of a task's page ``number`` (1-based)."""
    return f"page-{number:04d}.html"


def page_nav(number: int, has_next: bool) -> str:
    """Previous / next links of a task's page ``number``."""
    prev = (
        f'<a class="prev" href="{page_name(number - 1)}">&larr; page {number - 1}</a>'
        if number > 1
        else ""
    )
    nxt = (
        f'<a class="next" href="{page_name(number + 1)}">page {number + 1} &rarr;</a>'
        if has_next
        else ""
    )
    return f'<nav class="pages">{prev}<span>page {number}</span>{nxt}</nav>'


FAILURES_BODY = """\
<h1>Predictions, failures first</h1>
<div class="filters">
<label>task <select id="f-task"><option value="">all tasks</option></select></label>
<label>scene <select id="f-scene"><option value="">all scenes</option></select></label>
<label>score at most <input id="f-max" type="number" min="0" max="1" step="0.05" value="1">
</label>
<span id="f-count"></span>
</div>
<table id="fail-table"><thead><tr><th>image</th><th>score</th><th>task</th><th>scene</th>
<th>model answer</th><th>reference</th><th>sample</th></tr></thead><tbody></tbody></table>
"""
"""The failures view's body; ``assets/failures.js`` fills the table from
``data/predictions.js``."""
