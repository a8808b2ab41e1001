"""Optimizer parameter groups and freezing for Qwen2.5-VL.

Every parameter of ``Qwen2_5_VLForConditionalGeneration`` (transformers 5 names) belongs to one
group:

* ``vision``: the vision tower's ``model.visual.patch_embed`` and ``model.visual.blocks``;
* ``merger``: ``model.visual.merger`` (the patch merger projecting into the language model);
* ``language``: ``model.language_model.*`` and ``lm_head``.

``vision`` and ``merger`` train at the vision learning rate, ``language`` at the main one: the
VST release gives every parameter whose name contains ``visual`` (merger included) its
``vit_lr``. Freezing a part sets ``requires_grad=False`` on its parameters and leaves its group
out of the optimizer. Names are matched after stripping wrapper prefixes (DDP ``module.``,
FSDP ``_fsdp_wrapped_module.``, activation checkpointing ``_checkpoint_wrapped_module.``), so
the groups can be built from a wrapped model.
"""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["GROUPS", "apply_freezing", "group_of", "param_groups"]

GROUPS = ("vision", "merger", "language")

_WRAPPERS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def _clean(name: str) -> str:
    for wrapper in _WRAPPERS:
        name = name.replace(wrapper, "")
    while name.startswith("module."):
        name = name[len("module.") :]
    return name


def group_of(name: str) -> str:
    """The group of parameter ``name``; ``ValueError`` for a name outside all three."""
    n = _clean(name)
    if n.startswith("model.visual.merger."):
        return "merger"
    if n.startswith(("model.visual.patch_embed.", "model.visual.blocks.")):
        return "vision"
    if n.startswith(("model.language_model.", "lm_head.")):
        return "language"
    raise ValueError(f"parameter {name!r} is in no optimizer group (vision, merger, language)")


def apply_freezing(
    model: nn.Module, *, vision: bool = False, merger: bool = False, language_model: bool = False
) -> dict[str, int]:
    """Set ``requires_grad=False`` on the frozen parts; returns trainable parameter counts per
    group."""
    frozen = {"vision": vision, "merger": merger, "language": language_model}
    counts = dict.fromkeys(GROUPS, 0)
    for name, p in model.named_parameters():
        group = group_of(name)
        if frozen[group]:
            p.requires_grad_(False)
        elif p.requires_grad:
            counts[group] += p.numel()
    return counts


def param_groups(
    model: nn.Module, lr: float, vision_lr: float, weight_decay: float = 0.0
) -> list[dict[str, Any]]:
    """AdamW parameter groups ``{"name", "params", "lr", "weight_decay"}`` of the trainable
    parameters, in :data:`GROUPS` order; groups without trainable parameters are left out."""
    members: dict[str, list[nn.Parameter]] = {g: [] for g in GROUPS}
    for name, p in model.named_parameters():
        if p.requires_grad:
            members[group_of(name)].append(p)
    rates = {"vision": vision_lr, "merger": vision_lr, "language": lr}
    groups = [
        {"name": g, "params": members[g], "lr": rates[g], "weight_decay": weight_decay}
        for g in GROUPS
        if members[g]
    ]
    if not groups:
        raise ValueError("every parameter is frozen: nothing to train")
    return groups
