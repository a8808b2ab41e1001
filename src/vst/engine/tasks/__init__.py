"""Built-in tasks. Importing this package imports every module under ``single_image``,
``multi_image`` and ``video``, which registers their tasks: adding a task is adding a module."""

from __future__ import annotations

import importlib
import pkgutil


def _import_all() -> None:
    for scenario in ("single_image", "multi_image", "video"):
        try:
            package = importlib.import_module(f"{__name__}.{scenario}")
        except ModuleNotFoundError:
            continue
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package.__name__}.{info.name}")


_import_all()
