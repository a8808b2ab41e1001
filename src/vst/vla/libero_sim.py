"""The simulator side of LIBERO rollouts: a line-protocol worker run by the LIBERO venv's python.

Run as a script by path (``.venv-libero/bin/python src/vst/vla/libero_sim.py``): it imports only
the standard library, numpy and ``libero`` (never ``vst``, which lives in another environment
with an incompatible MuJoCo). :class:`vst.vla.libero_process.LiberoProcess` drives it.

Protocol: one JSON object per line on stdin, one JSON reply per line on the original stdout
(the worker moves fd 1 to stderr at start, so library prints never reach the protocol):

* ``{"op": "tasks", "suite": "libero_spatial"}`` -> ``{"tasks": [{"index", "name", "language",
  "init_states"}, ...]}`` (``init_states``: how many initial states the task has);
* ``{"op": "reset", "suite", "task", "episode", "resolution"}`` -> ``{"image", "shape", "dtype",
  "name", "language", "seconds"}``: the env (reused while suite, task and resolution stay the
  same) is seeded 0, reset and set to initial state ``episode``;
* ``{"op": "step", "action": [7 floats]}`` -> ``{"image", "shape", "dtype", "reward", "done",
  "seconds"}``;
* ``{"op": "close"}`` -> ``{"ok": true}``, then the worker exits (as it does at end of input).

Images are the ``agentview_image`` as rendered (upside down; rows are not flipped here), sent as
base64 of the raw C-order uint8 bytes with their ``shape`` ``[H, W, 3]``. ``seconds`` is the
worker's own time for the op (simulation and rendering, no protocol). A bad request replies
``{"error": "..."}`` and the worker keeps running.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
import time
import traceback
from typing import Any

os.environ["MUJOCO_GL"] = "egl"
os.environ["PYOPENGL_PLATFORM"] = "egl"
os.environ["HF_HUB_OFFLINE"] = "1"

CAMERA = "agentview"


class Worker:
    """The LIBERO state of one worker: benchmark suites, and the env of the current task."""

    def __init__(self) -> None:
        self.suites: dict[str, Any] = {}
        self.env: Any = None
        self.key: tuple[str, int, int] | None = None
        self.init_states: Any = None
        self.task: Any = None

    def suite(self, name: Any) -> Any:
        from libero.libero import benchmark

        if name not in self.suites:
            known = benchmark.get_benchmark_dict()
            if not isinstance(name, str) or name not in known:
                raise ValueError(f"suite: unknown LIBERO suite {name!r}")
            self.suites[name] = known[name]()
        return self.suites[name]

    def tasks(self, req: dict) -> dict:
        suite = self.suite(req.get("suite"))
        out = []
        for i in range(suite.n_tasks):
            task = suite.get_task(i)
            states = suite.get_task_init_states(i)
            out.append(
                {
                    "index": i,
                    "name": task.name,
                    "language": task.language,
                    "init_states": len(states),
                }
            )
        return {"tasks": out}

    def reset(self, req: dict) -> dict:
        from libero.libero import get_libero_path
        from libero.libero.envs import OffScreenRenderEnv

        start = time.perf_counter()
        suite = self.suite(req.get("suite"))
        task, episode, res = req.get("task"), req.get("episode"), req.get("resolution", 256)
        for field, value in (("task", task), ("episode", episode), ("resolution", res)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{field}: expected a non-negative integer, got {value!r}")
        if task >= suite.n_tasks:
            raise ValueError(f"task: {task} out of range (the suite has {suite.n_tasks} tasks)")
        key = (req["suite"], task, res)
        init_states = self.init_states if key == self.key else suite.get_task_init_states(task)
        if episode >= len(init_states):
            raise ValueError(
                f"episode: {episode} out of range (task {task} has "
                f"{len(init_states)} initial states)"
            )
        if key != self.key:
            self.close_env()
            self.task = suite.get_task(task)
            bddl = os.path.join(
                get_libero_path("bddl_files"), self.task.problem_folder, self.task.bddl_file
            )
            self.env = OffScreenRenderEnv(
                bddl_file_name=bddl, camera_heights=res, camera_widths=res
            )
            self.key, self.init_states = key, init_states
        self.env.seed(0)
        self.env.reset()
        obs = self.env.set_init_state(self.init_states[episode])
        reply = image_reply(obs)
        reply.update(
            name=self.task.name,
            language=self.task.language,
            seconds=time.perf_counter() - start,
        )
        return reply

    def step(self, req: dict) -> dict:
        import numpy as np

        if self.env is None:
            raise ValueError("step: no episode (send reset first)")
        action = req.get("action")
        if (
            not isinstance(action, list)
            or len(action) != 7
            or not all(isinstance(a, int | float) and not isinstance(a, bool) for a in action)
        ):
            raise ValueError(f"action: expected a list of 7 numbers, got {action!r}"[:200])
        arr = np.asarray(action, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError("action: not finite")
        start = time.perf_counter()
        obs, reward, done, _info = self.env.step(arr)
        reply = image_reply(obs)
        reply.update(reward=float(reward), done=bool(done), seconds=time.perf_counter() - start)
        return reply

    def close_env(self) -> None:
        if self.env is not None:
            with contextlib.suppress(Exception):  # EGL teardown noise; the env is dropped
                self.env.close()
        self.env, self.key, self.init_states, self.task = None, None, None, None


def image_reply(obs: dict) -> dict:
    """The camera frame of ``obs`` as ``{"image": base64 raw bytes, "shape", "dtype"}``."""
    import numpy as np

    image = np.ascontiguousarray(obs[f"{CAMERA}_image"], dtype=np.uint8)
    return {
        "image": base64.b64encode(image.tobytes()).decode("ascii"),
        "shape": list(image.shape),
        "dtype": "uint8",
    }


def main() -> int:
    """Serve requests from stdin until ``close`` or end of input."""
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # C-level and Python prints from libraries go to stderr
    sys.stdout = sys.stderr
    worker = Worker()
    ops = {"tasks": worker.tasks, "reset": worker.reset, "step": worker.step}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("request: expected a JSON object")
            op = req.get("op")
            if op == "close":
                out.write(json.dumps({"ok": True}) + "\n")
                break
            if op not in ops:
                raise ValueError(f"op: unknown {op!r} (tasks, reset, step, close)")
            reply = ops[op](req)
        except Exception as exc:  # reply and keep serving
            if not isinstance(exc, ValueError):
                traceback.print_exc()
            reply = {"error": " ".join(f"{type(exc).__name__}: {exc}".split())[:500]}
        out.write(json.dumps(reply) + "\n")
    worker.close_env()
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
