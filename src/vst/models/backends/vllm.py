"""The ``vllm`` backend: vLLM's offline ``LLM`` engine over a local model directory.

vLLM is an optional extra (``pip install 'vst[vllm]'``, CUDA machines only) and is imported
only inside :class:`VLLMBackend`'s constructor. What vst hands the engine is built by two pure
functions that never import vLLM, so they are tested on machines without it:

* :func:`build_vllm_prompt` -> one prompt in vLLM's documented offline input form (a
  ``TextPrompt``: ``vllm/inputs/llm.py``; the Qwen2.5-VL example of
  ``examples/generate/multimodal/vision_language_offline.py``)::

      {"prompt": <chat text, one <|image_pad|> / <|video_pad|> per item>,
       "multi_modal_data": {"image": [PIL.Image, ...],
                            "video": [(frames uint8 (T, H, W, 3), metadata), ...]},
       "mm_processor_kwargs": {"fps": <fps, or one per video>}}

  The chat text is :func:`~vst.models.chat.render_chat`'s (vLLM's Qwen2.5-VL processor expands
  each pad to the item's patch count itself). Pictures are resized by vst to their model size
  first (:func:`~vst.models.vision.fit_request`), so the engine's processor keeps them as they
  are, as long as the limits lie inside the checkpoint's own (Qwen2.5-VL ships 3136 to
  12845056 pixels; vst's defaults are 3136 to 1003520). A video goes as a ``(frames,
  metadata)`` pair (``VideoItem`` in ``vllm/multimodal/inputs.py``): recent vLLM forwards the
  metadata to the HF processor, which derives the video's time scale from its ``fps``, and it
  says ``do_sample_frames: False`` so the frames vst chose are kept; older vLLM drops the
  metadata and reads ``fps`` from ``mm_processor_kwargs`` instead, so both are given.
* :func:`sampling_params_kwargs` -> the keyword arguments of ``vllm.SamplingParams`` for one
  choice of one request. Each choice is its own engine request (``n=1``) with its own seed
  (:func:`~vst.models.backends.base.request_seed`), so choice ``i`` of a request is the same
  whatever ``n`` is, whatever else is in the batch and whichever rank runs it.

Outputs are read as ``vllm/outputs.py`` shapes them: a ``RequestOutput`` per prompt with
``.prompt_token_ids`` and ``.outputs``, a list of ``CompletionOutput`` with ``.text``,
``.token_ids`` and ``.finish_reason`` (``"stop"``, ``"length"``, or ``"abort"``).

Parallelism: ``tensor_parallel_size`` goes to the engine (one model split over that many
GPUs). ``data_parallel_size`` N > 1 runs N independent engines, one process per rank as in
vLLM's ``examples/offline_inference/data_parallel.py``: rank r sees only GPUs
``r*tp .. (r+1)*tp - 1`` of ``CUDA_VISIBLE_DEVICES`` (or of ``0..N*tp-1``), loads the model
once, and each ``generate`` call splits its engine requests into N contiguous shards, one per
rank, run at the same time. A dense model's ranks share nothing, so no DP coordination
(``VLLM_DP_*``, which serves expert-parallel MoE models) is set up; since seeds belong to
requests, the outputs are those of one engine.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from vst.models.backends.base import (
    BackendError,
    Choice,
    Completion,
    ProgressCallback,
    Sampling,
    request_seed,
)
from vst.models.chat import render_chat
from vst.models.requests import Request, Video
from vst.models.vision import PixelLimits, fit_request

__all__ = ["VLLMBackend", "build_vllm_prompt", "sampling_params_kwargs"]

DEFAULT_LIMITS = PixelLimits()
"""The engine's pixel limits (frozen, so one shared default is safe)."""

INSTALL_HINT = "pip install 'vst[vllm]' (vLLM needs a CUDA machine)"


def _video_item(video: Video) -> tuple[np.ndarray, dict[str, Any]]:
    """A fitted video as vLLM's ``(frames, metadata)`` pair: frames ``(T, H, W, 3)`` uint8 RGB,
    metadata in the keys of ``transformers.video_utils.VideoMetadata`` plus vLLM's
    ``do_sample_frames`` switch (as vLLM's own video loader and dummy inputs write it)."""
    frames = np.stack([np.asarray(f, dtype=np.uint8) for f in video.frames])
    count = int(frames.shape[0])
    fps = float(video.fps)
    metadata = {
        "fps": fps,
        "duration": count / fps,
        "total_num_frames": count,
        "frames_indices": list(range(count)),
        "do_sample_frames": False,
    }
    return frames, metadata


