"""Re-derive every stored answer from the scenes' ground truth (``vst data verify``).

Each task's ``derive_answer(scene, meta)`` recomputes the answer of one sample from the scene
and the sample's ``meta`` alone; a stored answer that differs is a mismatch.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vst.engine.writer import iter_rows
from vst.scenes.errors import SceneError
from vst.scenes.files import read_json
from vst.scenes.io import SCENE_FILE


class SceneIndex:
    """Scenes under a folder by id (directory name first, else each scene.json's id)."""

    def __init__(self, root: Path):
        from vst.scenes.io import find_scene_dirs

        self.dirs = find_scene_dirs(root)
        self.by_name = {d.name: d for d in self.dirs}
        self.by_id: dict[str, Path] | None = None
        self.cache: OrderedDict[str, Any] = OrderedDict()

    def _full_index(self) -> dict[str, Path]:
        if self.by_id is None:
            self.by_id = {}
            for d in self.dirs:
                try:
                    rec = read_json(d / SCENE_FILE)
                    self.by_id.setdefault(str(rec.get("id")), d)
                except (SceneError, AttributeError):
                    continue
        return self.by_id

    def get(self, scene_id: str):
        from vst.scenes.io import load_scene

        if scene_id in self.cache:
            self.cache.move_to_end(scene_id)
            return self.cache[scene_id]
        d = self.by_name.get(scene_id)
        scene = load_scene(d) if d is not None else None
        if scene is None or scene.id != scene_id:
            d = self._full_index().get(scene_id)
            if d is None:
                raise KeyError(f"scene {scene_id!r} is not under the scenes folder")
            scene = load_scene(d)
        self.cache[scene_id] = scene
        if len(self.cache) > 8:
            self.cache.popitem(last=False)
        return scene


@dataclass
class VerifyResult:
    """Samples checked, mismatches (stored vs derived answer) and samples that could not be
    checked (missing scene, task error), each naming the sample id, task, scene and shard."""

    checked: int = 0
    mismatches: list[dict[str, str]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.failures


def verify_shards(
    shards: Iterable[Path], index: SceneIndex, on_sample: Callable[[], Any] | None = None
) -> VerifyResult:
    """Check every sample of ``shards`` against the scenes of ``index``."""
    from vst.engine.registry import get_task

    tasks: dict[str, Any] = {}
    result = VerifyResult()
    for p in shards:
        for row in iter_rows(p, ["id", "task", "answer", "meta"]):
            if on_sample is not None:
                on_sample()
            result.checked += 1
            where = {"id": row["id"], "task": row["task"], "shard": Path(p).name}
            try:
                meta = json.loads(row["meta"])
                where["scene"] = str(meta.get("scene_id"))
                if row["task"] not in tasks:
                    tasks[row["task"]] = get_task(row["task"])
                scene = index.get(meta["scene_id"])
                derived = tasks[row["task"]].derive_answer(scene, meta)
            except Exception as exc:  # each failing sample is reported, then we go on
                result.failures.append({**where, "error": f"{type(exc).__name__}: {exc}"})
                continue
            if derived != row["answer"]:
                result.mismatches.append({**where, "stored": row["answer"], "derived": derived})
    return result
