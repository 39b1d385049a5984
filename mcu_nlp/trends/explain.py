"""Why a series rose.

Expected vs observed, the sub-series, places, channels and words that carry the excess, and
example messages with personal data masked.

* **Drivers.** Within the alerting series, each value of another cut (fine topic, department,
  territory, channel) is expected to keep its baseline share of the expected count; its excess is
  observed minus that. The excesses add up to the alert's excess, so a driver's share says how
  much of the rise it carries.
* **Words.** Weighted log-odds ratios with an informative Dirichlet prior (Monroe, Colaresi and
  Quinn 2008, "Fightin' words") of each lemma in the alert days against the baseline window,
  the prior taken from all messages of both windows. A word counts once per message, so one long
  text cannot dominate.
* **Examples.** Distinct messages of the alert days that carry the top words, masked by
  :func:`mcu_nlp.text.masking.mask_personal_data`; without the masker no example is shown.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

import pandas as pd

from mcu_nlp.trends.alerts import TrendAlert
from mcu_nlp.trends.counts import TOTAL, SeriesDimension, appeal_days, dimension_values

Tokenizer = Callable[[str], Sequence[str]]


@dataclass(frozen=True, slots=True)
class Driver:
    """A value of another cut and its part in the excess.

    Attributes:
        dimension: The cut (``territory``, ``topic``...).
        value: Its value (a district, a fine topic...).
        observed: Messages of the alerting series with this value on the alert days.
        expected: What its baseline share of the expected count predicts.
        share: ``(observed - expected)`` over the alert's whole excess.
    """

    dimension: str
    value: str
    observed: int
    expected: float
    share: float

    @property
    def excess(self) -> float:
        """Observed minus expected."""
        return self.observed - self.expected


@dataclass(frozen=True, slots=True)
class WordShift:
    """A word used more in the alert days than in the baseline.

    Attributes:
        word: The lemma.
        z: Weighted log-odds z-score (alert days against baseline).
        alert_messages: Messages of the alert days containing it.
        baseline_messages: Messages of the baseline window containing it.
    """

    word: str
    z: float
    alert_messages: int
    baseline_messages: int


@dataclass(frozen=True, slots=True)
class AlertExplanation:
    """What drives one alert's excess.

    Attributes:
        observed: Messages on the alert days.
        expected: Expected messages on the alert days.
        baseline_start: First day of the comparison window.
        baseline_end: Last day of the comparison window.
        drivers: Per cut, the values carrying the excess, largest first.
        words: Words over-represented in the alert days, strongest first.
        examples: Masked example messages.
        examples_withheld: Whether examples were left out because no masker was available.
    """

    observed: int
    expected: float
    baseline_start: date
    baseline_end: date
    drivers: dict[str, tuple[Driver, ...]]
    words: tuple[WordShift, ...]
    examples: tuple[str, ...]
    examples_withheld: bool = False

    def summary(self, *, drivers_per_cut: int = 2, words: int = 6) -> str:
        """The explanation in a few plain Russian lines."""
        ratio = self.observed / self.expected if self.expected > 0 else float("inf")
        lines = [f"{self.observed} сообщений при ожидаемых {self.expected:.0f}"
                 + (f" (×{ratio:.1f})" if math.isfinite(ratio) else "")]
        for cut, found in self.drivers.items():
            if found:
                parts = ", ".join(f"{d.value} +{d.excess:.0f} ({100 * d.share:.0f} %)"
                                  for d in found[:drivers_per_cut])
                lines.append(f"{cut}: {parts}")
        if self.words:
            lines.append("слова: " + ", ".join(w.word for w in self.words[:words]))
        return "\n".join(lines)


def default_tokenizer() -> Tokenizer:
    """Content lemmas (pymorphy3), stop words and short tokens dropped."""
    from mcu_nlp.text.lemmas import lemmatize
    from mcu_nlp.text.stopwords import RUSSIAN_STOP_WORDS

    def tokens(text: str) -> list[str]:
        return [w for w in lemmatize(text)
                if len(w) > 2 and w.isalpha() and w not in RUSSIAN_STOP_WORDS]

    return tokens


def default_masker() -> Callable[[str], str] | None:
    """The project's personal-data masker, or ``None`` when it is not installed."""
    try:
        from mcu_nlp.text.masking import mask_personal_data
    except ImportError:
        return None
    return mask_personal_data


