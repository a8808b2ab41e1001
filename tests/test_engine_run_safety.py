"""What a run does to its machine: workers die with their parent, one run per output folder,
files get the umask's mode, and file-system errors are one line naming the path (exit 2 for
a path that cannot be used, 1 for a full disk)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from test_engine_runner import TINY, _config
from vst.engine.cli import generate_app
from vst.engine.runner import EngineInputError, run
from vst.engine.writer import list_shards
from vst.lock import output_lock
from vst.scenes.io import SCENE_FILE, load_scene, save_scene

app = typer.Typer()
app.add_typer(generate_app)
app.command("unused")(lambda: None)
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def scenes_root(engine_scene_dirs) -> Path:
    return engine_scene_dirs[0].parent


def _config_file(tmp_path: Path, scenes: Path, out: Path) -> Path:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"output: {out}\nseed: 1\nsources: [{{kind: scenes, path: {scenes}}}]\n"
        f"tasks: [{{name: {TINY}, per_scene: 2}}]\nscenes_per_shard: 1\nimage_format: PNG\n"
    )
    return cfg


def _one_error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert "Traceback" not in output
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ")
    return lines[0]


# -- orphan workers ---------------------------------------------------------------------------
_SLOW_RUN = """
import sys, time
import vst.workers
from test_engine_runner import TinyTask
from vst.engine.config import parse_config
from vst.engine.registry import register
from vst.engine.runner import run

if sys.argv[3] == "watchdog":  # no prctl: the portable fallback alone
    vst.workers._set_pdeathsig = lambda: False
if sys.argv[3] == "import":  # `vst scenes import --workers 2` with a slow reader
    from vst.scenes.sources.images_depth import ImagesDepthReader
    from vst.scenes.cli import app

    ImagesDepthReader.read_scene = lambda self, ref, report: time.sleep(300)
    app(["import", "images", sys.argv[2], "--out", sys.argv[1], "--workers", "2"])

class Slow(TinyTask):
    name = "test_engine_slow"

    def generate(self, scene, rng, budget, ctx):
        time.sleep(300)
        yield from ()

