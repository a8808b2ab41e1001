"""The OpenAI chat-completions wire format, both ways, for vst requests.

Client side (:class:`~vst.models.backends.openai.OpenAIBackend`):

* :func:`to_openai_messages`: a :class:`~vst.models.requests.Request` as OpenAI ``messages``.
  Pictures are fitted to the model size first (:func:`vst.models.vision.fit_request`), so a
  served model gets exactly the pixels a local backend would. Images become
  ``{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`` (PNG by default:
  lossless; JPEG on request), videos become vLLM's frame-list form
  ``{"type": "video_url", "video_url": {"url": "data:video/jpeg;base64,<f1>,<f2>,..."}}``
  (base64 JPEG frames joined by commas, as vLLM's ``VideoMediaIO.load_base64`` splits them).
* :func:`video_processor_kwargs`: a frame list carries no frame rate, so the rate goes in the
  request body's ``mm_processor_kwargs`` (``{"fps": ...}``), the field vLLM forwards to the
  Hugging Face processor, where Qwen2.5-VL reads ``fps`` (one number, or one per video).
* :func:`sampling_to_body`: the decoding settings as body fields.

Server side (:mod:`vst.models.server`):

* :func:`from_openai_messages`: OpenAI ``messages`` back to a :class:`Request`. Only ``data:``
  URIs with base64 payloads are read; ``http(s)://``, ``file://`` and any other URL are refused.
  Decoded sizes are capped (:class:`WireLimits`: bytes per item, pixels per image, frames per
  video, pixels per request), and an image's size is checked from its header before its pixels
  are decoded, so a hostile request cannot exhaust memory.
* :func:`sampling_from_body`: body fields back to a :class:`~vst.models.backends.base.Sampling`.

Every malformed input raises :class:`WireError`, one line naming the field
(``messages[2].content[1].image_url.url: ...``).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image

from vst.engine.imaging import encode_image
from vst.models.backends.base import Sampling
from vst.models.requests import Request, Video
from vst.models.vision import PixelLimits, fit_request

__all__ = [
    "DEFAULT_PIXEL_LIMITS",
    "DEFAULT_VIDEO_FPS",
    "DEFAULT_WIRE_LIMITS",
    "ImageFormat",
    "WireError",
    "WireLimits",
    "from_openai_messages",
    "sampling_from_body",
    "sampling_to_body",
    "to_openai_messages",
    "video_fps_from_body",
    "video_processor_kwargs",
]

ImageFormat = Literal["png", "jpeg"]
DEFAULT_VIDEO_FPS = 2.0
"""The frame rate assumed for a video whose request states none (Qwen2.5-VL's default)."""

_IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG", "image/webp": "WEBP"}
_DECODABLE = frozenset({"PNG", "JPEG", "WEBP"})
_JPEG_QUALITY = 95
_PNG_LEVEL = 1


class WireError(ValueError):
    """A request body that does not follow the wire format: one line naming the field."""


@dataclass(frozen=True)
class WireLimits:
    """Caps on what one request may make the server decode. ``max_item_bytes`` bounds each
    decoded image or video frame list, ``max_image_pixels`` each picture or frame (checked from
    its header, before decoding), ``max_video_frames`` each video, ``max_request_pixels`` all
    pictures and frames of a request together, ``max_items`` its images plus videos."""

    max_item_bytes: int = 32 * 1024 * 1024
    max_image_pixels: int = 4096 * 4096
    max_video_frames: int = 256
    max_request_pixels: int = 64 * 1024 * 1024
    max_items: int = 64


DEFAULT_WIRE_LIMITS = WireLimits()
DEFAULT_PIXEL_LIMITS = PixelLimits()

# ---------------------------------------------------------------- client side: Request -> wire


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _png(image: Image.Image) -> bytes:
    """PNG at zlib level 1: lossless like any PNG, about 2.5x faster to write than level 6
    on camera-like frames for about 15% more bytes (the wire favours speed; deterministic)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=_PNG_LEVEL)
    return buf.getvalue()


def _image_url(image: Image.Image, image_format: ImageFormat) -> str:
    if image_format == "png":
        return "data:image/png;base64," + _b64(_png(image))
    return "data:image/jpeg;base64," + _b64(encode_image(image, "JPEG", _JPEG_QUALITY))


def _video_url(video: Video) -> str:
    frames = (_b64(encode_image(f, "JPEG", _JPEG_QUALITY)) for f in video.frames)
    return "data:video/jpeg;base64," + ",".join(frames)


def to_openai_messages(
    request: Request,
    image_format: ImageFormat = "png",
    limits: PixelLimits | None = DEFAULT_PIXEL_LIMITS,
) -> list[dict[str, Any]]:
    """``request``'s chat in the OpenAI format, pictures fitted to ``limits`` (``None``: sent
    as they are) and inlined as base64 data URIs (images as ``image_format``, video frames as
    JPEG)."""
    if image_format not in ("png", "jpeg"):
        raise ValueError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")
    if limits is not None:
        request = fit_request(request, limits)
    images = iter(request.images)
    videos = iter(request.videos)
    out: list[dict[str, Any]] = []
    for message in request.messages:
        items = message["content"]
        if all(item["type"] == "text" for item in items) and len(items) == 1:
            out.append({"role": message["role"], "content": items[0]["text"]})
            continue
        content: list[dict[str, Any]] = []
        for item in items:
            kind = item["type"]
            if kind == "text":
                content.append({"type": "text", "text": item["text"]})
            elif kind == "image":
                url = _image_url(next(images), image_format)
                content.append({"type": "image_url", "image_url": {"url": url}})
            else:
                url = _video_url(next(videos))
                content.append({"type": "video_url", "video_url": {"url": url}})
        out.append({"role": message["role"], "content": content})
    return out


def video_processor_kwargs(request: Request) -> dict[str, Any]:
    """The body's ``mm_processor_kwargs`` telling the server each video's frame rate: ``{}``
    without videos, ``{"fps": r}`` for one video (or several at one rate), else one rate per
    video in order."""
    rates = [float(v.fps) for v in request.videos]
    if not rates:
        return {}
    if len(set(rates)) == 1:
        return {"fps": rates[0]}
    return {"fps": rates}


def sampling_to_body(sampling: Sampling) -> dict[str, Any]:
    """Body fields for ``sampling``. ``top_k`` and ``repetition_penalty`` are vLLM / SGLang
    extensions: they are sent only when they change decoding, so hosted APIs that reject
    unknown fields still accept a default request. ``seed`` is ``sampling.seed`` as given (a vst
    server derives each request's seed from it exactly as a local backend does)."""
    body: dict[str, Any] = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_tokens,
        "n": sampling.n,
        "seed": sampling.seed,
    }
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    if sampling.top_k:
        body["top_k"] = sampling.top_k
    if sampling.repetition_penalty != 1.0:
        body["repetition_penalty"] = sampling.repetition_penalty
    return body


