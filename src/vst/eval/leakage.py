"""Does a checkpoint's training data hold scenes of the benchmark being scored?

A checkpoint trained by vst carries ``vst_training_data.json`` (:mod:`vst.train.manifest`):
its data sources and the ``(dataset, scene_id, split)`` of their examples where known.
:func:`training_overlap` checks those scenes against the benchmark's scenes as the leakage
guard knows them (:class:`~vst.scenes.splits.BenchmarkRegistry`, the shipped lists):

* ``vsibench``: VSI-Bench's ScanNet / ScanNet++ / ARKitScenes scenes (``vsibench``);
* ``det3d-sunrgbd``: the SUN RGB-D test images (``sunrgbd-test``, both id spellings;
  directory-safe ids ``kv1__NYUdata__NYU0001`` are read back as ``kv1/NYUdata/NYU0001``);
* ``det3d-arkitscenes``: the ARKitScenes 3DOD validation fold (``arkitscenes-3dod-val``),
  which Omni3D's ARKitScenes test set is drawn from;
* ``vstp``: every training scene whose split is ``test`` (the held-out VST-P scenes).

CV-Bench, BLINK, 3DSRBench and MMSI-Bench have no scene list in vst (their pictures are not
named by scene): ``"overlap": None`` with a note. Scenes of Omni3D-read images are stamped with
vst's own ids (``sunrgbd-<image id>``), not the dataset's, and are not matched here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vst.train.manifest import MANIFEST_FILE, read_manifest

__all__ = ["REGISTRY_NAMES", "TEST_SPLIT_BENCHMARKS", "scene_overlap", "training_overlap"]

REGISTRY_NAMES: dict[str, tuple[str, ...]] = {
    "vsibench": ("vsibench",),
    "det3d-sunrgbd": ("sunrgbd-test",),
    "det3d-arkitscenes": ("arkitscenes-3dod-val",),
}
"""Benchmark name of ``vst eval`` -> the shipped guard lists holding its scenes."""

TEST_SPLIT_BENCHMARKS = ("vstp",)
"""Benchmarks whose scenes are vst's own held-out ``test`` split."""


def _candidates(scene_id: str) -> list[str]:
    """The id as stamped, and with directory-safe ``__`` read back as ``/`` (SUN RGB-D)."""
    out = [scene_id]
    if "__" in scene_id:
        out.append(scene_id.replace("__", "/"))
    return out


def scene_overlap(manifest: dict[str, Any], benchmark: str) -> list[str] | None:
    """Sorted training scene ids that belong to ``benchmark`` (None: vst has no scene list
    for it)."""
    scenes = [rec for src in manifest["sources"] for rec in src.get("scenes") or []]
    if benchmark in TEST_SPLIT_BENCHMARKS:
        return sorted({r["scene_id"] for r in scenes if r.get("split") == "test"})
    names = REGISTRY_NAMES.get(benchmark)
    if names is None:
        return None
    from vst.scenes.splits import BenchmarkRegistry

    registry = BenchmarkRegistry.load_default(benchmarks=list(names))
    found = set()
    for rec in scenes:
        dataset = rec.get("dataset") or None
        if any(registry.lookup(c, dataset) for c in _candidates(rec["scene_id"])):
            found.add(rec["scene_id"])
    return sorted(found)


def training_overlap(model_dir: str | Path, benchmark: str) -> dict[str, Any]:
    """``{"manifest": bool, "overlap": [scene ids] | None, "note": str}`` for a checkpoint
    folder and a benchmark name (see the module docstring). ValueError naming the file for a
    manifest that cannot be read."""
    manifest = read_manifest(model_dir)
    if manifest is None:
        return {
            "manifest": False,
            "overlap": None,
            "note": f"no {MANIFEST_FILE} in {model_dir}: training scenes unknown",
        }
    overlap = scene_overlap(manifest, benchmark)
    sources = manifest["sources"]
    unknown = [str(s.get("name", s.get("kind", "?"))) for s in sources if s.get("scenes") is None]
    counted = sum(len(s.get("scenes") or []) for s in sources)
    if overlap is None:
        note = f"{benchmark}: vst has no scene list for this benchmark; overlap not checked"
    elif overlap:
        note = f"{len(overlap)} training scene(s) belong to {benchmark}"
    else:
        note = f"no training scene belongs to {benchmark} ({counted} scene record(s) checked)"
    if unknown:
        note += f"; scenes unknown for {len(unknown)} source(s): {', '.join(sorted(unknown))}"
    return {"manifest": True, "overlap": overlap, "note": note}
