"""Run configs are checked at load time: values that YAML or pydantic would accept silently
(infinite numbers, booleans as integers, repeated keys) and paths that do not exist are config
errors naming the file and the field; `vst generate` exits 2 on them with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from test_engine_run_safety import _one_error_line
from test_engine_runner import TINY
from vst.engine.cli import generate_app
from vst.engine.config import ConfigError, load_config

app = typer.Typer()
app.add_typer(generate_app)
app.command("unused")(lambda: None)  # two commands: `generate` stays a subcommand
runner = CliRunner()


@pytest.fixture
def write(tmp_path):
    """Write a config whose source is an existing (empty) folder, plus ``extra`` lines."""
    (tmp_path / "scenes").mkdir()

    def _write(extra: str = "", *, tasks: str | None = None, name: str = "run.yaml") -> Path:
        p = tmp_path / name
        p.write_text(
            f"output: {tmp_path / 'out'}\n"
            f"sources: [{{kind: scenes, path: {tmp_path / 'scenes'}}}]\n"
            + (tasks if tasks is not None else f"tasks: [{{name: {TINY}, per_scene: 1}}]\n")
            + extra
        )
        return p

    return _write


@pytest.mark.parametrize(
    ("extra", "field", "problem"),
    [
        ("unified_focal: .inf\n", "unified_focal", "finite number"),
        ("max_truncation: .nan\n", "max_truncation", "finite number"),
        ("seed: true\n", "seed", "valid integer"),
        ("workers: 2.0\n", "workers", "valid integer"),
        ("strict: 1\n", "strict", "valid boolean"),
    ],
)
def test_values_that_were_coerced_are_field_errors(tiny_task, write, extra, field, problem):
    path = write(extra)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {field}: ")
    assert problem in str(info.value)


def test_weights_must_be_finite(tiny_task, write):
    path = write("samples_per_scene: 4\n", tasks=f"tasks: [{{name: {TINY}, weight: .inf}}]\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: tasks\.0\.weight: .*finite number"):
        load_config(path)


def test_duplicate_keys_are_refused(tiny_task, write):
    path = write("seed: 1\nseed: 2\n")
    with pytest.raises(
        ConfigError, match=r"run\.yaml: not valid YAML: duplicate key 'seed' \(line 5\)"
    ):
        load_config(path)
    nested = write(tasks=f"tasks: [{{name: {TINY}, per_scene: 1, per_scene: 3}}]\n")
    with pytest.raises(ConfigError, match="duplicate key 'per_scene'"):
        load_config(nested)
    assert load_config(write("seed: 2\n")).seed == 2  # one key: fine


def test_paths_are_checked_at_load_time(tiny_task, tmp_path, write):
    path = write()
    text = path.read_text()
    path.write_text(text.replace(str(tmp_path / "scenes"), str(tmp_path / "nowhere")))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: sources.0.path: {tmp_path / 'nowhere'} does not exist"
    lists = write(f"benchmark_guard: {{extra_lists: [{tmp_path / 'list.txt'}]}}\n")
    with pytest.raises(
        ConfigError, match=r"run\.yaml: benchmark_guard\.extra_lists\.0: .*list\.txt"
    ):
        load_config(lists)
    (tmp_path / "out").write_text("a file")
    with pytest.raises(ConfigError, match=r"run\.yaml: output: .*out is a file, not a folder"):
        load_config(write())


def test_non_utf8_config_names_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("output: caf\xe9\n".encode("latin-1"))
    with pytest.raises(
        ConfigError, match=r"latin1\.yaml: not UTF-8 text \(byte 0xe9 at offset 11\)"
    ):
        load_config(path)


@pytest.mark.parametrize(
    "case", ["inf", "duplicate", "bool_seed", "missing_source", "latin1", "extra_list"]
)
def test_generate_exits_2_with_one_line_naming_file_and_field(tiny_task, tmp_path, write, case):
    extra = {
        "inf": "unified_focal: .inf\n",
        "duplicate": "seed: 1\nseed: 2\n",
        "bool_seed": "seed: true\n",
        "extra_list": f"benchmark_guard: {{extra_lists: [{tmp_path / 'gone.txt'}]}}\n",
    }.get(case, "")
    path = write(extra)
    if case == "missing_source":
        path.write_text(path.read_text().replace(str(tmp_path / "scenes"), "/no/such/dir"))
    if case == "latin1":
        path.write_bytes(path.read_bytes() + "# caf\xe9\n".encode("latin-1"))
    result = runner.invoke(app, ["generate", str(path), "--quiet"])
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert str(path) in line
    field = {
        "inf": "unified_focal",
        "duplicate": "duplicate key 'seed'",
        "bool_seed": "seed",
        "missing_source": "sources.0.path: /no/such/dir does not exist",
        "latin1": "not UTF-8 text",
        "extra_list": "benchmark_guard.extra_lists.0",
    }[case]
    assert field in line


def test_generate_refuses_an_empty_task_list(tiny_task, write):
    result = runner.invoke(app, ["generate", str(write()), "--tasks", ",", "--quiet"])
    assert result.exit_code == 2
    assert (
        _one_error_line(result.output) == "error: --tasks: no task names in ',' (give "
        "comma-separated names or globs)"
    )


def test_unreadable_extra_lists_name_the_file(tiny_task, tmp_path, write):
    from vst.engine.config import parse_config
    from vst.engine.runner import EngineInputError, run

    bad = tmp_path / "list.txt"
    bad.write_bytes(b"scene\xff01\n")
    path = write(f"benchmark_guard: {{extra_lists: [{bad}]}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: benchmark_guard.extra_lists: cannot read scene list {bad}: not UTF-8 text"
    )
    # a config made in code (no file to check at load time) fails at the start of the run
    cfg = parse_config(
        {
            "output": str(tmp_path / "out"),
            "sources": [{"kind": "scenes", "path": str(tmp_path / "scenes")}],
            "tasks": [{"name": TINY, "per_scene": 1}],
            "benchmark_guard": {"extra_lists": [str(tmp_path / "gone.txt")]},
        }
    )
    with pytest.raises(EngineInputError, match=r"benchmark_guard\.extra_lists: .*gone\.txt"):
        run(cfg, progress=False)
