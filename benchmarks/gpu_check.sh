#!/usr/bin/env bash
# One GPU check: the `gpu` tests and the GPU benchmarks, every figure printed (about 8 minutes on
# one H100). Run from anywhere: `bash benchmarks/gpu_check.sh [OUTPUT_DIR]`.
#
# Needs CUDA PyTorch with torchvision, and the Python packages nnprune uses: torch-pruning,
# fvcore (with iopath, yacs, termcolor, portalocker, tabulate), pandas, scipy, pyyaml, tqdm and
# pytest. On a bare machine that has only CUDA PyTorch, put wheels of the missing ones in a
# folder and set WHEELS=that/folder: they are installed into a private directory, nothing else
# is touched. Fashion-MNIST: data/FashionMNIST/raw, or the four .gz files in FASHION_GZ=folder
# (default: Debian's /usr/share/datasets/fashion-mnist).
#
# GPU_CHECK_DRY_RUN=1 runs everything on the CPU at tiny sizes (checks the script, not the GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-/tmp/nnprune-gpu-check}
mkdir -p "$OUT_DIR"
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if [ -n "${WHEELS:-}" ]; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --target /tmp/nnprune-site "$WHEELS"/*.whl \
    || { echo "could not install the wheels in $WHEELS"; exit 2; }
  export PYTHONPATH=/tmp/nnprune-site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
$PYTHON - <<'PY' || { echo "missing packages: see the list at the top of benchmarks/gpu_check.sh"; exit 2; }
import importlib
for name in ("torch", "torchvision", "torch_pruning", "fvcore", "pandas", "scipy", "yaml", "tqdm", "pytest"):
    importlib.import_module(name)
import torch
print(f"torch {torch.__version__}, CUDA {torch.cuda.is_available()}",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
raw=data/FashionMNIST/raw
if [ ! -f $raw/train-images-idx3-ubyte ]; then
  source_dir=${FASHION_GZ:-/usr/share/datasets/fashion-mnist}
  mkdir -p $raw
  for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    gunzip -c "$source_dir/$name.gz" > "$raw/$name.part" && mv "$raw/$name.part" "$raw/$name" \
      || { echo "Fashion-MNIST not found in $source_dir: set FASHION_GZ"; exit 2; }
  done
fi

status=0
step() {   # step NAME SECONDS COMMAND...: run with a time limit, report and go on
  local name=$1 limit=$2; shift 2
  echo "== $name ($(date +%T))"
  local started=$SECONDS
  timeout "$limit" "$@" || { echo "FAILED or MISSED: $name"; status=1; }
  echo "== $name: $((SECONDS - started)) s"
}
if [ "${GPU_CHECK_DRY_RUN:-0}" = 1 ]; then
  step "gpu tests (CPU dry run)" 900 $PYTHON -m pytest -q -m gpu --gpu-device cpu -p no:cacheprovider tests/test_gpu.py
  step "bench_latency (CPU)" 600 $PYTHON benchmarks/bench_latency.py --device cpu --rounds 1 --repeats 3
  step "bench_training (CPU)" 600 $PYTHON benchmarks/bench_training.py --device cpu --rounds 1 --batches 20
  step "bench_gpu_pipeline (CPU dry run)" 900 $PYTHON benchmarks/bench_gpu_pipeline.py --dry-run \
    --out "$OUT_DIR/pipeline" --epochs 2 --compile-epochs 1 --finetune-epochs 1 --share 1,2 --share-batches 5
else
  nvidia-smi -L
  step "bench_latency (CUDA)" 120 $PYTHON benchmarks/bench_latency.py --device cuda
  step "bench_training (CUDA, fp32)" 90 $PYTHON benchmarks/bench_training.py --device cuda --train-size 55000 --batches 400
  step "bench_training (CUDA, AMP + channels_last)" 90 $PYTHON benchmarks/bench_training.py --device cuda \
    --train-size 55000 --batches 400 --amp --channels-last
  step "bench_gpu_pipeline" 330 $PYTHON benchmarks/bench_gpu_pipeline.py --out "$OUT_DIR/pipeline" \
    --epochs 12 --finetune-epochs 6 --compile-epochs 2 --share 1,2,4 --share-batches 200
  step "gpu tests" 150 $PYTHON -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py
fi
echo "gpu_check: $([ $status = 0 ] && echo 'all steps passed' || echo 'some steps failed or missed a target')"
exit $status
