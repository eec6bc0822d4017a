"""Loading the model to train (LoRA-wrapped or whole), choosing device and precision, saving it."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from mosaic_it.atomic import atomic_dir
from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError
from mosaic_it.models.embedded import resolve_model_path
from mosaic_it.train.recompute import resolve_recompute


def pick_device(cfg: TrainConfig, local_rank: int = 0) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise MosaicItError("train.device=cuda but no CUDA device is visible")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def native_bf16(device: torch.device) -> bool:
    """Whether the GPU has bf16 tensor cores (compute capability 8.0+: A100, H100, L4, RTX 30xx on).

    torch.cuda.is_bf16_supported() also says yes on V100 and T4, where bf16 is emulated and
    slower than fp32, so `auto` would pick the slow path there.
    """
    if device.type != "cuda":
        return False
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where it is native (auto), or wherever it is asked for explicitly (bf16)."""
    if cfg.dtype == "fp32":
        return None
    if cfg.dtype == "auto":
        return torch.bfloat16 if native_bf16(device) else None
    if device.type == "cuda" and not native_bf16(device):
        name = torch.cuda.get_device_name(device)
        raise MosaicItError(f"train.dtype=bf16: {name} has no native bf16 (compute capability < 8.0); "
                            "use train.dtype=fp32 or auto")
    return torch.bfloat16  # on CPU too: torch autocasts to bf16 there, as accelerate's bf16 does


def load_model(cfg: TrainConfig, device: torch.device, amp: torch.dtype | None = None) -> Any:
    """The model to train; weight dtypes follow mosaic_it.train.precision (fp32 unless bf16 LoRA)."""
    from transformers import AutoModelForCausalLM

    from mosaic_it.train import attention, precision

    path = resolve_model_path(cfg.model)
    quantization = precision.quantization_config(cfg.quantization, device)
    attn = attention.resolve(cfg.attn_implementation)
    extra = {"quantization_config": quantization, "device_map": {"": device}} if quantization else {}
    recompute = resolve_recompute(cfg, device, amp)  # `auto` is decided before the weights take memory
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=precision.base_weight_dtype(cfg.method, amp), attn_implementation=attn,
            trust_remote_code=cfg.trust_remote_code, **extra
        )
    except (OSError, ValueError) as exc:
        raise MosaicItError(f"cannot load model {cfg.model!r}: {str(exc).splitlines()[0]}") from None
    model.config.use_cache = False
    if quantization is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recompute)
    if recompute:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=cfg.lora.r,
            lora_alpha=cfg.lora.alpha,
            lora_dropout=cfg.lora.dropout,
            target_modules=list(cfg.lora.target_modules),
            task_type="CAUSAL_LM",
        )
        try:
            with warnings.catch_warnings():  # peft calls a transformers property deprecated in v5
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
                model = get_peft_model(model, lora)
        except ValueError as exc:
            raise MosaicItError(f"train.lora.target_modules: {exc}") from None
        precision.keep_trainable_fp32(model)
    return model if quantization is not None else model.to(device)


def count_params(model: Any) -> dict[str, int]:
    """Total, trainable, and matmul parameters (those multiplied with every token: Linear weights)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    seen: set[int] = set()
    matmul = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, torch.nn.Linear) and id(weight) not in seen:
            seen.add(id(weight))
            matmul += weight.numel()
    return {"total": total, "trainable": trainable, "matmul": matmul}


def save_trained(model: Any, tokenizer: Any, out_dir: str | Path,
                 state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Adapter (LoRA) or full weights as safetensors, plus the tokenizer, in one directory.

    Saved into a temporary folder that replaces `out_dir` only when complete (mosaic_it.atomic).
    `state_dict`: the weights to write instead of the model's own (a sharded model's, gathered).
    """
    out_dir = Path(out_dir)
    extra = {"state_dict": state_dict} if state_dict is not None else {}
    with atomic_dir(out_dir) as staging:
        model.save_pretrained(staging, safe_serialization=True, **extra)
        tokenizer.save_pretrained(staging)
    return out_dir
