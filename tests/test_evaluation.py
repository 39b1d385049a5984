"""The fixed protocol: split, metrics, and the ``mcu-nlp evaluate`` command on a real slice."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mcu_nlp.cli import app
from mcu_nlp.evaluation.metrics import choose_threshold, quality_report
from mcu_nlp.evaluation.protocol import split_by_column, split_by_time
from mcu_nlp.text.normalize import key_text

PART_KEYS = {"accuracy", "macro_f1", "weighted_f1", "top3", "coverage_at_95",
             "precision_at_threshold"}


def test_duplicate_key_follows_eval_md() -> None:
    assert key_text("  Снег, на ДОРОГЕ!!  ул._Ленина\t5 ") == "снег на дороге ул ленина 5"


def test_threshold_is_the_lowest_reaching_the_target() -> None:
    classes = ["a", "b"]
    confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    proba = np.c_[confidence, 1 - confidence]
    truth = ["a", "a", "a", "b", "a", "b"]  # precision at >=0.9: 1.0; >=0.8: 0.75; >=0.7: 0.8
    assert choose_threshold(truth, proba, classes, target_precision=0.95) == pytest.approx(0.9)
    assert choose_threshold(truth, proba, classes, target_precision=0.8) == pytest.approx(0.7)
    assert choose_threshold(["b"] * 6, proba, classes) == float("inf")


def test_quality_report_matches_definitions() -> None:
    classes = np.array(["a", "b", "c"], dtype=object)
    proba = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
    report = quality_report(["a", "b", "b", "a"], proba, classes, threshold=0.7)
    assert report.accuracy == pytest.approx(0.5)
    assert report.top3 == pytest.approx(1.0)
    assert report.coverage_at_95 == pytest.approx(0.75)
    assert report.precision_at_threshold == pytest.approx(2 / 3)
    # labels present in truth or prediction: a, b, c → F1 a=0.5, b=2/3, c=0
    assert report.macro_f1 == pytest.approx((0.5 + 2 / 3 + 0) / 3)


def test_spb_split_reproduces_eval_md(spb_frame: pd.DataFrame) -> None:
    split = split_by_time(spb_frame)
    assert split.summary() == {"train": 48827, "fit": 43944, "validation": 4883, "test": 11062,
                               "unseen": 8143}


def test_split_by_column_uses_given_parts(spb_slice: pd.DataFrame) -> None:
    frame = spb_slice.assign(part=np.where(np.arange(len(spb_slice)) % 5 == 0, "test", "train"))
    split = split_by_column(frame, split_col="part")
    assert len(split.test) == (frame.part == "test").sum()
    assert len(split.fit) + len(split.validation) == (frame.part == "train").sum()
    with pytest.raises(ValueError, match="expected"):
        split_by_column(frame.assign(part="dev"), split_col="part")


@pytest.fixture(scope="module")
def slice_file(spb_slice: pd.DataFrame, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("eval") / "appeals.csv"
    frame = spb_slice[["id", "created_at", "text", "category", "district", "dup_group_size"]]
    frame = frame.rename(columns={"text": "message"}).copy()
    # A real export has a few empty messages: they are skipped and reported, not a traceback.
    frame.loc[frame.index[[5, 700, 2900]], "message"] = None
    frame.to_csv(path, index=False)
    return str(path)


def test_evaluate_command_on_a_real_slice(slice_file: str, tmp_path) -> None:
    out = tmp_path / "figures.json"
    result = CliRunner().invoke(app, [
        "evaluate", "--data", slice_file, "--text-col", "message", "--label", "category",
        "--time-col", "created_at", "--cutoff", "2021-03-20", "--context", "district",
        "--json", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    frame = pd.read_csv(slice_file)
    test = frame[(pd.to_datetime(frame.created_at) >= "2021-03-20") & frame.message.notna()]
    majority = test.category.value_counts(normalize=True).iloc[0]
    for part in ("test", "unseen"):
        assert PART_KEYS <= set(figures[part])
        assert 0.0 <= figures[part]["coverage_at_95"] <= 1.0
    # Well above the majority-class rate (0.66 here), not just above a half.
    assert figures["test"]["accuracy"] > majority + 0.15
    assert figures["test"]["macro_f1"] > 0.5
    assert figures["train_seconds"] > 0 and figures["texts_per_second"] > 0
    assert figures["split"]["test"] == figures["test"]["rows"]
    assert "EVAL.md protocol" in result.output
    # Coverage comes with the realized precision, its interval and the certificate behind it.
    certificate = figures["certificate"]
    assert certificate["target"] == 0.95 and certificate["confidence"] == 0.9
    assert certificate["reason"]
    if figures["test"]["coverage_at_95"] > 0:
        low, high = figures["test"]["precision_ci95"]
        assert low <= figures["test"]["precision_at_threshold"] <= high
    assert "yardstick" in figures["test"]
    # The empty messages were skipped and counted.
    assert sum(figures["skipped_rows"].values()) == 3
    assert "skipped" in result.output


def test_evaluate_refuses_a_column_written_after_filing(slice_file: str) -> None:
    result = CliRunner().invoke(app, [
        "evaluate", "--data", slice_file, "--text-col", "message", "--label", "category",
        "--time-col", "created_at", "--cutoff", "2021-03-20", "--context", "dup_group_size"])
    assert result.exit_code == 2
    assert "dup_group_size" in result.output and "after the appeal is filed" in result.output


def test_evaluate_command_explains_bad_arguments(slice_file: str) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["evaluate", "--data", slice_file, "--text-col", "message",
                                  "--label", "nope", "--time-col", "created_at",
                                  "--cutoff", "2021-03-20"])
    assert missing.exit_code == 2 and "nope" in missing.output
    no_split = runner.invoke(app, ["evaluate", "--data", slice_file, "--text-col", "message",
                                   "--label", "category"])
    assert no_split.exit_code == 2 and "--split-col" in no_split.output
