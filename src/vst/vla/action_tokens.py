"""Action tokens: normalised actions in [-1, 1] <-> token ids of a Hugging Face tokenizer.

Conventions
-----------
* ``bins`` (256) uniform bins on [low, high] = [-1, 1]: edges ``np.linspace(low, high, bins + 1)``;
  a value v (clipped to [low, high] first) falls in bin ``b`` when ``edges[b] <= v < edges[b+1]``
  (``high`` itself in the last bin); a bin decodes to its centre, so the round trip is within half
  a bin width (1/256 for 256 bins on [-1, 1]) per dimension. Every dim is binned, masked or not:
  an unnormalised dim is clipped to [-1, 1] like the others (see :mod:`vst.vla.norm_stats`).
* Vocabulary "added" (the VST release): 256 new, non-special tokens ``<|action_0|>`` ..
  ``<|action_255|>``; bin b is ``<|action_b|>``, whose id :meth:`ActionTokenizer.add_to` returns.
* Vocabulary "last" (OpenVLA): bin b is id ``vocab_size - 1 - b``, the last ``bins`` ids of the
  tokenizer's base vocabulary (``tokenizer.vocab_size``, without added tokens). These ids are
  ordinary BPE tokens: train on :meth:`ActionTokenizer.encode`'s ids, not on :meth:`text`
  re-tokenised.
* OpenVLA's own binning differs slightly (256 ``linspace`` points used as edges, 255 centres);
  vst uses 256 true bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

__all__ = ["ActionLogitsProcessor", "ActionTokenizer", "action_token"]


def action_token(index: int) -> str:
    """The added-vocabulary token string of bin ``index``: ``<|action_{index}|>``."""
    return f"<|action_{index}|>"


class ActionTokenizer:
    """Bins normalised actions and maps the bins to token ids of ``tokenizer`` (see the module
    docstring); ``add_to`` must have been called for the "added" vocabulary (the constructor
    does it when ``tokenizer`` is given)."""

    def __init__(
        self,
        tokenizer: Any = None,
        bins: int = 256,
        low: float = -1.0,
        high: float = 1.0,
        vocabulary: Literal["added", "last"] = "added",
    ) -> None:
        if bins < 2:
            raise ValueError(f"action tokenizer: bins must be >= 2, got {bins}")
        if not high > low:
            raise ValueError(f"action tokenizer: high {high} must exceed low {low}")
        if vocabulary not in ("added", "last"):
            raise ValueError(f"action tokenizer: vocabulary 'added' or 'last', not {vocabulary!r}")
        self.bins = int(bins)
        self.low = float(low)
        self.high = float(high)
        self.vocabulary = vocabulary
        self.edges = np.linspace(self.low, self.high, self.bins + 1)
        self.centres = (self.edges[:-1] + self.edges[1:]) / 2.0
        self.tokenizer: Any = None
        self._ids: np.ndarray | None = None
        if tokenizer is not None:
            self.add_to(tokenizer)

    @property
    def bin_width(self) -> float:
        """Width of one bin ((high - low) / bins)."""
        return (self.high - self.low) / self.bins

    def add_to(self, tokenizer: Any) -> list[int]:
        """Attach ``tokenizer``; for "added", add the ``bins`` tokens (not special; tokens already
        present are reused). Returns the ids of bins 0 .. bins-1."""
        if self.vocabulary == "added":
            tokens = [action_token(b) for b in range(self.bins)]
            tokenizer.add_tokens(tokens)
            ids = list(tokenizer.convert_tokens_to_ids(tokens))
            unk = getattr(tokenizer, "unk_token_id", None)
            if any(i is None or (unk is not None and i == unk) for i in ids):
                raise ValueError("action tokenizer: the tokenizer did not take the action tokens")
        else:
            size = int(tokenizer.vocab_size)
            if size < self.bins:
                raise ValueError(
                    f"action tokenizer: vocabulary of {size} ids is smaller than {self.bins} bins"
                )
            ids = [size - 1 - b for b in range(self.bins)]
        self.tokenizer = tokenizer
        self._ids = np.asarray(ids, dtype=np.int64)
        return [int(i) for i in ids]

    def _token_ids(self) -> np.ndarray:
        if self._ids is None:
            raise ValueError("action tokenizer: no tokenizer attached (call add_to first)")
        return self._ids

    def bin_indices(self, action: Any) -> np.ndarray:
        """Bin index (0 .. bins-1) of each value of ``action`` (any shape), clipped first."""
        a = np.asarray(action, dtype=np.float64)
        if not np.isfinite(a).all():
            raise ValueError("action tokenizer: action contains NaN or inf")
        a = np.clip(a, self.low, self.high)
        return np.digitize(a, self.edges[1:-1], right=False).astype(np.int64)

    def encode(self, action: Any) -> list[int]:
        """A normalised action (D,) -> D token ids, one per dimension."""
        a = np.asarray(action, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"action tokenizer: encode takes one (D,) action, got {a.shape}")
        return [int(i) for i in self._token_ids()[self.bin_indices(a)]]

    def encode_batch(self, actions: Any) -> np.ndarray:
        """Normalised actions (N, D) -> token ids (N, D), int64."""
        a = np.asarray(actions, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"action tokenizer: encode_batch takes (N, D) actions, got {a.shape}")
        return self._token_ids()[self.bin_indices(a)]

    def _bins_of(self, ids: Any) -> np.ndarray:
        table = self._token_ids()
        arr = np.asarray(ids, dtype=np.int64)
        order = np.argsort(table)
        pos = np.clip(np.searchsorted(table, arr, sorter=order), 0, len(table) - 1)
        bins = order[pos]
        bad = table[bins] != arr
        if bad.any():
            where = tuple(int(x) for x in np.argwhere(bad)[0])
            at = where[0] if len(where) == 1 else where
            raise ValueError(
                f"action tokenizer: id {int(arr[where])} at {at} is not an action token"
            )
        return bins

    def decode(self, ids: Sequence[int]) -> np.ndarray:
        """Token ids (D,) -> the bin centres (D,), normalised; a non-action id is a ValueError."""
        arr = np.asarray(ids, dtype=np.int64)
        if arr.ndim != 1:
            raise ValueError(f"action tokenizer: decode takes (D,) ids, got {arr.shape}")
        return self.centres[self._bins_of(arr)]

    def decode_batch(self, ids: Any) -> np.ndarray:
        """Token ids (N, D) -> bin centres (N, D), normalised."""
        arr = np.asarray(ids, dtype=np.int64)
        if arr.ndim != 2:
            raise ValueError(f"action tokenizer: decode_batch takes (N, D) ids, got {arr.shape}")
        return self.centres[self._bins_of(arr)]

    def text(self, action: Any) -> str:
        """The action as text (a training target): "added", the token strings joined without
        separators (re-tokenises to :meth:`encode`'s ids); "last", ``tokenizer.decode`` of the
        ids (ordinary BPE pieces: re-tokenising may merge them, so train on the ids)."""
        ids = self.encode(action)
        if self.vocabulary == "added":
            return "".join(action_token(b) for b in self.bin_indices(action))
        return str(self.tokenizer.decode(ids))

    def allowed_ids(self) -> list[int]:
        """The ids of all action tokens, bin order (for constrained decoding)."""
        return [int(i) for i in self._token_ids()]

    def mask_logits(self, scores: Any) -> Any:
        """``scores`` (..., V) with every non-action id set to -inf (numpy array or torch tensor,
        a new object of the same kind). V must cover all action ids."""
        ids = self._token_ids()
        if scores.shape[-1] <= int(ids.max()):
            raise ValueError(
                f"action tokenizer: scores of width {scores.shape[-1]} lack id {int(ids.max())}"
            )
        if isinstance(scores, np.ndarray):
            out = np.full_like(scores, -np.inf)
            out[..., ids] = scores[..., ids]
            return out
        import torch

        index = torch.as_tensor(ids, device=scores.device)
        out = torch.full_like(scores, float("-inf"))
        out[..., index] = scores[..., index]
        return out

    def logits_processor(self) -> ActionLogitsProcessor:
        """A transformers ``LogitsProcessor`` that applies :meth:`mask_logits`."""
        return ActionLogitsProcessor(self)


def _processor_base() -> type:
    try:
        from transformers import LogitsProcessor

        return LogitsProcessor
    except ImportError:  # pragma: no cover - transformers is a dependency
        return object


class ActionLogitsProcessor(_processor_base()):  # type: ignore[misc]
    """Constrains generation to action tokens (``generate(..., logits_processor=[this])``)."""

    def __init__(self, tokenizer: ActionTokenizer) -> None:
        self.action_tokenizer = tokenizer

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        return self.action_tokenizer.mask_logits(scores)
