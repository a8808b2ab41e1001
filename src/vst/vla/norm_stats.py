"""Per-dimension action statistics and the q01/q99 normalisation of VLA actions.

Conventions
-----------
* Actions are ``(N, D)`` float arrays, one row per transition; LIBERO's are 7-D: a 6-D end-effector
  delta (dims 0-5) and the gripper (dim 6).
* ``normalize`` maps a masked (normalised) dim to ``2 * (a - q01) / (q99 - q01) - 1`` clipped to
  [-1, 1]; a dim whose q99 equals its q01 (constant) maps to 0. Unmasked dims pass through, clipped
  to [-1, 1]. ``unnormalize`` inverts the masked dims (a constant dim comes back as its q01).
* The gripper dim (``gripper_dim``) is never normalised with statistics (mask False): it is mapped
  by its :class:`GripperConvention` to vst's *unit gripper*, -1 = open, +1 = close (robosuite's and
  LIBERO's own convention). LIBERO's raw HDF5 gripper is already -1 (open) / +1 (close):
  ``GripperConvention("pm1")`` passes it through. OpenVLA's RLDS LIBERO data store the gripper as
  0 (close) / 1 (open): ``GripperConvention("01", close_high=False)``. The release normalised the
  raw -1/+1 gripper with those 0/1 statistics, turning "open" into -3; vst does not.
* ``to_env_gripper`` maps the unit gripper back to an environment's convention (LIBERO: -1/+1).

File layout (``norm_stats.json``, the release's)::

    {"norm_stats": {"action": {"mean", "std", "max", "min", "q01", "q99", "mask"},
                    "proprio": {"mean", "std", "max", "min", "q01", "q99"} (all zeros, D long),
                    "num_transitions": int, "num_trajectories": int},
     "vst_gripper": {"dim": 6, "kind": "pm1", "close_high": true}}

One dataset per file, not keyed by dataset name (the release's layout). ``vst_gripper`` is vst's
addition; readers of the release layout ignore it. :func:`load_norm_stats` also reads OpenVLA's
``dataset_statistics.json`` form (``{dataset_name: {"action": ...}}``) given ``dataset``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vst.atomic import atomic_write_bytes

__all__ = [
    "LIBERO_ENV_GRIPPER",
    "OPENVLA_RLDS_GRIPPER",
    "GripperConvention",
    "NormStats",
    "compute_norm_stats",
    "load_norm_stats",
    "normalize",
    "save_norm_stats",
    "to_env_gripper",
    "unnormalize",
]

STAT_KEYS = ("mean", "std", "max", "min", "q01", "q99")
"""Statistics saved per dimension, in the release's key order."""


@dataclass(frozen=True)
class GripperConvention:
    """How a gripper value is stored: ``kind`` "pm1" (values in [-1, 1]) or "01" (values in
    [0, 1]); ``close_high`` True when the larger value closes the gripper (robosuite, LIBERO).
    :meth:`to_unit` maps to vst's unit gripper (-1 open, +1 close), :meth:`from_unit` back."""

    kind: Literal["pm1", "01"] = "pm1"
    close_high: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("pm1", "01"):
            raise ValueError(f"gripper convention: kind must be 'pm1' or '01', got {self.kind!r}")

    def to_unit(self, value: Any) -> np.ndarray:
        """Stored value(s) -> unit gripper (-1 open, +1 close), clipped to [-1, 1]."""
        v = np.asarray(value, dtype=np.float64)
        if self.kind == "01":
            v = 2.0 * v - 1.0
        if not self.close_high:
            v = -v
        return np.clip(v, -1.0, 1.0)

    def from_unit(self, value: Any) -> np.ndarray:
        """Unit gripper value(s) (-1 open, +1 close) -> this convention."""
        v = np.clip(np.asarray(value, dtype=np.float64), -1.0, 1.0)
        if not self.close_high:
            v = -v
        if self.kind == "01":
            v = (v + 1.0) / 2.0
        return v


LIBERO_ENV_GRIPPER = GripperConvention("pm1", close_high=True)
"""LIBERO's environment and raw HDF5 gripper: -1 open, +1 close."""

OPENVLA_RLDS_GRIPPER = GripperConvention("01", close_high=False)
"""OpenVLA's RLDS LIBERO gripper: 0 close, 1 open."""


