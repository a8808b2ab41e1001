"""LIBERO rollouts of a policy, the paper's protocol (FACTS.md "VLA"), resumable per episode.

The simulator runs in a second environment (LIBERO needs robosuite 1.4.0 and mujoco 3.17.0, vst
mujoco 4): :class:`LiberoProcess` spawns ``src/vst/vla/libero_sim.py`` with that environment's
python and speaks its line protocol. Any object with the :class:`Simulator` methods can stand in
(the tests use a scripted one).

Per episode (:func:`run_episode`): reset to initial state ``episode`` of the task; 10 idle steps
with :data:`IDLE_ACTION` (not counted); then at most the suite's step limit
(:data:`SUITE_MAX_STEPS`) of policy steps, each the policy's action for the current 256 x 256
agentview frame *as rendered* (upside down: the policy rotates it 180° itself, as in training).
Success is the env's ``done``. A policy reply that is not 7 finite numbers ends the episode as a
failure with its reason; a simulator crash is not an episode result (it is reported, the worker
restarts for the next episode, and a rerun retries it).

:func:`run_libero_eval` writes into ``out``:

* ``episodes.jsonl``: one line per finished episode (:data:`TIMING_FIELDS` are the only fields
  that differ between two runs of the same policy and simulator); a rerun skips the episodes
  already there (a partial last line, from an interrupted write, is dropped);
* ``videos/{suite}_task{T:02d}_ep{E:03d}.mp4`` when ``video``: every frame from the reset on
  (1 + 10 idle + the policy steps), upright (rows flipped), :data:`VIDEO_FPS` fps;
* ``report.json`` and ``report.md``: success rate per task and for the suite, episodes run now
  and skipped, and the time per step of the simulator against the policy.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vst.vla.libero_process import (
    RESOLUTION,
    LiberoProcess,
    Simulator,
    SimulatorError,
    TaskInfo,
)
from vst.vla.rollout_policy import HTTPPolicy, InProcessPolicy, PolicyError, PolicyUnavailableError

__all__ = [
    "IDLE_ACTION",
    "IDLE_STEPS",
    "SUITE_MAX_STEPS",
    "TIMING_FIELDS",
    "EpisodeResult",
    "EvalReport",
    "load_episodes",
    "run_episode",
    "run_libero_eval",
]

SUITE_MAX_STEPS = {
    "libero_spatial": 220,
    "libero_object": 280,
    "libero_goal": 300,
    "libero_10": 520,
}
"""Policy steps allowed per episode, by suite (the paper's protocol)."""
IDLE_STEPS = 10
"""Steps after reset while objects settle, with :data:`IDLE_ACTION`; not counted."""
IDLE_ACTION = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0)
"""No motion, gripper open (LIBERO: -1 open / +1 close)."""
VIDEO_FPS = 20
"""LIBERO's control rate, steps per second."""
TIMING_FIELDS = ("seconds", "reset_seconds", "sim_seconds", "policy_seconds")
"""Fields of an ``episodes.jsonl`` line that are wall-clock timings."""
MAX_CONSECUTIVE_CRASHES = 3


# ------------------------------------------------------------------ one episode


@dataclass
class EpisodeResult:
    """One ``episodes.jsonl`` line. ``steps``: policy steps taken (idle steps not counted);
    ``failure``: why an unsuccessful episode ended; ``video``: path relative to the output
    folder; times in seconds (``sim_seconds``: in simulator steps, idle ones included, as
    measured by the driver; ``policy_seconds``: waiting for actions)."""

    suite: str
    task: int
    task_name: str
    instruction: str
    episode: int
    success: bool
    steps: int
    failure: str | None = None
    video: str | None = None
    sim_steps: int = 0
    seconds: float = 0.0
    reset_seconds: float = 0.0
    sim_seconds: float = 0.0
    policy_seconds: float = 0.0


