"""What a training run cost: device time, money, tokens, FLOPs, utilisation, memory.

FLOPs per trained token (N = matmul parameters, i.e. every Linear weight including the
output head and LoRA matrices; embeddings are lookups and cost nothing):
- forward: 2N, plus causal attention 2 * layers * d_attn * T per token of a T-token sample
  (QK^T and AV over on average T/2 keys, 2 FLOPs per multiply-add);
- full fine-tuning backward: 4N (gradients w.r.t. activations and w.r.t. weights);
- LoRA backward: 2N for activation gradients through every (frozen) layer plus 2 N_trainable
  for the adapter weight gradients; frozen weights get no weight gradient;
- attention backward: twice its forward.
`cost/flops` counts real tokens only (useful work) and is what MFU divides by loop time;
`cost/flops_executed` counts what the device computed: padded positions, attention over the
span the kernel actually covered (a packed row under a dense block-diagonal mask costs the
square of the whole row, per-sample varlen kernels the sum of squared sample lengths), and the
extra forward of gradient checkpointing.

Time comes in two kinds: the training loop's (`cost/loop_seconds`, what throughput and MFU
use) and the whole stage's (`cost/stage_seconds`: tokenisation, model loading, checkpoint
saves, the final save, sample generation and tracking too), which is what a run is billed for
and so what `cost/device_hours` and `cost/usd` price.
"""
from __future__ import annotations

import csv
import io
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class FlopModel:
    matmul_params: int
    trainable_params: int
    layers: int
    attn_width: int  # num_heads * head_dim
    full_finetune: bool
    recompute: bool  # gradient checkpointing

    def per_token_linear(self) -> float:
        backward = 4 * self.matmul_params if self.full_finetune else 2 * self.matmul_params + 2 * self.trainable_params
        return 2 * self.matmul_params + backward

    def attention_forward(self, span: int) -> int:
        """Causal attention over blocks whose squared lengths sum to `span`."""
        return 2 * self.layers * self.attn_width * span

    def train_flops(self, tokens: int, sum_sq_len: int) -> float:
        """Model FLOPs: the useful work on `tokens` real tokens of samples with these squared lengths."""
        return float(self.per_token_linear() * tokens + 3 * self.attention_forward(sum_sq_len))

    def executed_flops(self, positions: int, attention_span: int) -> float:
        """What the device computed: every position (padding too) and the attention span it covered.

        `attention_span` is the sum of squared lengths of the blocks the attention kernel ran
        over: rows x width^2 for padded rows, (sum of lengths)^2 for a packed row under a
        dense block-diagonal mask, the sum of squared sample lengths for a varlen kernel.
        """
        attention_fwd = self.attention_forward(attention_span)
        flops = self.per_token_linear() * positions + 3 * attention_fwd
        if self.recompute:
            flops += 2 * self.matmul_params * positions + attention_fwd
        return float(flops)


def flop_model(model: Any, params: dict[str, int], full_finetune: bool, recompute: bool) -> FlopModel:
    config = model.config
    heads = getattr(config, "num_attention_heads", 0)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // max(1, heads)
    return FlopModel(params["matmul"], params["trainable"], getattr(config, "num_hidden_layers", 0),
                     heads * head_dim, full_finetune, recompute)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def peak_flops(name: str, table: dict[str, float]) -> float | None:
    """The device's peak from the table; the longest key found in the device name wins."""
    matches = [key for key in table if key.lower() in name.lower()]
    return table[max(matches, key=len)] if matches else None


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> int:
    """CUDA: peak allocated tensors. CPU: the process's peak resident set size."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


class StageClock:
    """Wall time of the whole train stage, summed over resumed segments like the loop's own time.

    Each segment counts from its start; a resumed one adds the time its checkpoint recorded
    (what a crashed segment spent after its last checkpoint is lost, as it is for the loop).
    """

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.earlier = 0.0

    def resume_from(self, earlier_seconds: float) -> None:
        self.earlier = earlier_seconds

    def elapsed(self) -> float:
        return self.earlier + time.perf_counter() - self.started


def stage_cost(stage_seconds: float, loop_seconds: float, devices: int,
               usd_per_device_hour: float) -> dict[str, float]:
    """The bill: the whole stage priced; the loop's share alongside for comparison."""
    device_hours = stage_seconds * devices / 3600.0
    return {
        "cost/stage_seconds": stage_seconds,
        "cost/wall_seconds": stage_seconds,  # older name, kept for readers of earlier runs
        "cost/loop_seconds": loop_seconds,
        "cost/device_hours": device_hours,
        "cost/usd": device_hours * usd_per_device_hour,
        "cost/loop_usd": loop_seconds * devices / 3600.0 * usd_per_device_hour,
    }


def cost_metrics(*, stage_seconds: float, loop_seconds: float, devices: int, usd_per_device_hour: float,
                 real_tokens: int, padded_tokens: int, flops: float, flops_executed: float,
                 peak: float | None, peak_bytes: int) -> dict[str, float]:
    metrics = {
        **stage_cost(stage_seconds, loop_seconds, devices, usd_per_device_hour),
        "tokens/real": float(real_tokens),
        "tokens/padded": float(padded_tokens),
        "tokens/padding": float(padded_tokens - real_tokens),
        "tokens/padding_fraction": (padded_tokens - real_tokens) / padded_tokens if padded_tokens else 0.0,
        "throughput/tokens_per_second": real_tokens / loop_seconds if loop_seconds > 0 else 0.0,
        "cost/flops": flops,
        "cost/flops_executed": flops_executed,
        "memory/peak_bytes": float(peak_bytes),
    }
    if peak is not None and loop_seconds > 0:  # utilisation of the training steps, not of loading
        metrics["cost/mfu"] = flops / (loop_seconds * devices * peak)
    return metrics


TIME_NOTE = ("`cost/stage_seconds` (= `cost/wall_seconds`) is the whole train stage: tokenisation, model "
             "loading, training, checkpoint saves, the final save, sample generation and tracking; "
             "`cost/device_hours` and `cost/usd` price it. `cost/loop_seconds` is the training steps alone "
             "(`cost/loop_usd` its price); throughput and MFU use it.")


def cost_table(rows: dict[str, dict[str, float]], fmt: str = "md") -> str:
    """Markdown or CSV table: one row per run (arm), one column per cost metric."""
    columns = sorted({k for metrics in rows.values() for k in metrics})
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["run", *columns])
        for name, metrics in rows.items():
            writer.writerow([name, *(metrics.get(c, "") for c in columns)])
        return buffer.getvalue()
    lines = ["| run | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, metrics in rows.items():
        cells = [f"{metrics[c]:.6g}" if c in metrics else "" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if "cost/stage_seconds" in columns:
        lines += ["", TIME_NOTE]
    return "\n".join(lines) + "\n"
