"""Memory plan: parameter counts from config.json, the byte formulas, advice, CLI and pre-flight."""
from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from mosaic_it.cli import app
from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError
from mosaic_it.plan.estimate import GIB, Setup, activation_bytes, estimate
from mosaic_it.plan.fit import cheapest_fit, check_fits, refusal
from mosaic_it.plan.shape import KNOWN, load_shape, shape_from_config

LLAMA3_8B = shape_from_config(KNOWN["meta-llama/Meta-Llama-3-8B"])
P_8B = 8_030_261_248  # the published parameter count of Llama-3-8B


def test_parameter_counts_of_known_configs():
    assert LLAMA3_8B.total_params() == P_8B
    assert shape_from_config(KNOWN["meta-llama/Llama-2-7b-hf"]).total_params() == 6_738_415_616
    # r=8 on q,k,v,o of 32 layers: q,o are 4096x4096, k,v are 4096x1024 (8 kv heads of 128).
    assert LLAMA3_8B.lora_params(8, ["q_proj", "k_proj", "v_proj", "o_proj"]) == 32 * 8 * (
        2 * 8192 + 2 * (4096 + 1024))


def test_counts_from_config_json_match_the_loaded_model(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    from mosaic_it.train.model import count_params, load_model

    shape = load_shape(str(tiny_llama_dir))
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    assert shape.total_params() == sum(p.numel() for p in model.parameters())
    lora = load_model(TrainConfig(model=str(tiny_llama_dir), method="lora"), torch.device("cpu"))
    assert shape.lora_params(8, ["q_proj", "k_proj", "v_proj", "o_proj"]) == count_params(lora)["trainable"]


def test_weights_gradients_and_optimizer_bytes_of_an_8b_llama():
    lora = estimate(LLAMA3_8B, Setup(method="lora", dtype="bf16", device="cpu"))
    trainable = lora.params_trainable
    assert lora.weights == 2 * P_8B + 4 * trainable  # bf16 base, fp32 adapters
    assert (lora.gradients, lora.optimizer) == (4 * trainable, 8 * trainable)
    full = estimate(LLAMA3_8B, Setup(method="full", dtype="bf16", device="cpu"))
    assert (full.weights, full.gradients, full.optimizer) == (4 * P_8B, 4 * P_8B, 8 * P_8B)
    sharded = estimate(LLAMA3_8B, Setup(method="full", dtype="bf16", device="cpu", world_size=8, sharding="fsdp"))
    assert sharded.weights == 4 * P_8B // 8 and sharded.optimizer == 8 * P_8B // 8
    replicated = estimate(LLAMA3_8B, Setup(method="full", dtype="bf16", device="cpu", world_size=8))
    assert replicated.weights == full.weights  # DDP keeps a whole copy per GPU
    qlora = estimate(LLAMA3_8B, Setup(method="lora", dtype="bf16", quantization="4bit", device="cpu"))
    assert 5.0 * GIB < qlora.weights < 6.0 * GIB  # NF4 decoder (~3.5 GiB) + bf16 embeddings and head (~2 GiB)
    assert lora.peak == lora.weights + lora.optimizer + max(lora.activations, lora.gradients)


def test_activation_formula_per_layer_and_head():
    shape = shape_from_config(dict(vocab_size=100, hidden_size=8, intermediate_size=16, num_hidden_layers=3,
                                   num_attention_heads=2, num_key_value_heads=1))
    setup = Setup(method="full", dtype="fp32", batch_size=2, max_length=5, device="cpu")
    # h=8, q=8, kv=4, 2 heads, i=16 elements per token: two norms (input, 1/rms, normalised,
    # output), rotated q and k, v, a log-sum-exp per head, the attention output, four MLP tensors.
    layer = 2 * (3 * 8 + 1) + 2 * 8 + 2 * 4 + 2 + 4 * 16
    head = 10 * 100 * 12 + 2 * 8 * 4 * 10  # saved log-softmax, its gradient, the logits' gradient; final norm
    assert activation_bytes(shape, setup) == 3 * layer * 4 * 10 + head
    recompute = Setup(method="full", dtype="fp32", batch_size=2, max_length=5, device="cpu",
                      gradient_checkpointing=True)
    # The layer inputs stay; one recomputed layer and the head's tensors never coexist.
    assert activation_bytes(shape, recompute) == 3 * 8 * 4 * 10 + max(layer * 4 * 10, head)
    wide = shape_from_config(dict(vocab_size=4, hidden_size=8, intermediate_size=16, num_hidden_layers=3,
                                  num_attention_heads=2, num_key_value_heads=1))
    wide_head = 10 * 4 * 12 + 2 * 8 * 4 * 10
    assert layer * 4 * 10 > wide_head
    assert activation_bytes(wide, recompute) == 3 * 8 * 4 * 10 + layer * 4 * 10


def test_the_cheapest_change_that_fits():
    lora = Setup(method="lora", dtype="bf16", batch_size=4, max_length=2048, device="cuda")
    assert estimate(LLAMA3_8B, lora).peak > 64 * GIB
    assert cheapest_fit(LLAMA3_8B, lora, 64 * GIB, grad_accum=2) == "train.batch_size=2 train.grad_accum=4"
    full = Setup(method="full", dtype="bf16", batch_size=1, max_length=2048, device="cuda",
                 gradient_checkpointing=True)
    assert cheapest_fit(LLAMA3_8B, full, 80 * GIB) == "train.method=lora"
    assert cheapest_fit(LLAMA3_8B, full, 16 * GIB) == "train.method=lora train.quantization=4bit (QLoRA)"
    assert cheapest_fit(LLAMA3_8B, full, 1 * GIB) is None
    line = refusal(LLAMA3_8B, full, estimate(LLAMA3_8B, full), 80 * GIB, 1)
    assert "\n" not in line and "cheapest change that fits: train.method=lora" in line


def test_sharding_is_offered_and_counted_for_several_processes(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text(json.dumps(KNOWN["meta-llama/Meta-Llama-3-8B"]), encoding="utf-8")
    cfg = TrainConfig(model=str(tmp_path), method="full", batch_size=1, max_length=2048, gradient_checkpointing=True)
    monkeypatch.setattr("mosaic_it.plan.fit.device_capacity", lambda device, index=0: 80 * GIB)
    with pytest.raises(MosaicItError, match="cheapest change that fits: train.distributed=fsdp "):
        check_fits(cfg, "cuda", True, world_size=8)  # 8 replicas of 8B with AdamW state do not fit
    plan = check_fits(cfg.model_copy(update={"distributed": "fsdp"}), "cuda", True, world_size=8)
    assert plan is not None and plan.optimizer == 8 * plan.params_total // 8
    # Gathered in bf16: embeddings and untied head (the root unit, with the final norm) and two layers.
    layer = LLAMA3_8B.layer_linear_params() + 2 * LLAMA3_8B.hidden
    assert plan.gathered == 2 * (2 * 128256 * 4096 + 4096 + 2 * layer)
    held = max(plan.activations, plan.gradients)
    assert plan.peak == plan.weights + plan.optimizer + held + plan.overhead + plan.gathered
    with pytest.raises(MosaicItError, match="cheapest change that fits: train.method=lora "):
        check_fits(cfg.model_copy(update={"distributed": "fsdp"}), "cuda", True, world_size=1)  # nothing to shard


def test_train_refuses_a_run_that_cannot_fit_before_loading(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text(json.dumps(KNOWN["meta-llama/Meta-Llama-3-8B"]), encoding="utf-8")
    cfg = TrainConfig(model=str(tmp_path), method="full", batch_size=2, max_length=4096)
    monkeypatch.setattr("mosaic_it.plan.fit.device_capacity", lambda device, index=0: 64 * GIB)
    with pytest.raises(MosaicItError, match=r"needs about \d+\.\d GiB per device but 64\.0 GiB") as err:
        check_fits(cfg, "cpu", False)
    assert str(err.value).endswith("cheapest change that fits: train.batch_size=1 train.grad_accum=2 "
                                   "train.gradient_checkpointing=true and train.method=lora "
                                   "(mosaic-it plan shows the breakdown)")


def test_plan_command_prints_the_breakdown_and_exits_1_when_it_does_not_fit(tiny_llama_dir):
    runner = CliRunner()
    args = ["plan", "--device", "cpu", "-S", f"train.model={tiny_llama_dir}", "-S", "train.max_length=256"]
    fits = runner.invoke(app, [*args, "--memory-gib", "8"])
    assert fits.exit_code == 0, fits.output
    assert "weights" in fits.output and fits.output.strip().endswith("fits")
    assert "(gradients and activations: the larger only)" in next(line for line in fits.output.splitlines() if "peak" in line)
    tight = runner.invoke(app, [*args, "-S", "train.batch_size=64", "--memory-gib", "0.5"])
    assert tight.exit_code == 1
    assert "cheapest change that fits: train.batch_size=" in tight.output


def test_the_paper_parameter_set_loads_and_its_lora_run_fits_one_80gb_gpu(repo_root):
    import dataclasses

    from mosaic_it.config import load_params
    from mosaic_it.plan.fit import setup_from_config

    params = load_params(repo_root / "params" / "paper.yaml", [])
    assert (params.study.baseline_epochs, params.study.mosaic_epochs, params.augment.max_tokens) == (3, 4, 2048)
    setup = setup_from_config(params.train, "cuda", bf16=True)
    shape = load_shape(params.train.model)
    assert shape.total_params() == P_8B
    assert estimate(shape, setup).peak > 80 * GIB  # so gradient_checkpointing=auto turns it on ...
    assert 20 * GIB < estimate(shape, dataclasses.replace(setup, gradient_checkpointing=True)).peak < 80 * GIB


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_planning_for_a_gpu_on_a_machine_without_one_asks_for_its_memory(tiny_llama_dir):
    result = CliRunner().invoke(app, ["plan", "-S", f"train.model={tiny_llama_dir}"])
    assert isinstance(result.exception, MosaicItError)
    assert "give the GPU's memory with --memory-gib" in str(result.exception)


def test_bf16_head_and_full_fine_tuning_weight_copies():
    shape = shape_from_config(dict(vocab_size=100, hidden_size=8, intermediate_size=16, num_hidden_layers=3,
                                   num_attention_heads=2, num_key_value_heads=1))
    layer = 2 * 8 + 3 * 8 + 2 * 4 + 4 * 16
    head = 10 * 100 * 12 + 2 * 8 * 2 * 10  # bf16: 12 bytes per logit at the loss's backward peak
    lora = Setup(method="lora", dtype="bf16", batch_size=2, max_length=5, device="cpu", lora_dropout=0.0)
    assert activation_bytes(shape, lora) == 3 * layer * 2 * 10 + head
    # fp32 norms (input, 1/rms, normalised), five bf16 casts of their outputs, bf16 q, k, v and
    # attention output, an fp32 log-sum-exp per head, four bf16 MLP tensors: bytes per token.
    full_layer = 2 * (8 * 8 + 4) + 5 * 2 * 8 + 2 * (2 * 8 + 2 * 4) + 4 * 2 + 2 * 4 * 16
    full = Setup(method="full", dtype="bf16", batch_size=2, max_length=5, device="cpu")
    assert activation_bytes(shape, full) == 3 * full_layer * 10 + head + 2 * shape.total_params()
    # Recomputed layers cast their weights again in backward: only the head's and one layer's copies are held.
    recompute = Setup(method="full", dtype="bf16", batch_size=2, max_length=5, device="cpu", gradient_checkpointing=True)
    copies = 2 * (100 * 8 + shape.layer_linear_params())
    # The layer inputs kept for recompute are the fp32 residual stream (fp32 embeddings).
    assert activation_bytes(shape, recompute) == 3 * 8 * 4 * 10 + max(full_layer * 10, head) + copies


def test_checkpointed_activations_equal_what_a_real_step_holds_at_its_peak(tiny_llama_dir):
    """One fp32 training step with gradient checkpointing, every tensor storage followed by torch's
    MemTracker: at the step's peak (the loss's backward) the live activations and temporaries are
    the layer inputs and three fp32 vocabulary-sized tensors per target, as the plan counts. The
    earlier formula (16 bytes per logit, plus one recomputed layer on top) was 33% over here."""
    import dataclasses

    from torch.distributed._tools.mem_tracker import MemTracker

    from mosaic_it.plan.fit import setup_from_config
    from mosaic_it.train.batching import collate
    from mosaic_it.train.data import Example
    from mosaic_it.train.loop import sum_loss
    from mosaic_it.train.model import load_model
    from mosaic_it.train.optim import make_optimizer

    torch.manual_seed(0)
    cfg = TrainConfig(model=str(tiny_llama_dir), method="full", batch_size=2, max_length=64,
                      gradient_checkpointing=True, dtype="fp32", device="cpu")
    shape = load_shape(cfg.model)
    ids = torch.randint(0, shape.vocab, (2, 64)).tolist()
    batch = collate([Example(row, list(row)) for row in ids], "dynamic", 64, 0)
    cpu = torch.device("cpu")
    model = load_model(cfg, cpu)
    optimizer = make_optimizer(model, cfg)
    model.train()

    def step():
        (sum_loss(model, batch, cpu, None) / batch.target_tokens).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # AdamW's moments exist from the first step on
    tracker = MemTracker()
    tracker.track_external(model, optimizer, *batch.tensors.values(), batch.targets)
    with tracker:
        step()
    peak = {str(kind).rsplit(".", 1)[-1]: size for kind, size in tracker.get_tracker_snapshot("peak")[cpu].items()}
    setup = dataclasses.replace(setup_from_config(cfg, "cpu", False), tokens=batch.real_tokens,
                                target_tokens=batch.target_tokens)
    plan = estimate(shape, setup)
    assert peak["PARAM"] == plan.weights
    assert peak["ACT"] + peak["TEMP"] == pytest.approx(plan.activations, rel=0.02)
    assert peak["TEMP"] == 2 * 4 * shape.vocab * batch.target_tokens  # two fp32 gradients of the log-probs


@pytest.mark.parametrize("amp", [None, torch.bfloat16])
def test_full_fine_tuning_layer_term_equals_what_autograd_saves(tiny_llama_dir, amp):
    """Saved-tensor hooks over the second decoder layer of a tiny Llama, every weight training:
    the bytes of the distinct storages it saves (weights and autocast's weight casts aside)
    equal the plan's per-token layer term times the tokens, in fp32 and under bf16 autocast."""
    from mosaic_it.plan.estimate import full_layer_bytes
    from mosaic_it.train.batching import collate
    from mosaic_it.train.data import Example
    from mosaic_it.train.loop import sum_loss
    from mosaic_it.train.model import load_model

    torch.manual_seed(0)
    cfg = TrainConfig(model=str(tiny_llama_dir), method="full", batch_size=2, max_length=48, device="cpu",
                      dtype="bf16" if amp else "fp32")
    shape = load_shape(cfg.model)
    ids = torch.randint(0, shape.vocab, (2, 48)).tolist()
    batch = collate([Example(row, list(row)) for row in ids], "dynamic", 48, 0)
    model = load_model(cfg, torch.device("cpu"), amp)
    model.train()
    # Weights, their transposes and autocast's casts of them; with 96 tokens no activation has these shapes.
    weight_shapes = {tuple(sorted(p.shape)) for p in model.parameters()}
    layers = [m for name, m in model.named_modules() if name.endswith(("layers.0", "layers.1"))]
    saved: list[dict[int, int]] = [{}, {}]
    inside = [None]
    for index, layer in enumerate(layers):
        layer.register_forward_pre_hook(lambda m, a, index=index: inside.__setitem__(0, index))
        layer.register_forward_hook(lambda m, a, o: inside.__setitem__(0, None))

    def pack(tensor):
        if inside[0] is not None and tuple(sorted(tensor.shape)) not in weight_shapes:
            saved[inside[0]][tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        sum_loss(model, batch, torch.device("cpu"), amp)
    own = {ptr: size for ptr, size in saved[1].items() if ptr not in saved[0]}  # rotary cos/sin are shared
    a = 2 if amp else 4
    assert sum(own.values()) == full_layer_bytes(shape, a) * batch.real_tokens
