"""The trends notebook runs top to bottom on the shipped SPb data."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "trends.ipynb"


def test_trends_notebook_runs(shared_data: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except Exception as error:  # nbclient raises CellExecutionError with the cell's traceback
        pytest.fail(f"notebook failed: {error}")
    outputs = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for o in cell.get("outputs", []))
    assert "snow season" in outputs and "alarm days" in outputs
    assert "сообщений при ожидаемых" in outputs  # an alert was explained
