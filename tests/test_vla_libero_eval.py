"""LIBERO rollouts: the protocol on a scripted simulator and a scripted policy server, the worker
process handling (a stub worker), and a real smoke in the LIBERO venv (slow)."""

from __future__ import annotations

import json
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from vst.vla.cli import vla_app
from vst.vla.libero_eval import (
    IDLE_ACTION,
    IDLE_STEPS,
    SUITE_MAX_STEPS,
    TIMING_FIELDS,
    load_episodes,
    run_libero_eval,
)
from vst.vla.libero_process import (
    LiberoProcess,
    SimStep,
    SimulatorError,
    TaskInfo,
    default_sim_python,
)
from vst.vla.rollout_policy import HTTPPolicy, PolicyUnavailableError
from vst.vla.server import PolicyServerThread

SUITE = "libero_spatial"
ACTIONS = [[0.1 * k, -0.05 * k, 0.0, 0.01, 0.0, -0.01, 1.0 if k % 2 else -1.0] for k in range(40)]
"""The fixture's action list: the scripted policy plays ACTIONS[k] at policy step k."""
SUCCESS_AT = {(0, 0): 3, (1, 1): 1, (1, 2): 7}
"""(task, episode) -> the policy step after which the fake env says done; others never."""
GARBAGE_TASK = 2
"""The scripted policy answers 3 numbers instead of 7 on this task (raises on episode 2)."""


class FakeSim:
    """A scripted LIBERO: 3 tasks of 5 initial states. Every frame is filled with
    (steps since reset, task, episode); ``done`` after policy step SUCCESS_AT[(task, episode)]
    (idle steps are the first IDLE_STEPS after a reset). Logs every action it is sent;
    ``interrupt_at`` = (task, episode, step) raises KeyboardInterrupt there, ``crash_at`` =
    (task, episode) a SimulatorError on that reset (once)."""

    def __init__(self, interrupt_at: tuple | None = None, crash_at: tuple | None = None) -> None:
        self.log: list[tuple[int, int, list[float]]] = []
        self.resets: list[tuple[int, int]] = []
        self.interrupt_at, self.crash_at = interrupt_at, crash_at
        self.closed = False

    def tasks(self, suite: str) -> list[TaskInfo]:
        assert suite == SUITE
        return [TaskInfo(t, f"task_{t}", f"do thing {t}", 5) for t in range(3)]

    def _frame(self) -> np.ndarray:
        return np.full((256, 256, 3), (self.n, self.task, self.episode), dtype=np.uint8)

    def reset(self, suite: str, task: int, episode: int, resolution: int) -> SimStep:
        assert resolution == 256
        if self.crash_at == (task, episode):
            self.crash_at = None
            raise SimulatorError(f"{suite} task {task} episode {episode}: LIBERO worker exited")
        self.task, self.episode, self.n = task, episode, 0
        self.resets.append((task, episode))
        return SimStep(self._frame())

    def step(self, action: Any) -> SimStep:
        assert len(action) == 7
        self.n += 1
        if self.interrupt_at == (self.task, self.episode, self.n):
            raise KeyboardInterrupt
        self.log.append((self.task, self.episode, [float(a) for a in action]))
        policy_steps = self.n - IDLE_STEPS
        done = SUCCESS_AT.get((self.task, self.episode)) == policy_steps
        return SimStep(self._frame(), float(done), done)

    def close(self) -> None:
        self.closed = True


class ScriptedPolicy:
    """Replays ACTIONS: reads the step count from the frame (any pixel), plays the action of
    that policy step; on GARBAGE_TASK it returns 3 numbers."""

    model_id = "scripted"

    def __init__(self) -> None:
        self.calls = 0

    def act_batch(self, images: Any, instructions: Any) -> np.ndarray:
        self.calls += 1
        image = np.asarray(images[0])
        step, task = int(image[5, 7, 0]) - IDLE_STEPS, int(image[5, 7, 1])
        assert instructions[0] == f"do thing {task}"
        if task == GARBAGE_TASK:
            if int(image[5, 7, 2]) == 2:  # episode 2: the policy fails (the server says 500)
                raise RuntimeError("scripted failure")
            return np.zeros((1, 3))
        return np.asarray([ACTIONS[step]])


