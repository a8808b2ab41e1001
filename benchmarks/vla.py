"""VLA rollouts: policy latency per action (the tiny checkpoint on CPU, called directly and through
the HTTP policy server) against the LIBERO simulator's step time with rendering (the real worker
in .venv-libero, one 256 x 256 agentview camera), in the same run.

Run: ``make libero-env`` once, then ``.venv/bin/python benchmarks/vla.py [--steps 30]
[--actions 20] [--episode-steps 20]``

Printed: env creation + first reset, a reset of the same task (env reused), ms per simulator step
(measured by the driver, protocol included, and by the worker alone), ms per action (direct
``VLAPolicy.act`` with torch's default intra-op threads and with one, and ``HTTPPolicy`` ->
``vst vla serve``'s app), each one's share of a policy step (policy + simulator), and the same
split measured in a real rollout episode (``run_libero_eval`` over HTTP, libero_spatial task 0,
``--episode-steps`` policy steps).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vst.models.tiny import build_tiny
from vst.vla.libero_eval import IDLE_ACTION, run_libero_eval
from vst.vla.libero_process import LiberoProcess, default_sim_python
from vst.vla.norm_stats import NormStats
from vst.vla.policy import VLAPolicy
from vst.vla.rollout_policy import HTTPPolicy
from vst.vla.server import PolicyServerThread

SUITE = "libero_spatial"


def _stats() -> NormStats:
    """q01 -2 / q99 +2 on the 6 motion dims, the gripper -1/+1 (dim 6, unnormalised)."""
    return NormStats(
        mean=np.zeros(7),
        std=np.ones(7),
        max=np.full(7, 2.0),
        min=np.full(7, -2.0),
        q01=np.array([-2.0] * 6 + [-1.0]),
        q99=np.array([2.0] * 6 + [1.0]),
        mask=np.array([True] * 6 + [False]),
        num_transitions=10,
        num_trajectories=1,
        gripper_dim=6,
    )


def _timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _ms(values: list[float]) -> str:
    return f"{1000 * statistics.median(values):.1f} (median of {len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30, help="timed simulator steps")
    parser.add_argument("--actions", type=int, default=20, help="timed policy actions per path")
    parser.add_argument("--episode-steps", type=int, default=20, help="policy steps, rollout")
    args = parser.parse_args()
    python = default_sim_python()
    if not python.exists():
        raise SystemExit(f"{python} is missing: run make libero-env")

    with tempfile.TemporaryDirectory() as tmp, LiberoProcess(python) as sim:
        # ---- the simulator
        [task] = [t for t in sim.tasks(SUITE) if t.index == 0]
        start = time.perf_counter()
        sim.reset(SUITE, 0, 0, 256)
        first_reset = time.perf_counter() - start
        start = time.perf_counter()
        sim.reset(SUITE, 0, 1, 256)
        again = time.perf_counter() - start
        warm = _timed(lambda: sim.step(IDLE_ACTION), 3)  # shaders compile on the first steps
        frames = []
        before = sim.worker_seconds
        driver = _timed(lambda: frames.append(sim.step(IDLE_ACTION).image), args.steps)
        worker_ms = 1000 * (sim.worker_seconds - before) / args.steps

        # ---- the policy: direct and through the server, on real frames
        model = build_tiny(Path(tmp) / "tiny").path
        policy = VLAPolicy(model, _stats(), vocabulary="last")
        image = frames[-1]
        policy.act(image, task.language)  # warm-up
        direct = _timed(lambda: policy.act(image, task.language), args.actions)
        threads = torch.get_num_threads()
        with PolicyServerThread(policy) as server:
            client = HTTPPolicy(server.url)
            client.act(image, task.language)
            http = _timed(lambda: client.act(image, task.language), args.actions)
            client.close()
            torch.set_num_threads(1)  # the rollout and the last row: one intra-op thread
            one = _timed(lambda: policy.act(image, task.language), args.actions)
            # ---- a real rollout episode (HTTP policy, env reused)
            report = run_libero_eval(
                SUITE,
                tasks=[0],
                episodes=1,
                policy=server.url,
                out=Path(tmp) / "rollout",
                max_steps=args.episode_steps,
                simulator=sim,
                progress=False,
            )

    sim_ms = 1000 * statistics.median(driver)
    rows = [
        ("env creation + first reset (s)", f"{first_reset:.2f}"),
        ("reset, same task, env reused (s)", f"{again:.2f}"),
        ("first 3 steps after reset (ms)", ", ".join(f"{1000 * w:.0f}" for w in warm)),
        ("simulator step + render, driver (ms)", _ms(driver)),
        ("simulator step + render, worker alone (ms)", f"{worker_ms:.1f} (mean)"),
        (f"policy act, direct, torch {threads} threads (ms)", _ms(direct)),
        ("policy act, direct, torch 1 thread (ms)", _ms(one)),
        ("policy act, HTTP server (ms)", _ms(http)),
    ]
    for name, ms in (("direct 1 thread", one), ("HTTP", http)):
        pol = 1000 * statistics.median(ms)
        rows.append(
            (
                f"share of a policy step, {name} policy / simulator",
                f"{100 * pol / (pol + sim_ms):.0f}% / {100 * sim_ms / (pol + sim_ms):.0f}%",
            )
        )
    t = report.timing
    rows += [
        (
            f"rollout episode ({args.episode_steps} + 10 idle steps): sim ms/step, ms/action",
            f"{t['sim_ms_per_step']:.1f}, {t['policy_ms_per_action']:.1f}",
        ),
        (
            "rollout episode: share policy / simulator",
            f"{100 * t['policy_share']:.0f}% / {100 * t['sim_share']:.0f}%",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"VLA rollout timings ({SUITE} task 0, 256x256 agentview, tiny checkpoint on CPU)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    main()
