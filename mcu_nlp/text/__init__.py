"""The Russian text pipeline for appeals.

- :mod:`~mcu_nlp.text.normalize` — HTML stripping, whitespace/ё/quote/dash normalization,
  ``URL``/``PHONE``/``EMAIL`` placeholders, the EVAL.md duplicate key.
- :mod:`~mcu_nlp.text.lemmas` — razdel tokens and cached pymorphy3 lemmas.
- :mod:`~mcu_nlp.text.stopwords` — ``RUSSIAN_STOP_WORDS``.
- :mod:`~mcu_nlp.text.entities` / :mod:`~mcu_nlp.text.addresses` — natasha entities,
  addresses and the place (settlement, street, house) of a problem.
- :mod:`~mcu_nlp.text.masking` — masking of personal data.

Submodules are imported directly; nothing heavy loads on ``import mcu_nlp.text``.
"""
