"""ONNX serving of the transformer on a tiny random BERT: export, int8, checks, bundle, fallback.

The BERT is built here (``BertConfig`` with two small layers, random weights, a WordPiece vocab
of the test texts' words written to a temp dir): no download, no GPU, seconds on CPU.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch", reason="exporting needs the train extra (torch)")
pytest.importorskip("transformers", reason="the tiny BERT is a transformers BertModel")
pytest.importorskip("onnxruntime", reason="serving needs onnxruntime")
pytest.importorskip("onnx", reason="int8 quantization needs onnx")

from mcu_nlp.artifacts import ArtifactError  # noqa: E402
from mcu_nlp.classifiers.bundle import ModelBundle  # noqa: E402
from mcu_nlp.classifiers.ensemble import EnsembleClassifier  # noqa: E402
from mcu_nlp.classifiers.onnx_serving import (  # noqa: E402
    MODEL_FILE,
    Coalescer,
    OnnxTransformerClassifier,
    ServingCheckError,
    agreement_report,
    check_agreement,
    export_check,
    export_served,
    length_batches,
    to_served,
)
from mcu_nlp.classifiers.registry import load_classifier  # noqa: E402
from mcu_nlp.classifiers.sparse import SparseTextClassifier  # noqa: E402
from mcu_nlp.classifiers.transformer import TransformerClassifier  # noqa: E402

TOPICS = {
    "Дороги": ["яма на дороге", "разбитый асфальт", "выбоина на проезжей части",
               "провал асфальта", "ямы на тротуаре"],
    "Мусор": ["мусор во дворе", "свалка", "отходы", "переполнен контейнер", "не вывозят мусор"],
    "Отопление": ["холодные батареи", "нет отопления", "не греют радиаторы",
                  "нет горячей воды", "холодно в квартире"],
}
PLACES = ["у дома 5", "у подъезда 2", "на улице Ленина", "возле школы", "на Невском проспекте",
          "рядом с остановкой", "у дома 12 корпус 3", "напротив магазина"]
OPENINGS = ["Здравствуйте.", "Добрый день!", "Уже неделю", "Прошу помочь:", ""]
CLOSINGS = ["Прошу принять меры.", "Когда исправят?", "Спасибо.", "Разберитесь, пожалуйста.", ""]


def appeals(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        topic = list(TOPICS)[i % 3]
        text = (f"{rng.choice(OPENINGS)} {rng.choice(TOPICS[topic])} {rng.choice(PLACES)}. "
                f"{rng.choice(CLOSINGS)}").strip()
        rows.append((text, topic, rng.choice(["Адмиралтейский", "Кировский"])))
    frame = pd.DataFrame(rows, columns=["text", "category", "district"])
    return frame.iloc[rng.permutation(n)].reset_index(drop=True)


@pytest.fixture(scope="module")
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random two-layer BERT and a WordPiece tokenizer of the test texts' words."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import BertConfig, BertModel

    directory = tmp_path_factory.mktemp("tiny-bert")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    words: set[str] = {"query", ":"}
    probe = Tokenizer(models.WordPiece({"[UNK]": 0}, unk_token="[UNK]"))
    probe.normalizer = normalizers.BertNormalizer(lowercase=True)
    probe.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    for text in appeals(600, seed=0)["text"]:
        normalized = probe.normalizer.normalize_str(text)
        words.update(piece for piece, _ in probe.pre_tokenizer.pre_tokenize_str(normalized))
    vocab = {token: i for i, token in enumerate(specials + sorted(words))}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer.save(str(directory / "tokenizer.json"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=64, pad_token_id=0)
    BertModel(config, add_pooling_layer=False).save_pretrained(str(directory))
    assert (directory / "model.safetensors").exists()
    return directory


TINY = dict(max_length=32, batch_size=16, epochs=25, learning_rate=2e-3, head_learning_rate=2e-2,
            patience=25, device="cpu", seed=0)


@pytest.fixture(scope="module")
def task() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    data = appeals(360, seed=1)
    return data.iloc[:180], data.iloc[180:240], data.iloc[240:]


@pytest.fixture(scope="module")
def torch_model(tiny_bert, task, one_thread) -> TransformerClassifier:
    train, validation, _ = task
    model = TransformerClassifier(tiny_bert, **TINY)
    return model.fit(train[["text"]], train["category"], X_val=validation[["text"]],
                     y_val=validation["category"])


@pytest.fixture(scope="module")
def served(torch_model, tmp_path_factory) -> OnnxTransformerClassifier:
    return export_served(torch_model, tmp_path_factory.mktemp("onnx"), threads=1)


def test_tiny_bert_learns(torch_model, task):
    test = task[2]
    accuracy = (torch_model.predict(test[["text"]]) == test["category"].to_numpy()).mean()
    assert accuracy >= 0.85, accuracy


def test_onnx_round_trip(torch_model, served, task):
    texts = task[2]["text"].tolist()
    report = export_check(served, texts)
    # fp32 ONNX computes what torch computes; int8 keeps the decisions
    assert report["fp32_max_abs_logit_diff"] < 1e-3, report
    assert report["fp32_top1_agreement"] == 1.0
    assert report["served_top1_agreement"] >= 0.95, report
    torch_proba = torch_model.predict_proba(texts)
    served_proba = served.predict_proba(texts)
    assert served_proba.shape == torch_proba.shape
    np.testing.assert_allclose(served_proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (served_proba.argmax(1) == torch_proba.argmax(1)).mean() >= 0.95
    assert np.abs(served_proba - torch_proba).max() < 0.2
    assert served.export_report["quantization"].startswith("int8")
    assert served.export_report["served_bytes"] < served.export_report["fp32_bytes"]
    assert list(served.classes_) == list(torch_model.classes_)
    # one text at a time answers as the batch does: int8 scales activations per ONNX run, so
    # the probabilities move a little with the batch neighbours, the decisions do not
    one = np.vstack([served.predict_proba([text]) for text in texts[:20]])
    np.testing.assert_allclose(one, served_proba[:20], atol=0.05)
    assert (one.argmax(1) == served_proba[:20].argmax(1)).all()


def test_length_batches_respect_buckets_and_token_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 129, size=500)
    batches = length_batches(lengths, buckets=(16, 32, 64, 128), max_tokens=512, max_texts=24)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(500))
    edges = np.array([16, 32, 64, 128])
    for batch in batches:
        widths = lengths[batch]
        assert len(set(np.searchsorted(edges, widths).tolist())) == 1  # one bucket
        assert len(batch) <= 24
        assert len(batch) == 1 or len(batch) * widths.max() <= 512
    assert length_batches([], buckets=(16,)) == []
    assert [b.tolist() for b in length_batches([200], buckets=(16, 32), max_tokens=64)] == [[0]]


def test_coalescer_runs_concurrent_calls_together():
    calls: list[int] = []
    gate = threading.Event()

    def run(items: list[np.ndarray]) -> np.ndarray:
        calls.append(len(items))
        gate.wait(2)  # the first run blocks until everybody queued behind it
        return np.stack([item[:1].astype(np.float32) * 2 for item in items])

    coalescer = Coalescer(run)
    results: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        results[i] = coalescer([np.array([i, 0]), np.array([i, 1])])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    threads[0].start()
    time.sleep(0.1)
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert all(results[i].tolist() == [[2 * i], [2 * i]] for i in range(8))
    assert calls[0] == 2 and sum(calls) == 16
    assert coalescer.runs == len(calls) <= 3  # the seven late calls share one or two runs

    def broken(items: list[np.ndarray]) -> np.ndarray:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        Coalescer(broken)([np.array([1])])


def test_served_model_save_load_and_damage(served, task, tmp_path):
    texts = task[2]["text"].tolist()
    path = served.save(tmp_path / "served")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["kind"] == "transformer_onnx"
    assert (path / "torch" / "manifest.json").exists()  # the fine-tuned torch model beside it
    loaded = load_classifier(path)
    assert isinstance(loaded, OnnxTransformerClassifier)
    np.testing.assert_allclose(loaded.predict_proba(texts), served.predict_proba(texts),
                               atol=1e-6)
    data = bytearray((path / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="damaged"):
        OnnxTransformerClassifier.load(path)


def test_agreement_report_and_refusal():
    rng = np.random.default_rng(0)
    classes = np.array(["a", "b", "c"], dtype=object)
    n = 3000
    truth = rng.choice(classes, size=n)
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), np.searchsorted(classes, truth)] += rng.uniform(0, 8, size=n)
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    same = agreement_report(proba, proba, classes, truth)
    assert same["passed"] and same["coverage_loss"] == 0 and same["top1_agreement"] == 1.0
    assert same["reference"]["coverage"] > 0.3
    assert same["reference"]["realized_precision"] >= 0.95
    check_agreement(same)
    # a served model whose confidences are blurred by noise routes less at the same
    # guarantee: refused
    noisy = 0.5 * proba + 0.5 * rng.dirichlet(np.ones(3), size=n)
    worse = agreement_report(proba, noisy, classes, truth)
    assert not worse["passed"]
    assert worse["coverage_loss"] > 0.005
    assert worse["served_at_reference_threshold"]["coverage"] < worse["reference"]["coverage"]
    with pytest.raises(ServingCheckError, match="not registered"):
        check_agreement(worse)


@pytest.fixture(scope="module")
def served_bundle(tiny_bert, task, tmp_path_factory, one_thread) -> tuple[Path, ModelBundle]:
    """A transformer-ensemble label through the job's hook, saved as a bundle."""
    from mcu_nlp.services.transformer_job import onnx_serving_hook

    train, validation, _ = task
    work = tmp_path_factory.mktemp("work")
    ensemble = EnsembleClassifier([SparseTextClassifier(context_columns=("district",), tune="off"),
                                   TransformerClassifier(tiny_bert, **TINY)])
    ensemble.fit(train, train["category"].to_numpy())
    hook = onnx_serving_hook(work, threads=1)
    served_ensemble, info = hook("category", ensemble, validation,
                                 truth=validation["category"].to_numpy(), never_route=(),
                                 target=0.9, level=0.9)
    assert info["check"]["passed"] and info["check"]["top1_agreement"] >= 0.95
    assert info["check"]["single_vs_batch"]["rows"] == len(validation)
    assert info["export_check"]["fp32_max_abs_logit_diff"] < 1e-3
    assert info["fallback"]["model"] == "member_0"
    bundle = ModelBundle({"category": served_ensemble}, version="onnx-test",
                         thresholds={"category": 0.5},
                         fallbacks={"category": {"model": "member_0", "threshold": 0.8,
                                                 "class_thresholds": {"Мусор": float("inf")}}})
    path = bundle.save(tmp_path_factory.mktemp("bundles") / "onnx-test")
    return path, bundle