def build_vllm_prompt(request: Request, limits: PixelLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """``request`` as one vLLM offline prompt (see the module docstring for the shape):
    pictures at their model size under ``limits``; ``multi_modal_data`` only when there are
    pictures, ``mm_processor_kwargs`` only when there are videos (``fps`` a number when all of
    the request's videos share one rate, else one per video, in order)."""
    fitted = fit_request(request, limits)
    prompt: dict[str, Any] = {"prompt": render_chat(fitted.messages)}
    media: dict[str, Any] = {}
    if fitted.images:
        media["image"] = list(fitted.images)
    if fitted.videos:
        media["video"] = [_video_item(v) for v in fitted.videos]
    if media:
        prompt["multi_modal_data"] = media
    if fitted.videos:
        rates = [float(v.fps) for v in fitted.videos]
        prompt["mm_processor_kwargs"] = {"fps": rates[0] if len(set(rates)) == 1 else rates}
    return prompt


def sampling_params_kwargs(sampling: Sampling, request: Request, index: int = 0) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for choice ``index`` of ``request``: one
    sequence (``n=1``) seeded with :func:`request_seed`; ``top_k`` -1 when vst's is 0 (no cut:
    every vLLM release reads -1 so, recent ones read 0 so too); stop strings as a list."""
    return {
        "n": 1,
        "temperature": float(sampling.temperature),
        "top_p": float(sampling.top_p),
        "top_k": sampling.top_k if sampling.top_k > 0 else -1,
        "max_tokens": int(sampling.max_tokens),
        "seed": request_seed(sampling, request, index),
        "stop": list(sampling.stop),
        "repetition_penalty": float(sampling.repetition_penalty),
    }


@dataclass(frozen=True)
class _Out:
    """One engine request's answer in plain data (crosses process boundaries)."""

    prompt_tokens: int = 0
    text: str = ""
    completion_tokens: int = 0
    finish_reason: str | None = None
    error: str | None = None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def _read_output(output: Any) -> _Out:
    """A ``RequestOutput`` (one sequence) as :class:`_Out`; odd shapes become errors."""
    try:
        seq = output.outputs[0]
        prompt_ids = output.prompt_token_ids
        return _Out(
            prompt_tokens=len(prompt_ids) if prompt_ids is not None else 0,
            text=str(seq.text),
            completion_tokens=len(seq.token_ids),
            finish_reason=seq.finish_reason,
        )
    except (AttributeError, IndexError, TypeError) as exc:
        return _Out(error=f"unreadable vLLM output: {_one_line(exc)}")


def _run_batch(
    llm: Any, params_cls: Any, prompts: list[dict[str, Any]], kwargs: list[dict[str, Any]]
) -> list[_Out]:
    """Run ``prompts`` in one ``llm.generate`` call. The engine refuses a whole batch when one
    prompt is bad (too long, unreadable media), so a refused batch is run again one prompt at a
    time and only the bad prompts fail, each with its one-line reason."""
    if not prompts:
        return []
    try:
        params = [params_cls(**kw) for kw in kwargs]
        outputs = llm.generate(prompts, params, use_tqdm=False)
        if len(outputs) != len(prompts):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(prompts)} prompts")
        return [_read_output(o) for o in outputs]
    except Exception as exc:
        if len(prompts) == 1:
            return [_Out(error=_one_line(exc))]
    return [
        out
        for prompt, kw in zip(prompts, kwargs, strict=True)
        for out in _run_batch(llm, params_cls, [prompt], [kw])
    ]


def _rank_main(devices: str, engine_args: dict[str, Any], conn: Connection) -> None:
    """One data-parallel rank (a spawned process): see only ``devices``, load the engine once,
    then answer ``(prompts, kwargs)`` messages until ``None``."""
    os.environ["CUDA_VISIBLE_DEVICES"] = devices
    try:
        import vllm

        llm = vllm.LLM(**engine_args)
    except BaseException as exc:
        conn.send(("error", _one_line(exc)))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        prompts, kwargs = message
        outs = _run_batch(llm, vllm.SamplingParams, prompts, kwargs)
        conn.send(("ok", outs))


