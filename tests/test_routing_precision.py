"""The precision audit's pure parts: Clopper–Pearson bounds, the sample, how thresholds tighten."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from mcu_nlp.routing.audit_sample import AuditSampler, sample_key
from mcu_nlp.routing.precision import (
    PrecisionPolicy,
    clopper_pearson,
    estimate_precision,
    lower_bound,
    tightened_threshold,
)
from mcu_nlp.routing.thresholds import apply_overrides, effective_threshold
from mcu_nlp.settings import Settings


@pytest.mark.parametrize(("correct", "total", "low", "high"), [
    # exact 95 % intervals as R's binom.test prints them; the 0-of-n and n-of-n ends are
    # closed-form: 1 - 0.025 ** (1 / n) and 0.025 ** (1 / n)
    (0, 10, 0.0, 0.3085), (5, 10, 0.1871, 0.8129), (10, 10, 0.6915, 1.0),
    (95, 100, 0.8872, 0.9836), (1, 20, 0.0013, 0.2487), (1, 1, 0.025, 1.0),
])
def test_clopper_pearson_matches_published_values(correct, total, low, high):
    got = clopper_pearson(correct, total)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_clopper_pearson_agrees_with_statsmodels_on_a_grid():
    for total in (1, 7, 30, 59, 200):
        for correct in range(0, total + 1, max(1, total // 9)):
            for level in (0.9, 0.95, 0.99):
                ours = clopper_pearson(correct, total, level)
                ref = proportion_confint(correct, total, alpha=1 - level, method="beta")
                assert ours == pytest.approx(tuple(float(x) for x in ref), abs=1e-9)


def test_one_sided_lower_bound():
    # n of n correct: the bound solves p ** n = 1 - confidence
    assert lower_bound(30, 30, 0.95) == pytest.approx(0.05 ** (1 / 30))
    assert lower_bound(59, 59, 0.95) >= 0.95 > lower_bound(58, 58, 0.95)
    # a one-sided bound at c is the lower end of the two-sided interval at 2c - 1
    for correct, total in ((3, 10), (95, 100), (190, 200)):
        assert lower_bound(correct, total, 0.95) == pytest.approx(
            clopper_pearson(correct, total, 0.90)[0])
    assert lower_bound(0, 5) == 0.0
    with pytest.raises(ValueError):
        lower_bound(6, 5)


def test_estimate_of_nothing_audited_is_empty():
    empty = estimate_precision(0, 0)
    assert empty.estimate is None and empty.interval is None and empty.lower_bound is None
    found = estimate_precision(9, 10, confidence=0.9)
    assert found.estimate == 0.9 and found.interval == clopper_pearson(9, 10)
    assert found.lower_bound == pytest.approx(lower_bound(9, 10, 0.9))


def test_policy_needs_enough_evidence_for_a_flawless_sample_to_pass():
    policy = PrecisionPolicy()
    assert policy.min_evidence == 59  # 30 flawless items would still "fail" a 0.95 bound
    assert not policy.below_target(30, 30) and not policy.precise_enough(30, 30)
    assert policy.precise_enough(59, 59) and not policy.below_target(59, 59)
    assert policy.below_target(57, 60)
    assert PrecisionPolicy(target=0.8, confidence=0.8, min_items=5).min_evidence == 8
    assert PrecisionPolicy(target=0.5, confidence=0.9, min_items=30).min_evidence == 30


def test_tightening_picks_the_lowest_precise_enough_confidence():
    policy = PrecisionPolicy(target=0.8, confidence=0.8, min_items=5)  # needs 8 items
    confidences = [0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.91, 0.90,
                   0.80, 0.79, 0.78, 0.77, 0.76, 0.75]
    correct = [True] * 10 + [False] * 6
    choice = tightened_threshold(confidences, correct, 0.7, policy)
    assert (choice.threshold, choice.method) == (0.90, "estimate")
    assert (choice.audited_above, choice.correct_above) == (10, 10)
    assert policy.precise_enough(10, 10) and not policy.precise_enough(10, 11)


def test_tightening_falls_back_to_a_step_towards_one():
    policy = PrecisionPolicy(target=0.8, confidence=0.8, min_items=5, step=0.5)
    confidences = [0.99, 0.95, 0.9, 0.85, 0.8, 0.75, 0.72, 0.71, 0.705]
    correct = [False, True, False, True, False, True, False, True, False]
    choice = tightened_threshold(confidences, correct, 0.7, policy)
    assert choice.method == "step" and choice.threshold == pytest.approx(0.85)
    assert choice.audited_above == 4 and choice.correct_above == 2
    at_one = tightened_threshold([1.0] * 10, [False] * 10, 1.0, policy)
    assert at_one.threshold == 1.0


def test_tightening_keeps_ties_together():
    policy = PrecisionPolicy(target=0.8, confidence=0.8, min_items=5)
    # the 9th item ties the 8th in confidence but is wrong: 0.9 cannot be the threshold
    confidences = [0.99] * 7 + [0.9, 0.9] + [0.8] * 4
    correct = [True] * 8 + [False] + [False] * 4
    choice = tightened_threshold(confidences, correct, 0.7, policy)
    assert choice.method == "step"


def test_audit_sample_is_uniform_reproducible_and_seeded():
    keys = [sample_key("spb_portal", str(i)) for i in range(40_000)]
    sampler = AuditSampler(share=0.02, seed="s1")
    drawn = [sampler.sampled(k) for k in keys]
    rate = sum(drawn) / len(keys)
    assert abs(rate - 0.02) < 4 * math.sqrt(0.02 * 0.98 / len(keys))
    assert drawn == [AuditSampler(0.02, "s1").sampled(k) for k in keys]  # deterministic
    other = [AuditSampler(0.02, "s2").sampled(k) for k in keys]
    assert other != drawn and abs(sum(other) / len(keys) - 0.02) < 0.004
    # uniform draws: every decile holds a tenth of the keys (no part of the range favoured)
    deciles = np.histogram([sampler.draw(k) for k in keys], bins=10, range=(0, 1))[0]
    assert deciles.min() > 0.09 * len(keys) and deciles.max() < 0.11 * len(keys)
    assert not any(AuditSampler(0.0).sampled(k) for k in keys[:1000])
    assert all(AuditSampler(1.0).sampled(k) for k in keys[:1000])
    with pytest.raises(ValueError):
        AuditSampler(1.5)


def test_audit_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MCU_AUDIT_SHARE", "0.1")
    monkeypatch.setenv("MCU_AUDIT_SEED", "city")
    monkeypatch.setenv("MCU_AUDIT_TARGET_PRECISION", "0.9")
    monkeypatch.setenv("MCU_AUDIT_MIN_ITEMS", "40")
    settings = Settings()
    assert AuditSampler.from_settings(settings) == AuditSampler(0.1, "city")
    policy = PrecisionPolicy.from_settings(settings)
    assert (policy.target, policy.confidence, policy.min_items, policy.step) == (0.9, 0.95, 40, 0.5)
    monkeypatch.setenv("MCU_AUDIT_SHARE", "2")
    with pytest.raises(ValueError):
        Settings()


@dataclass
class Pred:
    label: str
    top: list
    confidence: float
    threshold: float | None


def test_overrides_raise_thresholds_without_touching_the_model_output():
    original = {"department": Pred("department", [("A", 0.8)], 0.8, 0.7),
                "category": Pred("category", [("B", 0.9)], 0.9, None),
                "reason": Pred("reason", [("C", 0.9)], 0.9, 0.95)}
    raised = apply_overrides(original, {"department": 0.85, "category": 0.5, "reason": 0.9})
    assert raised["department"].threshold == 0.85 and original["department"].threshold == 0.7
    assert raised["category"].threshold is None  # no bundle threshold: never auto
    assert raised["reason"].threshold == 0.95  # an override never lowers a threshold
    assert apply_overrides(original, {}) is original
    assert effective_threshold(0.7, None) == 0.7 and effective_threshold(float("inf"), 0.9) is None
