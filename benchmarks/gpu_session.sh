#!/usr/bin/env bash
# The GPU checks of docs/benchmarks.md, in one command for one short GPU lease, most valuable first.
# Every step has its own time limit and writes its table and JSON to $OUT as soon as it ends, so a
# lease cut short still returns what finished. Models are random-init at published shapes (cost and
# memory depend on shape, not weights); the machine needs torch with CUDA, nothing downloaded.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_session.sh                  # the first session's checks
#   OUT=/tmp/gpu bash benchmarks/gpu_session.sh model_1b mfu_1b    # or the named steps, in order
#
# Optional: wheels in .whl/ (installed to /tmp/site first: our pinned transformers, peft, pydantic)
# and the embedded tokenizer in .gpu/cache/ (MOSAIC_IT_CACHE), for machines without them.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}
WORK=${WORK:-/tmp/gpu-work}
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
[ -d .gpu/cache ] && export MOSAIC_IT_CACHE=$PWD/.gpu/cache
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
PY=${PY:-python3}

step() {  # step NAME SECONDS COMMAND...: run with a limit, keep its log, note how it ended
  local name=$1 limit=$2; shift 2
  local started=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "$name: exit $? after $((SECONDS - started)) s" | tee -a "$OUT/steps.txt"
  tail -n 12 "$OUT/$name.log"
}

{ nvidia-smi; $PY -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers',
  transformers.__version__, 'peft', peft.__version__, torch.cuda.get_device_name())"; } > "$OUT/env.log" 2>&1
tail -n 1 "$OUT/env.log"

# Each step is a function; the models it needs come from the model_* steps run before it.
model_1b() { step model_1b 90 $PY benchmarks/random_model.py 1b "$WORK/1b" --dtype bf16; }
model_3b() { step model_3b 90 $PY benchmarks/random_model.py 3b "$WORK/3b" --dtype bf16; }
model_8b() { step model_8b 100 $PY benchmarks/random_model.py 8b "$WORK/8b" --dtype bf16; }
# 1B full fine-tuning in bf16: tokens/s and MFU per batching regime, both arms.
train_1b() {
  step train_1b 180 $PY benchmarks/bench_train.py --model "$WORK/1b" --method full --regimes packed dynamic \
    --max-length 2048 --batch-size 8 --n-records 256 --out "$OUT/train_1b.json"
}
# Kernel efficiency: full 8 x 2048 rows, eager against train.compile, steady-state MFU.
mfu_1b() {
  step mfu_1b 240 $PY benchmarks/bench_mfu.py --model "$WORK/1b" --variants eager compile --steps 14 --warmup 4 \
    --out "$OUT/mfu_1b.json"
}
# The pre-flight check on this GPU: an 8B full fine-tune at batch 8 x 2048 must be refused, naming a change.
preflight() {
  step preflight 40 $PY - "$WORK/8b" <<'PYTHON'
import sys
from mosaic_it.config.train import TrainConfig
from mosaic_it.errors import MosaicItError
from mosaic_it.plan.fit import check_fits
for method, gc in (("full", False), ("lora", False)):
    cfg = TrainConfig(model=sys.argv[1], method=method, batch_size=8, max_length=2048, gradient_checkpointing=gc)
    try:
        plan = check_fits(cfg, "cuda", True)
        print(f"8b {method} 8 x 2048: fits, plan {plan.peak / 2**30:.1f} GiB")
    except MosaicItError as exc:
        print(f"8b {method} 8 x 2048: refused: {exc}")
PYTHON
}
# The memory plan against the allocator's peak (1B full/LoRA, 8B LoRA with and without recompute).
plan() {
  step plan 150 $PY benchmarks/bench_memory_plan.py --device cuda --model "1b=$WORK/1b" --model "8b=$WORK/8b" \
    --out "$OUT/plan.jsonl"
}
# The same on shapes and settings the plan was not fitted to.
plan_check() {
  step plan_check 150 $PY benchmarks/bench_memory_plan.py --device cuda --cases check --model "1b=$WORK/1b" \
    --model "3b=$WORK/3b" --out "$OUT/plan_check.jsonl"
}
# An 8B LoRA smoke run through `run_training` (pre-flight plan included) on packed mosaic samples.
train_8b_lora() {
  step train_8b_lora 120 $PY benchmarks/bench_train.py --model "$WORK/8b" --method lora --regimes packed \
    --arms mosaic --max-steps 10 --max-length 2048 --batch-size 4 --n-records 256 --out "$OUT/train_8b_lora.json"
}
# Exact resume on CUDA (fused AdamW, bf16 autocast): killed after step 5, resumed, against two straight runs.
resume_cuda() {
  step model_tiny 60 $PY benchmarks/random_model.py tiny "$WORK/tiny"
  step resume_cuda 150 $PY benchmarks/gpu_resume_check.py "$WORK/tiny" --out "$OUT/resume_cuda.json"
}
# Evaluation generation: static HF batches against the continuous decoder (1B, bf16).
generate() {
  step generate 120 $PY benchmarks/bench_generate.py --model "$WORK/1b" --device cuda --prompts 48 \
    --max-new-tokens 128 --rounds 2 --static-batch 16 --slots 16 48 --skip-batch-1 --out "$OUT/generate.json"
}

for name in "${@:-model_1b train_1b model_8b preflight plan train_8b_lora generate}"; do
  for one in $name; do "$one"; done
done
