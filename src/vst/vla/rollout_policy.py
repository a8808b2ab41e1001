"""Policies for LIBERO rollouts: a policy server (``vst vla serve``) over HTTP
(:class:`HTTPPolicy`) or any in-process object with ``act_batch`` (:class:`InProcessPolicy`),
both as ``act(frame, instruction) -> 7 floats``. A bad reply is a :class:`PolicyError` (the
episode fails with its reason); an unreachable server, after retries, is a
:class:`PolicyUnavailableError` (the run stops; it resumes).
"""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import numpy as np


class PolicyError(RuntimeError):
    """The policy gave no usable action (a bad reply); the episode fails with this reason."""


class PolicyUnavailableError(RuntimeError):
    """The policy server cannot be reached (after retries); the run stops, resumable."""


def _check_action(value: Any) -> np.ndarray:
    """``value`` as 7 finite floats, else :class:`PolicyError`."""
    try:
        action = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PolicyError(f"action: not numbers: {str(value)[:80]}") from None
    if action.shape != (7,):
        raise PolicyError(f"action: expected 7 numbers, got shape {action.shape}")
    if not np.isfinite(action).all():
        raise PolicyError(f"action: not finite: {action.tolist()}")
    return action


def _png_base64(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


class HTTPPolicy:
    """A policy server (``vst vla serve``) at ``url``: POST ``{url}/act`` with the frame as a
    base64 PNG. Connection errors are retried ``retries`` times (``backoff`` s, doubling), then
    :class:`PolicyUnavailableError`; a reply that is not 200 with 7 finite numbers is a
    :class:`PolicyError`."""

    def __init__(
        self, url: str, timeout: float = 120.0, retries: int = 3, backoff: float = 0.5
    ) -> None:
        import httpx2

        self.url = url.rstrip("/")
        if self.url.endswith("/act"):
            self.url = self.url[: -len("/act")]
        self.retries = retries
        self.backoff = backoff
        self.client = httpx2.Client(timeout=timeout)
        self.model_id = self.url

    def act(self, image: np.ndarray, instruction: str) -> np.ndarray:
        import httpx2

        body = {"image": _png_base64(image), "instruction": instruction}
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                reply = self.client.post(f"{self.url}/act", json=body)
                break
            except (httpx2.TransportError, httpx2.TimeoutException) as exc:
                if attempt == self.retries:
                    raise PolicyUnavailableError(
                        f"{self.url}/act: {type(exc).__name__} after {self.retries + 1} tries"
                    ) from None
                time.sleep(delay)
                delay *= 2
        text = " ".join(reply.text.split())[:200]
        if reply.status_code != 200:
            raise PolicyError(f"HTTP {reply.status_code}: {text}")
        try:
            payload = reply.json()
        except ValueError:
            raise PolicyError(f"reply is not JSON: {text}") from None
        if not isinstance(payload, dict) or "action" not in payload:
            raise PolicyError(f"reply has no action: {text}")
        return _check_action(payload["action"])

    def close(self) -> None:
        self.client.close()


class InProcessPolicy:
    """An object with ``act_batch(images, instructions) -> (N, 7)`` as a one-frame policy;
    its exceptions and bad outputs are :class:`PolicyError`."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    def act(self, image: np.ndarray, instruction: str) -> np.ndarray:
        try:
            out = self.policy.act_batch([image], [instruction])
        except Exception as exc:
            raise PolicyError(f"{type(exc).__name__}: {exc}"[:300]) from None
        try:
            row = np.asarray(out, dtype=np.float64)[0]
        except (TypeError, ValueError, IndexError):
            raise PolicyError(f"act_batch returned {str(out)[:80]}") from None
        return _check_action(row)

    def close(self) -> None:
        pass
