#!/usr/bin/env bash
# The GPU check, prepared to run in one go on a machine with an NVIDIA GPU (the `device` tool):
#   1. the unit tests of the model, sampler, evaluation and checkpoints (they run on the CPU there too),
#   2. the notebook's 2x512 config (100x100 batches) trained on CUDA (cuDNN LSTM) through the real
#      `charrnn train` loop for a fixed budget, then `charrnn eval` and `charrnn sample` on the GPU,
#   3. the time-to-quality table for the notebook and default configs on CUDA.
# It needs python3 with a CUDA build of torch, numpy, safetensors, tqdm, pytest and hypothesis.
#
#   benchmarks/gpu_check.sh [minutes per run, default 2] [device, default cuda]
#
# `benchmarks/gpu_check.sh 0.2 cpu` runs the same script on a CPU (how it is checked where no GPU is lent).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-2}
device=${2:-cuda}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
anna=${CHARRNN_ANNA:-../shared/data/anna.txt}
run=$(mktemp -d)/notebook
trap 'rm -rf "$(dirname "$run")"' EXIT

"$python" - "$device" <<'EOF'
import sys, torch
device = sys.argv[1]
print("torch", torch.__version__, "| device", device, end="")
if device.startswith("cuda"):
    assert torch.cuda.is_available(), "no CUDA GPU here"
    print(" |", torch.cuda.get_device_name(), "| cuDNN", torch.backends.cudnn.version(), end="")
print()
EOF
"$python" -m pytest -q -p no:cacheprovider tests/test_model.py tests/test_sample.py tests/test_evaluate.py tests/test_checkpoint.py

seconds=$("$python" -c "print(max(1, round($minutes * 60)))")
"$python" -m charrnn train "$anna" --out "$run" --device "$device" --time-budget "$seconds" \
    --hidden 512 --layers 2 --embed-dim 83 --dropout 0.5 --batch-size 100 --seq-len 100 \
    --lr 2e-3 --eval-every 200 --save-every 200
"$python" -m charrnn eval "$run" "$anna" --device "$device"
"$python" -m charrnn sample "$run" --device "$device" --prime "Far" --length 300 --top-k 5 --seed 1
echo
"$python" -m charrnn sample "$run" --device "$device" --prime "Far" --length 200 --num-samples 64 --top-k 5 --seed 1 >/dev/null
"$python" benchmarks/bench_quality.py --configs notebook,default --budgets "$minutes" --set "device=$device"
