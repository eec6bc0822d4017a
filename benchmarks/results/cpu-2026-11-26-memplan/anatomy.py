"""Where a CPU training step's peak memory goes, term by term, against the memory plan's terms.

One configuration per process (argv[1] is a JSON case like bench_memory_plan.py's --one; argv[2]
the model directory). Step 1 runs untracked (AdamW state appears then); step 2 runs under
torch's MemTracker (a dispatch mode that follows every tensor storage: parameters, gradients,
optimizer state, activations, temporaries) and reports the live bytes by category at the step's
peak, plus the bytes autograd saves for backward per decoder layer (saved-tensor hooks, unique
storages, parameters excluded) with and without recompute, and VmHWM over the step.
"""
import json
import sys
from pathlib import Path

import torch
from torch.distributed._tools.mem_tracker import MemTracker

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench_memory_plan import _status  # noqa: E402

from mosaic_it.config.train import TrainConfig  # noqa: E402
from mosaic_it.plan.estimate import estimate  # noqa: E402
from mosaic_it.plan.fit import setup_from_config  # noqa: E402
from mosaic_it.plan.shape import load_shape  # noqa: E402
from mosaic_it.train.batching import collate  # noqa: E402
from mosaic_it.train.data import Example  # noqa: E402
from mosaic_it.train.loop import sum_loss  # noqa: E402
from mosaic_it.train.model import load_model  # noqa: E402
from mosaic_it.train.optim import make_optimizer  # noqa: E402

MIB = 2 ** 20
case = json.loads(sys.argv[1])
torch.manual_seed(0)
torch.set_num_threads(1)
device = torch.device("cpu")
cfg = TrainConfig(model=case["model_dir"], method=case["method"], batch_size=case["batch"],
                  max_length=case["max_length"], gradient_checkpointing=case["gc"], batching=case["batching"],
                  dtype="fp32", device="cpu")
shape = load_shape(cfg.model)
examples = [Example(ids, list(ids)) for ids in torch.randint(0, shape.vocab, (cfg.batch_size, cfg.max_length)).tolist()]
batch = collate(examples, cfg.batching, cfg.max_length, 0)
model = load_model(cfg, device, None)
optimizer = make_optimizer(model, cfg)
model.train()


def step():
    (sum_loss(model, batch, device, None) / batch.target_tokens).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


step()

# Bytes autograd saves per decoder layer (parameters and views of them excluded).
params = {p.untyped_storage().data_ptr() for p in model.parameters()}
saved: dict[str, dict[int, int]] = {}
where = ["outside"]


def pack(t):
    ptr = t.untyped_storage().data_ptr()
    if ptr not in params:
        saved.setdefault(where[-1], {})[ptr] = t.untyped_storage().nbytes()
    return t


layers = [m for n, m in model.named_modules() if n.endswith(tuple(f"layers.{i}" for i in range(shape.layers)))]
for i, layer in enumerate(layers):
    layer.register_forward_pre_hook(lambda m, a, i=i: [where.append(f"layer{i}"), None][1])
    layer.register_forward_hook(lambda m, a, o: [where.pop(), None][1])
with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
    loss = sum_loss(model, batch, device, None) / batch.target_tokens
saved_mib = {k: sum(v.values()) / MIB for k, v in saved.items()}
loss.backward()
optimizer.zero_grad(set_to_none=True)
del loss

tracker = MemTracker()
tracker.track_external(model, optimizer, *batch.tensors.values(), batch.targets)
Path("/proc/self/clear_refs").write_text("5")
before = _status("VmRSS")
with tracker:
    step()
hwm = _status("VmHWM") - before
peak = {str(k): v / MIB for k, v in tracker.get_tracker_snapshot("peak")[device].items()}
setup = setup_from_config(cfg, "cpu", False)
import dataclasses  # noqa: E402

setup = dataclasses.replace(setup, tokens=batch.real_tokens, target_tokens=batch.target_tokens)
plan = {k: v / MIB for k, v in estimate(shape, setup).as_dict().items() if not k.startswith("params")}
print(json.dumps({"case": {k: v for k, v in case.items() if k != "model_dir"}, "tokens": batch.real_tokens,
                  "targets": batch.target_tokens, "saved_mib_per_scope": saved_mib, "tracker_peak_mib": peak,
                  "vmhwm_over_rss_mib": hwm / MIB, "plan_mib": plan}, indent=1))
