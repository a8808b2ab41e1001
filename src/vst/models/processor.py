"""Loading Qwen2.5-VL's processor with or without torchvision, and turning requests into inputs.

transformers 5.25 cannot build ``Qwen2_5_VLProcessor`` without torchvision: its video processor
(``Qwen2VLVideoProcessor``) imports torchvision, and the processor's constructor fails its class
check for the ``video_processor`` slot even when given something else. GPU machines usually have
torchvision; our CPU machines have none (its wheel beside the CPU torch fails to import). So:

* with a working torchvision, :func:`load_processor` is ``AutoProcessor.from_pretrained``;
* without it, it assembles the same processor by hand: the checkpoint's tokenizer and chat
  template, transformers' PIL image processor (``Qwen2VLImageProcessorPil``) and
  :class:`NumpyVideoProcessor`, vst's NumPy copy of the video patch layout, inside
  :class:`VstQwenVLProcessor` (which relaxes only that class check).

Both paths give the same ``pixel_values``, ``image_grid_thw``, ``pixel_values_videos``,
``video_grid_thw`` and ``second_per_grid_ts`` for the same request, because vst resizes every
picture itself first (:func:`vst.models.vision.fit_request`) and asks the processor not to
resize (``do_resize=False``): the processors only rescale, normalise and cut patches.

Patch layout (both paths): pictures are normalised with CLIP's mean/std, repeated in time up to
a multiple of ``temporal_patch_size`` (an image counts as one frame, a video's last frame is
repeated), then cut into ``patch_size`` squares; rows are ordered by time step, then by 2 x 2
merge block in raster order, then by patch inside the block in raster order; each row is the
patch's ``channel, time, y, x`` values flattened (``3 * 2 * 14 * 14 = 1176`` numbers).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from vst.models.backends.base import BackendError
from vst.models.requests import Request
from vst.models.vision import PixelLimits, fit_request

__all__ = [
    "NumpyVideoProcessor",
    "load_processor",
    "model_inputs",
    "torchvision_available",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@functools.cache
def torchvision_available() -> bool:
    """True when ``import torchvision`` works (it raises RuntimeError beside a torch it was not
    built for, which counts as unavailable)."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # ImportError, or RuntimeError "operator torchvision::nms does not exist"
        return False
    return True


def _video_processor_base() -> type:
    from transformers.video_processing_utils import VideoProcessorMixin

    return VideoProcessorMixin


