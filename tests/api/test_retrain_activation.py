"""``mcu-nlp retrain --activate auto``: a new version is activated only when it wins.

The active version is a real bundle trained on older real appeals. Later real appeals are imported
into the store (their topics arrive as unconfirmed source labels), then people's labels are
planted with ``correct_appeal`` (the path operators use) so that the retrained version is clearly
better or clearly worse than the active one on the store's newest people-confirmed appeals (the
holdout ``retrain`` keeps aside), and the command runs as in production: its own store
connection, the default bundle loader, the default training job. The values are approved by a
curator first (the curated taxonomy), as a municipality's own topic names would be.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mcu_nlp.records import Appeal, Channel
from mcu_nlp.services.appeals import correct_appeal
from mcu_nlp.services.models import ModelRegistry
from mcu_nlp.services.taxonomy import add_curated_values
from mcu_nlp.settings import get_settings
from mcu_nlp.storage.models import AppealRow

# The store backends are covered by test_storage.py; the decision is the same on both.
pytestmark = pytest.mark.parametrize("store", ["sqlite"], indirect=True)

LABEL = "category"
HOLDOUT = 0.15  # the command's default share of the newest labelled appeals held out


@pytest.fixture(scope="module")
def base_bundle(spb_slice: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The active version: the real training job on the slice's oldest 500 appeals (50 for
    its thresholds)."""
    from mcu_nlp.services.training import train_bundle

    out = tmp_path_factory.mktemp("bundles") / "base-v1"
    train_bundle(spb_slice.iloc[:450], labels=[LABEL], version="base-v1", out_dir=out,
                 validation_frame=spb_slice.iloc[450:500])
    return out


@pytest.fixture
def stocked(store, base_bundle, spb_slice, tmp_path, monkeypatch):
    """The store with base-v1 active and 400 later real appeals imported (ids → source rows)."""
    from mcu_nlp.routing import load_lexicon, load_rules
    from mcu_nlp.services.classify import ClassifyService, RulesHolder
    from mcu_nlp.services.imports import import_appeals

    registry = ModelRegistry(store)
    registry.register(base_bundle, activate=True)
    classifier = ClassifyService(models=registry.holder, rules=RulesHolder(load_rules()),
                                 lexicon=load_lexicon())
    rows = spb_slice.iloc[600:1000]
    appeals = [Appeal(id=str(row.id), channel=Channel.PORTAL, source="spb_portal",
                      created_at=datetime.fromisoformat(row.created_at), text=row.text,
                      territory=row.district, labels={LABEL: getattr(row, LABEL)})
               for row in rows.itertuples(index=False)]
    summary = import_appeals(store, classifier, appeals)
    assert summary.stored >= 380
    with store.session() as session:
        ids = dict(session.execute(sa.select(AppealRow.source_id, AppealRow.id)).all())
    stored = rows[rows["id"].astype(str).isin(ids)].sort_values(["created_at", "id"])
    stored = stored.assign(appeal_id=stored["id"].astype(str).map(ids)).reset_index(drop=True)

    monkeypatch.setenv("MCU_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DATABASE_URL", store.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield stored
    get_settings.cache_clear()


def approve(store, values) -> None:
    """A curator adds the values to the curated taxonomy the command reads."""
    add_curated_values(store, get_settings().taxonomy_file, LABEL, sorted(set(values)),
                       actor="key:3:admin")


def plant(store, appeal_ids, values) -> None:
    for appeal_id, value in zip(appeal_ids, values, strict=True):
        correct_appeal(store, int(appeal_id), {LABEL: value}, author="key:1:operator",
                       allowed_labels=[LABEL])


def run_retrain(version: str):
    from mcu_nlp.cli import app

    result = CliRunner().invoke(app, ["retrain", "--activate", "auto", "--labels", LABEL,
                                      "--version", version])
    assert result.exit_code == 0, result.output
    return result.output


def holdout_of(stocked: pd.DataFrame) -> pd.DataFrame:
    return stocked.iloc[int(len(stocked) * (1 - HOLDOUT)):]


def holdout_figures(store, version: str, holdout: pd.DataFrame
                    ) -> tuple[float, float, pd.Series]:
    """(new accuracy, active accuracy, versions' active flags) as the registry recorded them."""
    versions = {view.version: view for view in ModelRegistry(store).list()}
    metrics = versions[version].metrics
    assert metrics["compared_with"] == "base-v1"
    assert metrics["holdout"][LABEL]["rows"] == len(holdout)  # the same rows as ``holdout``
    return (metrics["holdout"][LABEL]["accuracy"], metrics["active_holdout"][LABEL]["accuracy"],
            pd.Series({name: view.active for name, view in versions.items()}))


def test_a_version_trained_on_better_labels_wins_and_is_activated(store, stocked):
    # Operators relabel every appeal in the municipality's own topic names: the active version
    # cannot name them, a version trained on them can.
    renamed = {name: f"Тема {i:02d}" for i, name in enumerate(sorted(stocked[LABEL].unique()))}
    approve(store, renamed.values())
    plant(store, stocked["appeal_id"], stocked[LABEL].map(renamed))

    output = run_retrain("people-r1")

    holdout = holdout_of(stocked)
    new, active, flags = holdout_figures(store, "people-r1", holdout)
    majority = holdout[LABEL].map(renamed).value_counts(normalize=True).iloc[0]
    assert active == 0.0
    assert new > majority + 0.15, (new, majority)  # it learned the topics, not only won
    assert "activated: people-r1" in output
    assert flags.to_dict() == {"people-r1": True, "base-v1": False}
    assert ModelRegistry(store).sync().version == "people-r1"


def test_a_version_trained_on_noise_loses_and_the_active_one_stays(store, stocked):
    # Random labels on the training part only: on the holdout people confirm the source's true
    # topics (the holdout is people's labels only).
    cut = len(stocked) - len(holdout_of(stocked))
    train_rows, rest = stocked.iloc[:cut], stocked.iloc[cut:]
    topics = sorted(stocked[LABEL].unique())
    approve(store, topics)
    noise = np.random.default_rng(0).choice(topics, size=len(train_rows))
    plant(store, train_rows["appeal_id"], noise)
    plant(store, rest["appeal_id"], rest[LABEL])

    output = run_retrain("noise-r1")

    holdout = holdout_of(stocked)
    new, active, flags = holdout_figures(store, "noise-r1", holdout)
    majority = holdout[LABEL].value_counts(normalize=True).iloc[0]
    assert active > majority + 0.1, (active, majority)  # the active version is a real rival
    assert new < active - 0.2, (new, active)
    assert "registered inactive: noise-r1" in output
    assert flags.to_dict() == {"noise-r1": False, "base-v1": True}
    assert ModelRegistry(store).sync().version == "base-v1"
