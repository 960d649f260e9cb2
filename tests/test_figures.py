"""gan.figures: the house style, figure files with their sidecar, mean +- std tables in LaTeX."""

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import ml_collections  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
from PIL import Image  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

from gan import figures  # pylint: disable=g-import-not-at-top
from gan import provenance  # pylint: disable=g-import-not-at-top


def line_figure():
  with figures.style():
    fig, ax = plt.subplots(figsize=figures.size("column"))
    ax.errorbar([1, 2, 3], [3.0, 2.0, 1.5], yerr=[0.3, 0.2, 0.1], marker="o", label="FID")
    ax.set_xlabel("steps")
    ax.legend()
  return fig


def test_save_figure_writes_pdf_png_and_sidecar(tmp_path):
  config = ml_collections.ConfigDict({"seed": 3, "model": {"name": "dcgan"}})
  fig = line_figure()
  paths = figures.save_figure(fig, tmp_path / "figs" / "fid", config=config, extra={"num_samples": 500})
  plt.close(fig)
  assert paths == {k: str(tmp_path / "figs" / f"fid.{k}") for k in ("pdf", "png", "json")}
  assert open(paths["pdf"], "rb").read(5) == b"%PDF-"
  with Image.open(paths["png"]) as png:
    assert png.format == "PNG"
    assert png.info["dpi"] == pytest.approx((300, 300), abs=0.1)
    # Saved at print size: a 3.4 in column figure at 300 dpi, give or take the tight bounding box.
    assert 0.8 * 3.4 * 300 < png.width < 1.05 * 3.4 * 300
  sidecar = json.loads(open(paths["json"], encoding="utf-8").read())
  assert sidecar["config"] == config.to_dict()
  assert sidecar["git_revision"] == provenance.git_revision()["revision"]
  assert sidecar["provenance"]["git"]["revision"] == sidecar["git_revision"]
  assert sidecar["provenance"]["seed"] == 3
  assert sidecar["files"] == ["fid.pdf", "fid.png"] and sidecar["extra"] == {"num_samples": 500}
  inside = provenance.read_image_record(paths["png"])   # the PNG carries its own record (300 dpi kept)
  assert inside["kind"] == "figure" and inside["operations"] == ["figure fid"]
  assert Image.open(paths["png"]).info["dpi"][0] == pytest.approx(300, abs=0.01)


def test_save_image_writes_the_record_inside_and_the_same_sidecar(tmp_path):
  path = tmp_path / "grid.png"
  sidecar_path = figures.save_image(path, np.zeros((4, 6, 3), np.uint8), config={"rows": 6, "seed": 1},
                                    extra={"columns": ["a", "b"]}, operations=["inversions, 2 rows"],
                                    run="runs/stylegan", step=9000)
  assert sidecar_path == str(tmp_path / "grid.json")
  sidecar = json.loads(open(sidecar_path, encoding="utf-8").read())
  assert sidecar["figure"] == "grid" and sidecar["files"] == ["grid.png"]
  assert sidecar["config"] == {"rows": 6, "seed": 1} and sidecar["provenance"]["seed"] == 1
  assert sidecar["git_revision"] == provenance.git_revision()["revision"]
  assert sidecar["extra"] == {"columns": ["a", "b"]}
  inside = provenance.read_image_record(path)
  assert inside["kind"] == "figure" and inside["operations"] == ["inversions, 2 rows"]
  assert (inside["run"], inside["step"], inside["seed"]) == ("runs/stylegan", 9000, None)
  assert inside["git"] == provenance.git_revision()
  np.testing.assert_array_equal(np.asarray(Image.open(path)), np.zeros((4, 6, 3), np.uint8))


def test_pdf_bytes_do_not_depend_on_when_it_was_saved(tmp_path):
  fig = line_figure()
  first = figures.save_figure(fig, tmp_path / "a")["pdf"]
  second = figures.save_figure(fig, tmp_path / "b")["pdf"]
  plt.close(fig)
  assert open(first, "rb").read() == open(second, "rb").read()


