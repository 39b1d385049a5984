import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.dummy import DummyClassifier

from mcu_nlp.classifiers import selection
from mcu_nlp.classifiers.factory import make_classifier
from mcu_nlp.classifiers.selection import choose_settings, time_folds
from mcu_nlp.classifiers.sparse import SparseTextClassifier

TOPICS = {
    "дороги": "яма на дороге асфальт разбит",
    "мусор": "мусор не вывозят контейнер переполнен",
    "свет": "не горит фонарь освещение двора",
    "снег": "не убран снег сосульки на крыше",
}


def _appeals(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.choice(list(TOPICS), size=n)
    filler = ["прошу принять меры", "уже не первый раз", "жители дома", "срочно", "спасибо"]
    texts = [f"{rng.choice(filler)} {TOPICS[label]} {rng.choice(filler)} "
             f"дом {rng.integers(1, 9999)}" for label in labels]
    return pd.DataFrame({"text": texts}), labels


def test_time_folds_learn_from_the_past_and_score_the_next_block():
    folds = time_folds(90, folds=2)
    assert [(len(a), len(b)) for a, b in folds] == [(30, 30), (60, 30)]
    for learn, score in folds:
        assert learn.max() < score.min()


def test_cross_validation_picks_the_better_setting_whatever_its_place():
    frame, labels = _appeals(600)
    base = SparseTextClassifier(tune="off", refit=False)

    def make(params):
        if params["kind"] == "majority":
            return DummyClassifier(strategy="most_frequent")
        return clone(base)

    candidates = [{"kind": "majority"}, {"kind": "sparse"}]
    chosen = choose_settings(make, frame, labels, candidates=candidates)
    assert chosen.params == {"kind": "sparse"}
    scores = {p["kind"]: s for p, s in chosen.scores}
    assert scores["sparse"] > scores["majority"] + 0.5
    # A tie keeps the earlier candidate (the default comes first).
    tie = choose_settings(make, frame, labels, candidates=[{"kind": "sparse"}, {"kind": "sparse"},
                                                           {"kind": "majority"}])
    assert tie.params == {"kind": "sparse"} and tie.scores[0][1] == tie.scores[1][1]


def test_the_training_recipe_tunes_on_small_data_only(monkeypatch):
    frame, labels = _appeals(400, seed=1)
    model = make_classifier("sparse").fit(frame, labels)
    assert model.selection_ is not None
    assert len(model.selection_.scores) == len(selection.CANDIDATES)
    assert model.settings_ == model.selection_.params
    # The chosen settings are what the saved model says it used.
    monkeypatch.setattr("mcu_nlp.classifiers.sparse.SMALL_DATA_ROWS", 100)
    large = make_classifier("sparse").fit(frame, labels)
    assert large.selection_ is None and large.settings_["C"] == large.C
    plain = SparseTextClassifier().fit(frame, labels)
    assert plain.selection_ is None
