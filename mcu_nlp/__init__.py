"""mcu_nlp: NLP and analytics for a municipal control center (МЦУ)."""

__version__ = "0.1.0"
