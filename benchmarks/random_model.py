"""Random-init Llama checkpoints of published shapes, for benchmarks that time or size training.

Cost and memory depend on a model's shape, not on its weights, so a random-init model of the
right shape measures what the real one would (GPU machines here have no model weights).

    python benchmarks/random_model.py 8b /tmp/llama-8b --dtype bf16
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

# (hidden, intermediate, layers, heads, kv heads, vocab or None for the tokenizer's, tied embeddings)
SIZES = {
    "tiny": (64, 128, 2, 4, 2, None, True),
    "135m": (576, 1536, 30, 9, 3, None, True),  # SmolLM2-135M
    "1b": (2048, 8192, 16, 32, 8, 128256, True),  # Llama-3.2-1B
    "3b": (3072, 8192, 28, 24, 8, 128256, True),  # Llama-3.2-3B
    "8b": (4096, 14336, 32, 32, 8, 128256, False),  # Llama-3-8B / 3.1-8B
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def random_model(size: str, out: Path, dtype: str = "fp32") -> Path:
    """Write a random-init model of shape `size` and the embedded tokenizer to `out`.

    Built on the GPU when there is one (an 8B model initialises in seconds there, minutes on CPU)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from mosaic_it.models.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(None)
    hidden, inter, layers, heads, kv, vocab, tied = SIZES[size]
    config = LlamaConfig(vocab_size=vocab or len(tokenizer), hidden_size=hidden, intermediate_size=inter,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
                         max_position_embeddings=4096, tie_word_embeddings=tied,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(DTYPES[dtype])
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("size", choices=sorted(SIZES))
    parser.add_argument("out", type=Path)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    args = parser.parse_args()
    print(random_model(args.size, args.out, args.dtype))


if __name__ == "__main__":
    main()
