"""vst.models: the one layer every job that runs a model uses.

* :mod:`vst.models.prompts`: the VST release's system prompts.
* :mod:`vst.models.requests`: :class:`Request` (chat + images + videos) and its fingerprint.
* :mod:`vst.models.backends`: the backend interface and its implementations.
"""

from vst.models.prompts import PLAIN_SYSTEM_PROMPT, THINK_SYSTEM_PROMPT, with_system
from vst.models.requests import Request, Video

__all__ = ["PLAIN_SYSTEM_PROMPT", "THINK_SYSTEM_PROMPT", "Request", "Video", "with_system"]
