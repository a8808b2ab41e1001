"""The dataset formats vst reads, by the name users type (``vst scenes import FORMAT PATH``, or
``kind: FORMAT`` in an engine config). Readers are imported only when used."""

from __future__ import annotations

import importlib

from vst.scenes.sources.base import SceneReader

__all__ = ["FORMATS", "format_names", "get_reader_class"]

FORMATS: dict[str, str] = {
    "omni3d": "vst.scenes.sources.omni3d:Omni3DReader",
    "embodiedscan": "vst.scenes.sources.embodiedscan:EmbodiedScanReader",
    "arkitscenes": "vst.scenes.sources.arkitscenes:ARKitScenesReader",
    "scannetpp": "vst.scenes.sources.scannetpp:ScanNetPPReader",
    "hypersim": "vst.scenes.sources.hypersim:HypersimReader",
    "images": "vst.scenes.sources.images_depth:ImagesDepthReader",
    "vsibench-meta": "vst.scenes.sources.vsibench_meta:VsiBenchMetaReader",
}
"""Format name -> ``module:class`` of its :class:`SceneReader`."""


def format_names() -> list[str]:
    """Known format names, sorted."""
    return sorted(FORMATS)


def get_reader_class(name: str) -> type[SceneReader]:
    """The reader class of format ``name`` (ValueError listing the known formats otherwise)."""
    key = name.strip().lower().replace("_", "-")
    key = {"scannet++": "scannetpp", "vsibench": "vsibench-meta"}.get(key, key)
    if key not in FORMATS:
        raise ValueError(
            f"unknown scene format {name!r}; known formats: {', '.join(format_names())}"
        )
    module, cls = FORMATS[key].split(":")
    return getattr(importlib.import_module(module), cls)
