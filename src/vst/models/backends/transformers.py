"""The ``transformers`` backend: a local Qwen2.5-VL checkpoint run with ``model.generate``.

* Loading: ``AutoModelForImageTextToText.from_pretrained`` and
  :func:`vst.models.processor.load_processor` (works with and without torchvision).
* Device ``auto``: CUDA when available, else CPU. Dtype ``auto``: bfloat16 on a GPU that
  supports it, else float32.
* Greedy requests (``temperature == 0``) run in batches of ``batch_size`` with left padding.
  Sampled requests run one at a time, each choice seeded with
  :func:`~vst.models.backends.base.request_seed` (``torch.manual_seed`` before ``generate``),
  so a request gets the same text whatever batch or server it comes through.
* Texts are decoded without special tokens; a ``stop`` string ends a choice (text cut before
  it, finish reason ``stop``); a choice that reached ``max_tokens`` without an end-of-sequence
  token or a stop string finishes with ``length``.
* A request that fails (e.g. a picture the processor rejects, or out of memory) is reported as
  a failed completion; the rest of the batch is retried one by one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vst.models.backends.base import (
    BackendError,
    Choice,
    Completion,
    ProgressCallback,
    Sampling,
    request_seed,
)
from vst.models.requests import Request
from vst.models.vision import PixelLimits

__all__ = ["TransformersBackend", "checkpoint_id"]


def checkpoint_id(model_dir: Path) -> str:
    """``transformers:<folder name>:<12 hex>``: the hash covers ``config.json`` and each weight
    file's name, size and modification time (retraining into the same folder changes it)."""
    h = hashlib.sha256()
    config = model_dir / "config.json"
    h.update(config.read_bytes() if config.is_file() else b"")
    for path in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        st = path.stat()
        h.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return f"transformers:{model_dir.resolve().name}:{h.hexdigest()[:12]}"


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in table:
        raise BackendError(f"unknown dtype {dtype!r} (auto, float32, bfloat16, float16)")
    return table[dtype]


class TransformersBackend:
    """Run the Qwen2.5-VL checkpoint in ``model_dir`` with transformers (see module doc)."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        limits: PixelLimits | None = None,
    ) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from transformers import AutoModelForImageTextToText
        from transformers.utils import logging as hf_logging

        from vst.models.processor import load_processor

        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise BackendError(f"{self.model_dir}: no config.json (not a model directory)")
        if batch_size < 1:
            raise BackendError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.limits = limits or PixelLimits()
        self.device = _resolve_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        hf_logging.disable_progress_bar()  # callers show their own progress
        self.processor = load_processor(self.model_dir)
        try:
            model = AutoModelForImageTextToText.from_pretrained(
                str(self.model_dir), dtype=self.dtype
            )
        except (OSError, ValueError) as exc:
            raise BackendError(f"{self.model_dir}: cannot load the model ({exc})") from None
        self.model = model.to(self.device).eval()
        self.model_id = checkpoint_id(self.model_dir)
        tok = self.processor.tokenizer
        gen_eos = self.model.generation_config.eos_token_id
        eos = gen_eos if isinstance(gen_eos, list) else [gen_eos]
        self._eos_ids = {int(i) for i in [*eos, tok.eos_token_id] if i is not None}

    @property
    def settings(self) -> dict[str, Any]:
        return {"limits": self.limits.key(), "dtype": str(self.dtype).removeprefix("torch.")}

    # ------------------------------------------------------------------ generation

    def _generate_kwargs(self, sampling: Sampling) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_tokens,
            "pad_token_id": self.processor.tokenizer.pad_token_id,
            "repetition_penalty": sampling.repetition_penalty,
        }
        if sampling.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(
                do_sample=True,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k or None,
            )
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.processor.tokenizer)
        return kwargs

    def _choice(self, token_ids: list[int], sampling: Sampling) -> Choice:
        ids = list(token_ids)
        # the sequence ends at its first end-of-sequence token (a batch pads finished rows)
        end = next((i for i, t in enumerate(ids) if t in self._eos_ids), None)
        ended = end is not None
        if end is not None:
            ids = ids[: end + 1]
        n_tokens = len(ids)
        text = self.processor.tokenizer.decode(ids, skip_special_tokens=True)
        for stop in sampling.stop:
            cut = text.find(stop)
            if cut >= 0:
                text, ended = text[:cut], True
        reason = "stop" if ended else "length"
        return Choice(text=text, finish_reason=reason, completion_tokens=n_tokens)

    def _run(self, requests: Sequence[Request], sampling: Sampling, seed: int | None) -> list[Any]:
        import torch

        from vst.models.processor import model_inputs

        batch = model_inputs(self.processor, requests, self.limits).to(self.device)
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(self.dtype)
        if "pixel_values_videos" in batch:
            batch["pixel_values_videos"] = batch["pixel_values_videos"].to(self.dtype)
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            out = self.model.generate(**batch, **self._generate_kwargs(sampling))
        prompt_len = batch["input_ids"].shape[1]
        prompt_tokens = batch["attention_mask"].sum(dim=1).tolist()
        return [(out[i, prompt_len:].tolist(), int(prompt_tokens[i])) for i in range(len(requests))]

    def _one(self, request: Request, sampling: Sampling) -> Completion:
        choices, prompt_tokens = [], 0
        for index in range(sampling.n):
            seed = None if sampling.greedy else request_seed(sampling, request, index)
            if sampling.greedy and index > 0:
                choices.append(choices[0])  # greedy decoding gives the same text every time
                continue
            [(ids, prompt_tokens)] = self._run([request], sampling, seed)
            choices.append(self._choice(ids, sampling))
        return Completion(choices=tuple(choices), prompt_tokens=prompt_tokens)

    def _safe_one(self, request: Request, sampling: Sampling) -> Completion:
        try:
            return self._one(request, sampling)
        except Exception as exc:  # one bad request must not fail the others
            where = f"request {request.id!r}: " if request.id else ""
            return Completion.failed(f"{where}{type(exc).__name__}: {exc}".splitlines()[0])

    def generate(
        self,
        requests: Sequence[Request],
        sampling: Sampling,
        progress: ProgressCallback | None = None,
    ) -> list[Completion]:
        results: list[Completion] = []
        if not sampling.greedy:
            for request in requests:
                results.append(self._safe_one(request, sampling))
                if progress is not None:
                    progress(1)
            return results
        for start in range(0, len(requests), self.batch_size):
            chunk = list(requests[start : start + self.batch_size])
            try:
                outputs = self._run(chunk, sampling, None)
            except Exception:  # find the culprit: run the chunk's requests one by one
                done = [self._safe_one(r, sampling) for r in chunk]
            else:
                done = []
                for ids, prompt_tokens in outputs:
                    choice = self._choice(ids, sampling)
                    done.append(Completion((choice,) * sampling.n, prompt_tokens))
            results.extend(done)
            if progress is not None:
                progress(len(chunk))
        return results

    def close(self) -> None:
        self.model = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def __repr__(self) -> str:
        return f"TransformersBackend({json.dumps(str(self.model_dir))}, device={self.device!r})"
