"""Synthetic indoor scenes rendered offscreen with MuJoCo, with exact 3D ground truth.

Modules, one concern each: :mod:`.catalog` (categories, size priors, multi-part models),
:mod:`.layout` (rooms, placement), :mod:`.mjcf` (appearance, MuJoCo XML), :mod:`.render`
(offscreen RGB / z-depth / masks, GL backend errors), :mod:`.cameras` (single views, multi-view
sets, room-scan videos), :mod:`.routes` (free walking routes), :mod:`.config` and
:mod:`.generate` (orchestration, scene directories). Importing this package does not import
mujoco.
"""

from vst.scenes.sources.synthetic.catalog import CATEGORIES
from vst.scenes.sources.synthetic.config import SynthConfig
from vst.scenes.sources.synthetic.generate import (
    GenerationError,
    generate_scene,
    iter_scenes,
    scene_id,
    write_scenes,
)
from vst.scenes.sources.synthetic.render import MujocoRenderer, RenderBackendError

__all__ = [
    "CATEGORIES",
    "GenerationError",
    "MujocoRenderer",
    "RenderBackendError",
    "SynthConfig",
    "generate_scene",
    "iter_scenes",
    "scene_id",
    "write_scenes",
]
