"""Per-device training memory: weights, gradients, optimizer state, activations, overhead.

Bytes per parameter (P total, T trainable; W devices under FSDP, 1 otherwise):
- full fine-tuning: fp32 master weights 4P, fp32 gradients 4P, AdamW moments 8P (all / W with FSDP);
- LoRA: frozen base 2P in bf16 (4P in fp32, ~0.5P + bf16 embeddings for 4-bit NF4), adapters
  4T, their gradients 4T and AdamW moments 8T.
Activations saved for backward, per token of a micro-batch (b samples x s tokens), in the
activation dtype (a = 2 under bf16 autocast, 4 in fp32), for one Llama-style decoder layer with
hidden h, attention widths q (heads x head_dim) and k (kv heads x head_dim), MLP width i: when
every weight trains, what saved-tensor hooks count (full_layer_bytes); for LoRA
    layer = 2h (the two RMSNorm outputs; their inputs are the residual stream, already counted)
            + 3q + 2k (rotated q and k, v, the attention output and its contiguous copy for o_proj)
            + 4i (gate, up, SiLU(gate), SiLU(gate) * up)
plus, with LoRA dropout, a byte mask over each targeted module's input and the rank-r output of
its A matrix. Attention itself keeps O(s) (flash / memory-efficient / the varlen path); `eager`
adds heads x s^2 x 2a per sample. The output head's vocabulary-sized tensors per target token,
at their peak in the loss's backward, are three fp32 tensors whatever the autocast dtype (the
loss runs on fp32 logits): the log-softmax output autograd saved, the gradient nll_loss's
backward writes into it and the gradient log-softmax's backward writes for the logits, 12V
bytes. The logits themselves (and under autocast their fp32 copy) are saved by no node and are
freed when the forward returns. (Torch's MemTracker, which follows every storage, on CPU: 766.5
MiB of temporaries and 383 MiB saved at the peak for 2,044 targets x 49,152 logits, exactly 12V;
under bf16 the H200's allocator peaks gave the same 12V, docs/benchmarks.md.) Gradient
checkpointing keeps each layer's input (h); backward recomputes one layer at a time, and only
after the head's backward has freed its vocabulary-sized tensors, so the larger of the two
transients is the peak, not their sum (on CPU the checkpointed step peaks in the loss's
backward, holding the head's tensors and the layer inputs, and nothing recomputed). Full
fine-tuning under bf16 autocast also keeps a bf16 copy of every weight from forward to backward
(2P; with gradient checkpointing only the output head's and one layer's, since recomputed layers
cast again; not under FSDP, whose bf16 policy gathers bf16 weights, counted below). The LoRA
layer term was checked against saved-tensor hooks on SmolLM2-135M (fp32): within 2%.
The peak is weights + optimizer state + max(activations, gradients). Gradients are freed
(set to None) after each step and appear during backward as the activations are freed, layer by
layer; a layer's activations outweigh its weights' gradients, so the step peaks either in the
loss's backward (no gradient yet: MemTracker counts none there, on the tiny Llama and on 135M) or
after backward (every gradient, no activations). (An earlier fit added gradients to activations
to cover an H200 1B full fine-tune's peak; the excess was the full fine-tuning layer term, which
was counted 1.56x too low under bf16 autocast and 1.17x in fp32.)
On CUDA the context and allocator add a fixed overhead and fragmentation (constants below).
Under FSDP each device also holds gathered (unsharded) weights in the compute dtype: the root
unit's (embeddings, head, final norm), which FSDP2 keeps gathered from forward to backward, and
two decoder layers (the one running and the one prefetched).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from mosaic_it.plan.shape import ModelShape

GIB = 1024 ** 3
CUDA_CONTEXT_BYTES = int(0.6 * GIB)  # CUDA context, cuBLAS workspaces: outside torch's allocator
FRAGMENTATION = 0.10  # allocator reserved over allocated at a training peak, typical with PyTorch 2


@dataclass(frozen=True)
class Setup:
    method: str  # lora | full
    dtype: str  # bf16 | fp32 (the resolved train.dtype)
    quantization: str = "none"
    batch_size: int = 1  # samples per micro-batch
    max_length: int = 2048
    gradient_checkpointing: bool = False
    world_size: int = 1
    sharding: str = "none"  # none (DDP replicas) | fsdp
    lora_r: int = 8
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    lora_dropout: float = 0.05
    attention: str = "sdpa"
    device: str = "cuda"  # cuda adds the context and fragmentation; cpu does not
    tokens: int | None = None  # tokens per micro-batch; default batch_size * max_length (worst case)
    target_tokens: int | None = None  # tokens with a loss; default: every token


@dataclass(frozen=True)
class MemoryPlan:
    weights: int
    gradients: int
    optimizer: int
    activations: int
    overhead: int
    params_total: int
    params_trainable: int
    gathered: int = 0  # FSDP: unsharded weights of the units in use

    @property
    def peak(self) -> int:
        held = max(self.activations, self.gradients)  # gradients appear as backward frees activations
        return self.weights + self.optimizer + held + self.overhead + self.gathered

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "peak": self.peak}


def sharded(setup: Setup) -> bool:
    """FSDP over several processes (with one, nothing is sharded)."""
    return setup.sharding == "fsdp" and setup.world_size > 1


def _weight_bytes(shape: ModelShape, setup: Setup) -> float:
    total = shape.total_params()
    if setup.method == "full":
        return 4.0 * total
    if setup.quantization == "4bit":
        linear = shape.layers * shape.layer_linear_params()
        # NF4: half a byte per weight plus double-quantized absmax (~0.127 bits); the rest stays bf16.
        return linear * (0.5 + 0.127 / 8) + 2.0 * (total - linear)
    return (2.0 if setup.dtype == "bf16" else 4.0) * total


def full_layer_bytes(shape: ModelShape, a: int) -> int:
    """Bytes per token one decoder layer saves for backward when every weight trains, as counted
    by saved-tensor hooks on CPU (tiny Llama, both dtypes: exact). Each RMSNorm saves its input,
    1/rms and the normalised input (for its weight's gradient); attention saves rotated q, k, v,
    a log-sum-exp per head and its output (o_proj's input is a view of it); the MLP saves gate,
    up, SiLU(gate) and the product down_proj reads."""
    h, q, k, i, heads = shape.hidden, shape.q_width, shape.kv_width, shape.intermediate, shape.heads
    if a == 4:  # each norm's output also, shared by the projections that read it
        return 4 * (2 * (3 * h + 1) + 2 * q + 2 * k + heads + 4 * i)
    # bf16 autocast over fp32 weights: the residual stream and the norms stay fp32, and every
    # projection saves its own bf16 cast of the norm's output (q, k, v; gate, up: five casts).
    return 2 * (8 * h + 4) + 5 * 2 * h + 2 * (2 * q + 2 * k) + 4 * heads + 2 * 4 * i


def activation_bytes(shape: ModelShape, setup: Setup) -> float:
    a = 2 if setup.dtype == "bf16" else 4
    tokens = setup.tokens if setup.tokens is not None else setup.batch_size * setup.max_length
    targets = setup.target_tokens if setup.target_tokens is not None else tokens
    h, q, k, i = shape.hidden, shape.q_width, shape.kv_width, shape.intermediate
    layer = full_layer_bytes(shape, a) if setup.method == "full" else (2 * h + 3 * q + 2 * k + 4 * i) * a
    if setup.method == "lora" and setup.lora_dropout > 0:
        dims = shape.module_dims()
        layer += sum(dims[t][0] + setup.lora_r * a for t in setup.lora_targets)
    per_sample = tokens / max(setup.batch_size, 1)
    attention = shape.heads * per_sample * 2 * a if setup.attention == "eager" else 0  # per token
    layer_total = (layer + attention) * tokens
    head = targets * shape.vocab * 12 + 2 * h * a * tokens
    if setup.gradient_checkpointing:
        # Recompute starts after the head's backward has freed its tensors: they never coexist.
        residual = 4 if setup.method == "full" else a  # fp32 embeddings keep the residual stream fp32
        decoder_and_head = shape.layers * h * residual * tokens + max(layer_total, head)
    else:
        decoder_and_head = shape.layers * layer_total + head
    # Autocast's bf16 casts of fp32 weights; FSDP's bf16 policy gathers bf16 weights instead (`gathered`).
    # Recomputed layers keep none of theirs: one layer's at a time, plus the output head's.
    weight_copies = 0
    if setup.method == "full" and a == 2 and not sharded(setup):
        weight_copies = 2 * (shape.vocab * h + shape.layer_linear_params() if setup.gradient_checkpointing
                             else shape.total_params())
    return decoder_and_head + weight_copies


def estimate(shape: ModelShape, setup: Setup) -> MemoryPlan:
    total = shape.total_params()
    trainable = total if setup.method == "full" else shape.lora_params(setup.lora_r, list(setup.lora_targets))
    shards = setup.world_size if sharded(setup) else 1
    weights = _weight_bytes(shape, setup)
    if setup.method == "full":
        gradients, optimizer = 4.0 * trainable, 8.0 * trainable
    else:
        weights += 4.0 * trainable
        gradients, optimizer = 4.0 * trainable, 8.0 * trainable
    activations = activation_bytes(shape, setup)
    overhead = 0.0
    if setup.device == "cuda":
        overhead = CUDA_CONTEXT_BYTES + FRAGMENTATION * (weights / shards + optimizer / shards + activations)
    return MemoryPlan(int(weights / shards), int(gradients / shards), int(optimizer / shards), int(activations),
                      int(overhead), total, trainable, int(gathered_bytes(shape, setup)))


def gathered_bytes(shape: ModelShape, setup: Setup) -> float:
    """FSDP's unsharded weights at a time: the root unit and two decoder layers, in compute dtype."""
    if not sharded(setup):
        return 0.0
    per_weight = 2 if setup.dtype == "bf16" else 4  # bf16: the mixed-precision policy gathers in bf16
    layer = shape.layer_linear_params() + 2 * shape.hidden
    if setup.method == "lora":
        layer += shape.lora_params(setup.lora_r, list(setup.lora_targets)) // shape.layers
    return per_weight * (shape.embedding_params() + shape.hidden + 2 * layer)
