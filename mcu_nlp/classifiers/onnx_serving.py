"""CPU serving of the fine-tuned transformer with ONNX Runtime: export, int8, checks, sessions.

At registration the fine-tuned encoder, its mean pooling and the linear head
(:class:`~mcu_nlp.classifiers.transformer.TransformerClassifier`) are exported to one ONNX graph
that maps ``input_ids``/``attention_mask`` to raw logits (:func:`export_onnx`, torch's TorchScript
exporter), the BERT subgraphs are fused (attention, GELU, skip-LayerNorm:
:func:`optimize_onnx`, ONNX Runtime's transformer optimizer) and the weights are quantized to
int8 (:func:`quantize_int8`, ``onnxruntime.quantization.quantize_dynamic``).

:class:`OnnxTransformerClassifier` serves the result with the tokenizer file and onnxruntime
alone: this module imports neither torch nor transformers unless a model is exported, so a served
bundle needs only ``onnxruntime`` and ``tokenizers``. Texts are grouped by token length
(:data:`DEFAULT_BUCKETS`) into micro-batches of at most :data:`MAX_BATCH_TOKENS` tokens, each
padded to its longest text; concurrent calls (API threads) are coalesced, so under load one
ONNX run answers several requests (:class:`Coalescer`).

:func:`agreement_report` compares the served model with the torch one on the validation part
(top-1 agreement, and the auto-route threshold certified on each, with its coverage and realized
precision, and how much a text's int8 scores move between a batch and a run of its own: dynamic
quantization scales activations per run); :func:`check_agreement` refuses a quantized model that
loses more than :data:`MAX_COVERAGE_LOSS` of coverage at the guaranteed precision.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from mcu_nlp.artifacts import Artifact, ArtifactError, load_artifact, save_artifact
from mcu_nlp.classifiers.base import as_frame, texts_of
from mcu_nlp.classifiers.calibration import tempered_softmax

log = logging.getLogger(__name__)

KIND = "transformer_onnx"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
TORCH_DIR = "torch"  # the fine-tuned torch model, kept beside the served one (optional)
# Token-length buckets: a micro-batch holds texts of one bucket, padded to its longest text.
DEFAULT_BUCKETS = (16, 32, 64, 128, 256, 512)
MAX_BATCH_TOKENS = 2048  # padded tokens per ONNX run
MAX_BATCH_TEXTS = 64
MAX_COVERAGE_LOSS = 0.005  # coverage the int8 model may lose at the guaranteed precision
OPSET = 17
INPUTS = ("input_ids", "attention_mask")
# ONNX Runtime intra-op threads of served models when the caller names none (default: its own,
# one per core). On a small shared host one thread is steadier: two threads spin-waiting on two
# busy cores lose more than they gain (see models/transformer_e5.md).
THREADS_ENV = "MCU_ONNX_THREADS"


class ServingCheckError(RuntimeError):
    """The served (quantized) model disagrees too much with the torch model it comes from."""


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError("serving the transformer needs onnxruntime: "
                          "pip install onnxruntime") from exc
    return onnxruntime


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------- export
def export_onnx(model: Any, path: str | Path, *, opset: int = OPSET) -> Path:
    """Export a fitted ``TransformerClassifier`` (encoder, mean pooling, head) to fp32 ONNX.

    The graph takes ``input_ids`` and ``attention_mask`` (int64, batch × tokens, both axes
    dynamic) and returns the raw logits (batch × classes); the temperature is applied by the
    serving class, as in the torch model. The export runs on a CPU copy of the network, so a
    model fine-tuned on a GPU stays where it is.
    """
    import copy

    import torch

    model._check_fitted()
    network = copy.deepcopy(model._network).float().cpu().eval()
    encoder = network["encoder"]
    if hasattr(encoder, "set_attn_implementation"):
        # eager attention traces to plain MatMul/Softmax, which the optimizer fuses
        encoder.set_attn_implementation("eager")

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.head = encoder, network["head"]

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.encoder(input_ids=input_ids,
                                  attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
            return self.head(pooled)

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    example = torch.full((2, 8), int(model._pad_id), dtype=torch.int64)
    mask = torch.ones((2, 8), dtype=torch.int64)
    axes = {"batch": 0, "tokens": 1}
    import warnings

    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
        torch.onnx.export(
            Pooled().eval(), (example, mask), str(target), dynamo=False,
            input_names=list(INPUTS), output_names=["logits"], opset_version=opset,
            dynamic_axes={"input_ids": {v: k for k, v in axes.items()},
                          "attention_mask": {v: k for k, v in axes.items()},
                          "logits": {0: "batch"}},
            do_constant_folding=True)
    return target


def optimize_onnx(source: str | Path, target: str | Path, *, num_heads: int,
                  hidden_size: int) -> dict[str, Any]:
    """Fuse the BERT subgraphs (attention, GELU, LayerNorm) with ONNX Runtime's optimizer.

    Where the optimizer is missing or fails, the graph is copied unchanged (ONNX Runtime still
    applies its own graph optimizations at load); the report says which.
    """
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        optimized = optimize_model(str(source), model_type="bert", num_heads=num_heads,
                                   hidden_size=hidden_size, opt_level=1)
        fused = {name: count for name, count in
                 optimized.get_fused_operator_statistics().items() if count}
        optimized.save_model_to_file(str(target))
        return {"optimized": True, "fused": fused}
    except Exception as exc:  # the fusions are a speed-up, never a condition
        log.warning("ONNX BERT fusion failed (%s); serving the unfused graph", exc)
        shutil.copyfile(source, target)
        return {"optimized": False, "error": repr(exc)}


def quantize_int8(source: str | Path, target: str | Path) -> Path:
    """Dynamic int8 quantization of the weights (``quantize_dynamic``, signed int8 weights)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # the quantizer logs every tensor on the root logger
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)
    return Path(target)


