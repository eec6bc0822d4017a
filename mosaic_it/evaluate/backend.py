"""Which engine answers the evaluation prompts: HF `generate` or vLLM, behind one function.

Both take the same rendered prompts (the training prompt format) and decode with the same
settings (greedy unless evaluate.generation.temperature > 0, the same max_new_tokens and prompt
truncation), so an arm's answers differ between backends only by kernel numerics. vLLM batches
continuously and serves a LoRA adapter directly on its base (no merge); it needs CUDA and the
`vllm` extra. `auto` takes vLLM only when it is importable and a GPU is visible.
"""
from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from mosaic_it.config.evaluate import EvaluateConfig, GenerationConfig
from mosaic_it.errors import MosaicItError

Backend = Literal["hf", "vllm", "auto"]
OnAnswer = Callable[[int, str], None]  # (index of the prompt, its answer), as soon as it is final


class Generator(Protocol):
    """Prompts, generation settings, a progress label -> one answer per prompt, in order.
    `max_new_tokens`, when given, is one limit per prompt (in place of the settings' one)."""

    def __call__(self, prompts: Sequence[str], gen: GenerationConfig, desc: str, *,
                 max_new_tokens: Sequence[int] | None = None, on_answer: OnAnswer | None = None) -> list[str]: ...


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def pick_backend(setting: Backend, device: str) -> Literal["hf", "vllm"]:
    have_vllm = importlib.util.find_spec("vllm") is not None
    if setting == "hf":
        return "hf"
    if setting == "auto":
        return "vllm" if have_vllm and device != "cpu" and _cuda() else "hf"
    if not have_vllm:
        raise MosaicItError("evaluate.backend=vllm needs vLLM: pip install 'mosaic-it[vllm]' on a CUDA "
                            "machine, or use evaluate.backend=hf")
    if device == "cpu" or not _cuda():
        raise MosaicItError("evaluate.backend=vllm needs a CUDA device; use evaluate.backend=hf on CPU")
    return "vllm"


def hf_generator(model: Any, tokenizer: Any, seed: int, prompt_format: str) -> Generator:
    from mosaic_it.evaluate.generate import generate

    def run(prompts: Sequence[str], gen: GenerationConfig, desc: str, *, max_new_tokens: Sequence[int] | None = None,
            on_answer: OnAnswer | None = None) -> list[str]:
        return generate(model, tokenizer, prompts, gen, desc, seed, prompt_format, max_new_tokens, on_answer)

    return run


def vllm_generator(model_dir: Path, tokenizer: Any, seed: int, prompt_format: str,
                   memory_fraction: float) -> Generator:  # pragma: no cover - needs CUDA and vllm
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    from mosaic_it.evaluate.model import _base_of_adapter
    from mosaic_it.train.data import render_prompt

    adapter = (model_dir / "adapter_config.json").exists()
    lora_rank = json.loads((model_dir / "adapter_config.json").read_text())["r"] if adapter else None
    llm = LLM(model=_base_of_adapter(model_dir) if adapter else str(model_dir), seed=seed,
              enable_lora=adapter, max_lora_rank=max(8, lora_rank or 8), gpu_memory_utilization=memory_fraction)
    request = LoRARequest("arm", 1, str(model_dir)) if adapter else None

    def run(prompts: Sequence[str], gen: GenerationConfig, desc: str, *, max_new_tokens: Sequence[int] | None = None,
            on_answer: OnAnswer | None = None) -> list[str]:
        texts = [render_prompt(p, tokenizer, prompt_format) for p in prompts]
        # The HF path keeps each prompt's last max_prompt_tokens tokens; so does this one.
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"][-gen.max_prompt_tokens:] for t in texts]
        caps = max_new_tokens or [gen.max_new_tokens] * len(ids)
        params = [SamplingParams(temperature=gen.temperature, max_tokens=cap, seed=seed) for cap in caps]
        outputs = llm.generate([{"prompt_token_ids": i} for i in ids], params, lora_request=request,
                               use_tqdm=False)
        answers = [o.outputs[0].text.strip() for o in outputs]
        if on_answer is not None:
            for index, answer in enumerate(answers):
                on_answer(index, answer)
        return answers

    return run


def make_generator(cfg: EvaluateConfig, model: Any, tokenizer: Any) -> Generator:
    """The configured backend's generator for one arm (`model` is the loaded HF model)."""
    if pick_backend(cfg.backend, cfg.device) == "vllm":
        from mosaic_it.evaluate.model import model_dir
        from mosaic_it.mlmodel.load import is_model_uri

        if is_model_uri(cfg.model):
            raise MosaicItError("evaluate.backend=vllm serves a local model folder; download the "
                                "models:/ URI first or use evaluate.backend=hf")

        return vllm_generator(model_dir(cfg.model), tokenizer, cfg.seed, cfg.prompt_format,
                              cfg.vllm_memory_fraction)
    return hf_generator(model, tokenizer, cfg.seed, cfg.prompt_format)
