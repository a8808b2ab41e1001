"""Robot episodes as vst reads them, whatever the source format.

A :class:`Step` is one control step: the third-person (agentview) camera image *as stored by the
source* (not rotated; rotation belongs to the conversion) and the 7-D action taken at that step.
Action convention (LIBERO / robosuite OSC_POSE): ``[dx, dy, dz, droll, dpitch, dyaw, gripper]``,
the first six a delta end-effector command in ``[-1, 1]``, the gripper ``-1`` open / ``+1`` close
in the raw LIBERO data (other datasets may use 0/1; the data's own convention is kept as is).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ACTION_DIM", "Episode", "Step"]

ACTION_DIM = 7
"""Every VLA action here has 7 dimensions (6-D end-effector delta + gripper)."""


@dataclass(frozen=True)
class Step:
    """One step: ``image`` (H, W, 3) uint8 RGB, rows top to bottom as stored by the source;
    ``action`` (7,) float64, finite; ``instruction`` the episode's language instruction."""

    image: np.ndarray
    action: np.ndarray
    instruction: str

    def __post_init__(self) -> None:
        img = self.image
        if (
            not (isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3)
            or img.dtype != np.uint8
        ):
            shape = getattr(img, "shape", None)
            dtype = getattr(img, "dtype", None)
            raise ValueError(f"step image must be (H, W, 3) uint8, got shape {shape} {dtype}")
        act = np.asarray(self.action, dtype=np.float64)
        if act.shape != (ACTION_DIM,):
            raise ValueError(f"step action must have shape ({ACTION_DIM},), got {act.shape}")
        if not np.all(np.isfinite(act)):
            raise ValueError(f"step action has non-finite values: {act.tolist()}")
        object.__setattr__(self, "action", act)


@dataclass
class Episode:
    """One demonstration.

    ``id``: unique within its source, ``{task}_{demo}`` (the record id appends ``_{t}``);
    ``success``: ``True``/``False`` when the source records it, ``None`` when it does not;
    ``source``: where it was read from (a file or dataset root, for messages and ``meta``).
    """

    id: str
    instruction: str
    steps: list[Step] = field(default_factory=list)
    success: bool | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.steps)
