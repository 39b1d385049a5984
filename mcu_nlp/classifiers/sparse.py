"""The default appeal classifier: TF-IDF n-grams + linear SVM, duplicate memory, context priors.

Fast (sparse algebra only) and calibrated on a held-out time tail, so its top-1 probability can be
used as routing confidence. Any label set works.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from mcu_nlp.artifacts import Artifact, data_hash, load_artifact, save_artifact
from mcu_nlp.classifiers.base import as_frame, calibration_parts, label_classes, texts_of
from mcu_nlp.classifiers.calibration import (
    StackCalibration,
    choose_evidence_weight,
    log_proba_from_decision,
)
from mcu_nlp.classifiers.context import ContextPrior, DuplicateMemory
from mcu_nlp.classifiers.features import DEFAULT_BLOCKS, NgramSpec, TextFeaturizer
from mcu_nlp.classifiers.naive_bayes import NaiveBayesEvidence

KIND = "sparse-text"
# Fewer calibration rows than this leave the naive-Bayes choice to chance: no evidence term.
MIN_ROWS_TO_CHOOSE_EVIDENCE = 400


class SparseTextClassifier(ClassifierMixin, BaseEstimator):
    """TF-IDF word + char n-grams → linear model, stacked with duplicate memory and context priors.

    Args:
        context_columns: Categorical inputs known at filing time (e.g. ``("district",)``).
        linear: ``"svm"`` (linear SVM, one-vs-rest) or ``"logreg"`` (multinomial logistic
            regression).
        C: Inverse regularisation strength of the linear model.
        use_memory: Learn label counts of exact (normalized) duplicate texts.
        calibration_share: Share of the training rows, taken from the end (rows are expected in time
            order), held out to calibrate when no calibration set is passed to :meth:`fit`.
        blocks: TF-IDF blocks; ``None`` means the default word 1–2 + char 2–5 grams.
        class_weight: ``None`` or ``"balanced"`` (rare topics weigh more: better macro-F1).
        context_one_hot: Also give the linear model one-hot columns of the context values.
        naive_bayes_alphas: Smoothing values tried for the naive-Bayes evidence of the stack
            (:mod:`mcu_nlp.classifiers.naive_bayes`); whether to use it, and which, is chosen on
            the calibration part. Empty: no naive-Bayes term.
    """

    def __init__(
        self,
        *,
        context_columns: Sequence[str] = (),
        linear: str = "svm",
        C: float = 0.5,
        use_memory: bool = True,
        calibration_share: float = 0.1,
        blocks: Sequence[NgramSpec] | None = None,
        class_weight: str | None = None,
        context_one_hot: bool = True,
        naive_bayes_alphas: Sequence[float] = (0.03, 0.1),
    ) -> None:
        self.context_columns = context_columns
        self.linear = linear
        self.C = C
        self.use_memory = use_memory
        self.calibration_share = calibration_share
        self.blocks = blocks
        self.class_weight = class_weight
        self.context_one_hot = context_one_hot
        self.naive_bayes_alphas = naive_bayes_alphas

    # ------------------------------------------------------------------ training
    def fit(
        self,
        X: Any,
        y: Sequence[Any],
        *,
        X_calibration: Any = None,
        y_calibration: Sequence[Any] | None = None,
    ) -> Self:
        """Fit on ``X``/``y``; calibrate on the given set or on the tail of ``X``."""
        frame, labels, calibration, calibration_labels = calibration_parts(
            X, y, X_calibration, y_calibration, self.calibration_share, self.context_columns)

        self.classes_ = label_classes(labels, calibration_labels)
        index = {label: i for i, label in enumerate(self.classes_)}
        y_index = np.array([index[label] for label in labels])
        texts = texts_of(frame)

        self.featurizer_ = TextFeaturizer(self.blocks or DEFAULT_BLOCKS)
        self.priors_ = [
            ContextPrior().fit(frame[column].tolist(), y_index, len(self.classes_))
            for column in self.context_columns
        ]
        text_features = self.featurizer_.fit_transform(texts)
        self._fit_linear(self._with_context(text_features, frame), y_index)
        self.memory_ = (
            DuplicateMemory().fit(texts, y_index, len(self.classes_)) if self.use_memory else None
        )
        calibration_index = np.array([index[label] for label in calibration_labels])
        self.evidence_ = None
        calibration_features = self.featurizer_.transform(texts_of(calibration))
        parts = self._parts(calibration, calibration_features)
        if self.naive_bayes_alphas and len(calibration) >= MIN_ROWS_TO_CHOOSE_EVIDENCE:
            candidates = {
                float(alpha): NaiveBayesEvidence(float(alpha)).fit(
                    text_features, y_index, len(self.classes_))
                for alpha in self.naive_bayes_alphas
            }
            evidence = {a: nb.log_proba(calibration_features) for a, nb in candidates.items()}
            alpha, weight = choose_evidence_weight(calibration_index, *parts[:3], evidence)
            if alpha is not None:
                self.evidence_ = candidates[alpha]
                parts = (*parts[:3], evidence[alpha])
                self.calibration_ = StackCalibration.fit(calibration_index, *parts,
                                                         evidence_weight=weight)
        if self.evidence_ is None:
            self.calibration_ = StackCalibration.fit(calibration_index, *parts[:3])
        self.training_data_hash_ = data_hash(texts, labels)
        return self

    def _fit_linear(self, features: Any, y_index: np.ndarray) -> None:
        n_classes = len(self.classes_)
        present = np.unique(y_index)
        if self.linear == "svm":
            model = LinearSVC(C=self.C, dual=True, max_iter=2000, class_weight=self.class_weight)
        elif self.linear == "logreg":
            model = LogisticRegression(C=self.C, max_iter=300, class_weight=self.class_weight)
        else:
            raise ValueError(f"linear must be 'svm' or 'logreg', got {self.linear!r}")
        model.fit(features, y_index)
        coef = np.full((n_classes, features.shape[1]), 0.0, dtype=np.float32)
        # Classes seen only in the calibration part get a very low score from the text model.
        intercept = np.full(n_classes, -10.0, dtype=np.float32)
        if len(present) == 2:  # binary problems come back as one row
            coef[present[1]], intercept[present[1]] = model.coef_[0], model.intercept_[0]
            coef[present[0]], intercept[present[0]] = 0.0, 0.0
        else:
            coef[present], intercept[present] = model.coef_, model.intercept_
        self.coef_ = coef
        self._coef_by_feature = None
        self.intercept_ = intercept

    # ---------------------------------------------------------------- prediction
    def _with_context(self, features: sp.csr_matrix, frame: Any) -> sp.csr_matrix:
        """Text features plus one-hot columns of the context values (district...).

        The linear model then learns a per-label weight for every place, which the naive-Bayes
        prior alone cannot: routing depends on the place as much as on the text.
        """
        if not self.priors_ or not self.context_one_hot:
            return features
        blocks = [features]
        for prior, column in zip(self.priors_, self.context_columns, strict=True):
            blocks.append(prior.one_hot(frame[column].tolist()))
        return sp.hstack(blocks, format="csr")

    def _parts(self, frame: Any, text_features: sp.csr_matrix | None = None) -> tuple[
        np.ndarray, list[np.ndarray], np.ndarray | None, np.ndarray | None
    ]:
        """Stack inputs of ``frame`` (``text_features``: its TF-IDF rows, when already known)."""
        texts = texts_of(frame)
        if getattr(self, "_coef_by_feature", None) is None:
            # sparse @ dense copies a non-contiguous operand on every call; keep one copy instead.
            self._coef_by_feature = np.ascontiguousarray(self.coef_.T)
        if text_features is None:
            text_features = self.featurizer_.transform(texts)
        features = self._with_context(text_features, frame)
        decision = features @ self._coef_by_feature + self.intercept_
        context = [
            prior.log_likelihood(frame[column].tolist())
            for prior, column in zip(self.priors_, self.context_columns, strict=True)
        ]
        memory = self.memory_.lookup(texts) if self.memory_ is not None else None
        evidence = (self.evidence_.log_proba(text_features)
                    if getattr(self, "evidence_", None) is not None else None)
        return log_proba_from_decision(np.asarray(decision)), context, memory, evidence

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self, "calibration_")
        frame = as_frame(X, self.context_columns)
        return self.calibration_.combine(*self._parts(frame))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable label per appeal."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def explain(
        self, X: Any, *, top_k: int = 5, predicted: np.ndarray | None = None
    ) -> list[list[tuple[str, float]]]:
        """Words (word n-gram features) that pushed each appeal towards its predicted label.

        ``predicted`` (class indices) skips a second prediction when the caller already has one.
        """
        check_is_fitted(self, "calibration_")
        frame = as_frame(X, self.context_columns)
        features = self.featurizer_.transform(texts_of(frame))
        if getattr(self, "_word_columns", None) is None:
            names = self.featurizer_.word_feature_names()
            self._word_columns = np.array(sorted(names), dtype=np.int64)
            self._word_names = [names[c] for c in self._word_columns]
        if predicted is None:
            predicted = self.predict_proba(frame).argmax(axis=1)
        rows = np.repeat(np.arange(features.shape[0]), np.diff(features.indptr))
        position = np.searchsorted(self._word_columns, features.indices)
        position = np.minimum(position, max(len(self._word_columns) - 1, 0))
        is_word = (len(self._word_columns) > 0) & (self._word_columns[position] == features.indices)
        weight = features.data * self.coef_[predicted[rows], features.indices]
        keep = is_word & (weight > 0)
        out: list[list[tuple[str, float]]] = [[] for _ in range(features.shape[0])]
        for row, name_index, value in sorted(
            zip(rows[keep].tolist(), position[keep].tolist(), weight[keep].tolist(), strict=True),
            key=lambda item: (item[0], -item[2]),
        ):
            if len(out[row]) < top_k:
                out[row].append((self._word_names[name_index], round(value, 4)))
        return out

    # --------------------------------------------------------------- persistence
    def save(self, path: str | Path, *, metrics: dict[str, Any] | None = None) -> Path:
        """Write a model directory (manifest + config JSON + safetensors weights)."""
        check_is_fitted(self, "calibration_")
        feature_config, arrays = self.featurizer_.to_state("features.")
        config: dict[str, Any] = {
            "params": {
                "context_columns": list(self.context_columns),
                "linear": self.linear,
                "C": self.C,
                "use_memory": self.use_memory,
                "calibration_share": self.calibration_share,
                "class_weight": self.class_weight,
                "context_one_hot": self.context_one_hot,
                "naive_bayes_alphas": list(self.naive_bayes_alphas),
            },
            "features": feature_config,
            "calibration": {
                "text_weight": self.calibration_.text_weight,
                "context_weights": self.calibration_.context_weights,
                "memory_strength": self.calibration_.memory_strength,
                "evidence_weight": self.calibration_.evidence_weight,
            },
            "priors": [],
        }
        # float16 halves the largest array; scores change by < 1e-3.
        arrays["linear.coef"] = self.coef_.astype(np.float16)
        arrays["linear.intercept"] = self.intercept_
        if self.memory_ is not None:
            config["memory"], memory_arrays = self.memory_.to_state("memory.")
            arrays.update(memory_arrays)
        if self.evidence_ is not None:
            config["evidence"], evidence_arrays = self.evidence_.to_state("evidence.")
            arrays.update(evidence_arrays)
        for i, prior in enumerate(self.priors_):
            prior_config, prior_arrays = prior.to_state(f"prior{i}.")
            config["priors"].append(prior_config)
            arrays.update(prior_arrays)
        artifact = Artifact(
            kind=KIND, config=config, arrays=arrays, labels=[str(c) for c in self.classes_]
        )
        return save_artifact(
            path, artifact, metrics=metrics, training_data_hash=self.training_data_hash_
        )

    @classmethod
    def load(cls, path: str | Path) -> SparseTextClassifier:
        """Read a model directory written by :meth:`save`."""
        artifact = load_artifact(path, expected_kind=KIND)
        config, arrays = artifact.config, artifact.arrays
        params = dict(config["params"])
        params["context_columns"] = tuple(params["context_columns"])
        # Models saved before the one-hot context columns existed were trained without them.
        params.setdefault("context_one_hot", False)
        # ... and before the naive-Bayes evidence existed, without it.
        params.setdefault("naive_bayes_alphas", [])
        params["naive_bayes_alphas"] = tuple(params["naive_bayes_alphas"])
        model = cls(**params)
        model.classes_ = np.array(artifact.labels, dtype=object)
        model.featurizer_ = TextFeaturizer.from_state(config["features"], arrays, "features.")
        model.coef_ = arrays["linear.coef"].astype(np.float32)
        model.intercept_ = arrays["linear.intercept"]
        model.memory_ = (
            DuplicateMemory.from_state(config["memory"], arrays, "memory.")
            if "memory" in config
            else None
        )
        model.priors_ = [
            ContextPrior.from_state(prior, arrays, f"prior{i}.")
            for i, prior in enumerate(config["priors"])
        ]
        model.evidence_ = (
            NaiveBayesEvidence.from_state(config["evidence"], arrays, "evidence.")
            if "evidence" in config
            else None
        )
        model.calibration_ = StackCalibration(**config["calibration"])
        model.training_data_hash_ = artifact.manifest.get("training_data_hash")
        return model