def export_served(model: Any, work_dir: str | Path, *, quantize: bool = True,
                  optimize: bool = True, threads: int | None = None
                  ) -> OnnxTransformerClassifier:
    """The serving twin of a fitted ``TransformerClassifier``: ONNX (int8 unless told), tokenizer.

    Writes ``model.fp32.onnx``, ``model.onnx`` (the served graph) and ``tokenizer.json`` into
    ``work_dir`` and returns the loaded serving model; its ``export_report`` says what ran and
    how long each step took. The torch model is kept as ``source_model`` (saved beside the
    served graph by :meth:`OnnxTransformerClassifier.save` unless ``keep_torch=False``).
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"opset": OPSET}
    started = time.perf_counter()
    fp32 = export_onnx(model, work / "model.raw.onnx")
    report["export_seconds"] = round(time.perf_counter() - started, 2)
    config = model._network["encoder"].config
    started = time.perf_counter()
    if optimize:
        report.update(optimize_onnx(fp32, work / "model.fp32.onnx",
                                    num_heads=config.num_attention_heads,
                                    hidden_size=config.hidden_size))
        fp32.unlink()
    else:
        fp32.replace(work / "model.fp32.onnx")
        report["optimized"] = False
    fp32 = work / "model.fp32.onnx"
    report["optimize_seconds"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    if quantize:
        quantize_int8(fp32, work / MODEL_FILE)
    else:
        shutil.copyfile(fp32, work / MODEL_FILE)
    report.update(quantization="int8 dynamic (QInt8 weights)" if quantize else "none (fp32)",
                  quantize_seconds=round(time.perf_counter() - started, 2),
                  fp32_bytes=fp32.stat().st_size, served_bytes=(work / MODEL_FILE).stat().st_size)
    model._tokenizer.save(str(work / TOKENIZER_FILE))
    served = OnnxTransformerClassifier(
        work / MODEL_FILE, work / TOKENIZER_FILE, classes=model.classes_,
        temperature=model.temperature_, max_length=model.max_length, prefix=model.prefix,
        pad_id=model._pad_id, threads=threads)
    served.export_report = report
    served.source_model = model
    served.fp32_path = fp32
    return served


# ------------------------------------------------------------------------------------ serving
def length_batches(lengths: Sequence[int], *, buckets: Sequence[int] = DEFAULT_BUCKETS,
                   max_tokens: int = MAX_BATCH_TOKENS, max_texts: int = MAX_BATCH_TEXTS
                   ) -> list[np.ndarray]:
    """Row indices grouped into micro-batches: one length bucket each, ``max_tokens`` at most.

    Rows are sorted by length; a batch never mixes buckets, and its padded size (rows × the
    longest row) stays within ``max_tokens`` (a single longer row still makes a batch).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) == 0:
        return []
    edges = np.asarray(sorted(buckets), dtype=np.int64)
    bucket = np.searchsorted(edges, lengths, side="left")  # beyond the last edge: one more
    order = np.lexsort((lengths, bucket))
    batches: list[np.ndarray] = []
    current: list[int] = []
    for row in order:
        if current:
            width = int(lengths[row])  # sorted: the newcomer is the longest
            same_bucket = bucket[row] == bucket[current[0]]
            if (not same_bucket or width * (len(current) + 1) > max_tokens
                    or len(current) >= max_texts):
                batches.append(np.asarray(current))
                current = []
        current.append(int(row))
    batches.append(np.asarray(current))
    return batches


