"""Readers of training data, one module per format, each a :class:`Source` of
:class:`~vst.train.examples.TrainExample` s (configured through :mod:`vst.train.data`).

* :mod:`.shards`: vst engine shards (``kind: vst``);
* :mod:`.llava`: LLaVA ``conversations`` JSON / JSONL + an image folder (``kind: llava``);
* :mod:`.hf_parquet`: Parquet with ``messages`` + ``images`` (``kind: hf_parquet``);
* :mod:`.release`: the VST release's SFT Parquet (``kind: vst_release``);
* :mod:`.release_rl`: the VST release's RL Parquet (``kind: vst_release_rl``);
* :mod:`.base`, :mod:`.chat`, :mod:`.media`, :mod:`.rows`: what they share.
"""

from vst.train.sources.base import ItemError, Skip, Source
from vst.train.sources.hf_parquet import HfParquet
from vst.train.sources.llava import LlavaJson
from vst.train.sources.release import ReleaseParquet
from vst.train.sources.release_rl import ReleaseRLParquet
from vst.train.sources.shards import VstShards

__all__ = [
    "HfParquet",
    "ItemError",
    "LlavaJson",
    "ReleaseParquet",
    "ReleaseRLParquet",
    "Skip",
    "Source",
    "VstShards",
]
