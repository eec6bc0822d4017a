"""Load a model to evaluate: a full HF directory or a PEFT adapter directory on top of its base."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mosaic_it.errors import MosaicItError
from mosaic_it.logs import peft_on_transformers_v5
from mosaic_it.mlmodel.load import downloaded_model, is_model_uri
from mosaic_it.models.embedded import resolve_model_path, resolve_tokenizer_path


def pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _base_of_adapter(path: Path) -> str:
    config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    return resolve_model_path(base)  # "embedded" or None map to the bundled model


def _load_tokenizer(*candidates: str) -> Any:
    from transformers import AutoTokenizer

    for path in candidates:
        if (Path(path) / "tokenizer_config.json").exists() or (Path(path) / "tokenizer.json").exists():
            tokenizer = AutoTokenizer.from_pretrained(path)
            break
    else:
        tokenizer = AutoTokenizer.from_pretrained(resolve_tokenizer_path(None))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def model_dir(name: str | None) -> Path:
    """The folder holding the weights (or adapter) of a model name or training output directory."""
    path = Path(resolve_model_path(name))
    if (path / "model").is_dir() and not (path / "config.json").exists():
        path = path / "model"  # a training output directory: runs/train/<arm>/model/
    if not path.is_dir():
        raise MosaicItError(f"model directory {path} does not exist (train the arm first)")
    return path


def load_model(name: str | None, device: str = "auto", attn_implementation: str = "sdpa") -> tuple[Any, Any]:
    """Return (model in eval mode on `device`, tokenizer); adapters are merged into their base.
    `name` may be an MLflow URI (`models:/mosaic-it-mosaic@candidate`), read from the current tracking server."""
    from transformers import AutoModelForCausalLM

    from mosaic_it.train import attention

    if is_model_uri(name):
        with downloaded_model(str(name)) as local:
            return load_model(str(local), device, attn_implementation)
    path = model_dir(name)
    attn = attention.resolve(attn_implementation)
    try:
        if (path / "adapter_config.json").exists():
            from peft import PeftModel

            base = _base_of_adapter(path)
            model = AutoModelForCausalLM.from_pretrained(base, dtype="auto", attn_implementation=attn)
            with peft_on_transformers_v5():
                model = PeftModel.from_pretrained(model, str(path)).merge_and_unload()
            tokenizer = _load_tokenizer(str(path), base)
        else:
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype="auto", attn_implementation=attn)
            tokenizer = _load_tokenizer(str(path))
    except (OSError, ValueError) as exc:
        raise MosaicItError(f"cannot load model {path}: {str(exc).splitlines()[0]}") from None
    model.to(pick_device(device)).eval()
    return model, tokenizer