@dataclass
class NormStats:
    """Per-dimension action statistics (arrays of length D) of one dataset; ``mask[d]`` True when
    dim d is normalised with q01/q99; ``gripper_dim`` (or None) is mapped by ``gripper``."""

    mean: np.ndarray
    std: np.ndarray
    max: np.ndarray
    min: np.ndarray
    q01: np.ndarray
    q99: np.ndarray
    mask: np.ndarray
    num_transitions: int
    num_trajectories: int
    gripper_dim: int | None = None
    gripper: GripperConvention = LIBERO_ENV_GRIPPER

    @property
    def dim(self) -> int:
        """Action dimension D."""
        return int(self.q01.shape[0])

    def to_json(self) -> dict[str, Any]:
        """The release's ``norm_stats.json`` layout (plus ``vst_gripper``)."""
        action: dict[str, Any] = {k: [float(x) for x in getattr(self, k)] for k in STAT_KEYS}
        action["mask"] = [bool(x) for x in self.mask]
        zeros = [0.0] * self.dim
        out: dict[str, Any] = {
            "norm_stats": {
                "action": action,
                "proprio": {k: list(zeros) for k in STAT_KEYS},
                "num_transitions": int(self.num_transitions),
                "num_trajectories": int(self.num_trajectories),
            }
        }
        if self.gripper_dim is not None:
            out["vst_gripper"] = {
                "dim": self.gripper_dim,
                "kind": self.gripper.kind,
                "close_high": self.gripper.close_high,
            }
        return out


def _check_gripper_dim(gripper_dim: int | None, dim: int, where: str) -> None:
    if gripper_dim is not None and not 0 <= gripper_dim < dim:
        raise ValueError(f"{where}: gripper_dim {gripper_dim} out of range for {dim}-D actions")


def _as_actions(actions: Any, where: str) -> np.ndarray:
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{where}: actions must be a non-empty (N, D) array, got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{where}: actions contain NaN or inf")
    return a


def compute_norm_stats(
    actions: Any,
    num_trajectories: int = 1,
    gripper_dim: int | None = 6,
    gripper: GripperConvention = LIBERO_ENV_GRIPPER,
    source: str = "actions",
) -> NormStats:
    """Statistics of ``actions`` (N, D) over axis 0: mean, std (population, ddof 0), min, max,
    q01/q99 (``np.quantile``, method "linear"); mask all True except ``gripper_dim`` (None: no
    gripper). ``source`` names the data in errors."""
    a = _as_actions(actions, source)
    _check_gripper_dim(gripper_dim, a.shape[1], source)
    mask = np.ones(a.shape[1], dtype=bool)
    if gripper_dim is not None:
        mask[gripper_dim] = False
    return NormStats(
        mean=a.mean(axis=0),
        std=a.std(axis=0),
        max=a.max(axis=0),
        min=a.min(axis=0),
        q01=np.quantile(a, 0.01, axis=0, method="linear"),
        q99=np.quantile(a, 0.99, axis=0, method="linear"),
        mask=mask,
        num_transitions=int(a.shape[0]),
        num_trajectories=int(num_trajectories),
        gripper_dim=gripper_dim,
        gripper=gripper,
    )


def _batch(actions: Any, stats: NormStats, where: str) -> tuple[np.ndarray, bool]:
    a = np.asarray(actions, dtype=np.float64)
    single = a.ndim == 1
    a = np.atleast_2d(a)
    if a.ndim != 2 or a.shape[1] != stats.dim:
        raise ValueError(f"{where}: actions of shape {np.shape(actions)} for {stats.dim}-D stats")
    if not np.isfinite(a).all():
        raise ValueError(f"{where}: actions contain NaN or inf")
    return a, single


def normalize(actions: Any, stats: NormStats) -> np.ndarray:
    """Actions (D,) or (N, D) -> [-1, 1], same shape (see the module docstring)."""
    a, single = _batch(actions, stats, "normalize")
    span = stats.q99 - stats.q01
    safe = np.where(span > 0, span, 1.0)
    scaled = np.where(span > 0, 2.0 * (a - stats.q01) / safe - 1.0, 0.0)
    out = np.clip(np.where(stats.mask, scaled, a), -1.0, 1.0)
    if stats.gripper_dim is not None:
        out[:, stats.gripper_dim] = stats.gripper.to_unit(a[:, stats.gripper_dim])
    return out[0] if single else out


