"""Evidence of a root cause from the official answers: recurrence, outcomes, fixes that fail.

For each card (a cluster of appeals) this module says, from the analysed frame alone:

* **recurrence** — how many of its appeals came at places (building × fine topic) with repeats,
  how many were repeats, how many came within 60 days after an answer «выполнено»
  (:func:`mcu_nlp.root_causes.recurrence.recurrence_table`), and its chronic places (≥ 3 appeals
  on one topic at one place) with their history;
* **outcomes** — the mix of answer types with Russian labels
  (:func:`mcu_nlp.root_causes.outcomes.classify_answers`);
* **fixes not holding** — departments whose «done» answers were followed by a repeat at the same
  place and topic within the window, with counts;
* **planned not arrived** — answers «запланировано» (year, programme) whose place had a later
  appeal on the same topic;
* **out of competence** — refusals, the topic they concern and a routing proposal: the
  department that answered «done» most often on that topic elsewhere in the frame.

Answers are classified once for the whole frame (equal answers once) and the recurrence table is
computed once; :func:`attach_evidence` then only indexes it per card. Places are building
addresses (problem locations, not the applicant's); any person's name in them or in the answer
excerpts is masked with :func:`mcu_nlp.text.masking.mask_personal_data`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mcu_nlp.root_causes.outcomes import (
    FIXED_OUTCOMES,
    OUTCOME_LABELS_RU,
    OUTCOME_TYPES,
    classify_answers,
)
from mcu_nlp.root_causes.recurrence import DEFAULT_WINDOW_DAYS, recurrence_table

if TYPE_CHECKING:
    from mcu_nlp.root_causes.cards import RootCause

__all__ = ["RANK_BASIS", "Evidence", "attach_evidence", "rank_cards"]

CHRONIC_APPEALS = 3  # appeals on one topic at one place that make it chronic
EXCERPT_CHARS = 300
_N_PLACES = 5
_N_HISTORY = 8
_ANSWER_COLUMNS = ("last_answer_text", "answer_text", "answer_1")
_ANSWERED_COLUMNS = ("last_answer_dt", "answered_at", "first_answer_dt")

RANK_BASIS = ("повторы после ответа «выполнено» (за 60 дней на том же месте и теме), затем "
              "доля таких повторов среди обращений, затем число обращений")
"""What the cards' ``rank`` is based on, as the JSON and the roadmap say it."""


@dataclass(slots=True)
class Evidence:
    """What the answers and the repeats say about one root cause."""

    recurrence: dict[str, Any] = field(default_factory=dict)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    fixes_not_holding: list[dict[str, Any]] = field(default_factory=list)
    planned_not_arrived: list[dict[str, Any]] = field(default_factory=list)
    out_of_competence: dict[str, Any] | None = None
    answer_examples: list[dict[str, str]] = field(default_factory=list)

    @property
    def has_any(self) -> bool:
        """Whether evidence for a stage exists: chronic places, failed fixes, plans, refusals."""
        return bool(self.recurrence.get("chronic_places") or self.fixes_not_holding
                    or self.planned_not_arrived or self.out_of_competence)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {"recurrence": self.recurrence, "outcomes": self.outcomes,
                "fixes_not_holding": self.fixes_not_holding,
                "planned_not_arrived": self.planned_not_arrived,
                "out_of_competence": self.out_of_competence,
                "answer_examples": self.answer_examples}


