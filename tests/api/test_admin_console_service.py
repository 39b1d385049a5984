"""What the console's admin pages compute: model figures from any metrics layout, the rules'
dry run (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

from mcu_nlp.routing.rules import parse_rules_text
from mcu_nlp.services.admin_console import dry_run_rules, list_keys, model_figures
from mcu_nlp.services.keys import create_key, revoke_key
from mcu_nlp.storage.models import AppealRow, PredictionRow

RULES = """
version: t1
rules:
  - id: yard
    when: {keywords: ["двор"]}
    then: {priority: high}
  - id: yard-review
    when: {keywords: ["двор"], channel: ["pos"]}
    then: {review: true}
  - id: topic
    when: {topic: {label: category, in: ["Мусор"], min_confidence: 0.5}}
    then: {department: "Уборка"}
  - id: disabled-yard
    enabled: false
    when: {keywords: ["двор"]}
    then: {department: "Никуда"}
"""


def test_model_figures_read_every_metrics_layout():
    trained = {"category": {"recipe": "x", "validation": {"macro_f1": 0.5},
                            "test": {"rows": 10, "macro_f1": 0.7, "coverage_at_95": 0.4,
                                     "precision_at_threshold": 0.96, "accuracy": 0.8}}}
    rows = model_figures(trained, ["category"])
    assert [(r.label, r.part, r.rows, r.coverage, r.precision, r.macro_f1) for r in rows] == [
        ("category", "test", 10, 0.4, 0.96, 0.7)]
    retrained = {"holdout": {"rows": 5, "department": {"rows": 5, "accuracy": 0.9,
                                                       "auto_coverage": 0.3,
                                                       "auto_precision": None}},
                 "train_rows": 100}
    row = model_figures(retrained, ["department"])[0]
    assert (row.part, row.accuracy, row.coverage, row.precision) == ("holdout", 0.9, 0.3, None)
    evaluated = {"test": {"macro_f1": 0.61, "coverage_at_95": 0.2}}
    assert model_figures(evaluated, ["category"])[0].macro_f1 == 0.61
    assert model_figures({}, ["category"]) == []
    assert model_figures({"category": {"test": {"macro_f1": float("nan")}}}, ["category"]) == []


def test_dry_run_counts_the_last_month_and_compares_with_the_rules_in_force(store):
    newest = datetime(2021, 4, 30, 12, 0)
    texts = [("Мусор во дворе", "portal", 0), ("Во дворах грязно", "pos", 3),
             ("Яма на дороге", "portal", 10), ("Двор не убран", "portal", 45)]
    with store.session() as session:
        for i, (text, channel, days_ago) in enumerate(texts):
            row = AppealRow(source="t", source_id=str(i), channel=channel,
                            created_at=newest - timedelta(days=days_ago), text=text, extra={},
                            urgency_reasons=[])
            row.predictions.append(PredictionRow(model_version="v", label="category",
                                                 value="Мусор" if i == 0 else "Дороги",
                                                 confidence=0.9, threshold=0.8))
            session.add(row)
    book = parse_rules_text(RULES)
    current = parse_rules_text("version: t0\nrules:\n  - id: yard\n    when: {keywords: [мусор]}"
                               "\n    then: {priority: low}\n")
    run = dry_run_rules(store, book, current=current)
    assert run.appeals == 3 and run.until == newest  # the 45-day-old appeal is out
    counts = {r.rule_id: (r.matched, r.decided, r.matched_now) for r in run.rules}
    assert counts == {"yard": (2, 0, 1), "yard-review": (1, 1, None), "topic": (1, 1, None),
                      "disabled-yard": (0, 0, None)}
    assert dry_run_rules(store, book, limit=2).capped


def test_list_keys_never_shows_a_hash(store):
    key = create_key(store, role="analyst", name="bi")
    entry = list_keys(store)[0]
    assert entry.prefix == key[:10] and entry.name == "bi" and entry.revoked_at is None
    assert revoke_key(store, entry.key_id, actor="t")
    assert list_keys(store)[0].revoked_at is not None
    assert not hasattr(entry, "key_hash")
