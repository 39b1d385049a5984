"""``mcu-nlp users create|list|password|disable|enable``: people who sign in to the console."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

users_app = typer.Typer(help="Console users (people who sign in with a password).",
                        no_args_is_help=True)

PASSWORD_ENV = "MCU_USER_PASSWORD"


def _password(from_stdin: bool) -> str:
    """The new password: stdin, ``MCU_USER_PASSWORD``, or asked twice at the terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    return typer.prompt("Пароль", hide_input=True, confirmation_prompt=True)


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="Latin letters, digits, . _ - (2–64).")],
    role: Annotated[str, typer.Option(help="operator, analyst or admin.")],
    full_name: Annotated[str, typer.Option(help="Shown in the console.")] = "",
    password_stdin: Annotated[bool, typer.Option(
        help=f"Read the password from stdin (else {PASSWORD_ENV}, else a prompt).")] = False,
) -> None:
    """Create a console user."""
    from mcu_nlp.cli.store import _store
    from mcu_nlp.services.users import create_user

    store = _store()
    try:
        user = create_user(store, username=username, password=_password(password_stdin),
                           role=role, full_name=full_name, actor="cli")
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        store.dispose()
    typer.echo(f"user {user.username} ({user.role.value}) created, id {user.user_id}")


@users_app.command("password")
def users_password(
    username: str,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
) -> None:
    """Set a user's password (unlocks the account, ends its sessions)."""
    from mcu_nlp.cli.store import _store
    from mcu_nlp.services.users import set_password

    store = _store()
    try:
        set_password(store, username, _password(password_stdin), actor="cli")
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        store.dispose()
    typer.echo(f"password of {username} changed")


@users_app.command("list")
def users_list() -> None:
    """List console users."""
    from mcu_nlp.cli.store import _store
    from mcu_nlp.services.users import list_users

    store = _store()
    try:
        for user in list_users(store):
            state = "disabled" if user.disabled else (
                f"locked until {user.locked_until:%Y-%m-%d %H:%M}" if user.locked_until else "")
            typer.echo(f"{user.user_id}\t{user.username}\t{user.role}\t{user.full_name}\t{state}")
    finally:
        store.dispose()


def _set_disabled(username: str, disabled: bool) -> None:
    from mcu_nlp.cli.store import _store
    from mcu_nlp.services.users import list_users, set_disabled

    store = _store()
    try:
        found = [u for u in list_users(store) if u.username == username.lower()]
        if not found:
            typer.echo(f"error: no user {username!r}", err=True)
            raise typer.Exit(2)
        set_disabled(store, found[0].user_id, disabled, actor="cli")
    finally:
        store.dispose()


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user (their sessions end at once)."""
    _set_disabled(username, True)
    typer.echo(f"{username} disabled")


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Enable a disabled user."""
    _set_disabled(username, False)
    typer.echo(f"{username} enabled")


def register(app: typer.Typer) -> None:
    """Add the user commands to the command line."""
    app.add_typer(users_app, name="users")