def run_episode(
    sim: Simulator,
    act: Callable[[np.ndarray, str], np.ndarray],
    suite: str,
    task: TaskInfo,
    episode: int,
    max_steps: int,
    frames: list[np.ndarray] | None = None,
) -> EpisodeResult:
    """One episode of the protocol (module docstring). ``act(image, instruction)`` gives a 7-D
    action or raises :class:`PolicyError`; ``frames``, when given, receives every frame as
    rendered. :class:`SimulatorError` and :class:`PolicyUnavailableError` propagate."""
    start = time.perf_counter()
    obs = sim.reset(suite, task.index, episode, RESOLUTION)
    reset_seconds = time.perf_counter() - start
    sim_seconds = policy_seconds = 0.0
    sim_steps = steps = 0
    success, failure = False, None
    if frames is not None:
        frames.append(obs.image)
    for _ in range(IDLE_STEPS):
        t = time.perf_counter()
        obs = sim.step(IDLE_ACTION)
        sim_seconds += time.perf_counter() - t
        sim_steps += 1
        if frames is not None:
            frames.append(obs.image)
    for _ in range(max_steps):
        t = time.perf_counter()
        try:
            action = act(obs.image, task.language)
        except PolicyError as exc:
            failure = f"policy: {exc}"
        policy_seconds += time.perf_counter() - t
        if failure is not None:
            break
        t = time.perf_counter()
        obs = sim.step(action.tolist())
        sim_seconds += time.perf_counter() - t
        sim_steps += 1
        steps += 1
        if frames is not None:
            frames.append(obs.image)
        if obs.done:
            success = True
            break
    if not success and failure is None:
        failure = f"step limit {max_steps} reached"
    return EpisodeResult(
        suite=suite,
        task=task.index,
        task_name=task.name,
        instruction=task.language,
        episode=episode,
        success=success,
        steps=steps,
        failure=failure,
        sim_steps=sim_steps,
        seconds=time.perf_counter() - start,
        reset_seconds=reset_seconds,
        sim_seconds=sim_seconds,
        policy_seconds=policy_seconds,
    )


