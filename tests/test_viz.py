"""vst.viz (``vst data view``): the static site of a dataset and its predictions.

The shared site (``viewer_site`` in conftest.py) is built from ``all_tasks_run`` (every task over
three synthetic rooms) with hand-written predictions and 10 samples a page."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import shutil
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import VIEWER_PAGE_SIZE
from vst.engine.cli import data_app
from vst.engine.writer import ShardWriter, iter_rows, list_shards, shard_name
from vst.geometry.overlay import box_segments
from vst.rewards.parsing import parse_boxes3d
from vst.viz import ViewerError, build_site
from vst.viz import site as site_mod
from vst.viz.media import det3d_camera, det3d_figures

_ARTICLE = re.compile(r'<article class="([^"]*)" id="([0-9a-f]+)">(.*?)</article>', re.S)


def _rows(run: Path, columns: list[str]) -> list[dict]:
    return [r for p in list_shards(run) for r in iter_rows(p, columns)]


def _articles(site: Path) -> dict[str, tuple[str, str, Path]]:
    """``{sample id: (class, inner html, page)}`` over every task page."""
    out: dict[str, tuple[str, str, Path]] = {}
    for page in sorted(site.glob("tasks/*/page-*.html")):
        for cls, sid, inner in _ARTICLE.findall(page.read_text()):
            assert sid not in out, f"{sid} on two pages"
            out[sid] = (cls, inner, page)
    return out


def test_every_sample_once_on_pages_of_ten(viewer_site, all_tasks_run):
    site, _, _ = viewer_site
    per_task = Counter(r["task"] for r in _rows(all_tasks_run, ["task"]))
    articles = _articles(site)
    ids = {r["id"] for r in _rows(all_tasks_run, ["id"])}
    assert set(articles) == ids and len(ids) == sum(per_task.values())
    for task, n in per_task.items():
        pages = sorted((site / "tasks" / task).glob("page-*.html"))
        assert len(pages) == math.ceil(n / VIEWER_PAGE_SIZE)
        first, last = pages[0].read_text(), pages[-1].read_text()
        assert 'class="next" href="page-0002.html"' in first
        assert 'class="next"' not in last and f'href="page-{len(pages) - 1:04d}.html"' in last
        assert sum(p.parent.name == task for _, _, p in articles.values()) == n


def test_images_are_files_written_once_and_placed_in_the_turns(viewer_site, all_tasks_run):
    site, _, _ = viewer_site
    articles = _articles(site)
    refs = 0
    for row in _rows(all_tasks_run, ["id", "images", "videos"]):
        _, inner, _ = articles[row["id"]]
        views = re.findall(r'<img class="view" src="\.\./\.\./([^"]+)"', inner)
        assert len(views) == len(row["images"])
        for src, img in zip(views, row["images"], strict=True):
            assert (site / src).read_bytes() == img["bytes"]  # the stored image, marks and all
        strips = re.findall(r'<div class="strip"[^>]*>(.*?)</div>', inner)
        assert [s.count('class="frame"') for s in strips] == [len(v) for v in row["videos"]]
        refs += len(views) + sum(len(v) for v in row["videos"])
    pages = list(site.glob("**/*.html"))
    assert not any("data:image" in p.read_text() for p in pages)
    media = [p for p in (site / "media").rglob("*.*") if "det3d" not in p.parts]
    assert 0 < len(media) < refs / 4  # a clip's frames are shared by its samples: one file each


def _near(image: Image.Image, rgb: tuple[int, int, int], tol: int = 40) -> int:
    """Pixels of ``image`` within ``tol`` (sum of channel differences) of ``rgb``."""
    diff = np.abs(np.asarray(image, dtype=np.int32) - np.array(rgb)).sum(axis=2)
    return int((diff < tol).sum())


def test_det3d_samples_show_answer_boxes_and_a_bev(viewer_site, all_tasks_run):
    site, _, hand = viewer_site
    articles = _articles(site)
    wrong = {r["id"] for r in hand if r["text"].startswith('[{"bbox_3d"')}
    assert len(wrong) == 2  # the hand-written wrong det3d answers
    predicted = {r["id"] for r in hand}
    columns = ["id", "task", "images", "answer", "meta"]
    det = [r for r in _rows(all_tasks_run, columns) if "det3d" in r["task"]]
    assert {r["task"] for r in det} == {"si_det3d", "mi_det3d"}
    for row in det:
        _, inner, _ = articles[row["id"]]
        figs = re.findall(r'<img class="fig" src="\.\./\.\./([^"]+)" alt="([^"]+)"', inner)
        want = ["answer boxes on image 1", "answer boxes, bird's-eye view (camera 1 frame)"]
        if row["id"] in predicted:
            want += ["model boxes on image 1", "model boxes, bird's-eye view (camera 1 frame)"]
        assert [alt.replace("&#x27;", "'") for _, alt in figs] == want
        # a right answer draws the same figures as the reference, a wrong one other figures
        if row["id"] in predicted:
            same = (site / figs[0][0]).read_bytes() == (site / figs[2][0]).read_bytes()
            assert same == (row["id"] not in wrong)
        first = Image.open(io.BytesIO(row["images"][0]["bytes"])).convert("RGB")
        overlay = Image.open(site / figs[0][0]).convert("RGB")
        assert overlay.size == first.size
        # the first box's colour (BEV_COLORS[0]) is drawn where its edges fall in the image
        boxes, _ = parse_boxes3d(row["answer"])
        camera = det3d_camera(json.loads(row["meta"]), first.width, first.height)
        if len(boxes) and box_segments(boxes[0], camera):
            assert _near(overlay, (31, 119, 180)) > _near(first, (31, 119, 180)) + 50
        assert Image.open(site / figs[1][0]).size == (400, 400)


def test_det3d_figures_are_deterministic(all_tasks_run):
    row = next(
        r
        for r in _rows(all_tasks_run, ["task", "images", "answer", "meta"])
        if r["task"] == "si_det3d"
    )
    meta = json.loads(row["meta"])
    a = det3d_figures(row["answer"], row["images"][0]["bytes"], meta, "t")
    b = det3d_figures(row["answer"], row["images"][0]["bytes"], meta, "t")
    assert a == b and a[0][:3] == b"\xff\xd8\xff" and a[1][:8] == b"\x89PNG\r\n\x1a\n"
    assert det3d_figures(row["answer"], row["images"][0]["bytes"], {}, "t") is None


def test_index_counts_charts_audit_and_scores(viewer_site, all_tasks_run):
    site, _, hand = viewer_site
    index = (site / "index.html").read_text()
    per_task = Counter(r["task"] for r in _rows(all_tasks_run, ["task"]))
    rows = re.findall(r"<tr><td><a [^>]*>([a-z0-9_]+)</a></td><td>(\d+)</td>", index)
    assert dict((t, int(n)) for t, n in rows) == dict(per_task)
    titles = re.findall(r"<svg [^>]*><title>([^<]+)</title>", index)
    assert titles[:2] == ["samples per task", "mean score per task"]
    assert sum(t.endswith(": answers") or t.endswith(": ground-truth values") for t in titles) == 19
    assert "duplicate questions (share)" in titles and "Audit: " in index
    # every task: 3 hand-written predictions scored 1, 0 and 0.5 -> mean 0.5, 2 failures of 3
    assert index.count("<td>0.500</td><td>2 of 3</td>") == len(per_task) == len(hand) / 3
    assert 'href="failures.html"' in index


def test_failures_data_links_each_prediction_to_its_sample(viewer_site):
    site, _, hand = viewer_site
    text = (site / "data" / "predictions.js").read_text()
    assert text.startswith("window.VST_PREDICTIONS = [\n") and text.endswith(",\n];\n")
    data = json.loads("[" + text.split("[", 1)[1].rsplit(",", 1)[0] + "]")
    assert [(d["id"], d["score"]) for d in data] == [
        (r["id"], r["reward"]["overall"]) for r in hand
    ]
    for d in data:
        page, anchor = d["href"].split("#")
        assert f'id="{anchor}"' in (site / page).read_text()
        assert (site / d["thumb"]).is_file()
    failures = (site / "failures.html").read_text()
    assert 'src="data/predictions.js"' in failures and 'src="assets/failures.js"' in failures


def test_rerun_writes_no_media_and_the_same_bytes(viewer_site, all_tasks_run, tmp_path):
    site, preds, _ = viewer_site
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    for p in [*copy.glob("tasks/*/*.html"), copy / "index.html", copy / "data" / "predictions.js"]:
        p.unlink()
    report = build_site(all_tasks_run, copy, preds, page_size=VIEWER_PAGE_SIZE)
    assert report.media_written == 0 and report.media_reused > 0
    files = sorted(p.relative_to(site) for p in site.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(copy) for p in copy.rglob("*") if p.is_file())
    assert all((site / f).read_bytes() == (copy / f).read_bytes() for f in files)


def _tiny_jpeg(k: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), (k % 256, (7 * k) % 256, 90)).save(buf, format="JPEG")
    return buf.getvalue()


def _synthetic_dataset(folder: Path, n: int, meta: str = '{"scene_id": "s0"}') -> Path:
    """``n`` samples of two tasks with a small image each, in one shard."""
    data = folder / "data"
    data.mkdir(parents=True)
    with ShardWriter(data / shard_name(0, "0" * 12)) as writer:
        for k in range(n):
            writer.write(
                {
                    "id": f"{k:016x}",
                    "task": f"task_{k % 2}",
                    "scenario": "single_image",
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {"type": "image", "text": None},
                                {"type": "text", "text": f"question {k} " * 40},
                            ],
                        },
                        {"role": "assistant", "content": [{"type": "text", "text": str(k % 5)}]},
                    ],
                    "images": [{"bytes": _tiny_jpeg(k), "path": None}],
                    "videos": [],
                    "answer": str(k % 5),
                    "reward": '{"ground_truth":"1","mode":"exact"}',
                    "meta": meta,
                }
            )
        writer.close()
    return folder


def test_memory_stays_flat_as_the_dataset_grows(tmp_path, monkeypatch):
    held = []
    add = site_mod._TaskPages.add
    monkeypatch.setattr(
        site_mod._TaskPages,
        "add",
        lambda self, card: (held.append(len(self.cards)), add(self, card))[1],
    )
    peaks = {}
    for n in (200, 1600):
        ds = _synthetic_dataset(tmp_path / f"ds{n}", n)
        tracemalloc.start()
        report = build_site(ds, tmp_path / f"site{n}", page_size=20, audit=False)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert report.samples == n and report.pages == {"task_0": n // 40, "task_1": n // 40}
        html_bytes = sum(p.stat().st_size for p in (tmp_path / f"site{n}").glob("tasks/*/*.html"))
    assert max(held) <= 20  # a task holds at most one page of cards
    # 8x the samples (and ~8x the page bytes, written) adds far less than 8x the peak memory
    assert html_bytes > 4 * peaks[200]
    assert peaks[1600] < 1.5 * peaks[200]


def test_bad_input_names_the_file_and_field(tmp_path, all_tasks_run):
    with pytest.raises(ViewerError, match="no shards"):
        build_site(tmp_path, tmp_path / "site")
    bad = tmp_path / "preds.jsonl"
    bad.write_text('{"id": "x"}\n')
    with pytest.raises(ViewerError, match=r"preds\.jsonl:1: not a prediction line"):
        build_site(all_tasks_run, tmp_path / "site", bad)
    bad.write_text("\n{not json\n")
    with pytest.raises(ViewerError, match=r"preds\.jsonl:2: not JSON"):
        build_site(all_tasks_run, tmp_path / "site", bad)
    ds = _synthetic_dataset(tmp_path / "broken", 3, meta="{oops")
    with pytest.raises(
        ViewerError,
        match=r"shard-00000-000000000000\.parquet row 0 \(sample 0{16}\): field 'meta': not JSON",
    ):
        build_site(ds, tmp_path / "site2", audit=False)
    with pytest.raises(ViewerError, match="page size must be at least 1"):
        build_site(ds, tmp_path / "site2", page_size=0)


def test_cli_view(tmp_path):
    ds = _synthetic_dataset(tmp_path / "ds", 30)
    runner = CliRunner()
    result = runner.invoke(data_app, ["view", str(ds), "--out", str(tmp_path / "site"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"index: {tmp_path / 'site' / 'index.html'}" in result.output
    assert "30 samples on 2 page(s)" in result.output
    assert '<h2 id="audit">Audit: ' in (tmp_path / "site" / "index.html").read_text()
    args = ["view", str(ds), "--out", str(tmp_path / "site"), "--quiet", "--no-audit"]
    assert runner.invoke(data_app, args).exit_code == 0
    assert "Audit: " not in (tmp_path / "site" / "index.html").read_text()
    result = runner.invoke(data_app, ["view", str(tmp_path / "nope"), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "not a folder" in result.output


def test_eval_harness_predictions_are_read(tmp_path):
    ds = _synthetic_dataset(tmp_path / "ds", 4)
    line = {
        "dataset": "vst-p",
        "id": f"{2:016x}",
        "index": 0,
        "task": "task_0",
        "request": "r",
        "model": "tiny",
        "sampling": {},
        "text": "the answer is 3",
        "parsed": "3",
        "scores": {"official": 0.0, "format": 1.0},
    }
    preds = tmp_path / "vst-p.predictions.jsonl"
    preds.write_text(json.dumps(line) + "\n")
    report = build_site(ds, tmp_path / "site", preds, audit=False)
    assert (report.predictions, report.predictions_matched) == (1, 1)
    cls, inner, _ = _articles(tmp_path / "site")[f"{2:016x}"]
    assert cls == "sample fail"
    assert 'model (tiny): <span class="answer pred">3</span>' in inner
    assert 'score <span class="score">0.000</span> (format 1.000)' in inner


def test_docs_python_example_runs(tmp_path, monkeypatch):
    block = re.findall(
        r"```python\n(.*?)```", (Path(__file__).parents[1] / "docs" / "viewer.md").read_text(), re.S
    )
    assert len(block) == 1
    _synthetic_dataset(tmp_path / "outputs" / "engine-demo", 60)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block[0], "docs/viewer.md", "exec"), {"__name__": "docs"})
    assert out.getvalue() == "outputs/engine-demo-site/index.html 60 {'task_0': 1, 'task_1': 1}\n"
