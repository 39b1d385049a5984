"""How much of the test set can topic × territory routing send out at 95 % precision, at best?

An *oracle* router is given the true fine topic (``reason``) of every appeal, which no model has,
and routes by the history of (topic, district) → department on the protocol's fit part: it
predicts the cell's most frequent department, with the cell's smoothed share of it as its
confidence (cells seen fewer than ``--min-support`` times back off to the coarser cell). The
threshold is chosen on validation for 95 % precision, exactly as for the models (EVAL.md). Its
coverage bounds what any router built on topic × territory can reach on this data, because the
``department`` label of an appeal still open at export time is its current coordinator, not its
executor (58 % of test rows are open, 16 % of train rows).

    .venv/bin/python bench/routing_ceiling.py [--label department]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from mcu_nlp.evaluation.datasets import load_spb
from mcu_nlp.evaluation.metrics import choose_threshold
from mcu_nlp.evaluation.protocol import split_by_time
from mcu_nlp.evaluation.runner import labelled


def oracle_router(fit: pd.DataFrame, label: str, keys: list[str], smoothing: float,
                  min_support: int):
    """A route function (frame → prediction, confidence) from the fit part's cell counts.

    Cells seen fewer than ``min_support`` times back off to the cells of ``keys[:-1]``.
    """
    counts = fit.groupby(keys + [label]).size().rename("k").reset_index()
    totals = counts.groupby(keys)["k"].transform("sum")
    top = counts.assign(n=totals).sort_values("k", ascending=False).drop_duplicates(keys)
    table = top.set_index(keys).rename(columns={label: "pred"})
    table["conf"] = table["k"] / (table["n"] + smoothing)
    coarser = (oracle_router(fit, label, keys[:-1], smoothing, min_support)
               if len(keys) > 1 else None)

    def route(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        joined = frame[keys].join(table[["pred", "conf", "n"]], on=keys)
        pred = joined["pred"].fillna("").to_numpy(dtype=object).copy()
        conf = joined["conf"].fillna(0.0).to_numpy(dtype=float).copy()
        weak = (joined["n"].fillna(0) < min_support).to_numpy()
        if coarser is not None and weak.any():
            pred[weak], conf[weak] = coarser(frame[weak])
        return pred, conf

    return route


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="department")
    parser.add_argument("--topic", default="reason")
    parser.add_argument("--smoothing", type=float, default=1.0)
    parser.add_argument("--min-support", type=int, default=5)
    args = parser.parse_args()
    split = labelled(split_by_time(load_spb()), args.label)
    for keys in ([args.topic], [args.topic, "district"], [args.topic, "district", "municipality"]):
        route = oracle_router(split.fit, args.label, keys, args.smoothing, args.min_support)
        val_pred, val_conf = route(split.validation)
        classes = np.array(sorted(set(val_pred) | set(split.validation[args.label])), dtype=object)
        # choose_threshold takes probabilities; one column per class with the confidence on top-1.
        proba = np.zeros((len(val_pred), len(classes)))
        proba[np.arange(len(val_pred)), np.searchsorted(classes, val_pred)] = val_conf
        threshold = choose_threshold(split.validation[args.label].to_numpy(), proba, classes)
        pred, conf = route(split.test)
        truth = split.test[args.label].to_numpy(dtype=object)
        correct = pred == truth
        auto = conf >= threshold
        closed = split.test["executor_org"].notna().to_numpy()
        print(f"oracle {' × '.join(keys)} → {args.label}: accuracy {correct.mean():.3f}; "
              f"at 95 % (validation threshold {threshold:.3f}) routes {auto.mean():.1%} of test "
              f"at precision {correct[auto].mean():.3f}; closed reports: "
              f"{auto[closed].mean():.1%} at {correct[auto & closed].mean():.3f}")


if __name__ == "__main__":
    main()
