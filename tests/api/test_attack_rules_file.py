"""Attack: concurrent rule uploads, and a rules file that cannot be written.

Before: ``PUT /v1/rules`` wrote every upload to the same ``<rules>.tmp`` without fsync, and
audited after the swap. Now each write has its own temporary file, is synced and renamed, and
the audit entry is part of the same flow: a failed write leaves no audit entry and the old rules
in force.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import auth

from mcu_nlp.services.audit import list_audit


def _rules_text(api) -> str:
    return api.get("/v1/rules", headers=auth(api, "admin")).json()


def _yaml(api) -> str:
    return Path(api.services.rules_path).read_text(encoding="utf-8")


def test_concurrent_rule_uploads_leave_one_whole_file_and_an_audit_each(api):
    text = _yaml(api)
    variants = [f"{text}\n# upload {i}\n" for i in range(6)]
    statuses: list[int] = []

    def put(body: str) -> None:
        statuses.append(api.put("/v1/rules", json={"yaml": body},
                                headers=auth(api, "admin")).status_code)

    threads = [threading.Thread(target=put, args=(v,)) for v in variants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200] * 6
    assert _yaml(api) in variants  # one whole upload, never a mix
    folder = Path(api.services.rules_path).parent
    assert not list(folder.glob("*.tmp")) and not list(folder.glob(".*.tmp"))
    assert len([e for e in list_audit(api.services.store, entity="rules")
                if e.action == "rules.update"]) == 6
    assert api.get("/health").status_code == 200


def test_a_rules_file_that_cannot_be_written_changes_nothing(api, monkeypatch):
    import mcu_nlp.services.rules_file as rules_file

    before_rules, before_file = _rules_text(api), _yaml(api)

    def broken(path, text):
        raise OSError("disk full")

    monkeypatch.setattr(rules_file, "write_text_atomically", broken)
    with pytest.raises(OSError, match="disk full"):
        api.put("/v1/rules", json={"yaml": before_file + "\n# new\n"},
                headers=auth(api, "admin"))
    assert _rules_text(api) == before_rules and _yaml(api) == before_file
    assert not [e for e in list_audit(api.services.store, entity="rules")
                if e.action == "rules.update"]