class Coalescer:
    """Runs concurrent calls together: one caller leads, the others' texts join its run.

    Nothing waits on a timer: an idle model runs a call at once. While a run is under way, new
    calls queue; when it ends, one queued caller leads the next run with every queued call, so
    under load each ONNX run serves several requests (micro-batching across requests).
    """

    class _Job:
        __slots__ = ("items", "done", "lead", "result", "error")

        def __init__(self, items: list[np.ndarray]) -> None:
            self.items = items
            self.done = threading.Event()
            self.lead = False
            self.result: np.ndarray | None = None
            self.error: BaseException | None = None

    def __init__(self, run: Callable[[list[np.ndarray]], np.ndarray]) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._pending: list[Coalescer._Job] = []
        self._busy = False
        self.runs = 0  # ONNX runs made (one per coalesced group), for tests and figures

    def __call__(self, items: list[np.ndarray]) -> np.ndarray:
        """Logits for ``items`` (token id arrays), run alone or with concurrent calls."""
        job = Coalescer._Job(items)
        with self._lock:
            self._pending.append(job)
            lead = not self._busy
            self._busy = True
        if not lead:
            job.done.wait()
            if not job.lead:
                return self._outcome(job)
        with self._lock:
            jobs, self._pending = self._pending, []
        try:
            out = self._run([item for one in jobs for item in one.items])
            self.runs += 1
            start = 0
            for one in jobs:
                one.result = out[start:start + len(one.items)]
                start += len(one.items)
        except BaseException as exc:  # every caller of this run gets the error
            for one in jobs:
                one.error = exc
        with self._lock:
            if self._pending:
                successor = self._pending[0]
                successor.lead = True
                successor.done.set()
            else:
                self._busy = False
        for one in jobs:
            if one is not job:
                one.done.set()
        return self._outcome(job)

    @staticmethod
    def _outcome(job: Coalescer._Job) -> np.ndarray:
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result


