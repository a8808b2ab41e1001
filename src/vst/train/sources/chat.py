"""``conversations`` (LLaVA / VST-release ``{"from", "value"}`` turns with media markers in the
text) to normalised chat messages with image and video items in place.

Roles: ``human``/``user`` -> user, ``gpt``/``assistant`` -> assistant, ``system`` -> system;
a conversation whose first non-system turn is not a user turn loses that turn (as the release
does); blank turns are dropped (as the release does). Media markers (e.g. ``<image>``) in user
turns mark where the pictures go, in order; with no marker at all the pictures go first in the
first user turn (images, then videos). Text between markers is stripped and empty pieces are
dropped, as the release's reader does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["conversation_turns", "place_media"]

ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


def conversation_turns(conversations: Any) -> list[tuple[str, str]]:
    """``(role, text)`` turns of a ``conversations`` list; ``ValueError`` naming the bad turn."""
    if not isinstance(conversations, list | tuple) or not conversations:
        raise ValueError("conversations is not a non-empty list of turns")
    turns: list[tuple[str, str]] = []
    for k, turn in enumerate(conversations):
        if not isinstance(turn, Mapping):
            raise ValueError(f"conversations[{k}] is not a {{from, value}} dict")
        who, value = turn.get("from"), turn.get("value")
        role = "system" if who == "system" else ROLES.get(who) if isinstance(who, str) else None
        if role is None:
            raise ValueError(f"conversations[{k}]: unknown role {who!r} (human, gpt or system)")
        if not isinstance(value, str):
            raise ValueError(f"conversations[{k}]: value is not a string")
        if value.strip():
            turns.append((role, value))
    first = next((k for k, (r, _) in enumerate(turns) if r != "system"), None)
    if first is not None and turns[first][0] != "user":
        del turns[first]
    return turns


def _pattern(markers: Mapping[str, str]) -> re.Pattern[str]:
    return re.compile("(" + "|".join(re.escape(m) for m in markers.values()) + ")")


def place_media(
    turns: Sequence[tuple[str, str]],
    markers: Mapping[str, str],
    counts: Mapping[str, int],
    prepend_on_mismatch: bool = False,
) -> list[dict[str, Any]]:
    """Messages with ``counts[kind]`` items of each kind (``image``/``video``) where
    ``markers[kind]`` stands in user turns. Marker counts must equal ``counts`` or be all zero;
    otherwise ``ValueError``, or, with ``prepend_on_mismatch``, the markers are removed and the
    items prepended (the release's rule for legacy ``<image>`` tags)."""
    pattern = _pattern(markers)
    kind_of = {m: k for k, m in markers.items()}
    found = dict.fromkeys(counts, 0)
    for role, text in turns:
        if role == "user":
            for piece in pattern.findall(text):
                found[kind_of[piece]] = found.get(kind_of[piece], 0) + 1
    in_place = all(found.get(k, 0) == n for k, n in counts.items()) and set(found) <= set(counts)
    if not in_place and any(found.values()) and not prepend_on_mismatch:
        have = ", ".join(f"{found.get(k, 0)} {markers[k]}" for k in markers)
        want = ", ".join(f"{n} {k}(s)" for k, n in counts.items())
        raise ValueError(f"media markers ({have}) do not match the media ({want})")
    prepend = not in_place or not any(found.values())
    messages: list[dict[str, Any]] = []
    first_user = True
    for role, text in turns:
        content: list[dict[str, Any]] = []
        pieces = [text]
        if role == "user":
            pieces = pattern.split(text)
            if prepend and first_user:
                content += [
                    {"type": k} for k in ("image", "video") for _ in range(counts.get(k, 0))
                ]
            first_user = first_user and role != "user"
        for piece in pieces:
            if role == "user" and piece in kind_of:
                if not prepend:
                    content.append({"type": kind_of[piece]})
            elif piece.strip():
                content.append({"type": "text", "text": piece.strip()})
        if content:
            messages.append({"role": role, "content": content})
    if prepend and first_user and any(counts.values()):
        raise ValueError("pictures but no user turn to put them in")
    return messages
