"""Every notebook runs top to bottom on a tiny setting (PRODUCTGAN_NOTEBOOK_TINY=1) and writes its
figures (PDF + PNG + sidecar JSON) and numbers; notebooks are stored without outputs.

One tiny GAN run and one tiny domain classifier are trained once here and shared by the notebooks
(PRODUCTGAN_RUN, PRODUCTGAN_CLASSIFIER), so each notebook only pays for its own analysis.
"""

import json
import os
from pathlib import Path

import jax
import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

# Figures each notebook must write in tiny mode (each as .pdf, .png and .json).
FIGURES = {
    "quickstart.ipynb": ["samples", "loss_curves"],
    "benchmark_analysis.ipynb": ["loss_study"],
    "metrics_sanity.ipynb": ["fid_vs_num_samples"],
    "style_transfer.ipynb": ["products_x_styles", "style_strength", "style_blending"],
    "editing.ipynb": ["inversion", "edits", "restoration"],
}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, write_idx):
  """IDX train (256) and test (128) splits; class c is a bright bar at rows 2c+2..2c+5 on noise."""
  folder = tmp_path_factory.mktemp("notebook_idx")
  rng = np.random.default_rng(0)
  for split, n in (("train", 256), ("test", 128)):
    labels = np.arange(n) % 10
    images = rng.integers(0, 50, (n, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
      images[i, 2 * c + 2:2 * c + 5, 4:24] = 230
    write_idx(folder, images, labels, split=split)
  return str(folder)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_data):
  from configs import tiny  # pylint: disable=g-import-not-at-top
  from gan import train  # pylint: disable=g-import-not-at-top
  config = tiny.get_config()
  config.data.dir = tiny_data
  workdir = str(tmp_path_factory.mktemp("notebook_run"))
  train.train_and_evaluate(config, workdir)
  return workdir


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory, tiny_data):
  from configs import classifier_fashion_mnist  # pylint: disable=g-import-not-at-top
  from gan import train  # pylint: disable=g-import-not-at-top
  config = classifier_fashion_mnist.get_config()
  config.data.dir = tiny_data
  config.model.width = 8
  config.train.update(steps=20, batch_size=32, log_every=10)
  workdir = str(tmp_path_factory.mktemp("notebook_classifier"))
  # unsafe_rbg keys: the random initialisers compile ~2x faster on CPU (-13 s of CPU here). The
  # classifier's state holds no PRNG key (its dropout keys derive from config.seed), so the notebooks
  # (default threefry keys) load it as usual; the tiny GAN run's checkpoint holds its key and keeps threefry.
  with jax.default_prng_impl("unsafe_rbg"):
    train.train_and_evaluate(config, workdir)
  return workdir


def fake_sweep(folder: Path) -> Path:
  """results.csv / .json / .md exactly as experiments/benchmark.py writes them, for 2 groups x 3 seeds."""
  from experiments import benchmark  # pylint: disable=g-import-not-at-top
  floor = {"fid": 0.02, "kid": 0.0, "precision": 0.88, "recall": 0.89, "recognition_accuracy": 0.92,
           "classes_covered": 10}
  results = []
  for group, fids, accuracies in (("hinge", (2.0, 4.0, 3.0), (0.8, 0.9, 0.85)),
                                  ("non_saturating", (1.0, 1.2, 1.4), (0.86, 0.88, 0.9))):
    for seed, (fid, accuracy) in enumerate(zip(fids, accuracies)):
      results.append({"group": group, "seed": seed, "train_wall_seconds": 60.0, "steps": 10,
                      "metrics": {**floor, "fid": fid, "recognition_accuracy": accuracy},
                      "real_data_floor": floor})
  folder.mkdir(parents=True, exist_ok=True)
  benchmark.write_report(str(folder), results, "python -m experiments.benchmark ...")
  return folder / "results.csv"


