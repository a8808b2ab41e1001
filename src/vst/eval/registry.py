"""The benchmarks ``vst eval`` knows, by name, imported only when asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from vst.eval.benchmarks.base import Benchmark

__all__ = ["BENCHMARKS", "get_benchmark", "register"]

BENCHMARKS: dict[str, tuple[str, str, dict]] = {
    "vstp": ("vst.eval.benchmarks.vstp", "VstP", {}),
    "cvbench": ("vst.eval.benchmarks.cvbench", "CVBench", {}),
    "blink": ("vst.eval.benchmarks.blink", "BLINK", {}),
    "3dsrbench": ("vst.eval.benchmarks.threedsr", "ThreeDSRBench", {}),
    "mmsi": ("vst.eval.benchmarks.mmsi", "MMSIBench", {}),
    "vsibench": ("vst.eval.benchmarks.vsibench", "VSIBench", {}),
    "det3d-sunrgbd": ("vst.eval.benchmarks.det3d", "SunRGBDDet3D", {}),
    "det3d-arkitscenes": ("vst.eval.benchmarks.det3d", "ARKitScenesDet3D", {}),
}
"""name -> (module, factory attribute, factory keyword arguments)."""

_EXTRA: dict[str, Callable[[], Benchmark]] = {}


def register(name: str, factory: Callable[[], Benchmark]) -> None:
    """Make ``factory()`` available as benchmark ``name`` (tests, plug-ins)."""
    _EXTRA[name] = factory


def get_benchmark(name: str) -> Benchmark:
    """A fresh instance of benchmark ``name``; ``KeyError`` listing the known names."""
    if name in _EXTRA:
        return _EXTRA[name]()
    if name not in BENCHMARKS:
        known = ", ".join(sorted({*BENCHMARKS, *_EXTRA})) or "none"
        raise KeyError(f"unknown benchmark {name!r} (known: {known})")
    module, attr, kwargs = BENCHMARKS[name]
    return getattr(importlib.import_module(module), attr)(**kwargs)
