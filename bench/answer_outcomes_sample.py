"""Draw the answers behind ``tests/data/answer_outcomes.csv`` (the hand-checked outcome set).

Two draws of Q1 2021 answers (appeals created 2021-01-01..2021-03-31 with an official answer):

* ``stratified`` (301): distinct answer texts in a random order (seed 2021); the first 100,
  topped up so that every outcome type the patterns predicted has at least 22 answers where Q1
  has that many, and 10 more for two types (``TOP_UP``). The predictions came from
  ``outcomes.py`` as it was when the set was drawn; the rules were then tuned on these answers.
* ``fresh`` (60): a plain random draw (seed 7) of answers unlike any of the first, read after
  the tuning, to measure the rules on answers nobody had looked at.

Each answer is cut to an excerpt of at most 400 characters: greetings and «Рассмотрев Ваше
сообщение … сообщаем следующее» preambles dropped; a long answer keeps its head and its tail,
or, where the decision sits in the middle, the passages around phrases the reader chose
(``| focus`` in the labels file). Personal data is masked with
:func:`mcu_nlp.text.masking.mask_personal_data`.

The ``outcome`` column is filled by a person reading each answer, never from the classifier's
output. Labels files hold «id outcome [| phrase;; phrase]» lines.

    .venv/bin/python bench/answer_outcomes_sample.py --out /tmp/draft.csv          # draw
    .venv/bin/python bench/answer_outcomes_sample.py --labels first.txt \
        --fresh-labels fresh.txt --out tests/data/answer_outcomes.csv             # write
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mcu_nlp.root_causes.outcomes import OUTCOME_TYPES, outcome_types
from mcu_nlp.settings import get_settings
from mcu_nlp.text.masking import mask_personal_data
from mcu_nlp.text.normalize import normalize_text

SEED = 2021
RANDOM_PART = 100
PER_TYPE = 22
# After reading the first draw, fewer than 15 of the answers predicted partly_done or
# contractor_fault were truly so; these many more of each were drawn (next in the same order).
TOP_UP = {"partly_done": 10, "contractor_fault": 10}
EXCERPT_CHARS = 400
_PREAMBLE_ENDS = ("сообщаем", "сообщаем следующее", "сообщает следующее", "следующее",
                  "сообщает", "сообщаем вам", "информируем")


def _body(text: str) -> str:
    """The answer on one line, without greeting, preamble and the closing «Приложение: …»."""
    kept: list[str] = []
    for line in normalize_text(text).split("\n"):
        stripped = line.strip()
        lowered = stripped.lower().rstrip(" .:!,")
        if not kept and (lowered.startswith(("уважаем", "добрый день", "здравствуйте"))
                         and len(lowered) < 40):
            continue
        if not kept and lowered.endswith(_PREAMBLE_ENDS) and len(lowered) < 400:
            continue
        kept.append(stripped)
    body = " ".join(kept) or normalize_text(text).replace("\n", " ")
    attachment = max(body.rfind("Приложени"), body.rfind("Прилагается"), body.rfind("Прилагаются"))
    if attachment > len(body) * 0.6:
        body = body[:attachment].rstrip(" .,;:") + "."
    return body


def _cut_words(text: str, start: int, stop: int) -> str:
    """``text[start:stop]`` moved inwards to word boundaries."""
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < stop else start
    if stop < len(text):
        space = text.rfind(" ", start, stop)
        stop = space if space > start else stop
    return text[start:stop].strip()


def excerpt(text: str, limit: int = EXCERPT_CHARS, focus: str | None = None) -> str:
    """At most ``limit`` characters of an answer: all of it when short, else its head and tail.

    A long answer keeps its first sentences (where most answers say what was done) and its
    last ones (where long explanations conclude), joined by « … ». With ``focus`` (phrases of
    the answer, separated by ``;;``), the passages around those phrases replace the tail: for
    answers whose decision sits in the middle, chosen by the person labelling them.
    """
    body = _body(text)
    if len(body) <= limit:
        return body
    head_chars = 150
    head = _cut_words(body, 0, head_chars)
    phrases = [phrase.strip() for phrase in (focus or "").split(";;") if phrase.strip()]
    starts = sorted(where for phrase in phrases
                    if (where := body.lower().find(phrase.lower())) >= 0)
    if not starts:
        room = limit - len(head) - 3
        return f"{head} … {_cut_words(body, len(body) - room, len(body))}"[:limit]
    room = (limit - len(head)) // len(starts) - 3
    pieces, position = [head], len(head)
    for where in starts:
        start = max(position, where - room // 4)
        pieces.append(_cut_words(body, start, start + room))
        position = start + room
    return " … ".join(piece for piece in pieces if piece)[:limit]


def draw(frame: pd.DataFrame) -> pd.DataFrame:
    """The sample: ids, full answers and predicted types (for the comparison only)."""
    created = frame["created_at"].astype(str)
    quarter = frame[(created >= "2021-01-01") & (created < "2021-04-01")
                    & frame["last_answer_text"].notna()].copy()
    quarter["predicted"] = outcome_types(quarter["last_answer_text"].tolist())
    order = quarter.sample(frac=1.0, random_state=SEED).drop_duplicates("last_answer_text")
    picked = list(order.index[:RANDOM_PART])
    chosen = set(picked)
    for kind in OUTCOME_TYPES:
        have = int((order.loc[picked, "predicted"] == kind).sum())
        pool = [i for i in order.index[order["predicted"] == kind] if i not in chosen]
        extra = pool[: max(0, PER_TYPE - have)]
        picked += extra
        chosen.update(extra)
    for kind, more in TOP_UP.items():
        pool = [i for i in order.index[order["predicted"] == kind] if i not in chosen]
        picked += pool[:more]
        chosen.update(pool[:more])
    return order.loc[picked, ["id", "last_answer_text", "predicted"]]


FRESH = 60
FRESH_SEED = 7


def draw_fresh(frame: pd.DataFrame, seen_ids: set[int]) -> pd.DataFrame:
    """A second, plain random draw of Q1 answers unlike any already labelled (seed 7).

    Drawn after the rules were tuned on the first set, to measure them on answers nobody had
    looked at: no stratification, distinct answer texts only.
    """
    created = frame["created_at"].astype(str)
    quarter = frame[(created >= "2021-01-01") & (created < "2021-04-01")
                    & frame["last_answer_text"].notna()]
    seen = set(quarter.loc[quarter["id"].isin(seen_ids), "last_answer_text"])
    pool = quarter[~quarter["last_answer_text"].isin(seen)].drop_duplicates("last_answer_text")
    return pool.sample(FRESH, random_state=FRESH_SEED)[["id", "last_answer_text"]]


def _read_labels(path: Path) -> dict[int, tuple[str, str | None]]:
    labels: dict[int, tuple[str, str | None]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        head, _, focus = line.partition("|")
        if head.strip():
            answer_id, outcome = head.split()
            labels[int(answer_id)] = (outcome, focus.strip() or None)
    return labels


def main() -> None:
    """Write the draft CSV (id, answer, empty outcome) and, apart, the predictions."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/answer_outcomes_draft.csv"))
    parser.add_argument("--predictions", type=Path, default=None)
    parser.add_argument("--labels", type=Path, default=None,
                        help="a file of «id outcome [| focus phrase]» lines, one per answer, "
                             "written by the person who read them; fills the outcome column")
    parser.add_argument("--fresh-labels", type=Path, default=None,
                        help="the same for the fresh random draw (see draw_fresh); without "
                             "it and with --labels, the fresh draw is written unlabelled")
    args = parser.parse_args()
    frame = pd.read_csv(get_settings().spb_appeals_path(),
                        usecols=["id", "created_at", "last_answer_text"])
    labels: dict[int, tuple[str, str | None]] = {}
    drawn: dict[int, str] = {}
    if args.labels is not None:
        labels = _read_labels(args.labels)
        # The labelled answers are the set: a later classifier would draw other ones.
        sample = frame[frame["id"].isin(labels)]
        drawn = dict.fromkeys(labels, "stratified")
        fresh = draw_fresh(frame, set(labels))
        if args.fresh_labels is not None:
            fresh_labels = _read_labels(args.fresh_labels)
            if set(fresh_labels) != set(fresh["id"]):
                raise SystemExit("the fresh labels are not the fresh draw")
            labels |= fresh_labels
        drawn |= dict.fromkeys(fresh["id"].astype(int), "fresh")
        sample = pd.concat([sample[["id", "last_answer_text"]], fresh])
    else:
        sample = draw(frame)
    answers, outcomes, kinds = [], [], []
    for answer_id, text in zip(sample["id"], sample["last_answer_text"], strict=True):
        outcome, focus = labels.get(int(answer_id), ("", None))
        masked = mask_personal_data(excerpt(text, focus=focus))
        if len(masked) > EXCERPT_CHARS:  # placeholders such as «кв. [НОМЕР]» are longer
            masked = masked[: masked.rfind(" ", 0, EXCERPT_CHARS - 1)] + "…"
        answers.append(masked)
        outcomes.append(outcome)
        kinds.append(drawn.get(int(answer_id), "stratified"))
    pd.DataFrame({"id": sample["id"].to_numpy(), "answer": answers, "outcome": outcomes,
                  "drawn": kinds}).sort_values("id").to_csv(args.out, index=False)
    if args.predictions is not None:
        sample[["id", "predicted"]].to_csv(args.predictions, index=False)
    print(f"{len(sample)} answers → {args.out}")
    if args.predictions is None and args.labels is None:
        print("fill the outcome column by reading each answer; never copy a prediction")


if __name__ == "__main__":
    main()