class NumpyVideoProcessor(_video_processor_base()):
    """Qwen2-VL's video patch layout in NumPy (no torchvision), for frames already at their
    model size. Frames: a list per video of PIL images or ``(H, W, 3)`` uint8 arrays. The fps
    of each video comes from ``video_metadata`` (a dict or ``VideoMetadata`` per video) and is
    returned in the output's ``video_metadata`` as transformers' processor expects."""

    model_input_names: ClassVar[list[str]] = ["pixel_values_videos", "video_grid_thw"]

    def __init__(
        self,
        patch_size: int = 14,
        temporal_patch_size: int = 2,
        merge_size: int = 2,
        image_mean: Sequence[float] = CLIP_MEAN,
        image_std: Sequence[float] = CLIP_STD,
        rescale_factor: float = 1 / 255,
        **kwargs: Any,
    ) -> None:
        self.patch_size = int(patch_size)
        self.temporal_patch_size = int(temporal_patch_size)
        self.merge_size = int(merge_size)
        self.image_mean = [float(v) for v in image_mean]
        self.image_std = [float(v) for v in image_std]
        self.rescale_factor = float(rescale_factor)

    def __call__(self, videos: Any, **kwargs: Any) -> Any:
        return self.preprocess(videos, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "video_processor_type": type(self).__name__,
            "patch_size": self.patch_size,
            "temporal_patch_size": self.temporal_patch_size,
            "merge_size": self.merge_size,
            "image_mean": self.image_mean,
            "image_std": self.image_std,
            "rescale_factor": self.rescale_factor,
        }

    def _patches(self, frames: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """``(T, H, W, 3)`` uint8 -> (rows, [grid_t, grid_h, grid_w])."""
        p, tp, m = self.patch_size, self.temporal_patch_size, self.merge_size
        T, H, W, C = frames.shape
        if H % (p * m) or W % (p * m):
            raise ValueError(f"video frames of {W}x{H} are not multiples of {p * m} px")
        # the fused rescale + normalise of transformers' fast processors, in float32
        mean = np.asarray(self.image_mean, np.float32) / np.float32(self.rescale_factor)
        std = np.asarray(self.image_std, np.float32) / np.float32(self.rescale_factor)
        x = ((frames.astype(np.float32) - mean) / std).transpose(0, 3, 1, 2)  # (T, C, H, W)
        if pad := -T % tp:
            x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
        gt, gh, gw = x.shape[0] // tp, H // p, W // p
        x = x.reshape(gt, tp, C, gh // m, m, p, gw // m, m, p)
        x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)  # t, block y, block x, y, x, C, time, py, px
        return np.ascontiguousarray(x.reshape(gt * gh * gw, C * tp * p * p)), [gt, gh, gw]

    def preprocess(self, videos: Any, **kwargs: Any) -> Any:
        from transformers.image_processing_utils import BatchFeature
        from transformers.video_utils import VideoMetadata

        if kwargs.get("do_resize"):
            raise ValueError("NumpyVideoProcessor does not resize: fit the frames first")
        if not isinstance(videos, list | tuple) or (videos and not isinstance(videos[0], list)):
            videos = [videos]
        metas = kwargs.get("video_metadata") or [None] * len(videos)
        if isinstance(metas, dict | VideoMetadata):
            metas = [metas]
        rows, grids, out_meta = [], [], []
        for frames, meta in zip(videos, metas, strict=True):
            arr = np.stack(
                [np.asarray(f.convert("RGB") if isinstance(f, Image.Image) else f) for f in frames]
            )
            if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
                raise ValueError(f"video frames must be RGB uint8, got {arr.dtype} {arr.shape}")
            patches, grid = self._patches(arr)
            rows.append(patches)
            grids.append(grid)
            fps = meta.get("fps") if isinstance(meta, dict) else getattr(meta, "fps", None)
            out_meta.append(
                VideoMetadata(
                    total_num_frames=len(arr),
                    fps=fps,
                    width=arr.shape[2],
                    height=arr.shape[1],
                    frames_indices=list(range(len(arr))),
                )
            )
        data = {
            "pixel_values_videos": np.concatenate(rows).astype(np.float32),
            "video_grid_thw": np.asarray(grids, dtype=np.int64),
        }
        out = BatchFeature(data=data, tensor_type=kwargs.get("return_tensors"))
        if kwargs.get("return_metadata"):
            out["video_metadata"] = out_meta
        return out


def _processor_class() -> type:
    from transformers import Qwen2_5_VLProcessor

    class VstQwenVLProcessor(Qwen2_5_VLProcessor):
        """``Qwen2_5_VLProcessor`` whose ``video_processor`` slot takes
        :class:`NumpyVideoProcessor` (transformers 5.25 checks that slot against a torchvision
        placeholder and fails without torchvision, whatever is passed)."""

        def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> type:
            if argument_name == "video_processor":
                return type(argument)
            return super().check_argument_for_proper_class(argument_name, argument)

    return VstQwenVLProcessor


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackendError(f"{path}: cannot read the processor config ({exc})") from None
    if not isinstance(data, dict):
        raise BackendError(f"{path}: expected a JSON object")
    return data


def _chat_template(model_dir: Path, tokenizer: Any) -> str | None:
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    as_json = model_dir / "chat_template.json"
    if as_json.is_file():
        template = _read_json(as_json).get("chat_template")
        if isinstance(template, str):
            return template
    return getattr(tokenizer, "chat_template", None)


def _sub_configs(model_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The image and video processor configs: ``processor_config.json`` (transformers 5 nests
    both there) or the older ``preprocessor_config.json`` (+ ``video_preprocessor_config.json``,
    falling back to the image config as transformers does)."""
    combined = model_dir / "processor_config.json"
    if combined.is_file():
        data = _read_json(combined)
        image_cfg = data.get("image_processor")
        if isinstance(image_cfg, dict):
            video_cfg = data.get("video_processor")
            return image_cfg, video_cfg if isinstance(video_cfg, dict) else image_cfg
    image_path = model_dir / "preprocessor_config.json"
    if not image_path.is_file():
        raise BackendError(
            f"{model_dir}: no processor_config.json or preprocessor_config.json "
            "(not a Qwen2.5-VL checkpoint?)"
        )
    image_cfg = _read_json(image_path)
    video_path = model_dir / "video_preprocessor_config.json"
    return image_cfg, _read_json(video_path) if video_path.is_file() else image_cfg


_LAYOUT_KEYS = (
    "patch_size",
    "temporal_patch_size",
    "merge_size",
    "image_mean",
    "image_std",
    "rescale_factor",
)
_IMAGE_KEYS = (*_LAYOUT_KEYS, "size", "min_pixels", "max_pixels", "do_convert_rgb", "resample")


def _assemble_processor(model_dir: Path) -> Any:
    """The processor built by hand from the checkpoint's files (no torchvision)."""
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    image_cfg, video_cfg = _sub_configs(model_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError) as exc:
        raise BackendError(f"{model_dir}: cannot load the tokenizer ({exc})") from None
    image_processor = Qwen2VLImageProcessorPil(
        **{k: image_cfg[k] for k in _IMAGE_KEYS if k in image_cfg}
    )
    video_processor = NumpyVideoProcessor(
        **{k: video_cfg[k] for k in _LAYOUT_KEYS if k in video_cfg}
    )
    return _processor_class()(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=_chat_template(model_dir, tokenizer),
    )


def load_processor(model_dir: str | Path, use_torchvision: bool | None = None) -> Any:
    """The Qwen2.5-VL processor of the checkpoint in ``model_dir``: ``AutoProcessor`` when
    torchvision works (or ``use_torchvision=True``), else assembled without it."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise BackendError(f"model directory not found: {model_dir}")
    if use_torchvision is None:
        use_torchvision = torchvision_available()
    if use_torchvision:
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(str(model_dir))
    return _assemble_processor(model_dir)


def model_inputs(
    processor: Any,
    requests: Sequence[Request],
    limits: PixelLimits | None = None,
    add_generation_prompt: bool = True,
    padding_side: str = "left",
    return_tensors: str | None = "pt",
) -> Any:
    """The processor's batch for ``requests``: pictures fitted to ``limits`` (engine defaults)
    and not resized again, chat text from the checkpoint's template, left padding (for
    generation). Keys: ``input_ids``, ``attention_mask``, ``pixel_values`` / ``image_grid_thw``
    (when there are images), ``pixel_values_videos`` / ``video_grid_thw`` /
    ``second_per_grid_ts`` (when there are videos)."""
    limits = limits or PixelLimits()
    fitted = [fit_request(r, limits) for r in requests]
    texts = [
        processor.apply_chat_template(
            r.messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )
        for r in fitted
    ]
    images = [im for r in fitted for im in r.images]
    videos = [list(v.frames) for r in fitted for v in r.videos]
    metadata = [
        {"fps": float(v.fps), "total_num_frames": len(v.frames)} for r in fitted for v in r.videos
    ]
    kwargs: dict[str, Any] = {"padding": True, "padding_side": padding_side}
    if images:
        kwargs["images"] = images
        kwargs["images_kwargs"] = {"do_resize": False}
    if videos:
        kwargs["videos"] = videos
        kwargs["videos_kwargs"] = {
            "do_resize": False,
            "video_metadata": metadata,
            "do_sample_frames": False,
        }
    return processor(text=texts, return_tensors=return_tensors, **kwargs)
