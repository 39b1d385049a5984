"""Attack: saving a model version over one that already exists.

Before: ``save_artifact`` wrote the new files over the old version's in place (a reader could
load the new weights with the old manifest). Now it refuses unless asked to overwrite, and
writes in a temporary directory that is renamed into place.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mcu_nlp.artifacts import Artifact, ArtifactExists, load_artifact, save_artifact


def _artifact(value: float) -> Artifact:
    return Artifact(kind="test", config={"value": value},
                    arrays={"w": np.full(4, value, dtype=np.float32)}, labels=["a"])


def test_a_same_name_version_is_refused_and_left_untouched(tmp_path):
    path = save_artifact(tmp_path / "v1", _artifact(1.0))
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    with pytest.raises(ArtifactExists, match="already holds a model"):
        save_artifact(tmp_path / "v1", _artifact(2.0))
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["v1"]  # no temporary directory left


def test_overwrite_replaces_it_whole_when_asked(tmp_path):
    save_artifact(tmp_path / "v1", _artifact(1.0))
    save_artifact(tmp_path / "v1", _artifact(2.0), overwrite=True)
    loaded = load_artifact(tmp_path / "v1")
    assert loaded.config == {"value": 2.0} and float(loaded.arrays["w"][0]) == 2.0
    assert [p.name for p in tmp_path.iterdir()] == ["v1"]


def test_a_bundle_directory_keeps_its_members(tmp_path):
    """A composite model saves its members first, then its own files into the same folder."""
    member = save_artifact(tmp_path / "bundle" / "category", _artifact(1.0))
    bundle = save_artifact(tmp_path / "bundle", _artifact(3.0))
    assert load_artifact(member).config == {"value": 1.0}
    assert json.loads((bundle / "manifest.json").read_text())["kind"] == "test"
    assert sorted(p.name for p in bundle.iterdir()) == [
        "category", "config.json", "manifest.json", "weights.safetensors"]
    with pytest.raises(ArtifactExists):
        save_artifact(tmp_path / "bundle" / "category", _artifact(2.0))