class _Ranks:
    """``size`` engine processes (spawned: CUDA cannot be forked), each on its own GPUs."""

    def __init__(self, engine_args: dict[str, Any], size: int, gpus_per_rank: int) -> None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        devices = (
            [d.strip() for d in visible.split(",") if d.strip()]
            if visible is not None
            else [str(i) for i in range(size * gpus_per_rank)]
        )
        if len(devices) < size * gpus_per_rank:
            raise BackendError(
                f"data_parallel_size {size} x tensor_parallel_size {gpus_per_rank} needs "
                f"{size * gpus_per_rank} GPUs but CUDA_VISIBLE_DEVICES lists {len(devices)}"
            )
        context = multiprocessing.get_context("spawn")
        self.ranks: list[tuple[Any, Connection]] = []
        try:
            for r in range(size):
                mine = ",".join(devices[r * gpus_per_rank : (r + 1) * gpus_per_rank])
                parent, child = context.Pipe()
                proc = context.Process(
                    target=_rank_main, args=(mine, engine_args, child), daemon=True
                )
                proc.start()
                child.close()
                self.ranks.append((proc, parent))
            for r, (_, conn) in enumerate(self.ranks):
                try:
                    status, detail = conn.recv()
                except EOFError:
                    status, detail = "error", "exited while loading"
                if status != "ready":
                    raise BackendError(f"vLLM data-parallel rank {r} could not start: {detail}")
        except BaseException:
            self.close()
            raise

    def run(self, prompts: list[dict[str, Any]], kwargs: list[dict[str, Any]]) -> list[_Out]:
        """The engine requests split into contiguous shards, one per live rank, run at once."""
        live = [(r, conn) for r, (proc, conn) in enumerate(self.ranks) if proc.is_alive()]
        if not live:
            raise BackendError("every vLLM data-parallel rank has exited")
        bounds = np.linspace(0, len(prompts), len(live) + 1).astype(int)
        sent: list[tuple[int, Connection, int, int]] = []
        results: list[_Out] = [_Out(error="not run")] * len(prompts)
        for (r, conn), lo, hi in zip(live, bounds[:-1], bounds[1:], strict=True):
            if hi > lo:
                try:
                    conn.send((prompts[lo:hi], kwargs[lo:hi]))
                except (OSError, ValueError) as exc:
                    results[lo:hi] = [_Out(error=f"rank {r}: {_one_line(exc)}")] * (hi - lo)
                    continue
                sent.append((r, conn, int(lo), int(hi)))
        for r, conn, lo, hi in sent:
            try:
                status, outs = conn.recv()
            except (EOFError, OSError) as exc:
                status, outs = "error", f"vLLM data-parallel rank {r} died ({_one_line(exc)})"
            if status == "ok" and len(outs) == hi - lo:
                results[lo:hi] = outs
            else:
                reason = outs if isinstance(outs, str) else f"rank {r} answered badly"
                results[lo:hi] = [_Out(error=reason)] * (hi - lo)
        return results

    def close(self) -> None:
        for _, conn in self.ranks:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
        for proc, conn in self.ranks:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
            conn.close()
        self.ranks = []


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise BackendError(f"the vllm backend needs vLLM ({exc}): {INSTALL_HINT}") from None
    return vllm


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BackendError(f"{name} must be a positive integer, got {value!r}")
    return value


