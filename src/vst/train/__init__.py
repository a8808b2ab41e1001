"""vst.train: training stages 1 and 2 (SFT and the CoT cold start) on transformers / TRL.

* :mod:`vst.train.examples`: :class:`TrainExample`, what every data source yields.
"""

from vst.train.examples import TrainExample

__all__ = ["TrainExample"]
