"""The naive-Bayes evidence of the sparse model: its choice on the calibration part, artifacts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mcu_nlp.classifiers.calibration import StackCalibration, choose_evidence_weight
from mcu_nlp.classifiers.registry import load_classifier
from mcu_nlp.classifiers.sparse import SparseTextClassifier


def _parts(rng: np.random.Generator, n: int, k: int, text_noise: float, nb_noise: float):
    truth = rng.integers(0, k, n)
    signal = np.eye(k)[truth] * 3.0
    text = signal + rng.normal(0, text_noise, (n, k))
    evidence = signal + rng.normal(0, nb_noise, (n, k))
    log = lambda z: z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # noqa: E731
    return truth, log(text), log(evidence)


def test_useful_evidence_is_chosen_and_useless_evidence_is_not() -> None:
    rng = np.random.default_rng(0)
    truth, text, informative = _parts(rng, 3000, 6, text_noise=2.5, nb_noise=1.5)
    noise = np.log(np.full_like(text, 1 / 6)) + rng.normal(0, 3.0, text.shape)
    alpha, weight = choose_evidence_weight(truth, text, [], None, {0.1: informative},
                                           weights=(0.5, 1.0))
    assert alpha == 0.1 and weight > 0
    alpha, weight = choose_evidence_weight(truth, text, [], None, {0.1: noise},
                                           weights=(0.5, 1.0))
    assert alpha is None and weight == 0.0


def test_a_stack_with_evidence_still_gives_distributions() -> None:
    rng = np.random.default_rng(1)
    truth, text, evidence = _parts(rng, 500, 4, text_noise=2.0, nb_noise=2.0)
    stack = StackCalibration.fit(truth, text, [], None, evidence, evidence_weight=0.3)
    assert stack.evidence_weight == 0.3
    proba = stack.combine(text, [], None, evidence)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert not np.allclose(proba, stack.combine(text, [], None, None))


@pytest.fixture(scope="module")
def parts(spb_slice: pd.DataFrame):
    n = len(spb_slice)
    return spb_slice.iloc[: int(n * 0.6)], spb_slice.iloc[int(n * 0.6): int(n * 0.85)], \
        spb_slice.iloc[int(n * 0.85):]


def test_model_with_evidence_round_trips(parts, tmp_path, monkeypatch) -> None:
    import mcu_nlp.classifiers.sparse as sparse

    # Whether the evidence pays off on a small slice is the data's call; here it is forced in.
    monkeypatch.setattr(sparse, "choose_evidence_weight", lambda *a, **k: (0.1, 0.2))
    fit, calibration, test = parts
    model = SparseTextClassifier(context_columns=("district",)).fit(
        fit, fit["category"], X_calibration=calibration, y_calibration=calibration["category"])
    assert model.evidence_ is not None and model.evidence_.alpha == 0.1
    assert model.calibration_.evidence_weight == 0.2
    proba = model.predict_proba(test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    path = model.save(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    assert config["evidence"]["alpha"] == 0.1
    assert config["calibration"]["evidence_weight"] == 0.2
    loaded = load_classifier(path)
    # float16 weights on disk: scores move by a few thousandths.
    np.testing.assert_allclose(loaded.predict_proba(test), model.predict_proba(test), atol=5e-3)


def test_models_saved_before_the_evidence_existed_still_load(parts, tmp_path) -> None:
    fit, calibration, test = parts
    model = SparseTextClassifier(naive_bayes_alphas=()).fit(
        fit, fit["category"], X_calibration=calibration, y_calibration=calibration["category"])
    assert model.evidence_ is None
    path = model.save(tmp_path / "old")
    config = json.loads((path / "config.json").read_text())
    del config["params"]["naive_bayes_alphas"]
    del config["calibration"]["evidence_weight"]
    (path / "config.json").write_text(json.dumps(config))
    loaded = load_classifier(path)
    assert loaded.naive_bayes_alphas == () and loaded.evidence_ is None
    # float16 weights on disk: scores move by a few thousandths.
    np.testing.assert_allclose(loaded.predict_proba(test), model.predict_proba(test), atol=5e-3)
