"""In which dtype each weight lives during training, and the QLoRA quantization of the base.

- fp32 (CPU, or train.dtype=fp32): every weight fp32, as before.
- bf16 + LoRA: the frozen base loads in bf16 (half the memory; it never receives an update, so
  nothing is lost), the adapters stay fp32 and so does their AdamW state.
- bf16 + full fine-tuning: fp32 master weights and fp32 AdamW state, bf16 only inside autocast.
  Pure-bf16 weights would save 2 bytes per parameter but lose small updates to rounding (a bf16
  weight near 1 cannot move by less than ~0.004); the memory that costs is won back by FSDP.
- 4bit (QLoRA): the base is stored NF4 with bf16 compute; LoRA only, CUDA and bitsandbytes only.
"""
from __future__ import annotations

import importlib.util
from typing import Any

import torch

from mosaic_it.errors import MosaicItError


def base_weight_dtype(method: str, amp: torch.dtype | None) -> torch.dtype:
    """The dtype the model is loaded in (before adapters are added)."""
    if method == "lora" and amp == torch.bfloat16:
        return torch.bfloat16
    return torch.float32


def keep_trainable_fp32(model: Any) -> None:
    """Adapters (and anything else trained) hold fp32 weights, so AdamW state is fp32 too."""
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()


def quantization_config(quantization: str, device: torch.device) -> Any:
    """transformers' BitsAndBytesConfig for QLoRA, or None; a one-line error where it cannot run."""
    if quantization == "none":
        return None
    if device.type != "cuda":
        raise MosaicItError("train.quantization=4bit needs a CUDA device (bitsandbytes kernels); "
                            "use quantization=none on CPU")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise MosaicItError("train.quantization=4bit needs bitsandbytes: pip install 'mosaic-it[gpu]'")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)
