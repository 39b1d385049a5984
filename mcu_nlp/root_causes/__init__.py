"""Root causes of recurring problems: clustering, cards and roadmaps.

BERTopic is a training extra; :mod:`mcu_nlp.root_causes.model` imports it only when fitting.
"""

from mcu_nlp.root_causes.cards import RootCause, Trend, build_cards
from mcu_nlp.root_causes.model import RootCauseModel

__all__ = ["RootCause", "RootCauseModel", "Trend", "build_cards"]