class OnnxTransformerClassifier:
    """The fine-tuned transformer served by ONNX Runtime (no torch, no transformers).

    Args:
        model_path: the ONNX graph (``input_ids``, ``attention_mask`` → logits).
        tokenizer_path: the ``tokenizers`` JSON file of the encoder.
        classes: class names, in the order of the logits.
        temperature: divides the logits before the softmax (fitted on validation at training).
        max_length: tokens per text (longer texts are cut), as in training.
        prefix: e5's task prefix put before each text.
        pad_id: the padding token id.
        buckets: token-length bucket edges of the micro-batches.
        max_batch_tokens: padded tokens per ONNX run.
        threads: ONNX Runtime intra-op threads (default: ``MCU_ONNX_THREADS``, else its own,
            one per core).
        coalesce: run concurrent calls together (see :class:`Coalescer`).
    """

    def __init__(self, model_path: str | Path, tokenizer_path: str | Path, *,
                 classes: Sequence[Any], temperature: float = 1.0, max_length: int = 128,
                 prefix: str = "query: ", pad_id: int = 0,
                 buckets: Sequence[int] = DEFAULT_BUCKETS,
                 max_batch_tokens: int = MAX_BATCH_TOKENS, threads: int | None = None,
                 coalesce: bool = True) -> None:
        from tokenizers import Tokenizer

        ort = _onnxruntime()
        self.model_path, self.tokenizer_path = Path(model_path), Path(tokenizer_path)
        self.classes_ = np.asarray(list(classes), dtype=object)
        self.temperature_ = float(temperature)
        self.max_length, self.prefix, self.pad_id = int(max_length), prefix, int(pad_id)
        self.buckets = tuple(int(b) for b in buckets if b < max_length) + (int(max_length),)
        if threads is None and os.environ.get(THREADS_ENV, "").strip():
            threads = int(os.environ[THREADS_ENV])
        self.max_batch_tokens, self.threads = int(max_batch_tokens), threads
        self.export_report: dict[str, Any] = {}
        self.serving_check: dict[str, Any] = {}
        self.source_model: Any = None
        self.source_dir: Path | None = None  # a saved torch model to carry along on save
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = int(threads)
        self._session = ort.InferenceSession(str(self.model_path), options,
                                             providers=["CPUExecutionProvider"])
        outputs = self._session.get_outputs()[0].shape
        if isinstance(outputs[-1], int) and outputs[-1] != len(self.classes_):
            raise ArtifactError(f"{self.model_path} gives {outputs[-1]} logits for "
                                f"{len(self.classes_)} classes")
        self._tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        self._tokenizer.enable_truncation(self.max_length)
        self._tokenizer.no_padding()
        self._coalescer = Coalescer(self._run_ids) if coalesce else None

    # ---------------------------------------------------------------- inference
    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text (prefix added, cut at ``max_length``)."""
        encoded = self._tokenizer.encode_batch([self.prefix + text for text in texts])
        return [np.asarray(item.ids, dtype=np.int64) for item in encoded]

    def _run_ids(self, ids: list[np.ndarray]) -> np.ndarray:
        out = np.empty((len(ids), len(self.classes_)), dtype=np.float32)
        for rows in length_batches([len(row) for row in ids], buckets=self.buckets,
                                   max_tokens=self.max_batch_tokens):
            width = max(len(ids[row]) for row in rows)
            tokens = np.full((len(rows), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, row in enumerate(rows):
                tokens[i, :len(ids[row])] = ids[row]
                mask[i, :len(ids[row])] = 1
            out[rows] = self._session.run(None, {"input_ids": tokens,
                                                 "attention_mask": mask})[0]
        return out

    def raw_logits(self, texts: Sequence[str]) -> np.ndarray:
        """Logits before the temperature, one row per text."""
        ids = self.encode(texts)
        if not ids:
            return np.empty((0, len(self.classes_)), dtype=np.float32)
        return self._coalescer(ids) if self._coalescer is not None else self._run_ids(ids)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Temperature-scaled class probabilities, columns in the order of ``classes_``."""
        return tempered_softmax(self.raw_logits(texts_of(as_frame(X))), self.temperature_)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each appeal."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def fit(self, X: Any, y: Any) -> Self:
        """A served model is not trained: fit the torch model and export it again."""
        raise TypeError("an ONNX-served transformer cannot be fitted; fit a "
                        "TransformerClassifier and export it (export_served)")

    # -------------------------------------------------------------- persistence
    def save(self, path: str | Path, *, metrics: dict[str, Any] | None = None,
             keep_torch: bool = True) -> Path:
        """Write a model directory: ONNX graph, tokenizer, config with their SHA-256, manifest.

        The fine-tuned torch model it was exported from (when known) is saved in ``torch/``
        beside them, for re-export or GPU batch scoring; serving never reads it.
        """
        directory = Path(path)
        if (directory / "manifest.json").exists():
            raise ArtifactError(f"{directory} already holds a model")
        directory.mkdir(parents=True, exist_ok=True)
        for source, name in ((self.model_path, MODEL_FILE), (self.tokenizer_path, TOKENIZER_FILE)):
            if source.resolve() != (directory / name).resolve():
                shutil.copyfile(source, directory / name)
        if keep_torch and self.source_model is not None:
            self.source_model.save(directory / TORCH_DIR)
        elif keep_torch and self.source_dir is not None and self.source_dir.exists():
            shutil.copytree(self.source_dir, directory / TORCH_DIR)
        config = {
            "max_length": self.max_length, "prefix": self.prefix, "pad_id": self.pad_id,
            "temperature": self.temperature_, "buckets": list(self.buckets),
            "max_batch_tokens": self.max_batch_tokens,
            "files": {name: {"sha256": file_sha256(directory / name),
                             "bytes": (directory / name).stat().st_size}
                      for name in (MODEL_FILE, TOKENIZER_FILE)},
            "export": self.export_report, "serving_check": self.serving_check,
        }
        artifact = Artifact(kind=KIND, config=config, arrays={},
                            labels=[str(label) for label in self.classes_])
        extra = {"id2label": dict(enumerate(map(str, self.classes_)))}
        try:
            import onnxruntime

            extra["onnxruntime"] = onnxruntime.__version__
        except ImportError:  # pragma: no cover - a served model was loaded, so it is there
            pass
        return save_artifact(directory, artifact, metrics=metrics, extra=extra)

    @classmethod
    def load(cls, path: str | Path, *, threads: int | None = None,
             coalesce: bool = True) -> OnnxTransformerClassifier:
        """Read a directory written by :meth:`save` (file hashes checked)."""
        directory = Path(path)
        artifact = load_artifact(directory, expected_kind=KIND)
        config = artifact.config
        for name, expected in config["files"].items():
            file = directory / name
            if not file.exists():
                raise ArtifactError(f"{file} is missing")
            if file.stat().st_size != expected["bytes"] or file_sha256(file) != expected["sha256"]:
                raise ArtifactError(f"{file} is damaged (size or SHA-256 differs from the "
                                    "manifest's); re-export the model")
        model = cls(directory / MODEL_FILE, directory / TOKENIZER_FILE, classes=artifact.labels,
                    temperature=config["temperature"], max_length=config["max_length"],
                    prefix=config["prefix"], pad_id=config["pad_id"], buckets=config["buckets"],
                    max_batch_tokens=config["max_batch_tokens"], threads=threads,
                    coalesce=coalesce)
        model.export_report = dict(config.get("export") or {})
        model.serving_check = dict(config.get("serving_check") or {})
        if (directory / TORCH_DIR / "manifest.json").exists():
            model.source_dir = directory / TORCH_DIR
        return model