def unnormalize(normalized: Any, stats: NormStats) -> np.ndarray:
    """The inverse of :func:`normalize` on masked dims; unmasked dims pass through clipped to
    [-1, 1]; the gripper dim comes back in the data's own convention (``stats.gripper``)."""
    x, single = _batch(normalized, stats, "unnormalize")
    x = np.clip(x, -1.0, 1.0)
    raw = (x + 1.0) / 2.0 * (stats.q99 - stats.q01) + stats.q01
    out = np.where(stats.mask, raw, x)
    if stats.gripper_dim is not None:
        out[:, stats.gripper_dim] = stats.gripper.from_unit(x[:, stats.gripper_dim])
    return out[0] if single else out


def to_env_gripper(
    unit: Any, env: GripperConvention = LIBERO_ENV_GRIPPER, binarize: bool = False
) -> np.ndarray:
    """Unit gripper value(s) (-1 open, +1 close; e.g. a decoded action's gripper dim) -> the
    environment's convention; ``binarize`` first snaps to -1/+1 (0 counts as close)."""
    u = np.asarray(unit, dtype=np.float64)
    if binarize:
        u = np.where(u < 0, -1.0, 1.0)
    return env.from_unit(u)


def save_norm_stats(stats: NormStats, path: str | Path) -> Path:
    """Write ``stats`` to ``path`` (atomically) in the release's layout and key order."""
    path = Path(path)
    atomic_write_bytes(path, (json.dumps(stats.to_json(), indent=2) + "\n").encode())
    return path


def _array(block: dict[str, Any], key: str, where: str, dtype: Any = np.float64) -> np.ndarray:
    if key not in block:
        raise ValueError(f"{where}: action statistics lack '{key}'")
    try:
        arr = np.asarray(block[key], dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: action '{key}' is not a list of numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"{where}: action '{key}' is not a flat list")
    return arr


def _entry(data: Any, dataset: str | None, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: not a JSON object")
    body = data.get("norm_stats", data)
    if isinstance(body, dict) and "action" not in body:
        names = sorted(body)
        if dataset is None and len(names) == 1:
            dataset = names[0]
        if dataset is None or dataset not in body:
            raise ValueError(f"{where}: no statistics for dataset {dataset!r} (has {names})")
        body = body[dataset]
    if not isinstance(body, dict) or not isinstance(body.get("action"), dict):
        raise ValueError(f"{where}: no 'action' statistics")
    return body, data


def load_norm_stats(
    path: str | Path,
    dataset: str | None = None,
    gripper_dim: int | None = None,
    gripper: GripperConvention | None = None,
) -> NormStats:
    """Read a ``norm_stats.json`` (the release's layout, or OpenVLA's keyed by ``dataset``).
    The gripper comes from ``vst_gripper`` when present, else from the arguments (``gripper_dim``
    None: no gripper handling, the file's mask as is). The arguments win over the file."""
    path = Path(path)
    where = str(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{where}: cannot read norm stats ({exc.__class__.__name__})") from None
    body, top = _entry(data, dataset, where)
    action = body["action"]
    arrays = {k: _array(action, k, where) for k in STAT_KEYS}
    mask = _array(action, "mask", where, dtype=bool) if "mask" in action else None
    dims = {a.shape[0] for a in arrays.values()} | ({mask.shape[0]} if mask is not None else set())
    if len(dims) != 1:
        raise ValueError(f"{where}: action statistics of different lengths {sorted(dims)}")
    dim = dims.pop()
    if mask is None:
        mask = np.ones(dim, dtype=bool)
    saved = top.get("vst_gripper") if isinstance(top, dict) else None
    if isinstance(saved, dict):
        if gripper_dim is None:
            gripper_dim = int(saved.get("dim", 6))
        if gripper is None:
            gripper = GripperConvention(
                saved.get("kind", "pm1"), bool(saved.get("close_high", True))
            )
    _check_gripper_dim(gripper_dim, dim, where)
    if gripper_dim is not None:
        mask = mask.copy()
        mask[gripper_dim] = False
    return NormStats(
        **arrays,
        mask=mask,
        num_transitions=int(body.get("num_transitions", 0)),
        num_trajectories=int(body.get("num_trajectories", 0)),
        gripper_dim=gripper_dim,
        gripper=gripper or LIBERO_ENV_GRIPPER,
    )
