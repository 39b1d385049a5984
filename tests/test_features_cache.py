"""The serving-batch caches of the TF-IDF featurizer never mix up batches."""

from __future__ import annotations

import numpy as np

from mcu_nlp.classifiers import features
from mcu_nlp.classifiers.features import TextFeaturizer

TRAIN = ["мусор во дворе", "снег на дороге", "мусор на газоне", "снег во дворе не убран",
         "яма на дороге", "сломаны качели во дворе"] * 3


def _fresh(texts: list[str], featurizer: TextFeaturizer) -> np.ndarray:
    features._last_extraction = None
    featurizer.__dict__.pop("_last_matrix", None)
    return featurizer.transform(list(texts)).toarray()


def test_cached_results_equal_fresh_ones_across_models_and_batches() -> None:
    first, second = TextFeaturizer(), TextFeaturizer()
    first.fit_transform(TRAIN)
    second.fit_transform(TRAIN[:9])
    batch_a, batch_b = ["мусор во дворе", "яма"], ["снег на газоне", "качели"]
    expected = {(id(f), tuple(b)): _fresh(b, f) for f in (first, second)
                for b in (batch_a, batch_b)}
    features._last_extraction = None
    for featurizer in (first, second, first, second):
        for batch in (batch_a, batch_a, batch_b, batch_a):
            got = featurizer.transform(list(batch)).toarray()
            np.testing.assert_array_equal(got, expected[(id(featurizer), tuple(batch))])


def test_large_batches_bypass_the_cache() -> None:
    featurizer = TextFeaturizer()
    featurizer.fit_transform(TRAIN)
    features._last_extraction = None
    big = ["мусор во дворе"] * (features.CACHE_MAX_TEXTS + 1)
    assert featurizer.transform(big).shape[0] == len(big)
    assert features._last_extraction is None