def test_bundle_serves_the_onnx_blend(served_bundle, task):
    path, bundle = served_bundle
    test = task[2]
    loaded = ModelBundle.load(path)
    assert loaded.fallen_back == {}
    member = loaded.models["category"].members_[1]
    assert isinstance(member, OnnxTransformerClassifier)
    # (int8 rounding may differ by a step with another thread count: not bit for bit)
    np.testing.assert_allclose(loaded.models["category"].predict_proba(test),
                               bundle.models["category"].predict_proba(test), atol=2e-3)
    predictions = loaded.predict(test.iloc[:5])
    assert predictions[0]["category"].threshold == 0.5
    assert predictions[0]["category"].explanation  # the sparse member explains
    accuracy = (loaded.models["category"].predict(test) == test["category"].to_numpy()).mean()
    assert accuracy >= 0.75  # three classes: chance is a third


def test_serving_imports_neither_torch_nor_transformers(served_bundle, task):
    path, _ = served_bundle
    script = (
        "import sys, json\n"
        "from mcu_nlp.classifiers.bundle import ModelBundle\n"
        f"bundle = ModelBundle.load({str(path)!r})\n"
        f"out = bundle.predict({task[2]['text'].tolist()[:3]!r})\n"
        "print(json.dumps({'torch': 'torch' in sys.modules,\n"
        "                  'transformers': 'transformers' in sys.modules,\n"
        "                  'value': out[0]['category'].value}))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["torch"] is False and seen["transformers"] is False
    assert seen["value"] in TOPICS


def test_bundle_falls_back_to_sparse_with_a_warning(served_bundle, task, tmp_path, caplog):
    import shutil

    path, _ = served_bundle
    copy = tmp_path / "broken"
    shutil.copytree(path, copy)
    (copy / "category" / "member_1" / MODEL_FILE).write_bytes(b"not an onnx graph")
    with caplog.at_level(logging.WARNING, logger="mcu_nlp.classifiers.bundle"):
        loaded = ModelBundle.load(copy)
    assert "category" in loaded.fallen_back and "damaged" in loaded.fallen_back["category"]
    assert any("fallback" in record.getMessage() for record in caplog.records)
    assert isinstance(loaded.models["category"], SparseTextClassifier)
    assert loaded.thresholds["category"] == 0.8
    assert loaded.threshold_for("category", "Мусор") is None  # never routed by the fallback
    assert loaded.threshold_for("category", "Дороги") == 0.8
    predictions = loaded.predict(task[2].iloc[:3])
    assert predictions[0]["category"].value in TOPICS
    # without a fallback the error is not hidden
    manifest = json.loads((copy / "config.json").read_text())
    manifest.pop("fallbacks")
    (copy / "config.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError):
        ModelBundle.load(copy)


def test_to_served_leaves_other_models_alone(tmp_path):
    sparse = SparseTextClassifier(tune="off")
    assert to_served(sparse, tmp_path) is sparse


def test_transformer_job_trains_checks_registers(tiny_bert, tmp_path, one_thread):
    """The whole job on the tiny BERT: frozen-encoder head (no GPU, no budget), served int8
    blend checked against torch, thresholds certified, sparse fallback, registered and active."""
    from mcu_nlp.classifiers.transformer import _FEATURE_CACHE
    from mcu_nlp.services.models import ModelRegistry
    from mcu_nlp.services.transformer_job import choose_mode, run_transformer_job
    from mcu_nlp.storage import Store

    mode, params = choose_mode(None, "cpu")
    assert mode.startswith("frozen-encoder head") and params["freeze_layers"] >= 12
    data = appeals(420, seed=3)
    data["created_at"] = pd.date_range("2021-01-01", periods=len(data), freq="h")
    fit, validation, test = data.iloc[:240], data.iloc[240:300], data.iloc[300:]
    store = Store.from_url(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    registry = ModelRegistry(store)
    _FEATURE_CACHE.clear()
    report = run_transformer_job(
        labels=["category"], version="tf-1", out_dir=tmp_path / "models" / "tf-1", fit=fit,
        validation=validation, test=test, base_dir=tiny_bert, device="cpu",
        transformer_params={"max_length": 32, "head_learning_rate": 5e-2, "seed": 0},
        registry=registry, activate="auto")
    assert report.mode.startswith("frozen-encoder head")
    assert report.registered and report.activated  # nothing was active
    assert not (tmp_path / "models" / ".tf-1.onnx-work").exists()
    metrics = registry.get("tf-1").metrics
    serving = metrics["category"]["serving"]
    assert serving["transformer_fit"]["mode"] == "frozen-encoder head"
    assert serving["check"]["passed"] and serving["check"]["top1_agreement"] >= 0.9
    assert serving["fallback"]["model"] == "member_0"
    assert metrics["job"]["mode"] == report.mode and "test" in metrics["category"]
    assert len(_FEATURE_CACHE) >= 1  # the encoder ran once per text set
    loaded = ModelBundle.load(tmp_path / "models" / "tf-1")
    assert isinstance(loaded.models["category"].members_[1], OnnxTransformerClassifier)
    assert loaded.fallbacks["category"]["model"] == "member_0"
    # a second version is compared with the active one on the test rows before activation
    again = run_transformer_job(
        labels=["category"], version="tf-2", out_dir=tmp_path / "models" / "tf-2", fit=fit,
        validation=validation, test=test, base_dir=tiny_bert, device="cpu",
        transformer_params={"max_length": 32, "head_learning_rate": 5e-2, "seed": 0},
        registry=registry, activate="auto")
    assert again.compared_with == "tf-1" and again.comparison["rows"] == len(test)
    assert again.activated == again.comparison["wins"]
    assert registry.active_version() == ("tf-2" if again.activated else "tf-1")
    store.dispose()


def test_transformer_job_trains_labels_in_parallel(tiny_bert, tmp_path):
    """``jobs=2``: each label in its own process, then one bundle (torch weights carried)."""
    from mcu_nlp.services.transformer_job import run_transformer_job

    data = appeals(360, seed=4)
    data["created_at"] = pd.date_range("2021-01-01", periods=len(data), freq="h")
    data["heat"] = np.where(data["category"] == "Отопление", "да", "нет")
    fit, validation, test = data.iloc[:200], data.iloc[200:260], data.iloc[260:]
    report = run_transformer_job(
        labels=["category", "heat"], version="tf-par", out_dir=tmp_path / "tf-par", fit=fit,
        validation=validation, test=test, base_dir=tiny_bert, device="cpu", jobs=2,
        transformer_params={"max_length": 32, "head_learning_rate": 5e-2, "seed": 0})
    assert "labels trained 2 at a time" in report.notes
    assert not report.registered
    bundle = ModelBundle.load(tmp_path / "tf-par")
    assert bundle.labels == ["category", "heat"] and set(bundle.fallbacks) == {"category", "heat"}
    for label in ("category", "heat"):
        assert bundle.metrics[label]["serving"]["check"]["passed"]
        assert (tmp_path / "tf-par" / label / "member_1" / "torch" / "manifest.json").exists()
    assert bundle.predict(test.iloc[:2])[0]["heat"].value in ("да", "нет")


def test_frozen_encoder_head_runs_the_encoder_once_per_text(tiny_bert, task, one_thread):
    from mcu_nlp.classifiers.transformer import _FEATURE_CACHE, training_progress

    train, validation, _ = task
    _FEATURE_CACHE.clear()
    events: list[tuple[str, int, int]] = []
    frozen = dict(TINY, freeze_layers=2, epochs=3)
    with training_progress(lambda what, done, total: events.append((what, done, total))):
        first = TransformerClassifier(tiny_bert, **frozen).fit(
            train[["text"]], train["category"], X_val=validation[["text"]],
            y_val=validation["category"])
        features_first = [e for e in events if e[0] == "features"]
        events.clear()
        # another label on a subset of the rows: every text is already encoded
        TransformerClassifier(tiny_bert, **frozen).fit(
            train[["text"]].iloc[:100], train["category"].iloc[:100],
            X_val=validation[["text"]], y_val=validation["category"])
    assert first.fit_report_["mode"] == "frozen-encoder head"
    assert features_first and features_first[-1][1] == features_first[-1][2]
    assert not [e for e in events if e[0] == "features" and e[2] > 0]
    assert [e for e in events if e[0] == "steps"]


def test_cli_train_recipe_runs_the_transformer_job(monkeypatch):
    from typer.testing import CliRunner

    from mcu_nlp.cli import app
    from mcu_nlp.services import transformer_job

    seen = {}

    def fake_job(**kwargs):
        seen.update(kwargs)
        return transformer_job.TransformerJobReport(
            version="v-test", path="/tmp/v-test", mode="frozen-encoder head on CPU",
            labels=["category"], registered=True, activated=False,
            metrics={"category": {"serving": {"check": {
                "top1_agreement": 0.99, "served": {"coverage": 0.5, "realized_precision": 0.97},
                "reference": {"coverage": 0.5, "realized_precision": 0.97}}}}},
            notes=["against the active v0: does not win"])

    monkeypatch.setattr(transformer_job, "train_reference_transformer", fake_job)
    result = CliRunner().invoke(app, ["train", "--recipe", "transformer-ensemble", "--labels",
                                      "category", "--time-budget", "600", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert seen["recipe"] == "transformer-ensemble" and seen["time_budget_s"] == 600
    assert seen["register"] is True and seen["activate"] == "auto" and seen["jobs"] == 2
    assert "frozen-encoder head" in result.output and "registered inactive" in result.output
    assert "top-1 agreement 0.9900" in result.output


def test_cli_train_register_for_the_sparse_recipe(monkeypatch, tmp_path, task):
    """``--register`` on a non-transformer recipe: registered, and active when none was."""
    from typer.testing import CliRunner

    from mcu_nlp.cli import app
    from mcu_nlp.services import training
    from mcu_nlp.services.models import ModelRegistry
    from mcu_nlp.settings import get_settings
    from mcu_nlp.storage import Store

    train, validation, test = task
    monkeypatch.setenv("MCU_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        def fake_train(**kwargs):
            path = tmp_path / "models" / "v-sparse"
            bundle = training.train_bundle(train, labels=["category"], version="v-sparse",
                                           out_dir=path, validation_frame=validation,
                                           model="sparse")
            return bundle, path

        monkeypatch.setattr(training, "train_reference_bundle", fake_train)
        monkeypatch.setattr("mcu_nlp.evaluation.datasets.load_spb",
                            lambda: pd.concat([train, validation, test]).assign(
                                created_at=pd.date_range("2021-03-01", periods=360, freq="D")
                                .astype(str), id=range(360)))
        result = CliRunner().invoke(app, ["train", "--labels", "category", "--register"])
        assert result.exit_code == 0, result.output
        assert "activated: v-sparse" in result.output
        store = Store.from_url(get_settings().store_url)
        assert ModelRegistry(store).active_version() == "v-sparse"
        store.dispose()
    finally:
        get_settings.cache_clear()
