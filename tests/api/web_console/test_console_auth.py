"""Sign-in, roles, lock-out and CSRF of the console, in a real browser and over HTTP."""

from __future__ import annotations

import httpx
import pytest
from conftest import sign_in

from mcu_nlp.services.audit import list_audit
from mcu_nlp.services.users import MAX_FAILED_LOGINS


def test_sign_in_lands_on_the_role_home_and_sign_out_ends_the_session(new_page, live_console):
    page = new_page("oper1")
    assert page.url.endswith("/console/queue")
    assert "oper1" in page.inner_text("header")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["mcu_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    page.click("text=Выйти")
    page.wait_for_url("**/console/login")
    # the old cookie no longer opens pages
    response = httpx.get(f"{live_console.url}/console/queue",
                         cookies={"mcu_session": session["value"]}, follow_redirects=False,
                         headers={"Accept": "text/html"})
    assert response.status_code == 303 and "/console/login" in response.headers["location"]


def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_account(new_page,
                                                                         live_console):
    page = new_page()
    for _ in range(MAX_FAILED_LOGINS):
        sign_in(page, live_console, "oper2", "wrong-password-x")
        assert page.url.split("?")[0].endswith("/console/login")
        assert page.locator("[role=alert]").count() == 1
    # locked: even the right password is refused now
    sign_in(page, live_console, "oper2")
    assert "заблокирована" in page.inner_text("[role=alert]")
    actions = [e.action for e in list_audit(live_console.store, entity="user")]
    assert actions.count("user.login_failed") == MAX_FAILED_LOGINS


def test_an_operator_cannot_open_admin_pages(new_page, live_console):
    page = new_page("oper1")
    response = page.goto(f"{live_console.url}/console/admin")
    assert response.status == 403
    assert "Администрирование" not in page.inner_text("nav")


def test_a_page_without_a_session_redirects_to_sign_in_and_back(new_page, live_console):
    page = new_page()
    page.goto(f"{live_console.url}/console/search")
    assert "/console/login" in page.url
    page.fill("input[name=username]", "analyst1")
    page.fill("input[name=password]", live_console.password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/console/search")


@pytest.mark.parametrize("path", ["/console/logout"])
def test_posts_without_the_csrf_token_are_refused(new_page, live_console, path):
    page = new_page("oper1")
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}["mcu_session"]
    with httpx.Client(base_url=live_console.url, cookies={"mcu_session": cookie}) as client:
        assert client.post(path).status_code == 403
        assert client.post(path, data={"csrf_token": "forged"}).status_code == 403
        assert client.post(path, headers={"X-CSRF-Token": "forged"}).status_code == 403
    # the session survived the forged posts
    assert page.goto(f"{live_console.url}/console/queue").status == 200


def test_sign_in_without_the_form_token_is_refused(live_console):
    response = httpx.post(f"{live_console.url}/console/login",
                          data={"username": "oper1", "password": live_console.password})
    assert response.status_code == 403
    assert "mcu_session" not in response.cookies


def test_pages_carry_a_strict_content_security_policy(live_console):
    response = httpx.get(f"{live_console.url}/console/login")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["x-frame-options"] == "DENY"
