"""Build the static viewer site of a dataset (``vst data view``), streaming.

Layout of ``SITE``::

    index.html                    samples per task, answer distributions, audit figures
    tasks/<task>/page-0001.html   PAGE_SIZE samples a page, previous/next links
    failures.html                 with predictions: every prediction, lowest score first,
                                  filtered by task, scene and score (assets/failures.js)
    data/predictions.js           the failures view's data (window.VST_PREDICTIONS)
    media/ab/<hash>.jpg|png       images and frames, one file per distinct content
    assets/style.css, assets/failures.js

Streaming: rows are read one batch at a time (:func:`vst.engine.writer.iter_rows`); a task
holds at most one page of rendered HTML before it is written, images go to files as they come
(never base64 in a page), and the index is written last from running figures
(:mod:`vst.viz.stats`). Memory grows only with the number of tasks and scenes, the numeric
answers (one float a sample) and the predictions (one small record a sample).

Resumable: media files are named by content and skipped when present, so a rerun (after a kill,
or on a grown dataset) only writes pages and new images; pages and the index are rewritten
atomically. The same dataset and predictions give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from vst.atomic import atomic_write_bytes, commit, temp_file
from vst.engine.writer import count_rows, iter_rows, list_shards
from vst.viz import html
from vst.viz.assets import FAILURES_JS, STYLE_CSS
from vst.viz.index import index_page, load_audit
from vst.viz.media import MediaStore, det3d_figures
from vst.viz.predictions import Prediction, load_predictions
from vst.viz.stats import TaskStats, new_stats

__all__ = ["DEFAULT_PAGE_SIZE", "SiteReport", "ViewerError", "build_site"]

DEFAULT_PAGE_SIZE = 100
_TASK_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_COLUMNS = ["id", "task", "scenario", "messages", "images", "videos", "answer", "reward", "meta"]


class ViewerError(ValueError):
    """The dataset or an option cannot be used (the message names the file and field)."""


@dataclass
class SiteReport:
    """What :func:`build_site` wrote: ``pages`` per task, media files written and reused."""

    site: Path
    index: Path
    samples: int = 0
    pages: dict[str, int] = field(default_factory=dict)
    predictions: int = 0
    predictions_matched: int = 0
    media_written: int = 0
    media_reused: int = 0

    @property
    def failures(self) -> Path | None:
        return self.site / "failures.html" if self.predictions else None


class _TaskPages:
    """One task's pages: holds at most one page of cards; a full page is written when the next
    card arrives (so it knows it has a next page)."""

    def __init__(self, site: Path, task: str, page_size: int):
        self.dir = site / "tasks" / task
        self.task = task
        self.page_size = page_size
        self.number = 1
        self.cards: list[str] = []

    def add(self, card: str) -> int:
        """Queue ``card``; return the number of the page it lands on."""
        if len(self.cards) == self.page_size:
            self._write(has_next=True)
            self.number += 1
            self.cards = []
        self.cards.append(card)
        return self.number

    def _write(self, has_next: bool) -> None:
        nav = html.page_nav(self.number, has_next)
        body = f"<h1>{self.task}</h1>{nav}" + "\n".join(self.cards) + nav
        title = f"{self.task}, page {self.number}"
        page = html.document(title, body, "../../")
        atomic_write_bytes(self.dir / html.page_name(self.number), page.encode("utf-8"))

    def finish(self) -> int:
        """Write the last page, remove pages a previous, longer build left; return the count."""
        self._write(has_next=False)
        for old in self.dir.glob("page-*.html"):
            m = re.fullmatch(r"page-(\d+)\.html", old.name)
            if m and int(m.group(1)) > self.number:
                old.unlink()
        return self.number


class _PredictionsData:
    """``data/predictions.js``, the failures view's data, streamed one record a line through a
    temporary file and renamed into place by :meth:`finish` (:meth:`abort` drops it)."""

    def __init__(self, path: Path):
        self.path = path
        self._tmp: Path | None = temp_file(path)
        self._fh = self._tmp.open("w", encoding="utf-8")
        self._fh.write("window.VST_PREDICTIONS = [\n")

    def write(self, view: html.SampleView, pred: Prediction, scene: str, page: str) -> None:
        thumbs = view.images or [frames[0] for frames in view.videos if frames]
        record = {
            "id": view.id,
            "task": view.task,
            "scene": scene,
            "score": pred.score,
            "answer": pred.answer[:200],
            "reference": view.answer[:200],
            "href": f"tasks/{view.task}/{page}#{view.id}",
            "thumb": thumbs[0] if thumbs else "",
        }
        self._fh.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + ",\n")

    def finish(self) -> None:
        self._fh.write("];\n")
        self._fh.close()
        assert self._tmp is not None
        commit(self._tmp, self.path)
        self._tmp = None

    def abort(self) -> None:
        self._fh.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)


def _loads(text: Any, where: str) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ViewerError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ViewerError(f"{where}: expected a JSON object")
    return value


def _det3d(
    media: MediaStore, text: str, image: bytes, meta: dict[str, Any], who: str
) -> list[html.Figure]:
    """Overlay and BEV of the boxes in ``text`` (cached by content: skipped when present)."""
    camera = json.dumps(meta.get("intrinsics"), sort_keys=True)
    key = hashlib.blake2b(
        b"\0".join([text.encode(), hashlib.blake2b(image).digest(), camera.encode()]),
        digest_size=8,
    ).hexdigest()
    over_rel, bev_rel = f"media/det3d/{key}-boxes.jpg", f"media/det3d/{key}-bev.png"
    if (media.site / over_rel).exists() and (media.site / bev_rel).exists():
        media.reused += 2
    else:
        figs = det3d_figures(text, image, meta, f"{who} boxes, top view of camera 1")
        if figs is None:
            return []
        atomic_write_bytes(media.site / over_rel, figs[0])
        atomic_write_bytes(media.site / bev_rel, figs[1])
        media.written += 2
    return [
        html.Figure(over_rel, f"{who} boxes on image 1"),
        html.Figure(bev_rel, f"{who} boxes, bird's-eye view (camera 1 frame)"),
    ]


def _view(
    row: dict[str, Any], where: str, media: MediaStore, pred: Prediction | None
) -> html.SampleView:
    reward = _loads(row.get("reward"), f"{where}: field 'reward'")
    meta = _loads(row.get("meta"), f"{where}: field 'meta'")
    images = [img["bytes"] for img in row.get("images") or []]
    view = html.SampleView(
        id=str(row["id"]),
        task=str(row["task"]),
        scenario=str(row.get("scenario") or ""),
        messages=list(row.get("messages") or []),
        images=[media.put(b) for b in images],
        videos=[[media.put(f["bytes"]) for f in frames] for frames in row.get("videos") or []],
        answer=str(row.get("answer") or ""),
        reward=reward,
        meta=meta,
        prediction=pred,
    )
    if reward.get("mode") == "det3d" and images:
        view.figures += _det3d(media, view.answer, images[0], meta, "answer")
        if pred is not None:
            view.figures += _det3d(media, pred.text, images[0], meta, "model")
    return view


def _check_page_size(page_size: int) -> None:
    if page_size < 1:
        raise ViewerError(f"page size must be at least 1, got {page_size}")


def build_site(
    dataset: str | Path,
    out: str | Path,
    predictions: str | Path | None = None,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    audit: bool = True,
    progress: bool = False,
    console: Console | None = None,
) -> SiteReport:
    """Write the viewer site of ``dataset`` (a run folder or its ``data/`` folder of shards)
    into ``out``; with ``predictions`` (a ``vst predict`` JSONL) add the model's answers and the
    failures view. ``audit``: compute the audit when the dataset has no ``audit.json``.
    Raises :class:`ViewerError` on unusable input and :class:`OSError` when ``out`` cannot be
    written."""
    _check_page_size(page_size)
    dataset, site = Path(dataset), Path(out)
    if not dataset.is_dir():
        raise ViewerError(f"{dataset}: not a folder")
    shards = list_shards(dataset)
    if not shards:
        raise ViewerError(f"{dataset}: no shards (shard-*.parquet) in it or in its data/ folder")
    preds: dict[str, Prediction] = {}
    if predictions is not None:
        try:
            preds = load_predictions(predictions)
        except ValueError as exc:
            raise ViewerError(str(exc)) from None
    site.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(site / "assets" / "style.css", STYLE_CSS.encode())
    atomic_write_bytes(site / "assets" / "failures.js", FAILURES_JS.encode())
    media = MediaStore(site)
    report = SiteReport(site=site, index=site / "index.html", predictions=len(preds))
    stats: dict[str, TaskStats] = new_stats()
    tasks: dict[str, _TaskPages] = {}
    total = sum(count_rows(p) for p in shards)
    data_js = _PredictionsData(site / "data" / "predictions.js") if preds else None
    try:
        with Progress(console=console, transient=True, disable=not progress) as bar:
            job = bar.add_task("writing pages", total=total)
            for shard in shards:
                for k, row in enumerate(iter_rows(shard, _COLUMNS, batch_size=32)):
                    where = f"{shard} row {k} (sample {row.get('id')})"
                    task = str(row.get("task"))
                    if not _TASK_RE.match(task):
                        raise ViewerError(f"{where}: field 'task' {task!r} is not a task name")
                    pred = preds.get(str(row.get("id")))
                    view = _view(row, where, media, pred)
                    if task not in tasks:
                        tasks[task] = _TaskPages(site, task, page_size)
                    number = tasks[task].add(html.sample_card(view, "../../"))
                    scene = str(view.meta.get("scene_id", ""))
                    stats[task].add(view.answer, view.reward, scene)
                    if pred is not None and data_js is not None:
                        stats[task].add_score(pred.score)
                        report.predictions_matched += 1
                        data_js.write(view, pred, scene, html.page_name(number))
                    report.samples += 1
                    bar.advance(job)
        if data_js is not None:
            data_js.finish()
    finally:
        if data_js is not None:
            data_js.abort()
    for task in sorted(tasks):
        report.pages[task] = tasks[task].finish()
    if preds:
        page = html.document(
            "failures first",
            html.FAILURES_BODY,
            "",
            scripts=["data/predictions.js", "assets/failures.js"],
        )
        atomic_write_bytes(site / "failures.html", page.encode("utf-8"))
    else:  # a previous build with predictions: its failures view no longer applies
        (site / "failures.html").unlink(missing_ok=True)
        (site / "data" / "predictions.js").unlink(missing_ok=True)
    audit_json = load_audit(dataset, shards, compute=audit)
    page = index_page(
        dataset.name if dataset.name != "data" else dataset.parent.name,
        stats,
        report.pages,
        audit_json,
        has_predictions=bool(preds),
    )
    atomic_write_bytes(report.index, page.encode("utf-8"))
    report.media_written, report.media_reused = media.written, media.reused
    return report
