"""The topic × territory routing model and the ``routing`` recipe (small real slices)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mcu_nlp.classifiers.ensemble import EnsembleClassifier
from mcu_nlp.classifiers.factory import make_classifier
from mcu_nlp.classifiers.registry import load_classifier
from mcu_nlp.classifiers.topic_territory import TopicTerritoryClassifier


@pytest.fixture(scope="module")
def parts(spb_slice: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    n = len(spb_slice)
    return (spb_slice.iloc[: int(n * 0.7)], spb_slice.iloc[int(n * 0.7): int(n * 0.85)],
            spb_slice.iloc[int(n * 0.85):])


@pytest.fixture(scope="module")
def territory_model(parts) -> TopicTerritoryClassifier:
    fit, calibration, _ = parts
    return TopicTerritoryClassifier(topic_column="reason", context_columns=("district",)).fit(
        fit, fit["department"], X_calibration=calibration,
        y_calibration=calibration["department"])


@pytest.fixture(scope="module")
def routing_model(parts) -> EnsembleClassifier:
    fit, calibration, _ = parts
    model = make_classifier("routing", context_columns=("district",), topic_column="reason")
    return model.fit(fit, fit["department"], X_calibration=calibration,
                     y_calibration=calibration["department"])


def test_probabilities_are_a_distribution(territory_model, parts) -> None:
    _, _, test = parts
    proba = territory_model.predict_proba(test[["text", "district"]])  # no topic needed to predict
    assert proba.shape == (len(test), len(territory_model.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (proba >= 0).all()


def test_the_place_decides_between_district_bodies(territory_model, parts) -> None:
    # One text about a district body's job, two districts: each answer is a body of its district.
    fit, _, _ = parts
    seen_in = fit.groupby("department")["district"].agg(set)
    district_bodies = fit[fit["department"].map(lambda d: len(seen_in[d]) == 1)]
    districts = district_bodies["district"].value_counts().index[:2]
    text = district_bodies[district_bodies["district"] == districts[0]]["text"].iloc[0]
    frame = pd.DataFrame({"text": [text, text], "district": list(districts)})
    top = territory_model.predict(frame)
    assert top[0] != top[1]
    for department, district in zip(top, districts, strict=True):
        assert seen_in[department] == {district}, (department, district)


def test_unknown_place_falls_back_to_the_topic_alone(territory_model, parts) -> None:
    _, _, test = parts
    frame = test[["text"]].assign(district="Нет такого района").iloc[:20]
    proba = territory_model.predict_proba(frame)
    topic = territory_model.topic_model_.predict_proba(frame)
    np.testing.assert_allclose(proba, topic @ territory_model.topic_prior_, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def direct_model(parts):
    """The plain default model on the same rows: text n-grams plus the district as context."""
    fit, calibration, _ = parts
    model = make_classifier("sparse", context_columns=("district",))
    return model.fit(fit, fit["department"], X_calibration=calibration,
                     y_calibration=calibration["department"])


def test_routing_recipe_beats_the_direct_model_on_later_rows(routing_model, direct_model,
                                                             parts) -> None:
    """Same training, calibration and (later) test rows; only text and district to predict."""
    from scipy.stats import binomtest
    from sklearn.metrics import f1_score

    _, _, test = parts
    inputs, truth = test[["text", "district"]], test["department"].to_numpy()
    routed, direct = routing_model.predict(inputs), direct_model.predict(inputs)
    routed_right, direct_right = routed == truth, direct == truth
    accuracy = {"routing": routed_right.mean(), "direct": direct_right.mean()}
    macro_f1 = {name: f1_score(truth, predicted, average="macro", zero_division=0)
                for name, predicted in (("routing", routed), ("direct", direct))}
    assert accuracy["routing"] >= accuracy["direct"] + 0.02, accuracy
    assert macro_f1["routing"] > macro_f1["direct"] + 0.01, macro_f1
    # Not a coin toss: among the rows only one model gets right, the routing model wins the most
    # (one-sided sign test).
    wins = int((routed_right & ~direct_right).sum())
    losses = int((direct_right & ~routed_right).sum())
    assert binomtest(wins, wins + losses, alternative="greater").pvalue < 0.05, (wins, losses)


def test_needs_its_topic_column(parts) -> None:
    fit, calibration, _ = parts
    with pytest.raises(ValueError, match="topic column 'nope'"):
        TopicTerritoryClassifier(topic_column="nope").fit(
            fit, fit["department"], X_calibration=calibration,
            y_calibration=calibration["department"])
    with pytest.raises(ValueError, match="topic column"):
        make_classifier("routing", context_columns=("district",))


def test_routing_recipe_round_trip(routing_model, parts, tmp_path) -> None:
    _, _, test = parts
    model = routing_model
    assert isinstance(model, EnsembleClassifier)
    assert model.weights_[1] > 0  # the topic × territory member is used
    before = model.predict_proba(test)
    model.save(tmp_path / "routing")
    loaded = load_classifier(tmp_path / "routing")
    # float16 weights on disk: probabilities move by up to a hundredth.
    np.testing.assert_allclose(loaded.predict_proba(test), before, atol=1e-2)
    assert list(loaded.classes_) == list(model.classes_)


def test_routing_recipe_explains_with_its_sparse_member(routing_model, parts) -> None:
    _, _, test = parts
    words = routing_model.explain(test.iloc[:10], top_k=3)
    assert len(words) == 10
    assert sum(bool(w) for w in words) >= 5
    assert all(len(w) <= 3 and all(weight > 0 for _, weight in w) for w in words)


def test_training_job_routes_through_the_topic_where_rows_carry_it(parts, tmp_path) -> None:
    from mcu_nlp.classifiers.bundle import ModelBundle
    from mcu_nlp.services.training import train_bundle

    fit, calibration, test = parts
    bundle = train_bundle(fit, labels=["department"], version="t1", out_dir=tmp_path / "with",
                          validation_frame=calibration)
    assert bundle.metrics["department"]["recipe"] == "routing (topic: reason)"
    loaded = ModelBundle.load(tmp_path / "with")
    predicted = loaded.predict(test[["text", "district"]].iloc[:5])
    assert [p["department"].value for p in predicted] == list(
        bundle.models["department"].predict(test.iloc[:5]))

    plain = train_bundle(fit.drop(columns="reason"), labels=["department"], version="t2",
                         out_dir=tmp_path / "without",
                         validation_frame=calibration.drop(columns="reason"))
    assert plain.metrics["department"]["recipe"] == "sparse"