@pytest.fixture(scope="module")
def server():
    with PolicyServerThread(ScriptedPolicy()) as srv:
        yield srv


def _strip(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


def _run(out: Path, url: str, sim: FakeSim | None = None, **kw: Any):
    kw = {"tasks": [0, 1, 2], "episodes": 3, "max_steps": 6, **kw}
    return run_libero_eval(
        SUITE, policy=url, out=out, simulator=sim or FakeSim(), progress=False, **kw
    )


def test_protocol_end_to_end(server: PolicyServerThread, tmp_path: Path) -> None:
    sim = FakeSim()
    report = _run(tmp_path, server.url, sim)
    # per reset: IDLE_STEPS idle actions first, then the scripted actions in order
    by_episode: dict[tuple[int, int], list[list[float]]] = {}
    for task, episode, action in sim.log:
        by_episode.setdefault((task, episode), []).append(action)
    assert sim.resets == [(t, e) for t in range(3) for e in range(3)]
    assert not sim.closed  # a simulator passed in is the caller's to close
    want_steps = {(0, 0): 3, (1, 1): 1}  # successes; (1, 2) succeeds at 7 > the limit 6
    for t in range(3):
        for e in range(3):
            sent = by_episode[t, e]
            assert sent[:IDLE_STEPS] == [list(IDLE_ACTION)] * IDLE_STEPS
            policy_steps = 0 if t == GARBAGE_TASK else want_steps.get((t, e), 6)
            assert len(sent) == IDLE_STEPS + policy_steps
            np.testing.assert_allclose(sent[IDLE_STEPS:], ACTIONS[:policy_steps])
    records = load_episodes(tmp_path / "episodes.jsonl")
    assert [(r["task"], r["episode"]) for r in records] == list(sim.resets)
    first = records[0]
    assert first["success"] is True and first["steps"] == 3 and first["failure"] is None
    assert first["sim_steps"] == 13 and first["video"] is None
    assert first["task_name"] == "task_0" and first["instruction"] == "do thing 0"
    assert first["suite"] == SUITE
    r12 = records[5]
    assert (r12["task"], r12["episode"], r12["success"], r12["steps"]) == (1, 2, False, 6)
    assert r12["failure"] == "step limit 6 reached"
    garbage = records[6]
    assert garbage["success"] is False and garbage["steps"] == 0
    assert garbage["failure"] == "policy: action: expected 7 numbers, got shape (3,)"
    raised = records[8]
    assert (raised["task"], raised["episode"], raised["success"]) == (2, 2, False)
    assert raised["failure"] == (
        'policy: HTTP 500: {"error":"policy: RuntimeError: scripted failure"}'
    )
    # report: task 0 1/3, task 1 1/3, task 2 0/3 -> suite 2/9
    assert report.success_rate == pytest.approx(2 / 9)
    assert [(t["task"], t["successes"], t["episodes"]) for t in report.tasks] == [
        (0, 1, 3),
        (1, 1, 3),
        (2, 0, 3),
    ]
    assert (report.episodes_run, report.episodes_skipped) == (9, 0)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["success_rate"] == pytest.approx(2 / 9)
    assert saved["tasks"][0]["success_rate"] == pytest.approx(1 / 3)
    # 10 idle steps per episode + policy steps 3+6+6 + 6+1+6 + 0 = 90 + 28
    assert sum(r["sim_steps"] for r in records) == 118
    assert report.timing["sim_share"] + report.timing["policy_share"] == pytest.approx(1.0)
    md = (tmp_path / "report.md").read_text()
    assert "Success rate: **22.2%** (2 / 9 episodes)" in md
    assert "| 0 | do thing 0 | 3 | 1 | 33.3% |" in md


def test_default_step_limit_is_the_suite_s(server: PolicyServerThread, tmp_path: Path) -> None:
    assert SUITE_MAX_STEPS == {
        "libero_spatial": 220,
        "libero_object": 280,
        "libero_goal": 300,
        "libero_10": 520,
    }
    sim = FakeSim()
    ACTIONS.extend([[0.0] * 6 + [-1.0]] * 200)  # the scripted policy needs 220 actions
    try:
        run_libero_eval(
            SUITE, tasks=[0], episodes=2, policy=server.url, out=tmp_path, simulator=sim,
            progress=False,
        )  # fmt: skip
    finally:
        del ACTIONS[40:]
    [r0, r1] = load_episodes(tmp_path / "episodes.jsonl")
    assert (r0["steps"], r0["success"]) == (3, True)
    assert (r1["steps"], r1["success"], r1["failure"]) == (220, False, "step limit 220 reached")
    assert len(sim.log) == 2 * IDLE_STEPS + 3 + 220


def test_same_policy_and_sim_give_the_same_episodes(
    server: PolicyServerThread, tmp_path: Path
) -> None:
    _run(tmp_path / "a", server.url)
    _run(tmp_path / "b", server.url)
    a = load_episodes(tmp_path / "a" / "episodes.jsonl")
    b = load_episodes(tmp_path / "b" / "episodes.jsonl")
    assert _strip(a) == _strip(b)
    assert a[0]["seconds"] != b[0]["seconds"] or a[0]["sim_seconds"] != b[0]["sim_seconds"]


def test_resume_after_interruption(server: PolicyServerThread, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    _run(straight, server.url)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in task 1 episode 1, policy step 1
        _run(out, server.url, FakeSim(interrupt_at=(1, 1, IDLE_STEPS + 1)))
    partial = load_episodes(out / "episodes.jsonl")
    assert [(r["task"], r["episode"]) for r in partial] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    with (out / "episodes.jsonl").open("a") as f:  # a write cut short
        f.write('{"suite": "libero_spatial", "task": 1, "epis')
    sim = FakeSim()
    report = _run(out, server.url, sim)
    assert sim.resets == [(1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    assert (report.episodes_run, report.episodes_skipped) == (5, 4)
    assert report.success_rate == pytest.approx(2 / 9)
    want = load_episodes(straight / "episodes.jsonl")
    assert _strip(load_episodes(out / "episodes.jsonl")) == _strip(want)
    # a third run has nothing left to do
    sim = FakeSim()
    report = _run(out, server.url, sim)
    assert sim.resets == [] and (report.episodes_run, report.episodes_skipped) == (0, 9)
    assert report.success_rate == pytest.approx(2 / 9)


def test_simulator_crash_is_reported_and_retried(
    server: PolicyServerThread, tmp_path: Path
) -> None:
    report = _run(tmp_path, server.url, FakeSim(crash_at=(0, 1)), tasks=[0])
    assert report.simulator_errors == [
        "libero_spatial task 0 episode 1: LIBERO worker exited"
    ]  # fmt: skip
    assert [r["episode"] for r in load_episodes(tmp_path / "episodes.jsonl")] == [0, 2]
    assert "Simulator errors (rerun the command" in (tmp_path / "report.md").read_text()
    sim = FakeSim()
    report = _run(tmp_path, server.url, sim, tasks=[0])
    assert sim.resets == [(0, 1)] and report.simulator_errors == []
    assert report.episodes == 3


def test_repeated_crashes_stop_the_run(server: PolicyServerThread, tmp_path: Path) -> None:
    class Broken(FakeSim):
        def reset(self, suite: str, task: int, episode: int, resolution: int) -> SimStep:
            raise SimulatorError(f"task {task} episode {episode}: boom")

    with pytest.raises(SimulatorError, match=r"3 simulator errors in a row.*episode 2: boom"):
        _run(tmp_path, server.url, Broken())
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["episodes"] == 0 and len(report["simulator_errors"]) == 3


def test_unreachable_policy_stops_the_run_and_keeps_what_finished(tmp_path: Path) -> None:
    srv = PolicyServerThread(ScriptedPolicy()).start()

    class ServerGoesAway(FakeSim):
        def reset(self, suite: str, task: int, episode: int, resolution: int) -> SimStep:
            if episode == 1:
                srv.stop()
            return super().reset(suite, task, episode, resolution)

    policy = HTTPPolicy(srv.url, retries=2, backoff=0.01)
    with pytest.raises(PolicyUnavailableError, match=r"/act: ConnectError after 3 tries"):
        run_libero_eval(
            SUITE, tasks=[0], episodes=3, policy=policy, out=tmp_path,
            simulator=ServerGoesAway(), progress=False,
        )  # fmt: skip
    assert [r["episode"] for r in load_episodes(tmp_path / "episodes.jsonl")] == [0]
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["episodes"], report["successes"], report["episodes_run"]) == (1, 1, 1)


def test_video_has_every_frame_upright(server: PolicyServerThread, tmp_path: Path) -> None:
    import av

    class Gradient(FakeSim):
        def _frame(self) -> np.ndarray:  # rows 0..255 dark to bright, as rendered
            frame = super()._frame()
            frame[:, :, 2] = np.arange(256, dtype=np.uint8)[:, None]
            return frame

    _run(tmp_path, server.url, Gradient(), tasks=[0], episodes=1, video=True)
    [record] = load_episodes(tmp_path / "episodes.jsonl")
    assert record["video"] == "videos/libero_spatial_task00_ep000.mp4"
    with av.open(str(tmp_path / record["video"])) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 1 + IDLE_STEPS + 3  # reset, idle steps, 3 policy steps (success)
    assert frames[0].shape == (256, 256, 3)
    blue = frames[0][:, :, 2].astype(float).mean(axis=1)
    assert blue[:10].mean() > 240 and blue[-10:].mean() < 15  # flipped: bright row 0


def test_in_process_policy_and_bad_arguments(tmp_path: Path) -> None:
    policy = ScriptedPolicy()
    report = run_libero_eval(
        SUITE, tasks=[0], episodes=1, policy=policy, out=tmp_path, simulator=FakeSim(),
        max_steps=5, progress=False,
    )  # fmt: skip
    assert report.successes == 1 and policy.calls == 3
    kw: dict[str, Any] = {"policy": policy, "out": tmp_path, "simulator": FakeSim()}
    with pytest.raises(ValueError, match="suite: expected one of"):
        run_libero_eval("libero_90", **kw)
    with pytest.raises(ValueError, match=r"tasks: 3 out of range \(libero_spatial has 3 tasks\)"):
        run_libero_eval(SUITE, tasks=[3], **kw)
    with pytest.raises(ValueError, match="episodes: 6 asked, libero_spatial task 0 has 5 initial"):
        run_libero_eval(SUITE, tasks=[0], episodes=6, **kw)
    with pytest.raises(ValueError, match="policy: expected a URL or an object with act_batch"):
        run_libero_eval(SUITE, policy=object(), out=tmp_path, simulator=FakeSim())
    path = tmp_path / "episodes.jsonl"
    path.write_text('{"suite": "libero_goal"')  # partial: dropped
    assert load_episodes(path) == [] and path.read_text() == ""
    line = '{"suite": "x", "task": 0, "episode": 1, "success": false}'
    path.write_text(f"{line}\n\n{line}")  # complete, its newline missing: kept, newline added
    assert len(load_episodes(path)) == 2 and path.read_text() == f"{line}\n\n{line}\n"
    record = '{"suite": "libero_goal", "task": 0, "episode": 0, "success": true}\n'
    (tmp_path / "episodes.jsonl").write_text(record + "not json\n{}\n")
    with pytest.raises(ValueError, match=r"episodes.jsonl: line 2: "):
        load_episodes(tmp_path / "episodes.jsonl")
    (tmp_path / "episodes.jsonl").write_text(record)
    with pytest.raises(ValueError, match=r"line 1: suite 'libero_goal', this run is"):
        run_libero_eval(SUITE, tasks=[0], episodes=1, **kw)


def test_http_policy_retries_then_gives_up() -> None:
    policy = HTTPPolicy("http://127.0.0.1:9/act", retries=2, backoff=0.01)  # port 9: discard
    start = time.perf_counter()
    with pytest.raises(PolicyUnavailableError, match=r"127.0.0.1:9/act: ConnectError after 3"):
        policy.act(np.zeros((4, 4, 3), np.uint8), "go")
    assert time.perf_counter() - start < 5


# ------------------------------------------------------------------ the worker process

STUB_WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    print("library noise on stdout")
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        if op == "close":
            break
        if op == "tasks":
            reply = {"tasks": [{"index": 0, "name": "t0", "language": "go", "init_states": 2}]}
        elif op == "reset":
            if req["episode"] == 1:
                reply = {"error": "ValueError: episode: nope"}
            else:
                reply = {"image": "AAAAAAAAAAAAAAAA", "shape": [2, 2, 3], "dtype": "uint8",
                         "seconds": 0.5}
        else:
            a = req["action"][0]
            if a == 99:
                sys.stderr.write("Fatal: EGL context lost\\n")
                sys.stderr.flush()
                os._exit(3)
            if a == 98:
                time.sleep(30)
            reply = {"image": "AAAAAAAAAAAAAAAA", "shape": [2, 2, 3], "dtype": "uint8",
                     "reward": 1.0, "done": a == 1, "seconds": 0.25}
        out.write(json.dumps(reply) + "\\n")
    """
)


@pytest.fixture
def stub(tmp_path: Path) -> LiberoProcess:
    script = tmp_path / "stub_worker.py"
    script.write_text(STUB_WORKER)
    proc = LiberoProcess(sys.executable, script, timeout=1.0, first_step_timeout=1.0)
    yield proc
    proc.close()


def test_worker_protocol_and_error_replies(stub: LiberoProcess) -> None:
    assert stub.tasks(SUITE) == [TaskInfo(0, "t0", "go", 2)]
    frame = stub.reset(SUITE, 0, 0, 256)
    assert frame.image.shape == (2, 2, 3) and frame.image.sum() == 0
    step = stub.step([1.0] + [0.0] * 6)
    assert (step.reward, step.done) == (1.0, True)
    with pytest.raises(SimulatorError, match=r"^libero_spatial task 0 episode 1: ValueError: ep"):
        stub.reset(SUITE, 0, 1, 256)
    pid = stub.proc.pid
    stub.reset(SUITE, 0, 0, 256)  # an error reply leaves the worker running
    assert stub.proc.pid == pid
    assert stub.worker_seconds == pytest.approx(0.5 + 0.25 + 0.5)


def test_worker_crash_names_the_episode_and_restarts(stub: LiberoProcess) -> None:
    stub.reset(SUITE, 0, 0, 256)
    stub.step([0.0] * 7)
    first = stub.proc.pid
    with pytest.raises(SimulatorError) as info:
        stub.step([99.0] + [0.0] * 6)
    message = str(info.value)
    assert message.startswith("libero_spatial task 0 episode 0: LIBERO worker exited (code 3)")
    assert "Fatal: EGL context lost" in message and message.endswith("(step 2 after reset)")
    stub.reset(SUITE, 0, 0, 256)  # a new worker
    assert stub.proc.pid != first


def test_worker_timeout_kills_it(stub: LiberoProcess) -> None:
    stub.reset(SUITE, 0, 0, 256)
    start = time.perf_counter()
    with pytest.raises(SimulatorError, match="LIBERO worker timed out after 1 s in step"):
        stub.step([98.0] + [0.0] * 6)
    assert time.perf_counter() - start < 5
    assert stub.proc is None


def test_missing_libero_python_says_make_libero_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VST_LIBERO_PYTHON", str(tmp_path / "nope" / "python"))
    assert default_sim_python() == tmp_path / "nope" / "python"
    with pytest.raises(SimulatorError, match=r"nope/python: no LIBERO python \(run `make libero"):
        LiberoProcess().tasks(SUITE)
    monkeypatch.delenv("VST_LIBERO_PYTHON")
    assert default_sim_python() == Path(__file__).resolve().parents[1] / ".venv-libero/bin/python"
    result = CliRunner().invoke(
        vla_app,
        ["eval-libero", "--suite", SUITE, "--policy", "http://127.0.0.1:1", "--out",
         str(tmp_path), "--sim-python", str(tmp_path / "nope")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "run `make libero-env`" in " ".join(result.output.split())


def test_cli_passes_its_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vst.vla.libero_eval as module

    calls = []

    def fake(suite: str, **kw: Any) -> Any:
        calls.append((suite, kw))
        return module.build_report(suite, [TaskInfo(0, "t", "go", 5)], [], 0, 0)

    monkeypatch.setattr(module, "run_libero_eval", fake)
    args = ["eval-libero", "--suite", "libero_goal", "--policy", "http://127.0.0.1:8000"]
    args += ["--out", str(tmp_path), "--tasks", "0,3", "--episodes", "2", "--video"]
    args += ["--max-steps", "5", "--sim-python", sys.executable]
    result = CliRunner().invoke(vla_app, args)
    assert result.exit_code == 0, result.output
    [(suite, kw)] = calls
    assert suite == "libero_goal"
    assert isinstance(kw.pop("simulator"), LiberoProcess)
    assert kw == {
        "tasks": [0, 3],
        "episodes": 2,
        "policy": "http://127.0.0.1:8000",
        "out": tmp_path,
        "video": True,
        "max_steps": 5,
    }
    bad = CliRunner().invoke(vla_app, [*args, "--tasks", "a,b"])
    assert bad.exit_code == 2
    assert "expected task numbers like 0,3, got 'a,b'" in " ".join(bad.output.split())


# ------------------------------------------------------------------ the real LIBERO smoke


def _libero_python() -> Path:
    python = default_sim_python()
    if not python.exists():
        pytest.fail(f"{python} is missing: run make libero-env")
    return python


@pytest.mark.slow
def test_real_worker_lists_tasks_and_replies_errors() -> None:
    """The real libero_sim.py: the suite's tasks, and bad requests answered with errors while
    the worker keeps running (no env is created)."""
    with LiberoProcess(_libero_python()) as sim:
        tasks = sim.tasks(SUITE)
        assert len(tasks) == 10 and {t.init_states for t in tasks} == {50}
        assert tasks[0].language == (
            "pick up the black bowl between the plate and the ramekin and place it on the plate"
        )
        pid = sim.proc.pid
        for call, message in [
            (lambda: sim.tasks("libero_99"), "suite: unknown LIBERO suite 'libero_99'"),
            (lambda: sim.step(IDLE_ACTION), "step: no episode (send reset first)"),
            (lambda: sim.reset(SUITE, 10, 0, 256), "task: 10 out of range (the suite has 10"),
            (lambda: sim.reset(SUITE, 0, 50, 256), "episode: 50 out of range (task 0 has 50"),
            (lambda: sim.call({"op": "fly"}, 10), "op: unknown 'fly' (tasks, reset, step, close)"),
        ]:
            with pytest.raises(SimulatorError, match=re.escape(f"ValueError: {message}")):
                call()
        assert sim.proc.pid == pid


@pytest.mark.slow
def test_real_libero_smoke_with_the_tiny_policy(tiny_model_dir: Path, tmp_path: Path) -> None:
    """libero_spatial task 0, 1 episode, 5 policy steps of the tiny checkpoint served over
    HTTP, in the LIBERO venv (make libero-env)."""
    import av

    from test_vla_policy import _stats
    from vst.vla.policy import VLAPolicy

    _libero_python()
    policy = VLAPolicy(tiny_model_dir, _stats(), vocabulary="last")
    with PolicyServerThread(policy) as srv:
        report = run_libero_eval(
            SUITE, tasks=[0], episodes=1, policy=srv.url, out=tmp_path, video=True,
            max_steps=5, progress=False,
        )  # fmt: skip
    [record] = load_episodes(tmp_path / "episodes.jsonl")
    assert record["task_name"].startswith("pick_up_the_black_bowl_between_the_plate_and_the_ram")
    assert record["instruction"].startswith("pick up the black bowl between the plate and the")
    assert (record["success"], record["steps"], record["sim_steps"]) == (False, 5, 15)
    assert record["failure"] == "step limit 5 reached"
    with av.open(str(tmp_path / record["video"])) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 1 + IDLE_STEPS + 5
    assert all(f.shape == (256, 256, 3) for f in frames)
    assert 30 < frames[0].mean() < 230  # a rendered scene, not a blank frame
    assert report.success_rate == 0.0 and report.episodes_run == 1
    assert report.timing["sim_ms_per_step"] > 0 and report.timing["policy_ms_per_action"] > 0
