"""Sections `evaluate` and `compare` of params.yaml."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mosaic_it.config.types import ArmName, Seed

EvalName = Literal["heldout", "mosaic_following", "ifeval", "pairwise"]
PairwiseSet = Literal["wizardlm", "koala", "vicuna", "self_instruct", "lima"]


class GenerationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0)  # 0: greedy decoding
    batch_size: int = Field(32, ge=1)  # static: prompts per batch; continuous: answers decoded at once
    # continuous: every prompt prefilled alone, a freed slot takes the next prompt, and a greedy
    # answer does not depend on which prompts share the batch (evaluate/slots.py). static: HF
    # generate over padded batches (also used for sampling and for unsupported architectures).
    # auto: continuous on CPU, static on CUDA, where the per-slot decoder is launch-bound (0.30x
    # static batches on an H200, docs/benchmarks.md) and vLLM is the fast path.
    batching: Literal["auto", "continuous", "static"] = "auto"
    max_prompt_tokens: int = Field(1536, ge=8)  # longer prompts keep their end (the question)
    # Answers kept per (model weights, rendered prompt, settings): a rerun or resumed study never
    # generates one twice (evaluate/generation_cache.py). null: no cache.
    cache_dir: str | None = "runs/cache/generations"


class JudgeConfig(BaseModel):
    """Any OpenAI-compatible chat-completions endpoint; `url` null disables judging."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None  # base URL, e.g. http://127.0.0.1:8000/v1
    model: str = "gpt-4o"
    api_key_env: str = "MOSAIC_IT_JUDGE_API_KEY"  # the key itself never appears in any file
    timeout_s: float = Field(60.0, gt=0)  # per request, in total: a reply still arriving is cut
    max_retries: int = Field(4, ge=0)
    backoff_s: float = Field(2.0, ge=0)
    max_tokens: int = Field(512, ge=8)
    workers: int = Field(4, ge=1)
    # Pairs the endpoint still fails on after retries are errors; compare fails above this share.
    max_error_fraction: float = Field(0.1, ge=0.0, le=1.0)


class EvaluateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None  # HF model or PEFT adapter directory; null: the embedded model
    arm: ArmName = "baseline"
    heldout: str = "runs/split/heldout.jsonl"
    output_dir: str = "runs/evaluate"  # results go to <output_dir>/<arm>/
    evals: list[EvalName] = ["heldout", "mosaic_following", "ifeval", "pairwise"]
    device: str = "auto"  # auto: cuda when available, else cpu
    prompt_format: Literal["chat_template", "vicuna"] = "chat_template"  # as in train.prompt_format
    seed: Seed = 0
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    heldout_limit: int | None = Field(200, ge=1)  # null: every held-out record
    heldout_max_tokens: int = Field(1024, ge=16)
    mosaic_per_rule: int = Field(4, ge=1)
    # hf: transformers generate; vllm: continuous batching on CUDA (extra); auto: vllm when both exist.
    backend: Literal["hf", "vllm", "auto"] = "auto"
    vllm_memory_fraction: float = Field(0.5, gt=0.0, le=0.95)  # of the GPU; the HF model shares it
    attn_implementation: Literal["sdpa", "flash_attention_2", "eager"] = "sdpa"  # as train's
    mosaic_max_instructions: int = Field(4, ge=2)
    mosaic_max_new_tokens: int = Field(512, ge=1)  # a mosaic answer holds several responses
    ifeval_path: str = "data/eval/ifeval_input_data.jsonl"
    ifeval_limit: int | None = Field(None, ge=1)  # null: all 541 prompts
    pairwise_dir: str = "data/eval"
    pairwise_sets: list[PairwiseSet] = ["wizardlm", "koala", "vicuna", "self_instruct", "lima"]
    pairwise_limit: int | None = Field(None, ge=1)  # prompts per test set; null: all


class PromoteConfig(BaseModel):
    """After compare: an alias on the registered version of the arm that wins on one metric."""

    model_config = ConfigDict(extra="forbid")

    alias: str | None = None  # e.g. "candidate"; null: set no alias
    metric: str = "heldout/loss"
    higher_is_better: bool = False


class CompareConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    baseline: ArmName = "baseline"  # arm names; the report reads <evaluate_dir>/<arm>/
    candidate: ArmName = "mosaic"
    evaluate_dir: str = "runs/evaluate"
    train_dir: str = "runs/train"  # cost metrics: <train_dir>/<arm>/metrics.json
    output_dir: str = "runs/compare"
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    promote: PromoteConfig = Field(default_factory=PromoteConfig)
