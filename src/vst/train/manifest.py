"""The training-data manifest written into a final checkpoint (``vst_training_data.json``).

One entry per data source of the run, in config order: its ``name``, ``kind``, ``path`` and
``weight``, and the scenes its examples come from where vst knows them. For ``kind: vst``
shards these are the engine's provenance stamp of every selected row (``meta["source"]``,
``meta["scene_id"]``, ``meta["split"]``, :mod:`vst.engine.runner`), as sorted unique
``{"dataset", "scene_id", "split"}`` records; the scenes of a source are those of every row
the source selects (its ``tasks`` and ``splits`` filters applied, as training opens it), whatever
share of them its weight draws.
Other kinds carry no scene provenance: ``"scenes": null`` and a note saying so. The file is
deterministic (sorted keys, sorted scenes) so that two runs on the same data write the same
bytes. :mod:`vst.eval.leakage` reads it back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vst.atomic import atomic_write_bytes

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_VERSION",
    "build_manifest",
    "read_manifest",
    "shard_scenes",
    "write_manifest",
]

MANIFEST_FILE = "vst_training_data.json"
"""File name of the manifest inside a checkpoint folder."""

MANIFEST_VERSION = 1

SCENES_UNKNOWN = "scenes unknown: this kind of source carries no scene provenance"


def shard_scenes(source: Any) -> list[dict[str, str]]:
    """Sorted unique ``{"dataset", "scene_id", "split"}`` of the rows a
    :class:`~vst.train.sources.shards.VstShards` selects (rows without a scene id are left
    out; an unreadable ``meta`` counts as none)."""
    metas = source.rows.column("meta")
    seen: set[tuple[str, str, str]] = set()
    for i in source.index:
        raw = metas[i]
        try:
            meta = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            continue
        if not isinstance(meta, dict) or meta.get("scene_id") in (None, ""):
            continue
        split = meta.get("split")
        seen.add((str(meta.get("source") or ""), str(meta["scene_id"]), str(split or "")))
    return [{"dataset": d, "scene_id": s, "split": p} for d, s, p in sorted(seen)]


def build_manifest(configs: list[Any]) -> dict[str, Any]:
    """The manifest of a run's data sources (:class:`~vst.train.data.DataSource` configs)."""
    from vst.train.data import open_source

    entries = []
    for cfg in configs:
        entry: dict[str, Any] = {
            "name": cfg.label,
            "kind": cfg.kind,
            "path": str(cfg.path),
            "weight": cfg.weight,
            "tasks": list(cfg.tasks) if cfg.tasks else None,
            "splits": list(cfg.splits) if getattr(cfg, "splits", None) else None,
        }
        if cfg.kind == "vst":
            try:
                source = open_source(cfg)  # the same rows training draws from (filters applied)
            except (OSError, ValueError) as exc:
                entry.update(scenes=None, note=f"scenes unknown: cannot read shards ({exc})")
            else:
                entry.update(scenes=shard_scenes(source), note="scenes from meta.scene_id")
        else:
            entry.update(scenes=None, note=SCENES_UNKNOWN)
        entries.append(entry)
    return {"version": MANIFEST_VERSION, "sources": entries}


def write_manifest(folder: str | Path, configs: list[Any]) -> Path:
    """Write :func:`build_manifest` of ``configs`` into ``folder``; returns the file."""
    path = Path(folder) / MANIFEST_FILE
    text = json.dumps(build_manifest(configs), indent=1, sort_keys=True) + "\n"
    atomic_write_bytes(path, text.encode())
    return path


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of a checkpoint folder, None when it has none; ValueError naming the file
    when it is not a manifest."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the training-data manifest: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        raise ValueError(f"{path}: sources: expected a list of data sources")
    for i, src in enumerate(data["sources"]):
        scenes = src.get("scenes") if isinstance(src, dict) else None
        if not isinstance(src, dict) or not (scenes is None or isinstance(scenes, list)):
            raise ValueError(f"{path}: sources.{i}.scenes: expected a list or null")
        for j, rec in enumerate(scenes or []):
            if not isinstance(rec, dict) or not isinstance(rec.get("scene_id"), str):
                raise ValueError(f"{path}: sources.{i}.scenes.{j}: expected a scene_id string")
    return data