register(Slow)
cfg = parse_config({
    "output": sys.argv[1],
    "sources": [{"kind": "scenes", "path": sys.argv[2]}],
    "tasks": [{"name": "test_engine_slow", "per_scene": 1}],
    "scenes_per_shard": 1,
    "workers": 2,
})
run(cfg, progress=False)
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status is left


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("mode", ["pdeathsig", "watchdog", "import"])
def test_workers_die_with_a_killed_parent(tmp_path, scenes_root, mode):
    """`vst generate` (and `vst scenes import`) with 2 workers, parent killed with -9."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tests'}"}
    source = scenes_root
    if mode == "import":
        from vst.testing.images_fixture import write_images_fixture

        source = write_images_fixture(tmp_path / "images").root
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_RUN, str(tmp_path / "out"), str(source), mode],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before its workers started"
            time.sleep(0.2)
            workers = _children(proc.pid)
        assert len(workers) >= 2, "the run did not start two workers"
        time.sleep(1.0)  # the workers are initialised and inside the slow task
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [w for w in workers if _alive(w)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for w in workers:  # on failure: do not leave the orphans running
            if _alive(w):
                os.kill(w, signal.SIGKILL)


# -- one run per output -----------------------------------------------------------------------
def test_a_second_run_on_the_same_output_is_refused(tiny_task, tmp_path, scenes_root):
    out = tmp_path / "out"
    cfg = _config_file(tmp_path, scenes_root, out)
    with output_lock(out):  # another run in progress
        result = runner.invoke(app, ["generate", str(cfg), "--quiet"])
        with pytest.raises(EngineInputError, match=f"another run holds {out}"):
            run(_config(out, scenes_root), progress=False)
    assert result.exit_code == 2
    line = _one_error_line(result.output)
    assert line.startswith(f"error: another run holds {out} ")
    assert not (out / "data").exists()  # nothing was touched
    again = runner.invoke(app, ["generate", str(cfg), "--quiet"])  # lock released: runs
    assert again.exit_code == 0, again.output
    assert len(list_shards(out)) == 3


# -- file modes -------------------------------------------------------------------------------
def test_written_files_get_the_umask_mode(tiny_task, tmp_path, engine_scene_dirs):
    old = os.umask(0o022)
    try:
        scene_dir = save_scene(load_scene(engine_scene_dirs[0]), tmp_path / "scenes" / "one")
        out = tmp_path / "out"
        run(_config(out, tmp_path / "scenes"), progress=False)
        os.umask(0o027)
        run(_config(tmp_path / "out2", tmp_path / "scenes"), progress=False)
    finally:
        os.umask(old)
    files = [
        scene_dir / SCENE_FILE,
        *sorted((scene_dir / "images").iterdir())[:1],
        out / "report.json",
        out / "report.md",
        *list_shards(out),
    ]
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {
        f.name: "0o644" for f in files
    }
    assert oct((tmp_path / "out2" / "report.json").stat().st_mode & 0o777) == "0o640"
    assert oct(list_shards(tmp_path / "out2")[0].stat().st_mode & 0o777) == "0o640"


# -- file-system errors -----------------------------------------------------------------------
def test_output_that_is_a_file_is_one_line(tiny_task, tmp_path, scenes_root):
    cfg = _config_file(tmp_path, scenes_root, tmp_path / "out")
    (tmp_path / "afile").write_text("x")
    result = runner.invoke(app, ["generate", str(cfg), "--out", str(tmp_path / "afile")])
    assert result.exit_code == 2
    assert (
        _one_error_line(result.output)
        == f"error: output: {tmp_path / 'afile'} is a file, not a folder"
    )
    # a folder below a file cannot be made either
    result = runner.invoke(app, ["generate", str(cfg), "--out", str(tmp_path / "afile" / "out")])
    assert result.exit_code == 2
    line = _one_error_line(result.output)
    assert str(tmp_path / "afile") in line and "Not a directory" in line


def test_unwritable_and_read_only_outputs_are_one_line(
    tiny_task, tmp_path, scenes_root, monkeypatch
):
    import tempfile

    cfg = _config_file(tmp_path, scenes_root, tmp_path / "out")
    data = tmp_path / "out" / "data"
    real_mkstemp = tempfile.mkstemp

    def refusing(code: int):
        def mkstemp(*args, dir=None, **kw):
            if dir is not None and Path(dir) == data:  # data/ is read-only / not writable
                raise OSError(code, os.strerror(code), str(dir))
            return real_mkstemp(*args, dir=dir, **kw)

        return mkstemp

    monkeypatch.setattr(tempfile, "mkstemp", refusing(errno.EROFS))
    result = runner.invoke(app, ["generate", str(cfg), "--quiet"])
    assert result.exit_code == 2
    assert _one_error_line(result.output) == f"error: {data}: read-only file system"

    monkeypatch.setattr(tempfile, "mkstemp", refusing(errno.EACCES))
    result = runner.invoke(app, ["generate", str(cfg), "--quiet"])
    assert result.exit_code == 2
    assert _one_error_line(result.output) == f"error: {data}: Permission denied"


def test_disk_full_is_one_line_naming_the_shard(tiny_task, tmp_path, scenes_root, monkeypatch):
    import vst.engine.writer as writer_module

    def full(self, row):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer_module.ShardWriter, "write", full)
    result = runner.invoke(
        app, ["generate", str(_config_file(tmp_path, scenes_root, tmp_path / "out")), "--quiet"]
    )
    assert result.exit_code == 1
    line = _one_error_line(result.output)
    assert line.startswith(f"error: {tmp_path / 'out' / 'data' / 'shard-00000-'}")
    assert line.endswith(".parquet: no space left on device (disk full)")
    assert not list((tmp_path / "out" / "data").glob(".tmp-*"))  # the partial shard is gone
