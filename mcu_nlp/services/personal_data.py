"""Who reads a citizen's personal data: raw reads are audited, analysts get a masked view.

An appeal's text and address carry the citizen's name, phone, e-mail and, for 59-ФЗ appeals, the
applicant's postal address. Roles that route appeals (``operator``) and ``admin`` read them raw,
and every such read of an appeal writes one audit row (``appeal.read``: who, which appeal,
when, through which endpoint) before the data is returned: a read that cannot be audited fails.
``analyst`` reads a masked view (:func:`mask_view`): names, phones, e-mails, ID numbers and
apartments masked in the text by :mod:`mcu_nlp.text.masking`, the applicant's address of a 59-ФЗ
appeal replaced by ``[АДРЕС]``, the problem's address of other channels kept to its street and
house (a public place), correction comments (and a person's routing reason, which repeats the
comment) masked, and every explanation word of the model's predictions that the text's masking
replaced shown as its placeholder (:func:`mcu_nlp.text.masking.mask_terms`).

Not audited: ``POST /v1/classify`` and the ``stored`` answer of ``POST /v1/appeals`` return the
caller's own text (what it just sent), so they are no read of stored personal data; a
``duplicate`` answer returns the stored appeal and is a read (audited for raw roles).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from mcu_nlp.records import Channel
from mcu_nlp.services.appeals import AppealView, get_appeal
from mcu_nlp.services.audit import record_audit
from mcu_nlp.services.queue import QueueItem, QueuePage, list_queue
from mcu_nlp.storage import Store
from mcu_nlp.text.masking import mask_many, mask_personal_data, mask_terms, masked_words

__all__ = [
    "ADDRESS_MASK",
    "RAW_ROLES",
    "READ_ACTION",
    "list_queue_as",
    "mask_address",
    "mask_view",
    "read_appeal_as",
    "record_reads",
    "sees_raw",
]

ADDRESS_MASK = "[АДРЕС]"
READ_ACTION = "appeal.read"
RAW_ROLES = frozenset({"operator", "admin"})
"""Roles that read raw text and address (audited); every other role reads the masked view."""

# Channels whose address is the applicant's own (59-ФЗ: «Адрес заявителя»), not the problem's.
_APPLICANT_ADDRESS_CHANNELS = frozenset({Channel.FZ59.value})


def sees_raw(role: object) -> bool:
    """Whether a key of ``role`` reads raw text and addresses (its reads are audited)."""
    return str(getattr(role, "value", role)) in RAW_ROLES


def mask_address(address: str | None, channel: str) -> str | None:
    """An appeal's address as an analyst sees it (see the module doc)."""
    if address is None or not address.strip():
        return address
    if str(channel) in _APPLICANT_ADDRESS_CHANNELS:
        return ADDRESS_MASK
    return mask_personal_data(address)


def mask_view(view: AppealView) -> AppealView:
    """The analyst's view of an appeal: personal data masked (see the module doc)."""
    text = mask_personal_data(view.text)
    words = masked_words(view.text, text)
    return dataclasses.replace(
        view,
        text=text,
        address=mask_address(view.address, view.channel),
        urgency_reasons=_masked_reasons(view.urgency_reasons),
        predictions=[_masked_prediction(p, view.text, words) for p in view.predictions],
        decision=_masked_decision(view.decision),
        corrections=[{**c, "comment": mask_personal_data(c["comment"])} if c.get("comment")
                     else dict(c) for c in view.corrections])


def _masked_prediction(prediction: dict[str, Any], text: str,
                       words: dict[str, str]) -> dict[str, Any]:
    # Explanation words are words of the text («иванов», «иванов иван»): a word the text's
    # masking replaced becomes its placeholder.
    explanation = [list(pair) for pair in prediction.get("explanation") or []]
    masked = mask_terms([str(pair[0]) for pair in explanation], text, words=words)
    return {**prediction,
            "explanation": [[word, *pair[1:]] for word, pair in zip(masked, explanation,
                                                                    strict=True)]}


def _masked_decision(decision: dict[str, Any] | None) -> dict[str, Any] | None:
    # A person's routing decision carries the correction's comment as its reason (free text).
    if decision is None or not str(decision.get("decided_by") or "").startswith("human:"):
        return decision
    return {**decision, "reason": mask_personal_data(str(decision.get("reason") or ""))}


def _masked_reasons(reasons: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    # An urgency reason quotes the phrase that fired (a few words of the text).
    return [{**reason, "phrase": mask_personal_data(str(reason["phrase"]))}
            if reason.get("phrase") else dict(reason) for reason in reasons]


def record_reads(store: Store, appeal_ids: Iterable[int], *, actor: str, via: str,
                 fields: Sequence[str] = ("text", "address")) -> None:
    """One ``appeal.read`` audit row per appeal whose raw personal data ``actor`` reads."""
    ids = list(dict.fromkeys(appeal_ids))
    if not ids:
        return
    with store.session() as session:
        for appeal_id in ids:
            record_audit(session, actor=actor, action=READ_ACTION, entity="appeal",
                         entity_id=appeal_id, details={"via": via, "fields": list(fields)})


def read_appeal_as(store: Store, appeal_id: int, *, actor: str, role: object,
                   via: str = "GET /v1/appeals/{id}") -> AppealView:
    """One stored appeal as ``role`` may see it; a raw read is audited first.

    Raises:
        AppealNotFound: No such appeal (nothing is audited).
    """
    view = get_appeal(store, appeal_id)
    if not sees_raw(role):
        return mask_view(view)
    record_reads(store, [view.id], actor=actor, via=via)
    return view


def list_queue_as(store: Store, *, actor: str, role: object, via: str = "GET /v1/queue",
                  **filters: Any) -> QueuePage:
    """A page of the review queue as ``role`` may see it (see :func:`list_queue`).

    A raw page writes one audit row per appeal on it; a masked page masks every text.
    """
    page = list_queue(store, **filters)
    if sees_raw(role):
        record_reads(store, [item.appeal_id for item in page.items], actor=actor, via=via,
                     fields=("text",))
        return page
    masked = mask_many([item.text for item in page.items])
    items: list[QueueItem] = [
        dataclasses.replace(item, text=text, urgency_reasons=_masked_reasons(item.urgency_reasons))
        for item, text in zip(page.items, masked, strict=True)]
    return QueuePage(page.total, items)
