"""LIBERO / robomimic HDF5 demonstration files.

Layout read: ``data/demo_N/obs/agentview_rgb`` (T, H, W, 3) uint8 and ``data/demo_N/actions``
(T, 7), optional ``data/demo_N/dones`` / ``rewards`` (T,). Demos are yielded in the order of N.

Instruction, first found of:
1. the ``data`` group's ``problem_info`` attribute (a JSON object; its ``language_instruction``),
2. a ``language_instruction`` attribute of ``data`` or of the file root,
3. the file name, as the release's ``preprocess_libero.py`` does (VST-RELEASE.md §4): the name
   minus ``_demo.hdf5``, split on ``_``; the words after the last all-caps token containing
   ``SCENE`` (``KITCHEN_SCENE3_turn_on_the_stove`` -> ``turn on the stove``), all words when
   there is none (the libero_spatial file names).

Success: ``dones[-1] != 0`` when ``dones`` exists, else ``rewards[-1] > 0`` when ``rewards``
exists, else ``None`` (unknown: the regenerated no-op-free files keep successes only).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vst.vla.episodes import Episode, Step

__all__ = ["instruction_from_filename", "read_libero_folder", "read_libero_hdf5", "task_name"]

IMAGE_KEY = "agentview_rgb"
_DEMO = re.compile(r"demo_(\d+)")


def instruction_from_filename(path: str | Path) -> str:
    """The instruction encoded in a LIBERO file name (rule 3 of the module docstring)."""
    name = Path(path).name
    for suffix in ("_demo.hdf5", ".hdf5", ".h5"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    words = [w for w in name.split("_") if w]
    scene = [i for i, w in enumerate(words) if "SCENE" in w and w == w.upper()]
    if scene:
        words = words[scene[-1] + 1 :]
    if not words:
        raise ValueError(f"{path}: no instruction in the file name")
    return " ".join(words)


def _attr_text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _attr_text(value.item())
    return value if isinstance(value, str) and value.strip() else None


def _instruction(fh: Any, data: Any, path: Path) -> str:
    info = _attr_text(data.attrs.get("problem_info"))
    if info is not None:
        try:
            parsed = json.loads(info)
        except json.JSONDecodeError:
            raise ValueError(f"{path}: data.attrs['problem_info'] is not JSON") from None
        text = parsed.get("language_instruction") if isinstance(parsed, dict) else None
        if isinstance(text, str) and text.strip():
            return " ".join(text.split())
    for holder in (data, fh):
        text = _attr_text(holder.attrs.get("language_instruction"))
        if text is not None:
            return " ".join(text.split())
    return instruction_from_filename(path)


def _dataset(group: Any, key: str, path: Path, where: str) -> np.ndarray:
    try:
        return np.asarray(group[key][()])
    except KeyError:
        raise ValueError(f"{path}: missing dataset {where}/{key}") from None
    except (OSError, TypeError) as exc:
        raise ValueError(f"{path}: cannot read {where}/{key} ({exc})") from None


def _success(demo: Any, path: Path, where: str) -> bool | None:
    for key, test in (("dones", lambda v: v != 0), ("rewards", lambda v: v > 0)):
        if key in demo:
            values = _dataset(demo, key, path, where).reshape(-1)
            return bool(test(values[-1])) if values.size else None
    return None


def _read_demo(demo: Any, name: str, path: Path, instruction: str, task: str) -> Episode:
    where = f"data/{name}"
    if "obs" not in demo:
        raise ValueError(f"{path}: missing group {where}/obs")
    images = _dataset(demo["obs"], IMAGE_KEY, path, f"{where}/obs")
    actions = _dataset(demo, "actions", path, where)
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{path}: {where}/obs/{IMAGE_KEY} must be (T, H, W, 3) uint8, "
            f"got {images.shape} {images.dtype}"
        )
    if actions.ndim != 2 or actions.shape[1] != 7 or actions.shape[0] != images.shape[0]:
        raise ValueError(
            f"{path}: {where}/actions must be (T, 7) with T = {images.shape[0]} frames, "
            f"got {actions.shape}"
        )
    if not np.issubdtype(actions.dtype, np.number) or not np.all(np.isfinite(actions)):
        raise ValueError(f"{path}: {where}/actions has non-numeric or non-finite values")
    steps = [Step(images[t], actions[t], instruction) for t in range(images.shape[0])]
    demo_n = _DEMO.fullmatch(name)
    return Episode(
        id=f"{task}_{demo_n.group(1) if demo_n else name}",
        instruction=instruction,
        steps=steps,
        success=_success(demo, path, where),
        source=str(path),
    )


def task_name(path: str | Path) -> str:
    """The task part of record ids: the file name minus ``_demo.hdf5`` (or ``.hdf5``)."""
    name = Path(path).name
    for suffix in ("_demo.hdf5", ".hdf5", ".h5"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_libero_hdf5(path: str | Path) -> Iterator[Episode]:
    """The demos of one LIBERO HDF5 file, one :class:`Episode` at a time (id
    ``{file name minus _demo.hdf5}_{N}``). ``ValueError`` naming the file and key on a file
    that cannot be opened or lacks a dataset."""
    import h5py

    path = Path(path)
    try:
        fh = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot open as HDF5 ({' '.join(str(exc).split())})") from None
    with fh:
        if "data" not in fh:
            raise ValueError(f"{path}: missing group data")
        data = fh["data"]
        names = [k for k in data if _DEMO.fullmatch(k)]
        if not names:
            raise ValueError(f"{path}: no data/demo_N groups")
        names.sort(key=lambda k: int(k.split("_")[1]))
        instruction = _instruction(fh, data, path)
        task = task_name(path)
        for name in names:
            yield _read_demo(data[name], name, path, instruction, task)


def read_libero_folder(folder: str | Path) -> Iterator[Episode]:
    """The episodes of every ``*.hdf5`` file directly in ``folder`` (a suite, e.g.
    ``libero_spatial_no_noops``), files in name order; ``ValueError`` for a folder without any."""
    folder = Path(folder)
    files = sorted(p for p in folder.glob("*.hdf5") if p.is_file())
    if not files:
        raise ValueError(f"{folder}: no .hdf5 files")
    for path in files:
        yield from read_libero_hdf5(path)