def explain_alerts(
    frame: pd.DataFrame,
    alerts: Iterable[TrendAlert],
    dimensions: Sequence[SeriesDimension],
    *,
    baseline_days: int = 28,
    top_drivers: int = 5,
    top_words: int = 10,
    n_examples: int = 3,
    prior_strength: float = 500.0,
    tokenizer: Tokenizer | None = None,
    masker: Callable[[str], str] | None = None,
    time_column: str = "created_at",
    text_column: str = "text",
) -> list[TrendAlert]:
    """Attach an :class:`AlertExplanation` to each alert (returns new alert records).

    Args:
        frame: The appeals frame the alerts were detected on.
        alerts: Alerts to explain.
        dimensions: The cuts used for counting (drivers are looked for in all of them).
        baseline_days: Days before the alert's first day to compare with.
        top_drivers: Drivers kept per cut.
        top_words: Words kept.
        n_examples: Example messages kept.
        prior_strength: Total pseudo-count of the Dirichlet prior on words.
        tokenizer: Text to words; default :func:`default_tokenizer`.
        masker: Personal-data masker; default :func:`default_masker`.
        time_column: Filing-time column.
        text_column: Text column.
    """
    days = appeal_days(frame, time_column)
    by_name = {d.name: d for d in dimensions}
    values = {d.name: dimension_values(frame, d) for d in dimensions}
    tokenize = tokenizer or default_tokenizer()
    mask = masker if masker is not None else default_masker()
    token_cache: dict[int, frozenset[str]] = {}

    def tokens_of(rows: pd.Index) -> list[frozenset[str]]:
        texts = frame[text_column]
        out = []
        for key in frame.index.get_indexer(rows):
            if key not in token_cache:
                text = texts.iloc[key]
                token_cache[key] = (frozenset(tokenize(text)) if isinstance(text, str)
                                    else frozenset())
            out.append(token_cache[key])
        return out

    explained = []
    for alert in alerts:
        if alert.dimension != TOTAL and alert.dimension not in by_name:
            raise KeyError(f"alert on unknown cut {alert.dimension!r}; known {list(by_name)}")
        in_series = (pd.Series(True, index=frame.index) if alert.dimension == TOTAL
                     else values[alert.dimension] == alert.value)
        alert_days = pd.DatetimeIndex([pd.Timestamp(d.day) for d in alert.days])
        first = pd.Timestamp(alert.first_day)
        base_lo = first - timedelta(days=baseline_days)
        in_alert = days.isin(alert_days)
        in_base = (days >= base_lo) & (days < first)
        alert_rows = frame.index[in_series & in_alert]
        base_rows = frame.index[in_series & in_base]
        drivers = {}
        for name, column in values.items():
            if name == alert.dimension:
                continue
            found = _drivers(name, column.loc[alert_rows], column.loc[base_rows],
                             alert.expected, top_drivers)
            if found is not None:
                drivers[name] = found
        background = frame.index[(in_alert | in_base)]
        words = _word_shifts(tokens_of(alert_rows), tokens_of(base_rows),
                             tokens_of(background), prior_strength, top_words)
        examples: tuple[str, ...] = ()
        if mask is not None:
            examples = _examples(frame.loc[alert_rows, text_column], tokens_of(alert_rows),
                                 words, n_examples, mask)
        explanation = AlertExplanation(
            observed=int(len(alert_rows)), expected=alert.expected,
            baseline_start=base_lo.date(), baseline_end=(first - timedelta(days=1)).date(),
            drivers=drivers, words=words, examples=examples, examples_withheld=mask is None)
        explained.append(replace(alert, explanation=explanation))
    return explained


def _drivers(name: str, alert_values: pd.Series, base_values: pd.Series, expected: float,
             top: int) -> tuple[Driver, ...] | None:
    seen = set(alert_values) | set(base_values)
    if len(seen) < 2:
        return None  # one value throughout (e.g. the topic group of a fine topic): no news
    observed = Counter(alert_values)
    baseline = Counter(base_values)
    # Half a message of smoothing per value: a value absent from the baseline is not "infinitely"
    # new, and the shares still add up to one.
    total = sum(baseline.values()) + 0.5 * len(seen)
    expected_of = {v: expected * (baseline.get(v, 0) + 0.5) / total for v in seen}
    excess_total = sum(observed.values()) - expected
    scale = excess_total if abs(excess_total) > 1e-9 else 1.0
    ranked = sorted(seen, key=lambda v: observed.get(v, 0) - expected_of[v], reverse=True)
    return tuple(
        Driver(dimension=name, value=v, observed=observed.get(v, 0), expected=expected_of[v],
               share=(observed.get(v, 0) - expected_of[v]) / scale)
        for v in ranked[:top] if observed.get(v, 0) - expected_of[v] > 0)


def _word_shifts(alert_docs: list[frozenset[str]], base_docs: list[frozenset[str]],
                 background_docs: list[frozenset[str]], prior_strength: float,
                 top: int) -> tuple[WordShift, ...]:
    alert_counts = Counter(w for doc in alert_docs for w in doc)
    base_counts = Counter(w for doc in base_docs for w in doc)
    prior_counts = Counter(w for doc in background_docs for w in doc)
    prior_total = sum(prior_counts.values())
    if not alert_counts or prior_total == 0:
        return ()
    n_alert, n_base = sum(alert_counts.values()), sum(base_counts.values())
    shifts = []
    for word, y_alert in alert_counts.items():
        if y_alert < 2:
            continue
        a = prior_strength * prior_counts.get(word, 1) / prior_total
        y_base = base_counts.get(word, 0)
        delta = (math.log((y_alert + a) / (n_alert + prior_strength - y_alert - a))
                 - math.log((y_base + a) / (n_base + prior_strength - y_base - a)))
        z = delta / math.sqrt(1.0 / (y_alert + a) + 1.0 / (y_base + a))
        if z > 0:
            shifts.append(WordShift(word=word, z=z, alert_messages=y_alert,
                                    baseline_messages=y_base))
    shifts.sort(key=lambda s: (-s.z, s.word))  # ties by word, so runs repeat exactly
    return tuple(shifts[:top])


def _examples(texts: pd.Series, docs: list[frozenset[str]], words: tuple[WordShift, ...],
              n: int, mask: Callable[[str], str], max_chars: int = 300) -> tuple[str, ...]:
    weight = {w.word: w.z for w in words}
    scored = []
    for text, doc in zip(texts, docs, strict=True):
        if isinstance(text, str) and text.strip():
            scored.append((sum(weight.get(w, 0.0) for w in doc), len(text), text))
    scored.sort(key=lambda item: (item[0], min(item[1], max_chars)), reverse=True)
    chosen: list[str] = []
    seen: set[str] = set()
    for _, _, text in scored:
        key = " ".join(text.lower().split())
        if key in seen:
            continue
        seen.add(key)
        masked = mask(text)
        chosen.append(masked if len(masked) <= max_chars else masked[: max_chars - 1] + "…")
        if len(chosen) == n:
            break
    return tuple(chosen)