# ------------------------------------------------------------------------------------- checks
def agreement_report(reference: np.ndarray, served: np.ndarray, classes: Sequence[Any],
                     truth: Sequence[Any], *, never_route: Sequence[Any] = (),
                     target: float | None = None, level: float | None = None,
                     max_coverage_loss: float = MAX_COVERAGE_LOSS,
                     served_single: np.ndarray | None = None) -> dict[str, Any]:
    """How the served probabilities compare with the torch ones on labelled validation rows.

    Both get an auto-route threshold by the same guaranteed-precision procedure
    (:func:`mcu_nlp.evaluation.certify.certify_model`); the report gives top-1 agreement, the
    largest probability difference, and for each its threshold, coverage and realized
    precision (of the routed validation rows), the served model's figures at the torch
    model's threshold, and whether the coverage lost stays within ``max_coverage_loss``.

    ``served_single``: the served probabilities of the first rows scored one text per run.
    int8 activations are scaled per ONNX run, so a text's probabilities move a little with its
    batch neighbours; the report says how much, and how many routing decisions it changes.
    """
    from mcu_nlp.evaluation.certify import CONFIDENCE_LEVEL, TARGET_PRECISION, certify_model

    target = TARGET_PRECISION if target is None else target
    level = CONFIDENCE_LEVEL if level is None else level
    classes_arr = np.asarray(classes, dtype=object)
    truth_arr = np.asarray(truth, dtype=object)
    reference, served = np.asarray(reference), np.asarray(served)
    if reference.shape != served.shape or len(truth_arr) != len(reference):
        raise ValueError("reference, served and truth must have the same rows and classes")

    def figures(proba: np.ndarray) -> tuple[dict[str, Any], Any]:
        cert = certify_model(truth_arr, proba, classes_arr, target=target, level=level,
                             never_route=never_route)
        routed = cert.routed_mask(proba, classes_arr)
        right = classes_arr[proba.argmax(axis=1)] == truth_arr
        return {"threshold": None if not np.isfinite(cert.threshold) else cert.threshold,
                "method": cert.method, "coverage": round(float(routed.mean()), 6),
                "realized_precision": (round(float(right[routed].mean()), 6)
                                       if routed.any() else None),
                "accuracy": round(float(right.mean()), 6)}, cert

    ref_figures, ref_cert = figures(reference)
    served_figures, served_cert = figures(served)
    at_ref = ref_cert.routed_mask(served, classes_arr)
    served_right = classes_arr[served.argmax(axis=1)] == truth_arr
    loss = ref_figures["coverage"] - served_figures["coverage"]
    consistency = None
    if served_single is not None and len(served_single):
        n = len(served_single)
        batch = served[:n]
        changed = (served_cert.routed_mask(batch, classes_arr)
                   != served_cert.routed_mask(served_single, classes_arr))
        consistency = {
            "rows": n,
            "top1_agreement": round(float((batch.argmax(1)
                                           == served_single.argmax(1)).mean()), 6),
            "max_abs_proba_diff": round(float(np.abs(batch - served_single).max()), 6),
            "mean_abs_confidence_diff": round(float(np.abs(batch.max(1)
                                                           - served_single.max(1)).mean()), 6),
            "routing_decisions_changed": int(changed.sum())}
    return {
        "rows": len(truth_arr), "target_precision": target, "confidence": level,
        "top1_agreement": round(float((reference.argmax(1) == served.argmax(1)).mean()), 6),
        "max_abs_proba_diff": round(float(np.abs(reference - served).max()), 6)
        if len(reference) else 0.0,
        "reference": ref_figures, "served": served_figures,
        "served_at_reference_threshold": {
            "coverage": round(float(at_ref.mean()), 6),
            "realized_precision": (round(float(served_right[at_ref].mean()), 6)
                                   if at_ref.any() else None)},
        "coverage_loss": round(float(loss), 6), "max_coverage_loss": max_coverage_loss,
        "passed": bool(loss <= max_coverage_loss + 1e-12),
        "single_vs_batch": consistency,
    }