class VLLMBackend:
    """vLLM's offline engine over ``model_dir`` (see the module docstring). ``engine_kwargs``
    go to ``vllm.LLM`` as they are (``dtype``, ``limit_mm_per_prompt``, ``enforce_eager``...).
    ``model_id`` is the directory's resolved path; ``settings`` holds the pixel limits, the
    context length and every JSON-able engine option (cache keys change with any of them)."""

    chunk_requests = 256
    """Requests per engine call (progress is reported after each)."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        limits: PixelLimits = DEFAULT_LIMITS,
        **engine_kwargs: Any,
    ) -> None:
        tp = _positive("tensor_parallel_size", tensor_parallel_size)
        dp = _positive("data_parallel_size", data_parallel_size)
        if max_model_len is not None:
            _positive("max_model_len", max_model_len)
        if not 0 < gpu_memory_utilization <= 1:
            raise BackendError(
                f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization!r}"
            )
        vllm = _import_vllm()
        path = Path(model_dir)
        if not path.is_dir():
            raise BackendError(f"model directory not found: {path}")
        self.model_id = str(path.resolve())
        self.limits = limits
        self._max_model_len = max_model_len
        self._engine_kwargs = dict(engine_kwargs)
        engine_args: dict[str, Any] = {
            "model": str(path),
            "tensor_parallel_size": tp,
            "gpu_memory_utilization": gpu_memory_utilization,
            **engine_kwargs,
        }
        if max_model_len is not None:
            engine_args["max_model_len"] = max_model_len
        self._llm: Any = None
        self._ranks: _Ranks | None = None
        if dp == 1:
            try:
                self._llm = vllm.LLM(**engine_args)
            except Exception as exc:
                raise BackendError(f"vLLM could not load {path}: {_one_line(exc)}") from None
            self._params_cls = vllm.SamplingParams
        else:
            self._ranks = _Ranks(engine_args, dp, tp)

    @property
    def settings(self) -> dict[str, Any]:
        engine = {}
        for name, value in sorted(self._engine_kwargs.items()):
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                continue
            engine[name] = value
        return {
            "backend": "vllm",
            "limits": self.limits.key(),
            "max_model_len": self._max_model_len,
            "engine": engine,
        }

    def _run(self, prompts: list[dict[str, Any]], kwargs: list[dict[str, Any]]) -> list[_Out]:
        if self._ranks is not None:
            return self._ranks.run(prompts, kwargs)
        if self._llm is None:
            raise BackendError("the vllm backend is closed")
        return _run_batch(self._llm, self._params_cls, prompts, kwargs)

    def _chunk(self, requests: Sequence[Request], sampling: Sampling) -> list[Completion]:
        """One engine call for ``requests``: a prompt per choice (one per request when
        greedy: the choices would be equal), then the answers regrouped per request."""
        per_request = 1 if sampling.greedy else sampling.n
        prompts: list[dict[str, Any]] = []
        kwargs: list[dict[str, Any]] = []
        owners: list[int] = []
        failed: dict[int, str] = {}
        for i, request in enumerate(requests):
            try:
                prompt = build_vllm_prompt(request, self.limits)
            except (ValueError, OSError) as exc:
                failed[i] = f"could not build the vLLM prompt: {_one_line(exc)}"
                continue
            for j in range(per_request):
                prompts.append(prompt)
                kwargs.append(sampling_params_kwargs(sampling, request, j))
                owners.append(i)
        outs = self._run(prompts, kwargs)
        grouped: dict[int, list[_Out]] = {}
        for owner, out in zip(owners, outs, strict=True):
            grouped.setdefault(owner, []).append(out)
        completions: list[Completion] = []
        for i in range(len(requests)):
            if i in failed:
                completions.append(Completion.failed(failed[i]))
                continue
            completions.append(_completion(grouped[i], sampling.n))
        return completions

    def generate(
        self,
        requests: Sequence[Request],
        sampling: Sampling,
        progress: ProgressCallback | None = None,
    ) -> list[Completion]:
        """One completion per request, in order; a request vLLM refuses (too long, bad media)
        fails alone, with a one-line reason."""
        out: list[Completion] = []
        for start in range(0, len(requests), self.chunk_requests):
            chunk = requests[start : start + self.chunk_requests]
            out.extend(self._chunk(chunk, sampling))
            if progress is not None:
                progress(len(chunk))
        return out

    def close(self) -> None:
        """Stop the data-parallel ranks (if any) and drop the engine."""
        if self._ranks is not None:
            self._ranks.close()
            self._ranks = None
        self._llm = None


def _completion(outs: list[_Out], n: int) -> Completion:
    """A request's completion from its engine answers (one per choice, or one to repeat ``n``
    times for greedy decoding)."""
    for j, out in enumerate(outs):
        if out.error is not None:
            return Completion.failed(out.error)
        if out.finish_reason not in ("stop", "length"):
            return Completion.failed(f"vLLM ended choice {j} with reason {out.finish_reason!r}")
    choices = [Choice(o.text, o.finish_reason, o.completion_tokens) for o in outs]  # type: ignore[arg-type]
    if len(choices) == 1 and n > 1:
        choices = choices * n
    return Completion(tuple(choices), prompt_tokens=outs[0].prompt_tokens)
