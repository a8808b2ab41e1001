"""Offline chain-of-thought written from ground truth, without a teacher (INTERFACE ONLY: being
implemented in this issue; the teacher pipeline calls :func:`offline_cot` for ``offline`` runs).

Kinds (the paper's, appendix C.1): ``num`` reasons with the 3D boxes and numbers (box
coordinates, the computation, the answer); ``rt`` reconstructs the layout in text (layout
sentences), then infers the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from vst.reasoning.facts import SampleFacts

__all__ = ["OFFLINE_KINDS", "OfflineCot", "offline_cot"]

OFFLINE_KINDS = ("num", "rt")


@dataclass(frozen=True)
class OfflineCot:
    """``reasoning`` (the text inside ``<think>``) and ``answer`` (the final answer text, which
    the sample's reward checker scores 1.0)."""

    reasoning: str
    answer: str


def offline_cot(facts: SampleFacts, kind: str) -> OfflineCot | None:
    """The ``kind`` CoT of a sample from its scene facts, or None when the sample's task (or
    question form) has no offline CoT."""
    raise NotImplementedError("offline CoT is being implemented (issue 16)")
