"""The PyTorch dLDM's weights as a tfjs `dldm-checkpoint` (packages/dldm/src/checkpoint.ts, @vw2/nn io/checkpoint.ts), so
the tfjs stages downstream of the warm-up (tokenize, the joint dLDM stage, the probes, the evaluation) load a
PyTorch-trained warm-up as if the tfjs stage had written it:

    model.safetensors   float32, the tfjs Dldm's variable names and layouts (metadata format=pt, vw2_model=dldm)
    config.json         the DldmConfig (the architecture every later stage rebuilds the model from)
    train_state.json    {step, stage, backend, meanStepMs, firstLoss, lastLoss, …}

Layouts: nn.Linear keeps weight [out, in], @vw2/nn Linear [in, out] (transposed); nn.Conv2d OIHW, the decoder's
tfjs Conv2d HWIO ([k, k, in, out]); the PyTorch Attention packs self-attention q/k/v in one Linear (`qkv`) and
cross-attention k/v in another (`kv`), @vw2/nn MultiHeadAttention has `wq`/`wk`/`wv`/`wo`; the encoder's video
blocks hold theirs under `attn`. The Haar matrix is a constant on both sides (tfjs PatchTransform rebuilds it), and
the FSQ constants are not saved. Every name the model has is converted or the conversion fails naming it, and
loadDldm loads strictly (names and shapes), so a missed rename cannot pass silently.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

from .dldm import Attention, Dldm, VideoBlock

#: buffers that are constants of the architecture on the tfjs side, not variables
_CONSTANTS = {"encoder.haar"}


def _linear(w: torch.Tensor) -> torch.Tensor:
    return w.t().contiguous()  # [out, in] → [in, out]


def _conv(w: torch.Tensor) -> torch.Tensor:
    return w.permute(2, 3, 1, 0).contiguous()  # OIHW → HWIO


def tfjs_state_dict(model: Dldm) -> dict[str, torch.Tensor]:
    """model's state (parameters and latent-norm buffers) under the tfjs Dldm's names, in its layouts (float32, CPU)."""
    state = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    done: set[str] = set(_CONSTANTS & state.keys())

    def put(name: str, value: torch.Tensor, *sources: str) -> None:
        if name in out:
            raise ValueError(f"tfjs_state_dict: {name} written twice")
        out[name] = value
        done.update(sources)

    modules = dict(model.named_modules())
    attention_parts = set()
    for path, m in modules.items():
        if not isinstance(m, Attention):
            continue
        parent = modules[path.rsplit(".", 1)[0]] if "." in path else model
        tf = f"{path}.attn" if isinstance(parent, VideoBlock) else path  # the video blocks wrap theirs in `attn`
        d = m.out.weight.shape[0]
        projections: list[tuple[str, str, int]] = (
            [("qkv", "wq", 0), ("qkv", "wk", 1), ("qkv", "wv", 2)] if hasattr(m, "qkv") else [("q", "wq", 0), ("kv", "wk", 0), ("kv", "wv", 1)]
        ) + [("out", "wo", 0)]
        for packed, name, part in projections:
            w, b = f"{path}.{packed}.weight", f"{path}.{packed}.bias"
            put(f"{tf}.{name}.weight", _linear(state[w][part * d : (part + 1) * d]), w)
            put(f"{tf}.{name}.bias", state[b][part * d : (part + 1) * d].clone(), b)
            attention_parts.add(f"{path}.{packed}")
    for path, m in modules.items():
        if path in attention_parts:
            continue
        if isinstance(m, nn.Linear):
            put(f"{path}.weight", _linear(state[f"{path}.weight"]), f"{path}.weight")
        elif isinstance(m, nn.Conv2d):
            put(f"{path}.weight", _conv(state[f"{path}.weight"]), f"{path}.weight")
        else:
            continue
        if m.bias is not None:
            put(f"{path}.bias", state[f"{path}.bias"].clone(), f"{path}.bias")
    # the rest has one layout on both sides: norms' weight/bias, positions, queries, role embeddings, latent-norm buffers
    for name, value in state.items():
        if name not in done:
            put(name, value.clone(), name)
    return out


def write_dldm_checkpoint(out: Path, model: Dldm, train_state: Mapping[str, Any]) -> list[str]:
    """Writes model.safetensors, config.json and train_state.json into `out` (checkpoint.ts saveDldm's layout, without
    the tfjs optimizer state, which no later stage reads); returns the file names written."""
    from safetensors.torch import save_file  # the format's own library (@vw2/nn io/safetensors.ts reads it)

    out.mkdir(parents=True, exist_ok=True)
    save_file(tfjs_state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt", "vw2_model": "dldm"})
    (out / "config.json").write_text(json.dumps(model.c, indent=2) + "\n", encoding="utf-8")
    (out / "train_state.json").write_text(json.dumps(dict(train_state), indent=2) + "\n", encoding="utf-8")
    return ["model.safetensors", "config.json", "train_state.json"]
