"""What a training run cost: device time, money, tokens, FLOPs, utilisation, memory.

FLOPs per trained token (N = matmul parameters, i.e. every Linear weight including the
output head and LoRA matrices; embeddings are lookups and cost nothing):
- forward: 2N, plus causal attention 2 * layers * d_attn * T per token of a T-token sample
  (QK^T and AV over on average T/2 keys, 2 FLOPs per multiply-add);
- full fine-tuning backward: 4N (gradients w.r.t. activations and w.r.t. weights);
- LoRA backward: 2N for activation gradients through every (frozen) layer plus 2 N_trainable
  for the adapter weight gradients; frozen weights get no weight gradient;
- attention backward: twice its forward.
`cost/flops` counts real tokens only (useful work) and is what MFU divides by device time;
`cost/flops_executed` also counts padded positions and the extra forward of gradient
checkpointing, i.e. what the device actually computed.
"""
from __future__ import annotations

import csv
import io
import resource
import sys
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

    def train_flops(self, tokens: int, sum_sq_len: int, executed: bool = False) -> float:
        attention_fwd = 2 * self.layers * self.attn_width * sum_sq_len
        flops = self.per_token_linear() * tokens + 3 * attention_fwd
        if executed and self.recompute:
            flops += 2 * self.matmul_params * tokens + attention_fwd
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


def cost_metrics(*, wall_seconds: float, devices: int, usd_per_device_hour: float, real_tokens: int,
                 padded_tokens: int, flops: float, flops_executed: float, peak: float | None,
                 peak_bytes: int) -> dict[str, float]:
    device_hours = wall_seconds * devices / 3600.0
    metrics = {
        "cost/wall_seconds": wall_seconds,
        "cost/device_hours": device_hours,
        "cost/usd": device_hours * usd_per_device_hour,
        "tokens/real": float(real_tokens),
        "tokens/padded": float(padded_tokens),
        "tokens/padding": float(padded_tokens - real_tokens),
        "tokens/padding_fraction": (padded_tokens - real_tokens) / padded_tokens if padded_tokens else 0.0,
        "throughput/tokens_per_second": real_tokens / wall_seconds if wall_seconds > 0 else 0.0,
        "cost/flops": flops,
        "cost/flops_executed": flops_executed,
        "memory/peak_bytes": float(peak_bytes),
    }
    if peak is not None and wall_seconds > 0:
        metrics["cost/mfu"] = flops / (wall_seconds * devices * peak)
    return metrics


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
    return "\n".join(lines) + "\n"
