"""Scene sources: each turns a dataset (or a generator) into :class:`vst.scenes.Scene` objects.

``synthetic`` (MuJoCo indoor rooms) is the built-in default, used whenever no public dataset is
on disk.
"""
