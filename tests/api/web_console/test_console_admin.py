"""The console's admin pages in a real browser and over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import yaml
from conftest import sign_in

from mcu_nlp.routing.rules import DEFAULT_RULES_PATH, parse_rules_text
from mcu_nlp.services.admin_console import dry_run_rules
from mcu_nlp.services.audit import list_audit
from mcu_nlp.services.keys import verify_key
from mcu_nlp.services.models import ModelRegistry
from mcu_nlp.services.users import list_users

PAGES = ["/console/admin", "/console/admin/rules", "/console/admin/users", "/console/admin/keys"]
POSTS = {  # every admin POST with a body that would be accepted from an admin
    "/console/admin/models/fake-v1/activate": {},
    "/console/admin/rules/check": {"yaml": "version: x\nrules: []\n"},
    "/console/admin/rules": {"yaml": "version: x\nrules: []\n", "checked": "0" * 64},
    "/console/admin/users": {"username": "mallory", "password": "long-enough-pass",
                             "role": "admin"},
    "/console/admin/users/1/disable": {},
    "/console/admin/users/1/enable": {},
    "/console/admin/users/1/password": {"password": "long-enough-pass"},
    "/console/admin/keys": {"role": "admin", "name": "stolen"},
    "/console/admin/keys/1/revoke": {},
}
NEW_RULE = {"id": "dry-run-yard", "description": "Двор — проверка пробного прогона",
            "when": {"keywords": ["двор"]}, "then": {"priority": "high"}}
METRICS = {"category": {"test": {"rows": 400, "macro_f1": 0.7312, "coverage_at_95": 0.42,
                                 "precision_at_threshold": 0.953, "accuracy": 0.81}},
           "department": {"test": {"rows": 400, "macro_f1": 0.6105, "coverage_at_95": 0.35,
                                   "precision_at_threshold": 0.951, "accuracy": 0.77}}}


def admin_audit(store, who: str) -> list:
    """Audit entries of admin actions by ``who`` (the landing page's own reads left out)."""
    return [e for e in list_audit(store, limit=1000) if e.actor.endswith(f":{who}")
            and e.entity in ("model", "rules", "api_key", "user") and e.action != "user.login"]


def session_of(page) -> tuple[str, str]:
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}["mcu_session"]
    return cookie, page.locator("meta[name=csrf-token]").get_attribute("content")


def test_admin_activates_a_model_version_with_its_figures_shown(new_page, live_console,
                                                                 bundle_dirs, bundle_loader):
    ModelRegistry(live_console.store, loader=bundle_loader).register(
        bundle_dirs["fake-v2"], metrics=METRICS, actor="test")
    page = new_page("admin1")
    page.on("dialog", lambda dialog: dialog.accept())  # «make it active?»
    page.goto(f"{live_console.url}/console/admin")
    card = page.locator("section.version[data-version='fake-v2']")
    figures = card.locator("table.figures").inner_text()
    assert "0.731" in figures and "42,0" in figures and "95,3" in figures and "test" in figures
    assert page.locator("section.version.active").get_attribute("data-version") == "fake-v1"
    with page.expect_navigation():
        card.locator("button[type=submit]").click()
    assert "активирована" in page.inner_text("#done")
    assert page.locator("section.version.active").get_attribute("data-version") == "fake-v2"
    assert live_console.services.registry.holder.current.version == "fake-v2"
    entry = list_audit(live_console.store, entity="model", entity_id="fake-v2")[0]
    assert entry.action == "model.activate" and entry.actor.endswith(":admin1")
    # an unknown version is refused on the page, the active one stays
    cookie, csrf = session_of(page)
    with httpx.Client(base_url=live_console.url, cookies={"mcu_session": cookie}) as client:
        for version in ("nope", "%00", "x" * 100):
            response = client.post(f"/console/admin/models/{version}/activate",
                                   data={"csrf_token": csrf})
            assert response.status_code == 404, version
        response = client.post("/console/admin/users", data={
            "csrf_token": csrf, "username": "nul", "password": "long-enough-pass",
            "role": "operator", "full_name": "a\x00b"})
        assert response.status_code == 422
        response = client.post("/console/admin/rules/check",
                               data={"csrf_token": csrf, "yaml": "version: \x00"})
        assert response.status_code == 422
    assert live_console.services.registry.holder.current.version == "fake-v2"


