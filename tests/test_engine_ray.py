"""The Ray executor: the same shards and report as the local pool, retries of killed tasks, a
unit that keeps failing is reported (and done by a rerun), a killed driver's rerun, the importer.

One local Ray (2 CPUs, bound to 127.0.0.1, no dashboard) serves the whole module: starting one
costs 4-7 s. Its workers inherit this process's environment, set before ``ray.init``: the
``PYTHONPATH`` (this checkout's ``src`` and ``tests``, so workers import the same code and the
tiny task) and the crash hook's folder (:data:`vst.distributed.CRASH_ENV`): a file
``unit-00001`` in it makes the first task of unit 1 kill its worker (``os._exit``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from test_engine_runner import TinyTask, _config, _digests
from vst.distributed import CRASH_ENV
from vst.engine.cli import generate_app
from vst.engine.executors import RayExecutor
from vst.engine.report import without_timings
from vst.engine.runner import run
from vst.scenes.cli import app as scenes_app
from vst.scenes.guard import BenchmarkGuard
from vst.scenes.sources.formats import get_reader_class
from vst.scenes.sources.importer import IMPORT_REPORT, import_scenes
from vst.testing.images_fixture import write_images_fixture

ray = pytest.importorskip("ray")

TESTS = Path(__file__).resolve().parent
SRC = Path(__import__("vst").__file__).resolve().parents[1]


class SlowTinyTask(TinyTask):
    """The tiny task, 1 s slower per scene: a driver can be killed mid-run. Same samples."""

    def generate(self, scene, rng, budget, ctx):
        time.sleep(1.0)
        yield from super().generate(scene, rng, budget, ctx)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, tiny_task, local):
    """The module's local Ray; started after the reference run (no fork after ``ray.init``)."""
    crash = tmp_path_factory.mktemp("crash")
    env = {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        CRASH_ENV: str(crash),
        "PYTHONPATH": os.pathsep.join(
            [str(SRC), str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        yield SimpleNamespace(crash=crash, address=ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def local(scenes_root, tmp_path_factory, tiny_task):
    """The reference: the local pool with 2 workers, 3 units, run in ``<tmp>/out`` and moved
    to ``<tmp>/local`` so another run can use the same output path (the report names it)."""
    base = tmp_path_factory.mktemp("ref")
    run(_config(base / "out", scenes_root, workers=2), progress=False)
    (base / "out").rename(base / "local")
    return base


@pytest.fixture(scope="module")
def scenes_root(engine_scene_dirs) -> Path:
    return engine_scene_dirs[0].parent


def _same_as_local(local: Path, out: Path) -> None:
    assert _digests(out) == _digests(local / "local") and len(_digests(out)) == 3
    assert without_timings(out) == without_timings(local / "local")


def _ray_run(local: Path, scenes_root: Path, **kw):
    """A Ray run into ``<local>/out`` (the reference's output path); its folder is removed
    first so each test starts fresh."""
    out = local / "out"
    if out.exists():
        shutil.rmtree(out)
    return out, run(
        _config(out, scenes_root, workers=2), progress=False, executor=RayExecutor(**kw)
    )


def test_ray_run_is_byte_identical_to_the_local_pool(cluster, local, scenes_root):
    out, report = _ray_run(local, scenes_root)
    assert report.shards_written == 3 and report.failed_units == [] and report.samples_total > 0
    _same_as_local(local, out)
    # a rerun resumes: every shard reused, same data
    again = run(_config(out, scenes_root, workers=2), progress=False, executor=RayExecutor())
    assert again.shards_reused == 3 and again.shards_written == 0
    assert _digests(out) == _digests(local / "local")


def test_a_killed_task_is_retried_and_the_result_is_identical(cluster, local, scenes_root):
    marker = cluster.crash / "unit-00001"
    marker.touch()
    out, report = _ray_run(local, scenes_root)
    assert not marker.exists()  # the first attempt of unit 1 ran and killed its worker
    assert report.failed_units == [] and report.shards_written == 3
    _same_as_local(local, out)


def test_a_unit_that_keeps_failing_is_reported_and_a_rerun_completes(cluster, local, scenes_root):
    (cluster.crash / "unit-00002").touch()
    out, report = _ray_run(local, scenes_root, retries=0)
    assert [(u["index"], u["attempts"]) for u in report.failed_units] == [(2, 1)]
    assert report.failed_units[0]["error"].startswith("WorkerCrashedError: The worker died")
    assert not list((out / "data").glob("shard-00002-*"))
    assert report.shards_written == 2 and len(_digests(out)) == 2
    md = (out / "report.md").read_text()
    assert "## Failed units" in md and report.failed_units[0]["shard"] in md
    rerun = run(_config(out, scenes_root, workers=2), progress=False, executor=RayExecutor())
    assert rerun.shards_reused == 2 and rerun.shards_written == 1 and rerun.failed_units == []
    assert _digests(out) == _digests(local / "local")


def test_a_killed_driver_rerun_gives_the_same_result(cluster, local, scenes_root, tmp_path):
    out = local / "out"
    if out.exists():
        shutil.rmtree(out)
    cfg = tmp_path / "run.json"  # JSON is YAML
    cfg.write_text(json.dumps(_config(out, scenes_root, workers=2).model_dump(mode="json")))
    code = (
        "import sys, test_engine_ray as t; from vst.engine import registry; "
        "registry.register(t.SlowTinyTask); from vst.cli import app; app()"
    )
    args = ["generate", str(cfg), "--executor", "ray", "--address", cluster.address, "--quiet"]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while not list((out / "data").glob("shard-*.parquet")):
            assert proc.poll() is None, "the driver ended before writing a shard"
            assert time.monotonic() < deadline, "no shard after 60 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "report.json").exists()  # killed before the end
    rerun = run(_config(out, scenes_root, workers=2), progress=False, executor=RayExecutor())
    assert rerun.shards_reused >= 1 and rerun.failed_units == []
    assert _digests(out) == _digests(local / "local")
    ref = json.loads(without_timings(local / "local")[0])
    mine = json.loads(without_timings(out)[0])
    for key in ("shards_written", "shards_reused", "shards"):  # a resume reuses by design
        ref.pop(key), mine.pop(key)
    assert mine == ref


def test_import_with_ray_equals_the_local_import(cluster, tmp_path):
    data = write_images_fixture(tmp_path / "data").root

    def imported(executor: str, out: Path) -> tuple[dict, dict[str, bytes]]:
        if executor == "ray":  # through the CLI, on the module's Ray
            args = ["import", "images", str(data), "--out", str(out), "--executor", "ray"]
            res = CliRunner().invoke(scenes_app, args)
            assert res.exit_code == 0, res.output
            assert "2 written" in res.output and "1 failed" in res.output
        else:
            reader = get_reader_class("images")(data, {})
            result = import_scenes(reader, out, guard=BenchmarkGuard.default())
            assert json.loads((out / IMPORT_REPORT).read_text()) == result.to_dict()
        files = {
            str(p.relative_to(out)): p.read_bytes()
            for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in (".lock", IMPORT_REPORT)
        }
        report = json.loads((out / IMPORT_REPORT).read_text())
        report.pop("out")
        return report, files

    (cluster.crash / "scene-coco-room_0002").touch()  # its first task dies: retried
    ray_report, ray_files = imported("ray", tmp_path / "ray")
    assert not (cluster.crash / "scene-coco-room_0002").exists()
    local_report, local_files = imported("local", tmp_path / "local")
    assert ray_report == local_report and ray_files == local_files
    assert ray_report["written"] == ["coco-room_0001", "coco-room_0002"]
    assert len(ray_report["failed"]) == 1 and len(ray_files) > 4


def test_without_ray_the_cli_says_how_to_install_it(monkeypatch, tmp_path, scenes_root, tiny_task):
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps(_config(tmp_path / "o", scenes_root).model_dump(mode="json")))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    res = CliRunner().invoke(generate_app, [str(cfg), "--executor", "ray"])
    assert res.exit_code == 2 and "pip install 'vst[ray]'" in res.output
    res = CliRunner().invoke(generate_app, [str(cfg), "--address", "auto"])
    assert res.exit_code == 2 and "--address is only for --executor ray" in res.output
    assert not (tmp_path / "o").exists()
