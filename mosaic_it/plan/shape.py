"""A decoder's shape from its config.json (never its weights), and its parameter counts."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mosaic_it.errors import MosaicItError

# Published shapes of the paper-scale models, so a plan needs no download (config.json values).
KNOWN: dict[str, dict[str, Any]] = {
    "meta-llama/Llama-2-7b-hf": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                                     num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                                     tie_word_embeddings=False),
    "meta-llama/Meta-Llama-3-8B": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                                       num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                                       tie_word_embeddings=False),
    "mistralai/Mistral-7B-v0.1": dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336,
                                      num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                                      tie_word_embeddings=False),
    "meta-llama/Llama-3.2-1B": dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                                    num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                                    tie_word_embeddings=True),
}


@dataclass(frozen=True)
class ModelShape:
    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool

    @property
    def q_width(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim

    def module_dims(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of every Linear in one layer, by the names LoRA targets use."""
        h, q, kv, i = self.hidden, self.q_width, self.kv_width, self.intermediate
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def layer_linear_params(self) -> int:
        return sum(a * b for a, b in self.module_dims().values())

    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)  # input embedding (+ untied head)

    def total_params(self) -> int:
        norms = self.layers * 2 * self.hidden + self.hidden
        return self.layers * self.layer_linear_params() + self.embedding_params() + norms

    def lora_params(self, r: int, targets: list[str]) -> int:
        dims = self.module_dims()
        unknown = [t for t in targets if t not in dims]
        if unknown:
            raise MosaicItError(f"memory plan: LoRA target {unknown[0]!r} is not a Llama-style module "
                                f"({', '.join(dims)})")
        return self.layers * sum(r * (dims[t][0] + dims[t][1]) for t in targets)


def shape_from_config(config: dict[str, Any]) -> ModelShape:
    try:
        heads = int(config["num_attention_heads"])
        hidden = int(config["hidden_size"])
        return ModelShape(vocab=int(config["vocab_size"]), hidden=hidden,
                          intermediate=int(config["intermediate_size"]), layers=int(config["num_hidden_layers"]),
                          heads=heads, kv_heads=int(config.get("num_key_value_heads") or heads),
                          head_dim=int(config.get("head_dim") or hidden // heads),
                          tied=bool(config.get("tie_word_embeddings", False)))
    except (KeyError, TypeError, ValueError) as exc:
        raise MosaicItError(f"memory plan: model config lacks a Llama-style field ({exc})") from None


def load_shape(model: str | None) -> ModelShape:
    """From a local model folder's config.json, or the published shape of a known model id."""
    from mosaic_it.models.embedded import resolve_model_path

    if model in KNOWN:
        return shape_from_config(KNOWN[model])
    path = Path(resolve_model_path(model)) / "config.json"
    if not path.is_file():
        raise MosaicItError(f"memory plan: no config.json for model {model!r} (a local folder, or one of "
                            f"{', '.join(KNOWN)})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MosaicItError(f"{path}: not a readable JSON config ({exc})") from None
    return shape_from_config(config.get("text_config", config))