def _column(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    return next((name for name in names if name in frame.columns), None)


def _masker() -> Any:
    from mcu_nlp.text.masking import mask_personal_data

    return mask_personal_data


def _excerpt(text: object, mask: Any) -> str:
    clean = " ".join(str(text).split())
    clean = mask(clean)
    if len(clean) > EXCERPT_CHARS:
        cut = clean[:EXCERPT_CHARS - 1]
        clean = cut[:cut.rfind(" ")] if " " in cut else cut
        clean += "…"
    return clean


def _iso(value: object) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date().isoformat()


def attach_evidence(cards: Sequence[RootCause], frame: pd.DataFrame, topics: np.ndarray, *,
                    topic_col: str | None, department_col: str | None,
                    window_days: float = DEFAULT_WINDOW_DAYS,
                    territory_col: str = "territory") -> list[RootCause]:
    """Copies of ``cards`` with their :class:`Evidence` (the cards are left unchanged).

    Args:
        cards: Cards of the clusters in ``topics`` (``card.id`` is the cluster).
        frame: The analysed appeals, row-aligned with ``topics``; the answer text
            (``last_answer_text``) and date (``last_answer_dt``) are used when present.
        topics: Cluster of each appeal.
        topic_col: Fine topic column (``None``: no recurrence, only outcomes).
        department_col: Responsible department column.
        window_days: A repeat within this many days after a «done» answer means the fix failed.
        territory_col: District column.
    """
    answer_col = _column(frame, _ANSWER_COLUMNS)
    if answer_col is None or not cards:
        return list(cards)
    n = len(frame)
    answers = frame[answer_col].tolist()
    results = classify_answers(answers)
    kinds = pd.Series([r.type if isinstance(a, str) and a.strip() else None
                       for r, a in zip(results, answers, strict=True)], dtype=object)
    departments = (frame[department_col].astype("string").reset_index(drop=True)
                   if department_col and department_col in frame else pd.Series([pd.NA] * n,
                                                                               dtype="string"))
    topic_values = (frame[topic_col].astype("string").reset_index(drop=True)
                    if topic_col and topic_col in frame else None)
    answered_col = _column(frame, _ANSWERED_COLUMNS)
    answered = (pd.to_datetime(frame[answered_col], errors="coerce").reset_index(drop=True)
                if answered_col else pd.Series(pd.NaT, index=range(n)))
    if isinstance(answered.dtype, pd.DatetimeTZDtype):
        answered = answered.dt.tz_localize(None)
    window = pd.Timedelta(days=float(window_days))

    # per appeal (by row position): its place × topic group, whether it repeats, whether it came
    # after a fix, and, for a «done» answer, whether a repeat followed within the window
    group_of = np.full(n, -1)
    is_repeat = np.zeros(n, bool)
    after_fix = np.zeros(n, bool)
    fix_failed = np.zeros(n, bool)
    later_appeal = np.zeros(n, bool)  # an appeal at the same place and topic after the answer
    groups: list[dict[str, Any]] = []
    if topic_values is not None:
        work = frame.reset_index(drop=True).assign(_row=np.arange(n))
        table = recurrence_table(
            work, topic_col=topic_col or "reason", window_days=window_days,
            outcomes=kinds.fillna("other"), id_col="_row", min_appeals=2,
            territory_col=territory_col, department_col=department_col or "department",
            answered_col=answered_col)
        for g, row in enumerate(table.itertuples(index=False)):
            history = row.history
            place = row.place
            if row.place_kind == "grid" and pd.notna(row.latitude) and pd.notna(row.longitude):
                place = f"точка {row.latitude:.5f}, {row.longitude:.5f} (квадрат 100 м)"
            groups.append({"place": place, "topic": row.topic, "territory": row.territory,
                           "appeals": int(row.appeals), "history": history,
                           "kind": row.place_kind})
            for position, entry in enumerate(history):
                i = int(entry["id"])
                group_of[i] = g
                is_repeat[i] = position > 0
                after_fix[i] = bool(entry["after_fix"])
                done_at = entry["answered_at"]
                since = done_at if done_at is not None else entry["created_at"]
                later_appeal[i] = any(e["created_at"] > since for e in history[position + 1:])
                if entry["outcome"] in FIXED_OUTCOMES and done_at is not None:
                    fix_failed[i] = any(
                        e["created_at"] > done_at and e["created_at"] - done_at <= window
                        and e["created_at"] > entry["created_at"] for e in history[position + 1:])
    fixed = kinds.isin(FIXED_OUTCOMES).to_numpy()
    refused = (kinds == "out_of_competence").to_numpy()
    # who fixes each topic: «done» answers per topic and department over the whole frame
    # (and per topic and district: a district's housing agency refuses, another district's
    # answers — the route must stay in the district)
    territories = (frame[territory_col].astype("string").reset_index(drop=True)
                   if territory_col in frame else pd.Series([pd.NA] * n, dtype="string"))
    done_by_topic: dict[Any, Counter[str]] = {}
    if topic_values is not None:
        for t, d, place in zip(topic_values[fixed], departments[fixed], territories[fixed],
                               strict=True):
            if not pd.isna(t) and not pd.isna(d):
                done_by_topic.setdefault(str(t), Counter())[str(d)] += 1
                if not pd.isna(place):
                    done_by_topic.setdefault((str(t), str(place)), Counter())[str(d)] += 1
    mask = _masker()
    topics = np.asarray(topics)
    out = []
    for card in cards:
        rows = np.flatnonzero(topics == card.id)
        out.append(replace(card, evidence=_card_evidence(
            rows, kinds, results, answers, departments, topic_values, answered, groups,
            group_of, is_repeat, after_fix, fix_failed, later_appeal, fixed, refused,
            done_by_topic, territories, mask, window_days)))
    return out


def _card_evidence(rows: np.ndarray, kinds: pd.Series, results: list, answers: list,
                   departments: pd.Series, topic_values: pd.Series | None,
                   answered: pd.Series, groups: list[dict[str, Any]], group_of: np.ndarray,
                   is_repeat: np.ndarray, after_fix: np.ndarray, fix_failed: np.ndarray,
                   later_appeal: np.ndarray, fixed: np.ndarray, refused: np.ndarray,
                   done_by_topic: dict[Any, Counter[str]], territories: pd.Series, mask: Any,
                   window_days: float) -> Evidence:
    size = len(rows)
    card_kinds = kinds.iloc[rows].dropna()
    n_answers = len(card_kinds)
    counts = Counter(card_kinds)
    outcomes = [{"type": t, "label_ru": OUTCOME_LABELS_RU[t], "count": counts[t],
                 "share": round(counts[t] / n_answers, 3)} for t in OUTCOME_TYPES if counts[t]]
    in_group = group_of[rows] >= 0
    card_fixed = fixed[rows]
    n_fixed, n_failed = int(card_fixed.sum()), int(fix_failed[rows].sum())
    repeats_after_done = int(after_fix[rows].sum())
    # chronic places: groups with ≥ 3 appeals that hold appeals of this card
    chronic_groups = Counter(int(g) for g in group_of[rows] if g >= 0
                             and groups[g]["appeals"] >= CHRONIC_APPEALS)
    chronic_sorted = sorted(chronic_groups, key=lambda g: (
        -sum(e["after_fix"] for e in groups[g]["history"]), -groups[g]["appeals"], g))
    chronic = []
    for g in chronic_sorted[:_N_PLACES]:
        info = groups[g]
        history = info["history"]
        chronic.append({
            "place": mask(str(info["place"])) if info["kind"] == "address" else str(info["place"]),
            "topic": info["topic"], "territory": info["territory"],
            "appeals": info["appeals"], "repeats": info["appeals"] - 1,
            "repeats_after_done": int(sum(e["after_fix"] for e in history)),
            "card_appeals": chronic_groups[g],
            "history": [{"created_at": _iso(e["created_at"]),
                         "answered_at": _iso(e["answered_at"]),
                         "outcome": OUTCOME_LABELS_RU.get(e["outcome"], e["outcome"]),
                         "after_fix": bool(e["after_fix"])} for e in history[:_N_HISTORY]]})
    recurrence = {
        "appeals": size,
        "appeals_at_repeat_places": int(in_group.sum()),
        "places_with_repeats": len({int(g) for g in group_of[rows] if g >= 0}),
        "chronic_places_total": len(chronic_groups),
        "repeats": int(is_repeat[rows].sum()),
        "repeats_after_done": repeats_after_done,
        "reopened_share": round(repeats_after_done / size, 4) if size else 0.0,
        "done_answers": n_fixed,
        "done_not_held": n_failed,
        "done_not_held_share": round(n_failed / n_fixed, 4) if n_fixed else 0.0,
        "window_days": window_days,
        "chronic_places": chronic,
    }
    card_departments = departments.iloc[rows]
    fixes = []
    by_department = Counter(str(d) for d, f in zip(card_departments, card_fixed, strict=True)
                            if f and not pd.isna(d))
    failed_by = Counter(str(d) for d, f in zip(card_departments, fix_failed[rows], strict=True)
                        if f and not pd.isna(d))
    for name, count in failed_by.most_common():
        fixes.append({"department": name, "done_answers": by_department[name],
                      "not_held": count, "share": round(count / by_department[name], 3)})
    planned = []
    for i in rows:
        result = results[i]
        if kinds.iloc[i] != "planned" or not later_appeal[i]:
            continue
        g = groups[group_of[i]]
        history = g["history"]
        position = next(k for k, e in enumerate(history) if int(e["id"]) == i)
        since = history[position]["answered_at"] or history[position]["created_at"]
        repeat = next(e for e in history[position + 1:] if e["created_at"] > since)
        planned.append({
            "place": mask(str(g["place"])) if g["kind"] == "address" else str(g["place"]),
            "topic": g["topic"], "planned_year": result.planned_year,
            "programme": result.programme, "department": None if pd.isna(departments.iloc[i])
            else str(departments.iloc[i]), "answered_at": _iso(answered.iloc[i]),
            "repeat_at": _iso(repeat["created_at"])})
    planned.sort(key=lambda p: (p["planned_year"] is None, p["planned_year"] or 0, p["place"]))
    refusal = None
    card_refused = refused[rows]
    if card_refused.any() and topic_values is not None:
        refused_rows = rows[card_refused]
        topic_counts = Counter(str(t) for t in topic_values.iloc[refused_rows] if not pd.isna(t))
        refusers = Counter(str(d) for d in departments.iloc[refused_rows] if not pd.isna(d))
        topic = topic_counts.most_common(1)[0][0] if topic_counts else None
        target = None
        if topic is not None:
            on_topic = [i for i in refused_rows if topic_values.iloc[i] == topic]
            where = Counter(str(t) for t in territories.iloc[on_topic] if not pd.isna(t))
            # within the refusals' district (another district's agency is no route); the whole
            # frame only when the district is unknown
            keys = [(topic, where.most_common(1)[0][0])] if where else [topic]
            for key in keys:
                candidates = [(d, c) for d, c in done_by_topic.get(key, Counter()).most_common()
                              if d not in refusers]
                if candidates:
                    target = candidates[0]
                    break
        refusal = {"count": int(card_refused.sum()), "topic": topic,
                   "departments": [{"department": d, "count": c}
                                   for d, c in refusers.most_common(3)],
                   "route_to": target[0] if target else None,
                   "route_to_done_answers": target[1] if target else 0}
        if topic is not None:
            where = (f"направлять в «{target[0]}» (ответов «выполнено» по теме: {target[1]})"
                     if target else "назначить ведомство, отвечающее по существу "
                     "(в данных нет ведомства с ответами «выполнено» по теме)")
            refused_names = ", ".join(f"«{d}» ({c})" for d, c in refusers.most_common(3))
            refusal["proposal"] = (f"Тема «{topic}»: {where}; сейчас отказы «не в компетенции» "
                                   f"от {refused_names or 'исполнителей'}.")
    examples = []
    wanted = [("не выполнено, но повтор", lambda i: fix_failed[i]),
              ("запланировано", lambda i: kinds.iloc[i] == "planned"),
              ("не в компетенции", lambda i: refused[i])]
    for label, test in wanted:
        i = next((int(i) for i in rows if test(i) and isinstance(answers[i], str)), None)
        if i is not None:
            kind = kinds.iloc[i]
            examples.append({"outcome": OUTCOME_LABELS_RU.get(kind, kind),
                             "note": "после ответа был повтор" if label.startswith("не выполнено")
                             else "", "text": _excerpt(answers[i], mask)})
        if len(examples) == 2:
            break
    return Evidence(recurrence=recurrence, outcomes=outcomes, fixes_not_holding=fixes,
                    planned_not_arrived=planned, out_of_competence=refusal,
                    answer_examples=examples)


def rank_cards(cards: Sequence[RootCause]) -> list[RootCause]:
    """Cards ordered by repeats after a «done» answer, reopened share, then size; ranks set."""
    def key(card: RootCause) -> tuple:
        rec = card.evidence.recurrence if card.evidence is not None else {}
        return (-rec.get("repeats_after_done", 0), -rec.get("reopened_share", 0.0), -card.size,
                card.id)

    ranked = sorted(cards, key=key)
    for rank, card in enumerate(ranked, 1):
        card.rank = rank
    return ranked
