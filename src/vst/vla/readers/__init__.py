"""Readers yielding :class:`vst.vla.episodes.Episode` objects one at a time."""

from vst.vla.readers.lerobot import read_lerobot
from vst.vla.readers.libero_hdf5 import instruction_from_filename, read_libero_hdf5

__all__ = ["instruction_from_filename", "read_lerobot", "read_libero_hdf5"]
