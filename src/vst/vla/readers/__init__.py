"""Readers yielding :class:`vst.vla.episodes.Episode` objects one at a time."""

from vst.vla.readers.lerobot import DEFAULT_IMAGE_KEY, read_info, read_lerobot
from vst.vla.readers.libero_hdf5 import (
    instruction_from_filename,
    read_libero_folder,
    read_libero_hdf5,
    task_name,
)

__all__ = [
    "DEFAULT_IMAGE_KEY",
    "instruction_from_filename",
    "read_info",
    "read_lerobot",
    "read_libero_folder",
    "read_libero_hdf5",
    "task_name",
]