def check_outputs(name: str, out: Path, run: str) -> None:
  """Values the notebooks computed, read back from the files they wrote."""
  if name == "quickstart.ipynb":
    sidecar = json.loads((out / "samples.json").read_text(encoding="utf-8"))
    assert sidecar["config"] == json.loads(Path(run, "config.json").read_text(encoding="utf-8"))
  elif name == "benchmark_analysis.ipynb":
    table = (out / "loss_study_table.tex").read_text(encoding="utf-8")
    assert r"\toprule" in table and r"\bottomrule" in table
    # hinge FIDs 2, 4, 3: mean 3, sample std 1; non_saturating 1.0, 1.2, 1.4: 1.2 +- 0.2, the best.
    assert r"hinge & $3.000 \pm 1.000$" in table
    assert r"non\_saturating & $\mathbf{1.200 \pm 0.200}$" in table
    assert r"real-data floor & $0.020$" in table
  elif name == "metrics_sanity.ipynb":
    numbers = json.loads((out / "metrics_sanity.json").read_text(encoding="utf-8"))
    assert numbers["real_data_floor"]["fid"] > -1e-6
    curves = numbers["fid_vs_num_samples"]
    assert len(curves) == 2                                   # the real test split and the generator
    real = curves["real test split"]
    # FID's small-sample bias: a subset of 16 is further from the train statistics than one of 64.
    assert np.mean(real["16"]) > np.mean(real["64"]) > 0
    assert numbers["provenance"]["wall_seconds"] > 0
  elif name == "editing.ipynb":
    inverted = json.loads((out / "inversion.json").read_text(encoding="utf-8"))["extra"]
    assert len(inverted["psnr"]) == 3 and all(np.isfinite(inverted["psnr"]))
    scores = json.loads((out / "restoration.json").read_text(encoding="utf-8"))["extra"]["psnr"]
    # Bicubic x2 of smooth blobs on white is far closer to the photo than the grey hole's fill.
    assert scores["bicubic x2"] > 15 and np.isfinite(scores["biharmonic fill"])
  elif name == "style_transfer.ipynb":
    sidecar = json.loads((out / "style_blending.json").read_text(encoding="utf-8"))
    assert sidecar["config"]["extractor"].startswith("random(")
    assert set(sidecar["extra"]["gram_distances"]) == {"Gatys", "AdaIN"}   # the AdaIN path ran too


def test_notebooks_are_stored_without_outputs_and_with_a_tiny_switch():
  assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "benchmark_analysis.ipynb",
                                         "metrics_sanity.ipynb", "style_transfer.ipynb"}
  for path in NOTEBOOKS:
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), f"{path.name}: strip the outputs"
    assert "PRODUCTGAN_NOTEBOOK_TINY" in code[0].source, f"{path.name}: parameters first"
    assert path.name in FIGURES, f"{path.name}: list the figures it writes in FIGURES"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, tiny_data, tiny_run, tiny_classifier, monkeypatch):
  out = tmp_path / "figures"
  monkeypatch.setenv("PRODUCTGAN_NOTEBOOK_TINY", "1")
  monkeypatch.setenv("PRODUCTGAN_NOTEBOOK_DATA", tiny_data)
  monkeypatch.setenv("PRODUCTGAN_RUN", tiny_run)
  monkeypatch.setenv("PRODUCTGAN_CLASSIFIER", tiny_classifier)
  monkeypatch.setenv("PRODUCTGAN_RESULTS", str(fake_sweep(tmp_path / "sweep")))
  monkeypatch.setenv("PRODUCTGAN_FIGURES", str(out))
  monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  monkeypatch.setenv("MPLBACKEND", "Agg")
  monkeypatch.setenv("TMPDIR", str(tmp_path))    # scratch folders the notebooks make (tempfile.mkdtemp)
  notebook = nbformat.read(path, as_version=4)
  NotebookClient(notebook, timeout=300, kernel_name="python3",
                 resources={"metadata": {"path": str(path.parent)}}).execute()
  errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.output_type == "error"]
  assert not errors
  for figure in FIGURES[path.name]:
    for suffix in (".pdf", ".png", ".json"):
      assert (out / (figure + suffix)).is_file(), f"{path.name} did not write {figure}{suffix}"
    assert (out / (figure + ".pdf")).read_bytes()[:5] == b"%PDF-"
  check_outputs(path.name, out, tiny_run)
