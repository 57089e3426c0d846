#!/usr/bin/env bash
# The GPU check, prepared to run in one go on a machine with an NVIDIA GPU (the `device` tool):
#   1. the CUDA tests (training at each precision, resume, checkpoints read on the CPU, evaluation and
#      sampling agreeing with the CPU) and the model, sampler, evaluation and checkpoint tests,
#   2. the training step by precision (fp32, bf16, fp16) beside the plain notebook port, three sizes,
#   3. the notebook's 2x512 config (100x100 batches) trained on CUDA (cuDNN LSTM, fp32: on an H200 mixed
#      precision measured no faster at this size) through the real `charrnn train` loop for a fixed budget,
#      then `charrnn eval` and `charrnn sample` on the GPU,
#   4. the notebook config's validation loss after the same budget at each precision,
#   5. the same training launched by torchrun (world size 1), its chars/s beside the plain run's.
# It needs python3 with a CUDA build of torch, numpy, safetensors, tqdm, pytest and hypothesis; the
# corpora in $CHARRNN_DATA_DIR (default ../shared/data).
#
#   benchmarks/gpu_check.sh [minutes per run, default 1] [device, default cuda] [precisions, default fp32,bf16,fp16]
#
# `benchmarks/gpu_check.sh 0.1 cpu fp32,bf16` runs the same script on a CPU (how it is checked where no GPU is lent).
set -uo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-1}
device=${2:-cuda}
precisions=${3:-fp32,bf16,fp16}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export CHARRNN_DATA_DIR=${CHARRNN_DATA_DIR:-$(cd .. && pwd)/shared/data}
python=${PYTHON:-python3}
anna=$CHARRNN_DATA_DIR/anna.txt
run=$(mktemp -d)/notebook
trap 'rm -rf "$(dirname "$run")"' EXIT
failed=()
step() {  # run one part; a failure is reported at the end instead of hiding the parts after it
    echo; echo "=== $*"
    "$@" || failed+=("$*")
}

"$python" - "$device" <<'PY'
import sys, torch
device = sys.argv[1]
print("torch", torch.__version__, "| device", device, end="")
if device.startswith("cuda"):
    assert torch.cuda.is_available(), "no CUDA GPU here"
    print(" |", torch.cuda.get_device_name(), "| cuDNN", torch.backends.cudnn.version(), end="")
print()
PY
step "$python" -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py tests/test_model.py tests/test_sample.py \
    tests/test_evaluate.py tests/test_checkpoint.py
step "$python" benchmarks/bench_precision.py --device "$device" --precisions "$precisions"

seconds=$("$python" -c "print(max(1, round($minutes * 60)))")
step "$python" -m charrnn train "$anna" --out "$run" --device "$device" --time-budget "$seconds" \
    --hidden 512 --layers 2 --embed-dim 83 --dropout 0.5 --batch-size 100 \
    --seq-len 100 --lr 1e-3 --lr-schedule constant --warmup-steps 0 --eval-every 200 --save-every 200
# The same run through torchrun (one process: the launcher, the rank's device cuda:LOCAL_RANK), its
# chars/s beside the plain run's: one GPU is all that is lent, and NCCL will not put two ranks on one.
step "$python" -m torch.distributed.run --nproc-per-node 1 -m charrnn train "$anna" --out "$run-torchrun" \
    --device "$device" --time-budget "$seconds" --hidden 512 --layers 2 --embed-dim 83 --dropout 0.5 \
    --batch-size 100 --seq-len 100 --lr 1e-3 --lr-schedule constant --warmup-steps 0 --eval-every 200 --save-every 200
step "$python" - "$run" "$run-torchrun" <<'PY'
import csv, statistics, sys
for run in sys.argv[1:]:
    rows = list(csv.DictReader(open(f"{run}/metrics.csv")))
    rows = rows[min(10, len(rows) // 2):]  # past the first steps' warm-up, when there are enough
    print(run.rsplit("/", 1)[-1], f"{statistics.median(float(r['chars_per_s']) for r in rows):,.0f} chars/s")
PY
step "$python" -m charrnn eval "$run" "$anna" --device "$device"
step "$python" -m charrnn sample "$run" --device "$device" --prime "Far" --length 300 --top-k 5 --seed 1
sample_64() { "$python" -m charrnn sample "$run" --device "$device" --prime "Far" --length 200 --num-samples 64 \
    --top-k 5 --seed 1 >/dev/null; }
step sample_64
for precision in ${precisions//,/ }; do
    step "$python" benchmarks/bench_quality.py --configs notebook --budgets "$minutes" \
        --set "device=$device" --set "precision=$precision" --label "$precision"
done
echo
if ((${#failed[@]})); then printf 'FAILED: %s\n' "${failed[@]}"; exit 1; fi
echo "gpu check: all parts passed"
