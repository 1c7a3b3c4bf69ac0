"""Load the authors' checkpoints (FASSD-Net, FC-HarDNet-70) into benchbench's models.

The official files hold ``{"model_state": state_dict, ...}``; keys may carry DataParallel's
``module.`` prefix. Official names (``base.N``, ``DAPF.pyBranch2``, ``conv1x1_up.i``,
``denseBlocksUp.i``, ``mda.i``, ``finalConv``) are renamed to ours by the table below. Any
mismatch fails with the full list of missing, unexpected and mis-shaped keys.
"""
from __future__ import annotations

import re

import torch
from torch import nn

from ..errors import WeightsError

_ENCODER_STAGE = {4: "b1", 7: "b2", 10: "b3", 13: "b4", 16: "b5"}

_RENAMES: list[tuple[str, str]] = [
    (r"^base\.([0-3])\.", r"stem.\1."),
    *[(rf"^base\.{i}\.", f"encoder.{b}.hdb.") for i, b in _ENCODER_STAGE.items()],
    *[(rf"^base\.{i + 1}\.", f"encoder.{b}.transition.") for i, b in _ENCODER_STAGE.items()],
    (r"^DAPF\.conv1x1\.", "context.pointwise.conv."),
    (r"^DAPF\.bn1x1\.", "context.pointwise.bn."),
    (r"^DAPF\.pyBranch([234])\.atrous_conv(3x1|1x3)\.", lambda m: f"context.branches.{int(m[1]) - 2}.conv{m[2]}."),
    (r"^DAPF\.pyBranch([234])\.bn(3x1|1x3)\.", lambda m: f"context.branches.{int(m[1]) - 2}.bn{m[2]}."),
    (r"^DAPF\.conv1\.", "context.project.conv."),
    (r"^DAPF\.bn1\.", "context.project.bn."),
    (r"^conv1x1_up\.(\d)\.", lambda m: f"decoder.b{int(m[1]) + 1}.up_conv."),
    (r"^mda\.(\d)\.", lambda m: f"decoder.b{int(m[1]) + 1}.mda."),
    (r"^denseBlocksUp\.(\d)\.", lambda m: f"decoder.b{int(m[1]) + 1}.block."),
    (r"^finalConv\.", "head."),
]


def official_to_ours(key: str) -> str:
    key = key[len("module."):] if key.startswith("module.") else key
    for pattern, repl in _RENAMES:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def convert_state_dict(official: dict) -> dict:
    return {official_to_ours(k): v for k, v in official.items()}


def load_official_weights(model: nn.Module, path: str) -> nn.Module:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such checkpoint file") from None
    except Exception as exc:
        raise WeightsError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from None
    state = checkpoint.get("model_state", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a dict with 'model_state' (official layout)")
    state = convert_state_dict(state)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshaped = sorted(f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                       for k in set(own) & set(state) if tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or misshaped:
        parts = [f"{label} ({len(keys)}): {', '.join(keys[:20])}{' ...' if len(keys) > 20 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected),
                                     ("mis-shaped", misshaped)) if keys]
        raise WeightsError(f"{path} does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)
    return model
