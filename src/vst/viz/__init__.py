"""HTML viewer of a generated dataset and of a model's predictions on it (``vst data view``).

:func:`build_site` writes a static site (no server: it opens from disk) with an index of charts,
pages of samples per task and, with predictions, a failures-first view. See docs/viewer.md.
"""

from vst.viz.site import DEFAULT_PAGE_SIZE, SiteReport, ViewerError, build_site

__all__ = ["DEFAULT_PAGE_SIZE", "SiteReport", "ViewerError", "build_site"]
