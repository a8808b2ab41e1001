"""Import reports that remember: a rerun or a resumed import reports every item the reader
skipped in the scenes it keeps (stored next to each scene), so its report equals an
uninterrupted import's; the engine's report too. A full disk stops an import with one line
and keeps the report of the scenes done so far."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from test_engine_runner import TINY, TinyTask, _config
from vst.engine import registry
from vst.engine.registry import register
from vst.engine.runner import Report, StopRun, run
from vst.lock import output_lock
from vst.scenes.cli import app as scenes_app
from vst.scenes.guard import BenchmarkGuard
from vst.scenes.sources.formats import get_reader_class
from vst.scenes.sources.importer import IMPORT_RECORD, IMPORT_REPORT, import_scenes
from vst.testing.images_fixture import write_images_fixture

runner = CliRunner()
SKIPPED_IN_ROOM_1 = {
    "kind": "object",
    "item": "scene coco-room_0001 (image room_0001.png), annotation 100",
    "reason": "no usable segmentation (empty segmentation); bbox_masks is off",
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """The images fixture: room_0001 and room_0002 import with skipped annotations (1 and 2),
    room_0003 fails (no depth)."""
    return write_images_fixture(tmp_path_factory.mktemp("images") / "data").root


class Interrupted(Exception):  # noqa: N818 - stands for a kill, not an error
    """Stands for a kill: the import stops without writing its report."""


def _import(dataset: Path, out: Path, **kw):
    reader = get_reader_class("images")(dataset, {})
    return import_scenes(reader, out, guard=BenchmarkGuard.default(), **kw)


def _stable(report: dict) -> dict:
    """An import report without what a resume changes by design (written vs kept)."""
    d = {k: v for k, v in report.items() if k not in ("written", "reused", "out")}
    d["scenes"] = sorted(report["written"] + report["reused"])
    return d


def test_rerun_and_resume_report_every_skipped_item(dataset, tmp_path):
    full = _import(dataset, tmp_path / "full").to_dict()
    assert len(full["skipped"]) == 4 and SKIPPED_IN_ROOM_1 in full["skipped"]
    assert full["written"] == ["coco-room_0001", "coco-room_0002"] and len(full["failed"]) == 1
    rerun = _import(dataset, tmp_path / "full").to_dict()
    assert rerun["reused"] == ["coco-room_0001", "coco-room_0002"]
    assert _stable(rerun) == _stable(full)
    on_disk = json.loads((tmp_path / "full" / IMPORT_REPORT).read_text())
    assert _stable(on_disk) == _stable(full)
    record = json.loads((tmp_path / "full" / "coco-room_0001" / IMPORT_RECORD).read_text())
    assert record["skipped"] == [SKIPPED_IN_ROOM_1]  # stored next to the scene

    def kill_after_first(scene_id: str, status: str) -> None:
        if status == "written":
            raise Interrupted

    with pytest.raises(Interrupted):
        _import(dataset, tmp_path / "killed", on_scene=kill_after_first)
    assert not (tmp_path / "killed" / IMPORT_REPORT).exists()
    for workers in (1, 2):
        resumed = _import(dataset, tmp_path / "killed", workers=workers).to_dict()
        assert "coco-room_0001" in resumed["reused"]
        assert _stable(resumed) == _stable(full)


def test_a_scene_without_its_record_is_imported_again(dataset, tmp_path):
    _import(dataset, tmp_path / "out")
    (tmp_path / "out" / "coco-room_0001" / IMPORT_RECORD).unlink()  # killed before the record
    again = _import(dataset, tmp_path / "out")
    assert again.written == ["coco-room_0001"] and again.reused == ["coco-room_0002"]
    assert SKIPPED_IN_ROOM_1 in again.to_dict()["skipped"]


def _comparable(report: Report, out: Path) -> dict:
    """A run report without timings and what a resume changes by design (shards written vs
    reused, scenes imported vs kept), its output folder replaced by ``OUT``."""
    d = json.loads(report.to_json().replace(str(out), "OUT"))
    for key in ("timings", "shards", "shards_written", "shards_reused"):
        d.pop(key)
    for imp in d["imports"]:
        imp["scenes"] = sorted(imp.pop("written") + imp.pop("reused"))
        imp.pop("summary")
    return d


def test_engine_rerun_and_resume_reports_keep_the_import_skips(dataset, tmp_path):
    def stop(res):
        raise StopRun

    register(TinyTask)
    try:
        src = {"kind": "images", "path": str(dataset)}
        cfg = _config(tmp_path / "a", dataset, sources=[src])
        first = _comparable(run(cfg, progress=False), tmp_path / "a")
        rerun = _comparable(run(cfg, progress=False), tmp_path / "a")
        killed = _config(tmp_path / "b", dataset, sources=[src])
        run(killed, progress=False, on_unit=stop)
        resumed = _comparable(run(killed, progress=False), tmp_path / "b")
    finally:
        registry._REGISTRY.pop(TINY, None)
    assert len(first["imports"][0]["skipped"]) == 4
    assert rerun == first
    assert resumed == first


def test_disk_full_keeps_the_report_so_far_and_resumes(dataset, tmp_path, monkeypatch):
    import vst.scenes.sources.importer as importer

    out = tmp_path / "out"
    full = _import(dataset, tmp_path / "full").to_dict()
    real_save = importer.save_scene
    calls = []

    def fills_up(scene, dest):
        calls.append(scene.id)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(dest / ".scene.json.tmp"))
        return real_save(scene, dest)

    monkeypatch.setattr(importer, "save_scene", fills_up)
    args = ["import", "images", str(dataset), "--out", str(out)]
    result = runner.invoke(scenes_app, args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert errors == [
        f"error: {out / 'coco-room_0002' / '.scene.json.tmp'}: no space left on device (disk full)"
    ]
    so_far = json.loads((out / IMPORT_REPORT).read_text())
    assert so_far["written"] == ["coco-room_0001"] and so_far["skipped"] == [SKIPPED_IN_ROOM_1]
    assert not (out / "coco-room_0002").exists()

    monkeypatch.setattr(importer, "save_scene", real_save)
    resumed = runner.invoke(scenes_app, args)
    assert resumed.exit_code == 0, resumed.output
    assert _stable(json.loads((out / IMPORT_REPORT).read_text())) == _stable(full)


def test_import_output_errors_are_one_line(dataset, tmp_path):
    (tmp_path / "afile").write_text("x")
    result = runner.invoke(
        scenes_app, ["import", "images", str(dataset), "--out", str(tmp_path / "afile")]
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"error: --out: {tmp_path / 'afile'} is a file, not a folder"
    with output_lock(tmp_path / "busy"):
        result = runner.invoke(
            scenes_app, ["import", "images", str(dataset), "--out", str(tmp_path / "busy")]
        )
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: another run holds {tmp_path / 'busy'} ")
