"""A policy server: a simulator in another environment posts camera images, gets actions back.

``create_policy_app(policy)`` is a Starlette app (served on loopback, 127.0.0.1, by default):

* ``GET /health`` -> ``{"ok": true, "model": "<checkpoint name>"}``;
* ``POST /act`` with a JSON body, one of

  - ``{"image": "<base64 PNG or JPEG>", "instruction": "pick up the bowl"}``
    -> ``{"action": [a0, ..., a6]}``;
  - ``{"images": ["<base64>", ...], "instructions": ["...", ...]}`` (same length, 1 to
    ``max_batch``) -> ``{"actions": [[a0, ..., a6], ...]}``, one generation for the batch.

  An image is the environment's camera frame as rendered (RGB; the server rotates it 180° and
  resizes it as in training), base64 either bare or as a data URI
  (``data:image/png;base64,...``). An action is the policy's 7 floats in the environment's
  convention (LIBERO: 6-D end-effector delta, then the gripper, -1 open / +1 close).

Errors are ``{"error": "<field>: <what is wrong>"}``: 400 for a body that is not a JSON object, a
missing or mistyped field, an image that is not base64 or not a PNG/JPEG, or one over the caps
(``max_image_bytes`` encoded, ``max_image_pixels`` decoded); 413 for a body over
``max_body_bytes``; 500 if the policy fails. The policy runs on one worker thread, one request
at a time. :class:`vst.models.server.ServerThread` runs the app on a background thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vst.models.server import ServerThread
from vst.scenes.files import UnreadableFileError, decode_image_bytes

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "PolicyServerThread",
    "create_policy_app",
    "decode_image",
    "serve_policy",
]

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_IMAGE_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 2048 * 2048


class Policy(Protocol):
    """What the server needs of a policy (:class:`vst.vla.policy.VLAPolicy`)."""

    model_id: str

    def act_batch(self, images: Any, instructions: Any) -> np.ndarray: ...


class _ReplyError(Exception):
    """A 400 (or another status) reply naming the field."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def decode_image(
    value: Any,
    where: str = "image",
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> np.ndarray:
    """A base64 PNG/JPEG (bare or a ``data:`` URI) -> ``(H, W, 3)`` uint8 RGB; ValueError
    naming ``where`` when it is not one or exceeds the caps."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: expected a base64 PNG or JPEG string")
    payload = value
    if value.startswith("data:"):
        head, sep, payload = value.partition(",")
        if not sep or ";base64" not in head:
            raise ValueError(f"{where}: a data URI must be 'data:image/...;base64,...'")
    if len(payload) // 4 * 3 > max_bytes:
        raise ValueError(f"{where}: larger than {max_bytes} bytes")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}: not valid base64") from None
    try:
        arr = np.asarray(decode_image_bytes(data, where, max_pixels, ("PNG", "JPEG")))
    except UnreadableFileError as exc:
        raise ValueError(str(exc)) from None
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _parse(
    body: Any, max_batch: int, max_bytes: int, max_pixels: int
) -> tuple[list[np.ndarray], list[str], bool]:
    """(images, instructions, batched) of a ``/act`` body; ValueError naming the field."""
    if not isinstance(body, dict):
        raise ValueError("body: expected a JSON object")
    batched = "images" in body or "instructions" in body
    if batched:
        images, texts = body.get("images"), body.get("instructions")
        if not isinstance(images, list) or not images:
            raise ValueError("images: expected a non-empty list of base64 images")
        if not isinstance(texts, list):
            raise ValueError("instructions: expected a list of strings")
        if len(images) != len(texts):
            raise ValueError(f"instructions: {len(texts)} for {len(images)} images")
        if len(images) > max_batch:
            raise ValueError(f"images: at most {max_batch} per request, got {len(images)}")
        names = [(f"images[{i}]", f"instructions[{i}]") for i in range(len(images))]
    else:
        if "image" not in body:
            raise ValueError("image: required (or 'images' and 'instructions' for a batch)")
        if "instruction" not in body:
            raise ValueError("instruction: required")
        images, texts = [body["image"]], [body["instruction"]]
        names = [("image", "instruction")]
    arrays = []
    for (image_name, text_name), image, text in zip(names, images, texts, strict=True):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{text_name}: expected a non-empty string")
        arrays.append(decode_image(image, image_name, max_bytes, max_pixels))
    return arrays, [str(t) for t in texts], batched


async def _read_body(http: HTTPRequest, limit: int) -> bytes:
    declared = http.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _ReplyError(f"body: exceeds {limit} bytes", 413)
    chunks, size = [], 0
    async for chunk in http.stream():
        size += len(chunk)
        if size > limit:
            raise _ReplyError(f"body: exceeds {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def create_policy_app(
    policy: Policy,
    *,
    model_name: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    max_batch: int = 64,
) -> Starlette:
    """The policy server over ``policy`` (see the module docstring)."""
    name = model_name or policy.model_id
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vst-vla")

    async def health(_: HTTPRequest) -> Response:
        return JSONResponse({"ok": True, "model": name})

    async def act(http: HTTPRequest) -> Response:
        loop = asyncio.get_running_loop()
        try:
            raw = await _read_body(http, max_body_bytes)
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError):
                raise _ReplyError("body: not valid JSON") from None
            try:
                images, texts, batched = await asyncio.to_thread(
                    _parse, body, max_batch, max_image_bytes, max_image_pixels
                )
            except ValueError as exc:
                raise _ReplyError(str(exc)) from None
            try:
                actions = await loop.run_in_executor(executor, policy.act_batch, images, texts)
            except Exception as exc:
                message = " ".join(f"policy: {type(exc).__name__}: {exc}".split())[:300]
                raise _ReplyError(message, 500) from None
        except _ReplyError as fault:
            return JSONResponse({"error": str(fault)}, status_code=fault.status)
        rows = np.asarray(actions, dtype=np.float64).tolist()
        return JSONResponse({"actions": rows} if batched else {"action": rows[0]})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        try:
            yield
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/act", act, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def serve_policy(
    policy: Policy, host: str = "127.0.0.1", port: int = 8000, **app_options: Any
) -> None:
    """Serve ``policy`` with uvicorn until interrupted (loopback unless ``host`` says
    otherwise)."""
    app = create_policy_app(policy, **app_options)
    config = uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=5)
    with suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()


class PolicyServerThread(ServerThread):
    """``create_policy_app(policy, **options)`` on a background thread (``port=0``: a free
    port), a context manager; :attr:`url` is its base URL once started (tests, notebooks)."""

    def __init__(
        self, policy: Policy, host: str = "127.0.0.1", port: int = 0, **app_options: Any
    ) -> None:
        super().__init__(create_policy_app(policy, **app_options), host=host, port=port)