def test_admin_edits_a_rule_and_sees_the_dry_run_before_saving(new_page, live_console):
    page = new_page("admin1")
    page.goto(f"{live_console.url}/console/admin/rules")
    text = page.input_value("#rules-yaml")
    assert text == DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    document["version"] = "console-test-2"
    document["rules"].append(NEW_RULE)
    edited = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    # a broken file is refused with the reason, nothing changes
    page.fill("#rules-yaml", edited.replace("priority: high", "priority: urgentest"))
    with page.expect_navigation():
        page.click("#check-rules")
    assert "priority" in page.inner_text("#admin-error")
    assert page.locator("#save-rules").count() == 0
    # the dry run shows what each rule would have caught in the last month
    page.fill("#rules-yaml", edited)
    with page.expect_navigation():
        page.click("#check-rules")
    expected = dry_run_rules(live_console.store, parse_rules_text(edited),
                             current=live_console.services.rules.rules)
    counts = {r.rule_id: r.matched for r in expected.rules}
    assert expected.appeals > 0 and counts["dry-run-yard"] > 0
    row = page.locator("#dry-run-table tr[data-rule='dry-run-yard']")
    assert int(row.locator("td.matched").inner_text()) == counts["dry-run-yard"]
    assert "новое" in row.inner_text()
    assert int(page.inner_text("#dry-run-appeals")) == expected.appeals
    assert live_console.services.rules.rules.version != "console-test-2"  # not saved yet
    with page.expect_navigation():
        page.click("#save-rules")
    assert "сохранены" in page.inner_text("#done")
    assert page.inner_text("#rules-version") == "console-test-2"
    rules = live_console.services.rules.rules
    assert rules.version == "console-test-2" and "dry-run-yard" in {r.id for r in
                                                                     rules.source.rules}
    entry = list_audit(live_console.store, entity="rules")[0]
    assert entry.action == "rules.update" and entry.actor.endswith(":admin1")
    # a text changed after its check is checked again instead of saved
    cookie, csrf = session_of(page)
    with httpx.Client(base_url=live_console.url, cookies={"mcu_session": cookie}) as client:
        response = client.post("/console/admin/rules", data={
            "csrf_token": csrf, "yaml": edited.replace("console-test-2", "sneaky"),
            "checked": "0" * 64})
        assert response.status_code == 200 and 'id="dry-run-table"' in response.text
    assert live_console.services.rules.rules.version == "console-test-2"


def test_admin_manages_users_and_keys(new_page, live_console):
    page = new_page("admin1")
    page.on("dialog", lambda dialog: dialog.accept())  # «disable?», «revoke?»
    page.goto(f"{live_console.url}/console/admin/users")
    page.fill("#new-user-form input[name=username]", "oper3")
    page.fill("#new-user-form input[name=full_name]", "Третий Оператор")
    page.select_option("#new-user-form select[name=role]", "operator")
    page.fill("#new-user-form input[name=password]", "operator-three-pass")
    with page.expect_navigation():
        page.click("#new-user-form button[type=submit]")
    assert "создан" in page.inner_text("#done")
    row = page.locator("tr[data-username='oper3']")
    assert "Третий Оператор" in row.inner_text()
    with page.expect_navigation():
        row.locator("button.disable").click()
    assert {u.username: u.disabled for u in list_users(live_console.store)}["oper3"]
    with page.expect_navigation():
        page.locator("tr[data-username='oper3'] button.enable").click()
    row = page.locator("tr[data-username='oper3']")
    row.locator("input[name=password]").fill("a-brand-new-password")
    with page.expect_navigation():
        row.locator(".password-form button").click()
    assert "Пароль изменён" in page.inner_text("#done")
    oper3 = new_page()
    sign_in(oper3, live_console, "oper3", "a-brand-new-password")
    assert oper3.url.endswith("/console/queue")
    # one's own account cannot be disabled (no button, and the POST is refused)
    assert page.locator("tr[data-username='admin1'] button.disable").count() == 0
    actions = [e.action for e in list_audit(live_console.store, entity="user", limit=500)]
    assert {"user.create", "user.disable", "user.enable", "user.password"} <= set(actions)

    page.goto(f"{live_console.url}/console/admin/keys")
    page.fill("#new-key-form input[name=name]", "импорт ИМ")
    page.select_option("#new-key-form select[name=role]", "operator")
    with page.expect_navigation():
        page.click("#new-key-form button[type=submit]")
    key = page.inner_text("#new-key")
    identity = verify_key(live_console.store, key)
    assert identity is not None and identity.role == "operator" and identity.name == "импорт ИМ"
    page.goto(f"{live_console.url}/console/admin/keys")
    assert key not in page.content()  # shown once
    with page.expect_navigation():
        page.locator(f"tr[data-key-id='{identity.key_id}'] button.revoke").click()
    assert "отозван" in page.inner_text("#done")
    assert verify_key(live_console.store, key) is None
    response = httpx.get(f"{live_console.url}/v1/queue", headers={"X-API-Key": key})
    assert response.status_code == 401


def test_an_operator_gets_403_and_posts_without_the_csrf_token_are_refused(new_page,
                                                                           live_console):
    page = new_page("oper1")
    cookie, csrf = session_of(page)
    with httpx.Client(base_url=live_console.url, cookies={"mcu_session": cookie}) as client:
        for path in PAGES:
            assert client.get(path, headers={"Accept": "text/html"}).status_code == 403, path
        for path, data in POSTS.items():
            assert client.post(path, data={**data, "csrf_token": csrf}).status_code == 403, path
            assert client.post(path, data=data,
                               headers={"X-CSRF-Token": csrf}).status_code == 403, path
    assert "mallory" not in {u.username for u in list_users(live_console.store)}
    assert not admin_audit(live_console.store, "oper1")

    # an admin's POSTs without the session's CSRF token are refused too
    page = new_page("admin1")
    cookie, csrf = session_of(page)
    with httpx.Client(base_url=live_console.url, cookies={"mcu_session": cookie}) as client:
        for path, data in POSTS.items():
            assert client.post(path, data=data).status_code == 403, path
            assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 403
            assert client.post(path, data=data,
                               headers={"X-CSRF-Token": csrf[:-2] + "xx"}).status_code == 403
        # the same session with its token is admitted (the refusals were the token's)
        assert client.get("/console/admin/users").status_code == 200
    assert not admin_audit(live_console.store, "admin1")
    assert live_console.services.registry.holder.current.version == "fake-v1"
    assert "mallory" not in {u.username for u in list_users(live_console.store)}
