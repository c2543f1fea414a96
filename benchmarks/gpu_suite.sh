#!/usr/bin/env bash
# The GPU figures of the README in one go: training throughput, the fused loss, evaluation speed, scaling,
# a bf16 GPU run exported on CPU, and a 4-trial sweep. Usage: bash benchmarks/gpu_suite.sh [OUT_DIR]
# Needs a CUDA GPU and RECSYS_DATA_DIR with ml-100k/ and amazon-beauty/.
set -uo pipefail
out="${1:-benchmarks/results}"
mkdir -p "$out"
data="${RECSYS_DATA_DIR:-../shared/data}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"

# MF at a GPU-sized batch; softmax losses at 8192 (their logits grow with the batch squared).
python -m benchmarks.train_throughput --device cuda --data ml100k beauty --skip-tutorial \
  --variants mf_bpr mf_bpr_sparse mf_bpr_sparse_compiled mf_bpr_rowwise --batch-size 65536 2>&1 | grep -E '^\{|skipping' | tee "$out/throughput_gpu.log"
python -m benchmarks.train_throughput --device cuda --data ml100k beauty --skip-tutorial \
  --variants mf_softmax two_tower two_tower_sparse --batch-size 8192 2>&1 | grep -E '^\{|skipping' \
  | tee -a "$out/throughput_gpu.log"
python -m benchmarks.loss_speed --device cuda --sizes 1024x1024 8192x8192 16384x16384 2>&1 \
  | grep -E '^\{' | tee "$out/loss_speed_gpu.log"
python -m benchmarks.eval_speed --device cuda --data ml100k beauty synthetic_1m 2>&1 \
  | grep -E '^\{|skipping' | tee "$out/eval_gpu.log"
python -m benchmarks.scaling --device cuda --sizes 1e6 5e6 2e7 5e7 --batch-size 65536 2>&1 \
  | grep -E '^\{|exponent|failed' | tee "$out/scaling_gpu.log"

# A model trained on the GPU in bf16-mixed, exported and verified on a machine view without CUDA.
python scripts/train.py experiment=ml100k_mf trainer=gpu data.root="$data/ml-100k" \
  hydra.run.dir=/tmp/recsys_gpu_run trainer.enable_progress_bar=false > "$out/gpu_train.log" 2>&1
CUDA_VISIBLE_DEVICES="" python scripts/export.py run_dir=/tmp/recsys_gpu_run > "$out/gpu_export.log" 2>&1
echo "export exit: $?" | tee -a "$out/gpu_export.log"
cp /tmp/recsys_gpu_run/metrics.json "$out/gpu_run_metrics.json"

# A 4-trial sweep through the one-trial-per-GPU launcher (README "Sweeps and multi-GPU"): one
# after the other (n_jobs=1), then 4 at once (each on its own GPU where there are 4; sharing the
# GPU on a 1-GPU box). Needs the `sweeps` extra (hydra-joblib-launcher).
for n in 1 4; do
  SECONDS=0
  python scripts/train.py -m hydra/launcher=parallel hydra.launcher.n_jobs=$n experiment=ml100k_mf \
    data.root="$data/ml-100k" model.dim=32,64,128,256 trainer.enable_progress_bar=false \
    callbacks.progress_bar=null hydra.sweep.dir=/tmp/recsys_sweep_n$n > "$out/sweep_n$n.log" 2>&1
  echo "sweep of 4 trials, n_jobs=$n: exit $?, ${SECONDS} s" | tee -a "$out/sweep.txt"
  cp /tmp/recsys_sweep_n$n/summary.md "$out/sweep_n${n}_summary.md"
done