def write_video(path: Path, frames: Sequence[np.ndarray], fps: int = VIDEO_FPS) -> None:
    """Frames as rendered (upside down) -> an H.264 MP4 of the upright frames (rows flipped),
    written to a temporary file and renamed."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    height, width = frames[0].shape[:2]
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[::-1]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


# ------------------------------------------------------------------ the results file


def load_episodes(path: Path, suite: str | None = None) -> list[dict]:
    """The records of ``episodes.jsonl`` (none if it is missing). A last line that is not
    complete JSON (an interrupted write) is cut off the file; a bad line elsewhere, or a
    record of another suite, is a ValueError naming the file and line."""
    if not path.exists():
        return []
    lines = path.read_bytes().splitlines(keepends=True)
    records, keep = [], 0
    for number, raw in enumerate(lines, 1):
        last = number == len(lines)
        if not raw.strip():
            keep += len(raw)
            continue
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or not {"task", "episode", "success"} <= set(record):
                raise ValueError("not an episode record")
        except ValueError as exc:
            if last and not raw.endswith(b"\n"):  # an interrupted write: drop it
                with path.open("r+b") as f:
                    f.truncate(keep)
                break
            raise ValueError(f"{path}: line {number}: {exc}") from None
        if suite is not None and record.get("suite") != suite:
            raise ValueError(
                f"{path}: line {number}: suite {record.get('suite')!r}, this run is {suite!r} "
                "(use another --out)"
            )
        records.append(record)
        keep += len(raw)
        if last and not raw.endswith(b"\n"):  # complete, but its newline was not written
            with path.open("ab") as f:
                f.write(b"\n")
    return records


# ------------------------------------------------------------------ the report


@dataclass
class EvalReport:
    """The outcome of :func:`run_libero_eval` (``report.json``). ``tasks``: per task
    ``{task, name, instruction, episodes, successes, success_rate}``; rates in [0, 1] over the
    episodes in ``episodes.jsonl``; ``simulator_errors``: episodes left unfinished this run
    (a rerun retries them); ``timing``: ms per simulator step vs per policy action and their
    shares of the summed rollout time."""

    suite: str
    success_rate: float | None
    episodes: int
    successes: int
    episodes_run: int
    episodes_skipped: int
    tasks: list[dict] = field(default_factory=list)
    simulator_errors: list[str] = field(default_factory=list)
    timing: dict = field(default_factory=dict)

    def to_markdown(self) -> str:
        """``report.md``: the tables."""
        rate = "n/a" if self.success_rate is None else f"{100 * self.success_rate:.1f}%"
        lines = [
            f"# LIBERO {self.suite}",
            "",
            f"Success rate: **{rate}** ({self.successes} / {self.episodes} episodes). "
            f"This run: {self.episodes_run} episode(s) run, {self.episodes_skipped} skipped "
            "(already in episodes.jsonl).",
            "",
            "| task | instruction | episodes | successes | success rate |",
            "| --- | --- | --- | --- | --- |",
        ]
        for t in self.tasks:
            lines.append(
                f"| {t['task']} | {t['instruction']} | {t['episodes']} | {t['successes']} | "
                f"{100 * t['success_rate']:.1f}% |"
            )
        if self.timing:
            tm = self.timing
            lines += [
                "",
                "| time | ms per step | share of rollout time |",
                "| --- | --- | --- |",
                f"| simulator (step + render) | {tm['sim_ms_per_step']:.1f} | "
                f"{100 * tm['sim_share']:.1f}% |",
                f"| policy (one action) | {tm['policy_ms_per_action']:.1f} | "
                f"{100 * tm['policy_share']:.1f}% |",
                f"| reset (mean, s) | {tm['reset_seconds_mean']:.2f} | |",
            ]
        if self.simulator_errors:
            lines += ["", "Simulator errors (rerun the command to retry these episodes):", ""]
            lines += [f"- {e}" for e in self.simulator_errors]
        return "\n".join(lines) + "\n"


def build_report(
    suite: str,
    tasks: Sequence[TaskInfo],
    records: Sequence[dict],
    run: int,
    skipped: int,
    errors: Sequence[str] = (),
) -> EvalReport:
    """Aggregate ``records`` (``episodes.jsonl`` lines) of the selected ``tasks``."""
    per_task = []
    for task in tasks:
        rows = [r for r in records if r["task"] == task.index]
        wins = sum(bool(r["success"]) for r in rows)
        per_task.append(
            {
                "task": task.index,
                "name": task.name,
                "instruction": task.language,
                "episodes": len(rows),
                "successes": wins,
                "success_rate": wins / len(rows) if rows else 0.0,
            }
        )
    total = sum(t["episodes"] for t in per_task)
    wins = sum(t["successes"] for t in per_task)
    timing: dict = {}
    sim_steps = sum(r.get("sim_steps", 0) for r in records)
    actions = sum(r.get("steps", 0) for r in records)
    sim_s = sum(r.get("sim_seconds", 0.0) for r in records)
    pol_s = sum(r.get("policy_seconds", 0.0) for r in records)
    if records and sim_steps:
        timing = {
            "sim_ms_per_step": 1000 * sim_s / sim_steps,
            "policy_ms_per_action": 1000 * pol_s / actions if actions else 0.0,
            "sim_share": sim_s / (sim_s + pol_s) if sim_s + pol_s else 0.0,
            "policy_share": pol_s / (sim_s + pol_s) if sim_s + pol_s else 0.0,
            "reset_seconds_mean": sum(r.get("reset_seconds", 0.0) for r in records) / len(records),
        }
    return EvalReport(
        suite=suite,
        success_rate=wins / total if total else None,
        episodes=total,
        successes=wins,
        episodes_run=run,
        episodes_skipped=skipped,
        tasks=per_task,
        simulator_errors=list(errors),
        timing=timing,
    )


# ------------------------------------------------------------------ the run


def _as_policy(policy: Any) -> Any:
    if isinstance(policy, HTTPPolicy):
        return policy
    if isinstance(policy, str):
        return HTTPPolicy(policy)
    if hasattr(policy, "act_batch"):
        return InProcessPolicy(policy)
    raise ValueError(f"policy: expected a URL or an object with act_batch, not {type(policy)}")


def run_libero_eval(
    suite: str,
    tasks: Sequence[int] | None = None,
    episodes: int = 50,
    policy: Any = None,
    out: str | Path = "outputs/libero",
    video: bool = False,
    max_steps: int | None = None,
    simulator: Simulator | None = None,
    sim_python: str | Path | None = None,
    progress: bool = True,
) -> EvalReport:
    """Roll ``policy`` (a policy server URL or :class:`HTTPPolicy`, or an object with
    ``act_batch``) out on ``suite``:
        ``episodes`` episodes (initial states 0..episodes-1) of each task in ``tasks`` (default:
        all), at most ``max_steps`` policy steps each (default :data:`SUITE_MAX_STEPS`), into
        ``out`` (module docstring); episodes already in ``out/episodes.jsonl`` are skipped. When an
    unreachable policy or repeated simulator crashes stop the run, the report of what finished is
    written before the error propagates.
        ``simulator`` defaults to a :class:`LiberoProcess` of ``sim_python``."""
    if suite not in SUITE_MAX_STEPS:
        raise ValueError(f"suite: expected one of {sorted(SUITE_MAX_STEPS)}, not {suite!r}")
    if episodes < 1:
        raise ValueError(f"episodes: expected at least 1, got {episodes}")
    limit = SUITE_MAX_STEPS[suite] if max_steps is None else max_steps
    if limit < 1:
        raise ValueError(f"max_steps: expected at least 1, got {limit}")
    if policy is None:
        raise ValueError("policy: give a policy server URL or an object with act_batch")
    if not isinstance(policy, str | HTTPPolicy) and not hasattr(policy, "act_batch"):
        raise ValueError(f"policy: expected a URL or an object with act_batch, not {type(policy)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "episodes.jsonl"
    records = load_episodes(results, suite)
    done = {(r["task"], r["episode"]) for r in records}
    act = _as_policy(policy)
    own = simulator is None
    sim: Any = LiberoProcess(sim_python) if own else simulator
    errors: list[str] = []
    run = skipped = 0
    try:
        all_tasks = sim.tasks(suite)
        chosen = list(range(len(all_tasks))) if tasks is None else list(tasks)
        for t in chosen:
            if not 0 <= t < len(all_tasks):
                raise ValueError(f"tasks: {t} out of range ({suite} has {len(all_tasks)} tasks)")
            if episodes > all_tasks[t].init_states:
                raise ValueError(
                    f"episodes: {episodes} asked, {suite} task {t} has "
                    f"{all_tasks[t].init_states} initial states"
                )
        todo = [(t, e) for t in chosen for e in range(episodes)]
        skipped = sum(key in done for key in todo)
        todo = [key for key in todo if key not in done]
        crashes = 0

        def report() -> EvalReport:
            keys = set(chosen)
            rows = [r for r in records if r["task"] in keys]
            made = build_report(suite, [all_tasks[t] for t in chosen], rows, run, skipped, errors)
            (out / "report.json").write_text(json.dumps(asdict(made), indent=2) + "\n")
            (out / "report.md").write_text(made.to_markdown())
            return made

        with _ProgressBar(progress, len(todo), suite) as advance, results.open("a") as sink:
            for t, e in todo:
                task = all_tasks[t]
                frames: list[np.ndarray] | None = [] if video else None
                try:
                    result = run_episode(sim, act.act, suite, task, e, limit, frames)
                except PolicyUnavailableError:
                    report()  # what finished so far
                    raise
                except SimulatorError as exc:
                    errors.append(str(exc))
                    crashes += 1
                    if crashes >= MAX_CONSECUTIVE_CRASHES:
                        report()
                        raise SimulatorError(
                            f"{crashes} simulator errors in a row, stopping; last: {exc}"
                        ) from None
                    advance(None)
                    continue
                crashes = 0
                if frames:
                    name = f"videos/{suite}_task{t:02d}_ep{e:03d}.mp4"
                    write_video(out / name, frames)
                    result.video = name
                record = asdict(result)
                sink.write(json.dumps(record) + "\n")
                sink.flush()
                records.append(record)
                run += 1
                advance(result.success)
        return report()
    finally:
        if own:
            sim.close()
        act.close()


class _ProgressBar:
    """A rich progress bar over the episodes to run (a no-op when ``enabled`` is false);
    ``advance(success)`` moves it (None: a simulator error)."""

    def __init__(self, enabled: bool, total: int, suite: str) -> None:
        self.enabled, self.total, self.suite = enabled, total, suite
        self.wins = self.finished = 0

    def __enter__(self) -> Callable[[bool | None], None]:
        if not self.enabled:
            return lambda _: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.bar.__enter__()
        self.id = self.bar.add_task(f"{self.suite}", total=self.total)

        def advance(success: bool | None) -> None:
            if success is not None:
                self.finished += 1
                self.wins += bool(success)
            text = f"{self.suite} {self.wins}/{self.finished} successes"
            self.bar.update(self.id, advance=1, description=text)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)
