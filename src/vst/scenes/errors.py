"""Errors raised while building, validating, saving or loading scenes.

Every message names where the problem is: the scene, the frame or object, the field, and the
file when one is involved, so a user can find the bad record in a dataset of thousands.
"""

from __future__ import annotations


class SceneError(ValueError):
    """Base class of scene errors."""


class SceneFormatError(SceneError):
    """A scene directory or its ``scene.json`` cannot be read."""


class SceneValidationError(SceneError):
    """A scene breaks one or more rules; ``problems`` lists each one as a full sentence."""

    def __init__(self, scene_id: str, problems: list[str]):
        self.scene_id = scene_id
        self.problems = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(
            f"scene {scene_id!r} failed validation with {len(self.problems)} problem(s):\n"
            f"{shown}{more}"
        )
