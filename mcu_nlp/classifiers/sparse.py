"""The default appeal classifier: TF-IDF n-grams + linear SVM, duplicate memory, context priors.

Fast (sparse algebra only) and calibrated on a held-out time tail, so its top-1 probability can be
used as routing confidence. Any label set works.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
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
from mcu_nlp.classifiers.selection import SMALL_DATA_ROWS, Selection, choose_settings

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
            order), held out to calibrate when no calibration set is passed to :meth:`fit` (at
            least 500 rows or a fifth of small data, see
            :func:`~mcu_nlp.classifiers.base.calibration_parts`). The most recent 5 % calibrate
            the stack closer to tomorrow's mix of topics than an older, larger slice.
        blocks: TF-IDF blocks; ``None`` means the default word 1–2 + char 2–5 grams.
        class_weight: ``None`` or ``"balanced"`` (rare topics weigh more). On the reference data
            ``None`` is better for category (macro-F1 0.834 against 0.812) and nearly as good
            for reason (0.561 against 0.567), and routes more; small data chooses by
            cross-validation.
        context_one_hot: Also give the linear model one-hot columns of the context values.
        naive_bayes_alphas: Smoothing values tried for the naive-Bayes evidence of the stack
            (:mod:`mcu_nlp.classifiers.naive_bayes`); whether to use it, and which, is chosen on
            the calibration part. Empty: no naive-Bayes term.
        refit: After the stack is calibrated, fit the features, linear model, memory, priors and
            naive-Bayes evidence again on the training and calibration rows together, keeping
            the stack weights. The most recent rows are the most like tomorrow's appeals, so
            they should not be left out of the model; thresholds are then certified on rows
            that neither fit saw.
        tune: ``"auto"``: on small data (fewer than
            :data:`~mcu_nlp.classifiers.selection.SMALL_DATA_ROWS` rows) choose ``C`` and
            ``class_weight`` by time-ordered cross-validation inside the training rows
            (:mod:`mcu_nlp.classifiers.selection`); ``"off"``: use the given settings. The
            training job's recipes (:func:`~mcu_nlp.classifiers.factory.make_classifier`) ask
            for ``"auto"``.
    """

    def __init__(
        self,
        *,
        context_columns: Sequence[str] = (),
        linear: str = "svm",
        C: float = 0.5,
        use_memory: bool = True,
        calibration_share: float = 0.05,
        blocks: Sequence[NgramSpec] | None = None,
        class_weight: str | None = None,
        context_one_hot: bool = True,
        naive_bayes_alphas: Sequence[float] = (0.03, 0.1),
        refit: bool = True,
        tune: str = "off",
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
        self.refit = refit
        self.tune = tune

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
        self.selection_ = self._select(frame, labels, calibration, calibration_labels)
        # The settings in use (the constructor's, or those chosen by cross-validation).
        self.settings_ = {"C": self.C, "class_weight": self.class_weight}
        if self.selection_ is not None:
            self.settings_.update(self.selection_.params)

        self.classes_ = label_classes(labels, calibration_labels)
        index = {label: i for i, label in enumerate(self.classes_)}
        y_index = np.array([index[label] for label in labels])
        text_features = self._fit_components(frame, y_index)
        calibration_index = np.array([index[label] for label in calibration_labels])
        self.evidence_ = None
        calibration_features = self.featurizer_.transform(texts_of(calibration))
        parts = self._parts(calibration, calibration_features)
        if self.naive_bayes_alphas and len(calibration) >= MIN_ROWS_TO_CHOOSE_EVIDENCE:
            candidates = {
                float(a): NaiveBayesEvidence(float(a)).fit(
                    text_features, y_index, len(self.classes_))
                for a in self.naive_bayes_alphas
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
        if self.refit:  # refit_on records the hash of everything it learned from
            self.refit_on(pd.concat([frame, calibration], ignore_index=True),
                          np.concatenate([labels, calibration_labels]))
        else:
            self.training_data_hash_ = data_hash(texts_of(frame), labels)
        return self

    def refit_on(self, X: Any, y: Sequence[Any]) -> Self:
        """Fit the components again on ``X``/``y``, keeping classes and stack weights.

        Used once the stack is calibrated on rows the first fit did not see: the final model
        then learns from every labelled row, including the most recent ones. Rows whose label is
        not among ``classes_`` are left out.
        """
        check_is_fitted(self, "calibration_")
        frame, labels = as_frame(X, self.context_columns), np.asarray(y, dtype=object)
        index = {label: i for i, label in enumerate(self.classes_)}
        known = np.array([label in index for label in labels], dtype=bool)
        if not known.all():
            frame, labels = frame[known].reset_index(drop=True), labels[known]
        y_index = np.array([index[label] for label in labels])
        text_features = self._fit_components(frame, y_index)
        if self.evidence_ is not None:
            self.evidence_ = NaiveBayesEvidence(self.evidence_.alpha).fit(
                text_features, y_index, len(self.classes_))
        self.training_data_hash_ = data_hash(texts_of(frame), labels)
        return self

    def _select(self, frame: pd.DataFrame, labels: np.ndarray, calibration: pd.DataFrame,
                calibration_labels: np.ndarray) -> Selection | None:
        """Cross-validated settings on small data (``tune="auto"``), else ``None``."""
        if self.tune == "off":
            return None
        if self.tune != "auto":
            raise ValueError(f"tune must be 'auto' or 'off', got {self.tune!r}")
        n_rows = len(frame) + len(calibration)
        if n_rows >= SMALL_DATA_ROWS or n_rows < 100:
            return None
        rows = pd.concat([frame, calibration], ignore_index=True)
        return choose_settings(
            lambda params: clone(self).set_params(tune="off", refit=False, **params),
            rows, np.concatenate([labels, calibration_labels]))

    def _fit_components(self, frame: Any, y_index: np.ndarray) -> sp.csr_matrix:
        """Fit features, context priors, linear model and memory; the TF-IDF rows come back."""
        texts = texts_of(frame)
        self._word_columns = None
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
        return text_features

    def _fit_linear(self, features: Any, y_index: np.ndarray) -> None:
        n_classes = len(self.classes_)
        present = np.unique(y_index)
        settings = getattr(self, "settings_", None) or {"C": self.C,
                                                        "class_weight": self.class_weight}
        if self.linear == "svm":
            model = LinearSVC(C=settings["C"], dual=True, max_iter=2000,
                              class_weight=settings["class_weight"])
        elif self.linear == "logreg":
            model = LogisticRegression(C=settings["C"], max_iter=300,
                                       class_weight=settings["class_weight"])
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
            # A push too small to show at 4 decimals is no reason to show the word.
            if len(out[row]) < top_k and round(value, 4) > 0:
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
                "refit": self.refit,
                "tune": self.tune,
            },
            "settings": self.settings_,
            "selection": None if getattr(self, "selection_", None) is None
            else self.selection_.as_dict(),
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
        model.settings_ = config.get("settings") or {"C": model.C,
                                                     "class_weight": model.class_weight}
        model.selection_ = None
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
