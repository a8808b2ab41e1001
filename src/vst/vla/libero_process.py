"""The LIBERO simulator as a separate process: :class:`LiberoProcess` spawns
``src/vst/vla/libero_sim.py`` with the python of the LIBERO environment (``.venv-libero``: LIBERO
needs robosuite 1.4.0 and mujoco 3.17.0, vst mujoco 4) and speaks its line protocol (one JSON
request per line on stdin, one JSON reply per line on stdout; frames as base64 raw uint8 with
their shape). :class:`Simulator` is what the rollout loop (:mod:`vst.vla.libero_eval`) needs of
any simulator; a test fake can stand in.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

RESOLUTION = 256
"""Agentview camera height and width, pixels."""
SCRIPT = Path(__file__).with_name("libero_sim.py")
"""The worker script, run by the LIBERO environment's python."""


class SimulatorError(RuntimeError):
    """The simulator failed (worker crashed, timed out, or refused a request)."""


@dataclass(frozen=True)
class TaskInfo:
    """One task of a suite: its index, name, language instruction, number of initial states."""

    index: int
    name: str
    language: str
    init_states: int


@dataclass(frozen=True)
class SimStep:
    """A simulator frame: the agentview ``image`` as rendered ``(H, W, 3)`` uint8, upside down;
    the env's ``reward`` and ``done``."""

    image: np.ndarray
    reward: float = 0.0
    done: bool = False


class Simulator(Protocol):
    """What the rollout loop needs of a simulator (:class:`LiberoProcess`, or a test fake)."""

    def tasks(self, suite: str) -> list[TaskInfo]: ...

    def reset(self, suite: str, task: int, episode: int, resolution: int) -> SimStep: ...

    def step(self, action: Sequence[float]) -> SimStep: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------ the LIBERO worker process


def default_sim_python() -> Path:
    """``$VST_LIBERO_PYTHON``, else the repository's ``.venv-libero/bin/python``."""
    env = os.environ.get("VST_LIBERO_PYTHON")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / ".venv-libero" / "bin" / "python"


def _decode_frame(reply: dict) -> np.ndarray:
    shape = reply.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 3
        or shape[2] != 3
        or reply.get("dtype") != "uint8"
    ):
        raise SimulatorError(f"worker reply: bad image shape/dtype {shape} {reply.get('dtype')}")
    data = base64.b64decode(reply["image"])
    if len(data) != shape[0] * shape[1] * 3:
        raise SimulatorError(f"worker reply: {len(data)} image bytes for shape {shape}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


class LiberoProcess:
    """The LIBERO worker (``libero_sim.py``) in a subprocess of ``python`` (default
    :func:`default_sim_python`). Started on first use; a crash or a timeout kills it and raises
    :class:`SimulatorError` naming the suite, task and episode, and the next call starts a new
    one. ``timeout``: seconds per step (``first_step_timeout`` for the first two after a reset,
    which compile shaders); ``reset_timeout``: per reset or task listing (env creation takes
    2-10 s). ``worker_seconds`` adds up the worker's own time per op (no protocol)."""

    def __init__(
        self,
        python: str | Path | None = None,
        script: str | Path = SCRIPT,
        timeout: float = 60.0,
        reset_timeout: float = 300.0,
        first_step_timeout: float = 120.0,
    ) -> None:
        self.python = Path(python) if python is not None else default_sim_python()
        self.script = Path(script)
        self.timeout = timeout
        self.reset_timeout = reset_timeout
        self.first_step_timeout = first_step_timeout
        self.proc: subprocess.Popen | None = None
        self.where = "no episode"
        self.worker_seconds = 0.0
        self._steps = 0
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=20)

    def _start(self) -> subprocess.Popen:
        if not self.python.exists():
            raise SimulatorError(
                f"{self.python}: no LIBERO python (run `make libero-env`, or set "
                "VST_LIBERO_PYTHON / --sim-python)"
            )
        self._replies = queue.Queue()
        self._stderr = deque(maxlen=20)
        proc = subprocess.Popen(
            [str(self.python), str(self.script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )

        def pump(stream: Any, sink: Callable[[str], None]) -> None:
            for line in stream:
                sink(line)
            sink(None)  # type: ignore[arg-type]

        threading.Thread(target=pump, args=(proc.stdout, self._replies.put), daemon=True).start()
        self._stderr_pump = threading.Thread(
            target=pump,
            args=(proc.stderr, lambda s: s is not None and self._stderr.append(s.rstrip())),
            daemon=True,
        )
        self._stderr_pump.start()
        self.proc = proc
        return proc

    def _fail(self, what: str) -> SimulatorError:
        self.kill()
        self._stderr_pump.join(timeout=2)  # the last lines the worker wrote
        tail = " | ".join(line for line in list(self._stderr)[-5:] if line)
        return SimulatorError(
            f"{self.where}: LIBERO worker {what}" + (f" ({tail})" if tail else "")
        )

    def call(self, request: dict, timeout: float) -> dict:
        """Send one request, wait at most ``timeout`` s for its reply; an ``{"error"}`` reply
        raises :class:`SimulatorError` (the worker stays up)."""
        proc = self.proc if self.proc is not None and self.proc.poll() is None else self._start()
        try:
            proc.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        except OSError:
            raise self._fail(f"exited (code {proc.poll()}) before {request['op']}") from None
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise self._fail(f"timed out after {timeout:g} s in {request['op']}") from None
        if line is None:
            proc.wait(timeout=5)
            raise self._fail(f"exited (code {proc.returncode}) during {request['op']}")
        try:
            reply = json.loads(line)
        except ValueError:
            raise self._fail(f"sent a line that is not JSON: {line[:80]!r}") from None
        if "error" in reply:
            raise SimulatorError(f"{self.where}: {reply['error']}")
        self.worker_seconds += float(reply.get("seconds", 0.0))
        return reply

    def tasks(self, suite: str) -> list[TaskInfo]:
        self.where = f"{suite}"
        reply = self.call({"op": "tasks", "suite": suite}, self.reset_timeout)
        return [TaskInfo(**t) for t in reply["tasks"]]

    def reset(self, suite: str, task: int, episode: int, resolution: int = RESOLUTION) -> SimStep:
        self.where = f"{suite} task {task} episode {episode}"
        self._steps = 0
        request = {
            "op": "reset",
            "suite": suite,
            "task": task,
            "episode": episode,
            "resolution": resolution,
        }
        return SimStep(_decode_frame(self.call(request, self.reset_timeout)))

    def step(self, action: Sequence[float]) -> SimStep:
        self._steps += 1
        # the first steps after env creation compile shaders (seconds)
        timeout = self.timeout if self._steps > 2 else self.first_step_timeout
        try:
            reply = self.call({"op": "step", "action": [float(a) for a in action]}, timeout)
        except SimulatorError as exc:
            raise SimulatorError(f"{exc} (step {self._steps} after reset)") from None
        return SimStep(_decode_frame(reply), float(reply["reward"]), bool(reply["done"]))

    def kill(self) -> None:
        """Stop the worker now (the next call starts a new one)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not within 10 s."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            self.proc = None
            return
        try:
            proc.stdin.write(json.dumps({"op": "close"}) + "\n")  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def __enter__(self) -> LiberoProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
