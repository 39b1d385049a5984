"""Root causes read the vectors ``mcu-nlp batch prepare`` wrote instead of embedding again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyarrow")

from mcu_nlp.embeddings import Usem3Embedder  # noqa: E402
from mcu_nlp.services.root_causes import prepared_embeddings  # noqa: E402


class CountingEmbedder:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.inner = Usem3Embedder()

    def encode(self, texts):
        self.texts += list(texts)
        return self.inner.encode(texts)


def test_vectors_come_from_the_prepared_output_and_only_the_rest_is_embedded(spb_slice,
                                                                             tmp_path) -> None:
    from mcu_nlp.batch import run_job

    frame = spb_slice.iloc[:240][["id", "text", "created_at"]].reset_index(drop=True)
    source = tmp_path / "appeals.parquet"
    # the job sees 200 of them, one of which it rejects (an empty text)
    given = frame.iloc[:200].copy()
    given.loc[5, "text"] = ""
    given.to_parquet(source)
    report = run_job("embed", source, tmp_path / "prepared")
    assert report.rows_out == 200 and report.rejected == 1
    embedder = CountingEmbedder()
    vectors, embedded_here = prepared_embeddings(frame, tmp_path / "prepared", embedder=embedder)
    assert embedded_here == 41 and len(embedder.texts) == 41
    assert embedder.texts[0] == frame["text"].iloc[5]
    expected = Usem3Embedder().encode(frame["text"].tolist())
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    # ids repeated in the frame share one vector; ids are matched as text
    twice = pd.concat([frame.iloc[:3], frame.iloc[:1]], ignore_index=True)
    twice["id"] = twice["id"].astype(str)
    again, none_here = prepared_embeddings(twice, tmp_path / "prepared", embedder=embedder)
    assert none_here == 0
    np.testing.assert_allclose(again[3], again[0])


def test_a_wrong_prepared_output_is_refused_clearly(tmp_path) -> None:
    frame = pd.DataFrame({"id": [1], "text": ["Яма на дороге"]})
    with pytest.raises(FileNotFoundError, match="no prepared appeals"):
        prepared_embeddings(frame, tmp_path / "nothing")
    frame.to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(ValueError, match="no embedding column"):
        prepared_embeddings(frame, tmp_path / "plain.parquet")