# ---------------------------------------------------------------- server side: wire -> Request


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(body: Mapping[str, Any], name: str, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if not _is_number(value):
        raise WireError(f"{name}: expected a number, got {type(value).__name__}")
    return float(value)


def _integer(body: Mapping[str, Any], name: str, default: int | None) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError(f"{name}: expected an integer, got {type(value).__name__}")
    return value


def sampling_from_body(body: Mapping[str, Any]) -> Sampling:
    """A :class:`Sampling` from a chat-completions body. Absent fields take vst's defaults
    (greedy, 512 tokens); ``max_completion_tokens`` is the newer name of ``max_tokens`` (giving
    both with different values is an error); ``top_k`` -1 means no cut, as in vLLM. Raises
    :class:`WireError` naming the field."""
    max_tokens = _integer(body, "max_tokens", None)
    newer = _integer(body, "max_completion_tokens", None)
    if max_tokens is not None and newer is not None and max_tokens != newer:
        raise WireError("max_tokens: differs from max_completion_tokens (give one)")
    max_tokens = newer if newer is not None else max_tokens
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = tuple(stop)
    else:
        raise WireError("stop: expected a string or a list of strings")
    top_k = _integer(body, "top_k", 0)
    default = Sampling()
    fields: dict[str, Any] = {
        "temperature": _number(body, "temperature", default.temperature),
        "top_p": _number(body, "top_p", default.top_p),
        "top_k": 0 if top_k == -1 else top_k,
        "max_tokens": default.max_tokens if max_tokens is None else max_tokens,
        "n": _integer(body, "n", default.n),
        "seed": _integer(body, "seed", default.seed),
        "repetition_penalty": _number(body, "repetition_penalty", default.repetition_penalty),
        "stop": stops,
    }
    try:
        return Sampling(**fields)
    except ValueError as exc:  # Sampling's range checks name the field first
        raise WireError(str(exc).replace(" must ", ": must ", 1)) from None


def video_fps_from_body(body: Mapping[str, Any]) -> float | list[float] | None:
    """The frame rate(s) in the body's ``mm_processor_kwargs.fps``: one number for every
    video, a list with one per video, or ``None`` when absent."""
    kwargs = body.get("mm_processor_kwargs")
    if kwargs is None:
        return None
    if not isinstance(kwargs, dict):
        raise WireError("mm_processor_kwargs: expected an object")
    fps = kwargs.get("fps")
    if fps is None:
        return None
    rates = fps if isinstance(fps, list) else [fps]
    if not all(_is_number(r) and r > 0 for r in rates):
        raise WireError("mm_processor_kwargs.fps: expected a positive number or a list of them")
    return [float(r) for r in rates] if isinstance(fps, list) else float(fps)


class _Budget:
    """Pixels and items left for one request."""

    def __init__(self, limits: WireLimits) -> None:
        self.limits = limits
        self.pixels = limits.max_request_pixels
        self.items = limits.max_items

    def item(self, where: str) -> None:
        self.items -= 1
        if self.items < 0:
            raise WireError(f"{where}: more than {self.limits.max_items} images and videos")

    def take(self, where: str, pixels: int) -> None:
        self.pixels -= pixels
        if self.pixels < 0:
            raise WireError(
                f"{where}: the request's pictures exceed {self.limits.max_request_pixels} pixels"
            )


def _data_uri(url: Any, where: str) -> tuple[str, str]:
    """``(media type, base64 payload)`` of a base64 ``data:`` URI."""
    if not isinstance(url, str):
        raise WireError(f"{where}: expected a string URL")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme != "data":
        shown = f"{scheme}:// URLs" if scheme else "URLs that are not data: URIs"
        raise WireError(f"{where}: only base64 data: URIs are accepted ({shown} are refused)")
    header, sep, payload = url[5:].partition(",")
    params = header.split(";")
    if not sep or "base64" not in (p.strip().lower() for p in params[1:]):
        raise WireError(f"{where}: the data: URI must be base64 ('data:<type>;base64,...')")
    return params[0].strip().lower(), payload


def _decode_b64(payload: str, where: str, limits: WireLimits) -> bytes:
    if len(payload) // 4 * 3 > limits.max_item_bytes:
        raise WireError(f"{where}: the item is larger than {limits.max_item_bytes} bytes")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(f"{where}: invalid base64 data") from None


def _decode_picture(data: bytes, where: str, budget: _Budget) -> Image.Image:
    """An RGB picture from encoded bytes, its size checked from the header before decoding."""
    limit = budget.limits.max_image_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format not in _DECODABLE:
                    raise WireError(f"{where}: unsupported picture format {im.format!r}")
                if im.width * im.height > limit:
                    raise WireError(
                        f"{where}: {im.width}x{im.height} picture exceeds {limit} pixels"
                    )
                budget.take(where, im.width * im.height)
                return im.convert("RGB")
    except WireError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise WireError(f"{where}: picture exceeds the decompression-bomb limit") from None
    except Exception as exc:  # PIL raises many types on corrupt data
        raise WireError(f"{where}: cannot decode the picture ({type(exc).__name__})") from None


def _read_image(item: Mapping[str, Any], where: str, budget: _Budget) -> Image.Image:
    spec = item.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    where = f"{where}.image_url.url" if isinstance(spec, dict) else f"{where}.image_url"
    budget.item(where)
    media, payload = _data_uri(url, where)
    if media not in _IMAGE_TYPES:
        raise WireError(f"{where}: unsupported image type {media!r} (png, jpeg or webp)")
    return _decode_picture(_decode_b64(payload, where, budget.limits), where, budget)


def _read_video(item: Mapping[str, Any], where: str, budget: _Budget, fps: float) -> Video:
    spec = item.get("video_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    where = f"{where}.video_url.url" if isinstance(spec, dict) else f"{where}.video_url"
    budget.item(where)
    media, payload = _data_uri(url, where)
    if media != "video/jpeg":
        raise WireError(f"{where}: only frame lists ('data:video/jpeg;base64,<f1>,<f2>,...')")
    limits = budget.limits
    if len(payload) // 4 * 3 > limits.max_item_bytes:
        raise WireError(f"{where}: the video is larger than {limits.max_item_bytes} bytes")
    parts = payload.split(",")
    if len(parts) > limits.max_video_frames:
        raise WireError(f"{where}: {len(parts)} frames exceed {limits.max_video_frames}")
    frames = []
    for k, part in enumerate(parts):
        frame_where = f"{where} frame {k}"
        frames.append(_decode_picture(_decode_b64(part, frame_where, limits), frame_where, budget))
    sizes = {f.size for f in frames}
    if len(sizes) > 1:
        raise WireError(f"{where}: frames differ in size ({len(sizes)} sizes)")
    return Video(tuple(frames), fps)


def from_openai_messages(
    messages: Any,
    limits: WireLimits = DEFAULT_WIRE_LIMITS,
    fps: float | Sequence[float] | None = None,
) -> Request:
    """A :class:`Request` from OpenAI ``messages`` (string or list content; ``text``,
    ``image_url`` and ``video_url`` items with base64 data URIs). ``fps`` is the videos' frame
    rate: one for all, one per video in order (see :func:`video_fps_from_body`), or ``None``
    for :data:`DEFAULT_VIDEO_FPS`. Raises :class:`WireError` naming the message and item."""
    if not isinstance(messages, list) or not messages:
        raise WireError("messages: expected a non-empty list of messages")
    budget = _Budget(limits)
    rates = None if fps is None or isinstance(fps, int | float) else list(fps)
    one_rate = float(fps) if isinstance(fps, int | float) else DEFAULT_VIDEO_FPS
    images: list[Image.Image] = []
    videos: list[Video] = []
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise WireError(f"{where}: expected an object")
        role = message.get("role")
        if role not in ("system", "user", "assistant"):
            raise WireError(f"{where}.role: expected 'system', 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise WireError(f"{where}.content: expected a string or a list of items")
        items: list[dict[str, Any]] = []
        for j, item in enumerate(content):
            at = f"{where}.content[{j}]"
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "text":
                text = item.get("text")
                if not isinstance(text, str):
                    raise WireError(f"{at}.text: expected a string")
                items.append({"type": "text", "text": text})
            elif kind == "image_url":
                images.append(_read_image(item, at, budget))
                items.append({"type": "image"})
            elif kind == "video_url":
                rate = one_rate
                if rates is not None:
                    if len(videos) >= len(rates):
                        raise WireError(
                            f"mm_processor_kwargs.fps: {len(rates)} rate(s) but {at} is "
                            f"video {len(videos) + 1}"
                        )
                    rate = rates[len(videos)]
                videos.append(_read_video(item, at, budget, rate))
                items.append({"type": "video"})
            else:
                shown = repr(kind) if isinstance(kind, str) else "missing"
                raise WireError(
                    f"{at}.type: unsupported content type {shown[:40]} "
                    "(text, image_url or video_url)"
                )
        out.append({"role": role, "content": items})
    if rates is not None and len(rates) != len(videos):
        raise WireError(f"mm_processor_kwargs.fps: {len(rates)} rate(s) for {len(videos)} video(s)")
    return Request(out, tuple(images), tuple(videos))
