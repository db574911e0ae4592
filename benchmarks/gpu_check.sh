#!/usr/bin/env bash
# One prepared GPU check for a lent H200 (ends inside 8 minutes). Run from the repo root:
#   bash benchmarks/gpu_check.sh            # results under ${OUT:-benchmarks/results/gpu}
# 1) trainer throughput at the paper shape, K=1 B384 and K=4 B192, ~100 steps each (chain-steps/s,
#    MFU against the bf16 matmul rate measured in the same run, peak VRAM);
# 2) a packed sweep: 4 trials at 0.25 GPU, then 1 trial alone (benchmarks/bench_sweep.py --gpu-packing).
set -uo pipefail
OUT="${OUT:-benchmarks/results/gpu}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ! python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  python3 -m pip install -q -e . 2>&1 | tail -2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia_smi.txt"
timeout 300 python3 benchmarks/bench_trainer.py --paper --steps 100 --out "$OUT" 2>&1 | tee "$OUT/bench_trainer.txt"
if [ -f benchmarks/bench_sweep.py ]; then
  timeout 150 python3 benchmarks/bench_sweep.py --gpu-packing --out "$OUT" 2>&1 | tee "$OUT/bench_sweep_gpu.txt"
fi
