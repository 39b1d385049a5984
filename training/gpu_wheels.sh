#!/usr/bin/env bash
# Download into .whl/ the wheels the transformer job needs on the GPU machine beyond its image
# (Python 3.12 there, with torch, transformers, tokenizers, onnx, onnxruntime, numpy, scipy,
# scikit-learn, pandas, rich, typer, pyyaml): the settings (pydantic), the store (SQLAlchemy,
# Alembic, Mako) and re2. finetune_gpu.sh installs them with --no-deps into /tmp/mcu-site.
# .whl/ is ignored by git (/.whl/ in .gitignore); carry it with the run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
mkdir -p .whl
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform manylinux1_x86_64 --platform any)
# the versions of this venv, so the job runs there on what the tests ran on here
mapfile -t PACKAGES < <("$PYTHON" - <<'PY'
from importlib.metadata import version
for name in ("pydantic", "pydantic-core", "pydantic-settings", "python-dotenv",
             "annotated-types", "typing-inspection", "sqlalchemy", "alembic", "mako",
             "google-re2"):
    print(f"{name}=={version(name)}")
PY
)
"$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${PLATFORMS[@]}" -d .whl "${PACKAGES[@]}"
du -sh .whl
