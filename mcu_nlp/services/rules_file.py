"""Put uploaded curator rules in force: the rules file, the rules in memory and the audit entry.

One flow, in one store transaction: the audit entry is written (and accepted by the store)
first, then the file is replaced atomically and durably
(:func:`~mcu_nlp.atomic_files.write_text_atomically`), then the rules are swapped in, then the
transaction commits. A file that cannot be written leaves no audit entry and the old rules in
force; two uploads at once never share a temporary file.
"""

from __future__ import annotations

from pathlib import Path

from mcu_nlp.atomic_files import write_text_atomically
from mcu_nlp.routing.rules import RuleBook
from mcu_nlp.services.audit import record_audit
from mcu_nlp.services.classify import RulesHolder
from mcu_nlp.storage import Store


def put_rules_in_force(store: Store, holder: RulesHolder, book: RuleBook, text: str, *,
                       path: str | Path | None, actor: str) -> None:
    """Save ``text`` as the rules file (when ``path`` is set), swap ``book`` in, and audit it.

    Args:
        store: Holds the audit log.
        holder: The rules in force.
        book: The validated rules parsed from ``text``.
        text: The rules file's YAML, as uploaded.
        path: The curator rules file; ``None`` keeps the new rules in memory only.
        actor: Who uploaded them (audit log).
    """
    with store.session() as session:
        record_audit(session, actor=actor, action="rules.update", entity="rules",
                     entity_id=book.version, details={"rules": len(book.source.rules)})
        session.flush()  # the store accepted the audit entry before anything changes
        if path is not None:
            write_text_atomically(path, text)
        holder.swap(book)
