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


class UnreadableFileError(SceneFormatError):
    """A dataset file (JSON, image, array) is broken, hostile or outside its dataset root; the
    message names the file."""


class FrameFileError(SceneFormatError):
    """A frame's image, depth or mask file is unreadable or disagrees with the frame (size,
    non-finite depth, unknown mask ids). Names the scene, frame and file; ``frame_id`` lets the
    engine skip just that frame."""

    def __init__(self, message: str, scene_id: str | None, frame_id: str, path: str | None):
        super().__init__(message)
        self.scene_id = scene_id
        self.frame_id = frame_id
        self.path = path

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (str(self), self.scene_id, self.frame_id, self.path))
