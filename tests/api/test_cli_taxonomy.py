"""``mcu-nlp taxonomy list|add`` and ``mcu-nlp keys create`` errors, with typer's CliRunner.

On SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mcu_nlp.cli import app
from mcu_nlp.services.audit import list_audit
from mcu_nlp.services.models import ModelRegistry
from mcu_nlp.services.taxonomy import read_curated
from mcu_nlp.settings import get_settings
from mcu_nlp.storage.models import ApiKeyRow

NEW = "Реклама на фасаде"


@pytest.fixture
def cli_env(store, tmp_path, monkeypatch):
    """The CLI's settings point at ``store`` and a fresh data folder."""
    monkeypatch.setenv("MCU_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DATABASE_URL", store.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield store
    get_settings.cache_clear()


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def taxonomy_audit(store) -> list:
    return [e for e in list_audit(store, entity="label") if e.action == "taxonomy.add"]


def test_taxonomy_add_writes_the_curated_list_and_audits(cli_env):
    store = cli_env
    result = invoke("taxonomy", "add", "category", NEW, "Шум ночью", "--actor", "curator:anna")
    assert result.exit_code == 0, result.output
    assert "category: 2 value(s) added" in result.output and f"+ {NEW}" in result.output
    assert read_curated(get_settings().taxonomy_file)["category"] == {NEW, "Шум ночью"}
    [entry] = taxonomy_audit(store)
    assert (entry.actor, entry.entity_id, entry.details) == (
        "curator:anna", "category", {"added": sorted([NEW, "Шум ночью"])})

    again = invoke("taxonomy", "add", "category", f"  {NEW} ")  # stripped: nothing new
    assert again.exit_code == 0, again.output
    assert "category: 0 value(s) added, 2 curated" in again.output
    assert sorted(e.actor for e in taxonomy_audit(store)) == ["cli", "curator:anna"]

    listed = invoke("taxonomy", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[0].startswith("# active model: none")
    assert f"category\tcurated\t{NEW}" in listed.output.splitlines()
    assert invoke("taxonomy", "list", "department").output.splitlines()[1:] == []


def test_taxonomy_list_shows_the_active_models_classes(cli_env, bundle_dirs, bundle_loader,
                                                       monkeypatch):
    store = cli_env
    ModelRegistry(store, loader=bundle_loader).register(bundle_dirs["fake-v1"], activate=True)
    monkeypatch.setattr("mcu_nlp.cli.store._registry",
                        lambda store: ModelRegistry(store, loader=bundle_loader))
    assert invoke("taxonomy", "add", "department", NEW).exit_code == 0
    result = invoke("taxonomy", "list", "department")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("# active model: fake-v1")
    model = [line.split("\t")[2] for line in lines[1:] if line.split("\t")[1] == "model"]
    assert model and set(model) <= set(bundle_loader(bundle_dirs["fake-v1"]).classes("department"))
    assert f"department\tcurated\t{NEW}" in lines


@pytest.mark.parametrize("args, message", [
    (("add", "category", "x" * 501), "non-empty values of <= 500 characters"),
    (("add", "category", "   "), "non-empty values"),
    (("add", "bad label!", NEW), "must be 1-64 letters"),
    (("add", "l" * 65, NEW), "must be 1-64 letters"),
    (("add", "category", NEW, "--actor", ""), "--actor must be 1-100 characters"),
    (("list", "bad/label"), "must be 1-64 letters"),
])
def test_taxonomy_refuses_bad_input_with_a_clear_error(cli_env, args, message):
    result = invoke("taxonomy", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert taxonomy_audit(cli_env) == []
    assert read_curated(get_settings().taxonomy_file) == {}


def test_taxonomy_add_with_a_broken_curated_file_is_a_clear_error(cli_env):
    path = get_settings().taxonomy_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("category: [unclosed\n", encoding="utf-8")
    result = invoke("taxonomy", "add", "category", NEW)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and isinstance(result.exception, SystemExit)
    assert taxonomy_audit(cli_env) == []


def test_keys_create_with_an_over_long_name_exits_2_with_a_clear_error(cli_env):
    result = invoke("keys", "create", "--role", "analyst", "--name", "n" * 201)
    assert result.exit_code == 2, result.output
    assert "error: key name is 201 characters; the limit is 200" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    control = invoke("keys", "create", "--role", "analyst", "--name", "a\x1bb")
    assert control.exit_code == 2 and "control characters" in control.output
    with cli_env.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ApiKeyRow)) == 0
    ok = invoke("keys", "create", "--role", "analyst", "--name", "n" * 200)
    assert ok.exit_code == 0, ok.output