def test_bad_paths_and_sizes_are_refused(tmp_path):
  fig = line_figure()
  with pytest.raises(ValueError, match="without a suffix.*drop the '.pdf'"):
    figures.save_figure(fig, tmp_path / "fid.pdf")
  plt.close(fig)
  with pytest.raises(ValueError, match="Unknown figure width 'page'"):
    figures.size("page")
  assert figures.size("text", aspect=0.5) == (7.0, 3.5)
  assert figures.size(2.0, 1.0) == (2.0, 2.0)


def test_style_sets_fonts_and_colour_cycle():
  with figures.style():
    assert matplotlib.rcParams["font.size"] == 8
    assert matplotlib.rcParams["pdf.fonttype"] == 42
    colors = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    assert colors[:2] == ["#0072B2", "#D55E00"]
  assert matplotlib.rcParams["font.size"] == matplotlib.rcParamsDefault["font.size"]   # restored after


def test_image_grid_figure_keeps_the_aspect():
  grid = np.zeros((20, 40, 1), np.uint8)
  fig = figures.image_grid_figure(grid, width=4.0)
  assert tuple(fig.get_size_inches()) == (4.0, 2.0)
  plt.close(fig)


ROWS = [{"group": "hinge", "seed": 0.0, "fid": 2.0, "recognition_accuracy": 0.8},
        {"group": "hinge", "seed": 1.0, "fid": 4.0, "recognition_accuracy": 0.9},
        {"group": "hinge", "seed": 2.0, "fid": 3.0, "recognition_accuracy": None},
        {"group": "non_saturating", "seed": 0.0, "fid": 1.0, "recognition_accuracy": 0.87}]


def test_summarize_gives_mean_and_sample_std_per_group():
  summary = figures.summarize(ROWS, ["fid", "recognition_accuracy"])
  assert list(summary) == ["hinge", "non_saturating"]
  mean, std, n = summary["hinge"]["fid"]
  assert (mean, n) == (3.0, 3) and std == pytest.approx(1.0)           # sample std of 2, 3, 4
  mean, std, n = summary["hinge"]["recognition_accuracy"]               # the missing value is skipped
  assert n == 2 and mean == pytest.approx(0.85) and std == pytest.approx(np.std([0.8, 0.9], ddof=1))
  assert summary["non_saturating"]["fid"] == (1.0, 0.0, 1)
  with pytest.raises(ValueError, match="no 'loss' column"):
    figures.summarize(ROWS, ["fid"], group_key="loss")


def test_latex_table_is_booktabs_with_the_best_mean_in_bold():
  summary = figures.summarize(ROWS, ["fid", "recognition_accuracy"])
  table = figures.latex_table(summary, {"fid": "FID", "recognition_accuracy": "recognition_acc"},
                              lower_is_better=["fid"], higher_is_better=["recognition_accuracy"],
                              floor={"fid": 0.02, "recognition_accuracy": None}, caption="Losses.",
                              label="tab:losses")
  lines = table.splitlines()
  assert lines[:4] == [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{lrr}", r"\toprule"]
  assert lines[4] == r"group & FID & recognition\_acc \\"
  assert r"hinge & $3.000 \pm 1.000$ & $0.850 \pm 0.071$ \\" in lines
  assert r"non\_saturating & $\mathbf{1.000 \pm 0.000}$ & $\mathbf{0.870 \pm 0.000}$ \\" in lines
  assert r"real-data floor & $0.020$ & -- \\" in lines
  per_metric = figures.latex_table(summary, {"fid": "FID"}, digits={"fid": 1})
  assert r"hinge & $3.0 \pm 1.0$ \\" in per_metric.splitlines()
  assert lines[-5:] == [r"\bottomrule", r"\end{tabular}", r"\caption{Losses.}", r"\label{tab:losses}",
                        r"\end{table}"]


def test_read_csv_parses_numbers_and_says_how_to_get_missing_results(tmp_path):
  path = tmp_path / "results.csv"
  path.write_text("group,seed,fid,kid\nhinge,0,1.5,\n1e-4,1,2,0.5\n", encoding="utf-8")
  assert figures.read_csv(path) == [{"group": "hinge", "seed": 0.0, "fid": 1.5, "kid": None},
                                    {"group": "1e-4", "seed": 1.0, "fid": 2.0, "kid": 0.5}]
  with pytest.raises(FileNotFoundError, match="run the sweep first"):
    figures.read_csv(tmp_path / "missing.csv")
