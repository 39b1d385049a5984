"""Threshold overrides: a floor the precision audit puts under a label's bundle threshold.

The bundle's threshold (per label, or per predicted class) was chosen on validation data; when
the audit of production shows the promise is not kept, :mod:`mcu_nlp.services.routing_quality`
stores a higher threshold for the label. The router then compares the confidence with the
*effective* threshold, the larger of the two. A label with no bundle threshold stays without one
(it never routes automatically, whatever the override).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["apply_overrides", "effective_threshold"]


def effective_threshold(bundle: float | None, override: float | None) -> float | None:
    """The threshold in force: the bundle's, raised to the override when that is higher."""
    if bundle is None or not math.isfinite(bundle):
        return None
    return bundle if override is None else max(bundle, float(override))


def _with_threshold(prediction: Any, threshold: float) -> Any:
    if dataclasses.is_dataclass(prediction) and not isinstance(prediction, type):
        return dataclasses.replace(prediction, threshold=threshold)
    clone = copy.copy(prediction)  # the model's object is shared with the caller: never mutate it
    clone.threshold = threshold
    return clone


def apply_overrides(predictions: Mapping[str, Any] | None,
                    overrides: Mapping[str, float]) -> Mapping[str, Any] | None:
    """The predictions with every overridden label's threshold raised to its effective value."""
    if not predictions or not overrides:
        return predictions
    out = dict(predictions)
    for label, override in overrides.items():
        prediction = out.get(label)
        if prediction is None:
            continue
        effective = effective_threshold(prediction.threshold, override)
        if effective is not None and effective != prediction.threshold:
            out[label] = _with_threshold(prediction, effective)
    return out