def check_agreement(report: dict[str, Any]) -> dict[str, Any]:
    """Raise :class:`ServingCheckError` unless :func:`agreement_report` passed; else return it."""
    if not report["passed"]:
        served, reference = report["served"]["coverage"], report["reference"]["coverage"]
        raise ServingCheckError(
            f"the quantized model routes {served:.4f} of the validation rows at the guaranteed "
            f"precision, the torch model {reference:.4f}: it loses "
            f"{100 * report['coverage_loss']:.2f} points (at most "
            f"{100 * report['max_coverage_loss']:.2f} allowed); not registered — serve fp32 "
            "(quantize=False) or keep the active version")
    return report


def export_check(served: OnnxTransformerClassifier, texts: Sequence[str]) -> dict[str, Any]:
    """The exported graphs against the torch model on ``texts``: fp32 and served logits."""
    source = served.source_model
    torch_logits = source._raw_logits(source._encode(list(texts)))
    fp32 = OnnxTransformerClassifier(
        served.fp32_path, served.tokenizer_path, classes=served.classes_,
        temperature=served.temperature_, max_length=served.max_length, prefix=served.prefix,
        pad_id=served.pad_id, buckets=served.buckets, max_batch_tokens=served.max_batch_tokens,
        threads=served.threads, coalesce=False)
    ids = served.encode(list(texts))
    fp32_logits, served_logits = fp32._run_ids(ids), served._run_ids(ids)
    return {"rows": len(texts),
            "fp32_max_abs_logit_diff": round(float(np.abs(fp32_logits - torch_logits).max()), 6),
            "served_max_abs_logit_diff": round(float(np.abs(served_logits - torch_logits).max()),
                                               6),
            "fp32_top1_agreement": round(float((fp32_logits.argmax(1)
                                                == torch_logits.argmax(1)).mean()), 6),
            "served_top1_agreement": round(float((served_logits.argmax(1)
                                                  == torch_logits.argmax(1)).mean()), 6)}


# --------------------------------------------------------------------------- served classifiers
def is_transformer(model: Any) -> bool:
    """Whether ``model`` is a torch ``TransformerClassifier`` (checked without importing torch)."""
    return type(model).__name__ == "TransformerClassifier"


def has_transformer(classifier: Any) -> bool:
    """Whether ``classifier`` is, or pools, a torch transformer."""
    return is_transformer(classifier) or any(
        is_transformer(member) for member in getattr(classifier, "members_", ()))


def to_served(classifier: Any, work_dir: str | Path, *, quantize: bool = True,
              threads: int | None = None) -> Any:
    """``classifier`` with every torch transformer replaced by its ONNX twin.

    A ``TransformerClassifier`` becomes an :class:`OnnxTransformerClassifier`; an ensemble
    keeps its other members and pooling weights. Anything else comes back unchanged.
    """
    if is_transformer(classifier):
        return export_served(classifier, work_dir, quantize=quantize, threads=threads)
    members = getattr(classifier, "members_", None)
    if not members or not any(is_transformer(m) for m in members):
        return classifier
    from mcu_nlp.classifiers.ensemble import EnsembleClassifier

    served = [export_served(m, Path(work_dir) / f"member_{i}", quantize=quantize,
                            threads=threads) if is_transformer(m) else m
              for i, m in enumerate(members)]
    return EnsembleClassifier.from_fitted(served, classifier.weights_)


def served_members(classifier: Any) -> list[OnnxTransformerClassifier]:
    """The ONNX-served transformers in ``classifier`` (itself or its ensemble members)."""
    candidates = [classifier, *getattr(classifier, "members_", ())]
    return [m for m in candidates if isinstance(m, OnnxTransformerClassifier)]
