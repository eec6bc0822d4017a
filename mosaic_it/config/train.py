"""Section `train` of params.yaml: what to fine-tune, on which data, and how."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mosaic_it.config.types import ArmName, Seed

Batching = Literal["pad_to_max", "dynamic", "packed"]


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # What to train on. The baseline arm reads split records, the mosaic arm mosaicked samples:
    # both carry instruction/input/output, so one loader serves both.
    arm: ArmName = "baseline"
    data: str = "runs/split/train.jsonl"
    output_dir: str = "runs/train"  # outputs land in <output_dir>/<arm>/
    max_records: int | None = Field(None, ge=1)  # train on the first N only (quick runs)

    # Which model and how it sees the data.
    model: str | None = None  # None: the embedded SmolLM2-135M-Instruct
    trust_remote_code: bool = False
    prompt_format: Literal["chat_template", "vicuna"] = "chat_template"
    max_length: int = Field(512, ge=8)

    # What is trained.
    method: Literal["lora", "full"] = "lora"
    lora: LoraSettings = Field(default_factory=LoraSettings)
    # auto: on for CUDA when the run would not fit the free memory otherwise; off on CPU.
    gradient_checkpointing: bool | Literal["auto"] = "auto"
    dtype: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 on a GPU that has it, else fp32
    # bf16 also decides the weights: LoRA keeps the frozen base in bf16 (adapters fp32); full
    # fine-tuning keeps fp32 master weights under bf16 autocast (docs/training.md).
    quantization: Literal["none", "4bit"] = "none"  # 4bit: QLoRA (NF4 base, CUDA + bitsandbytes)
    attn_implementation: Literal["sdpa", "flash_attention_2", "eager"] = "sdpa"
    # torch.compile each decoder layer (true: the inductor backend): fused elementwise kernels on a
    # GPU, paid for by compilation in the first steps. aot_eager traces without generating kernels.
    compile: bool | Literal["inductor", "aot_eager"] = False  # true is inductor
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # With several processes: ddp keeps a full replica per process; fsdp shards weights, gradients
    # and optimizer state (FSDP2, one unit per decoder layer). One process trains unsharded either way.
    distributed: Literal["ddp", "fsdp"] = "ddp"

    # How batches are built.
    batching: Batching = "dynamic"
    group_by_length: bool = True
    batch_size: int = Field(4, ge=1)  # samples per device per micro-batch
    grad_accum: int = Field(1, ge=1)

    # How long and how fast.
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1)  # when set, wins over epochs
    learning_rate: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    seed: Seed = 0

    # Checkpoints and logging.
    save_every: int = Field(0, ge=0)  # optimizer steps between checkpoints; 0: none
    keep_checkpoints: int = Field(2, ge=1)
    resume: Literal["auto", "never"] = "auto"
    log_every: int = Field(1, ge=1)

    # A few greedy generations from fixed prompts, saved with the run.
    sample_prompts: list[str] = Field(
        default_factory=lambda: [
            "Give three tips for staying healthy.",
            "Write a haiku about the sea.",
        ]
    )
    sample_max_new_tokens: int = Field(32, ge=0)

    @property
    def compile_backend(self) -> str | None:
        """The torch.compile backend `compile` asks for (true means inductor), or None."""
        return "inductor" if self.compile is True else self.compile or None

    @model_validator(mode="after")
    def _lora_targets(self) -> TrainConfig:
        if self.method == "lora" and not self.lora.target_modules:
            raise ValueError("lora.target_modules must name at least one module")
        if self.quantization == "4bit" and self.method != "lora":
            raise ValueError("quantization=4bit trains LoRA adapters only; set method=lora")
        if self.quantization == "4bit" and self.distributed == "fsdp":
            raise ValueError("quantization=4bit is not sharded by FSDP here; use distributed=ddp (QLoRA fits one GPU)")
        return self
