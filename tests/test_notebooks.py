"""Every notebook runs top to bottom on a tiny setting (PRODUCTGAN_NOTEBOOK_TINY=1)."""

import os
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, write_idx, monkeypatch):
  rng = np.random.default_rng(0)
  write_idx(tmp_path, rng.integers(0, 255, (64, 28, 28), dtype=np.uint8), np.arange(64) % 10, split="train")
  monkeypatch.setenv("PRODUCTGAN_NOTEBOOK_TINY", "1")
  monkeypatch.setenv("PRODUCTGAN_NOTEBOOK_DATA", str(tmp_path))
  monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  monkeypatch.setenv("MPLBACKEND", "Agg")
  notebook = nbformat.read(path, as_version=4)
  NotebookClient(notebook, timeout=300, kernel_name="python3",
                 resources={"metadata": {"path": str(path.parent)}}).execute()
  errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.output_type == "error"]
  assert not errors
