"""The root-cause notebook runs top to bottom on the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("bertopic")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "root_causes.ipynb"


def test_root_cause_notebook_runs(shared_data: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "root causes:" in text and "incidents" in text
    # the BERTopic figures are in the outputs
    assert sum("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs) >= 3
