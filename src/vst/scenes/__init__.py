"""Scenes: the one format every source produces (objects, frames, room) and its directory form."""

from vst.scenes.errors import SceneError, SceneFormatError, SceneValidationError
from vst.scenes.io import find_scene_dirs, load_scene, save_scene
from vst.scenes.model import Frame, Object3D, Room, Scene
from vst.scenes.validation import scene_problems, validate_scene

__all__ = [
    "Frame",
    "Object3D",
    "Room",
    "Scene",
    "SceneError",
    "SceneFormatError",
    "SceneValidationError",
    "find_scene_dirs",
    "load_scene",
    "save_scene",
    "scene_problems",
    "validate_scene",
]
