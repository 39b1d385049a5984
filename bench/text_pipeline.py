"""Throughput of the text pipeline on the SPb appeals (not a test; run by hand).

    .venv/bin/python bench/text_pipeline.py [--limit N] [--ner-sample 5000]

Prints texts/s for each stage. Figures depend on the machine's load: run it alone.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from mcu_nlp.text import lemmas
from mcu_nlp.text.entities import extract_entities_many, ner_tagger, place_of
from mcu_nlp.text.masking import has_name_candidate, mask_many
from mcu_nlp.text.normalize import normalize_text, replace_placeholders

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spb_our_city_appeals"


def timed(label: str, n: int, run: Callable[[], object], unit: str = "texts") -> object:
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    print(f"{label:<44} {n:>7,} {unit:<6} {seconds:8.2f} s {n / seconds:>12,.0f} {unit}/s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="use the first N appeals")
    parser.add_argument("--ner-sample", type=int, default=5000, help="texts for NER and masking")
    args = parser.parse_args()

    frame = pd.read_csv(DATA / "appeals.csv.gz", usecols=["text", "address"], nrows=args.limit)
    raw = frame["text"].fillna("").tolist()
    n = len(raw)
    print(f"{'stage':<44} {'n':>7} {'':<6} {'time':>10} {'rate':>16}")

    texts = timed("normalize_text", n, lambda: [normalize_text(t) for t in raw])
    timed("replace_placeholders", n, lambda: [replace_placeholders(t) for t in texts])
    timed("tokenize (razdel)", n, lambda: [lemmas.tokenize(t) for t in texts])
    words = sum(len(lemmas.word_tokens(t)) for t in texts)

    lemmas.clear_caches()
    lemmas.morph_analyzer()  # the analyzer load (about 0.3 s) is not lemmatization
    start = time.perf_counter()
    timed("lemmatize, cold caches", n, lambda: lemmas.lemmatize_many(texts))
    print(f"{'  = words/s, cold':<44} {words / (time.perf_counter() - start):>12,.0f}")
    print(
        f"{'  words, distinct words':<44} {words:>7,} / {lemmas.lemma_of.cache_info().currsize:,}"
    )
    lemmas.clear_caches(words=False)
    timed("lemmatize, warm word cache, cold text cache", n, lambda: lemmas.lemmatize_many(texts))
    timed("lemmatize, warm caches", n, lambda: lemmas.lemmatize_many(texts))

    timed("mask_many(use_ner=False) (rules)", n, lambda: mask_many(texts, use_ner=False))
    candidates = timed("has_name_candidate", n, lambda: [has_name_candidate(t) for t in texts])
    share = sum(candidates) / n  # type: ignore[arg-type]
    print(f"{'  share of texts sent to NER':<44} {share:>7.1%}")

    sample = texts[:: max(1, n // args.ner_sample)][: args.ner_sample]
    ner_tagger()
    timed(
        "extract_entities_many (natasha NER)",
        len(sample),
        lambda: list(extract_entities_many(sample)),
    )
    timed("mask_many (rules + NER on candidates)", len(sample), lambda: mask_many(sample))

    addresses = frame["address"].fillna("").tolist()
    timed("place_of(address field), cold cache", n, lambda: [place_of("", a) for a in addresses])
    # Texts whose appeal has no address field: the text fallback (natasha only on cue texts).
    no_field = [t for t, a in zip(texts, addresses, strict=True) if not a][: args.ner_sample // 5]
    timed(
        "place_of(text), no address field", len(no_field), lambda: [place_of(t) for t in no_field]
    )


if __name__ == "__main__":
    main()
