"""Publication outputs: one matplotlib style, figures saved with their provenance, LaTeX tables.

  from gan import figures
  figures.use_style()                                   # once per notebook / script
  fig, ax = plt.subplots(figsize=figures.size("column"))
  ...
  figures.save_figure(fig, f"{workdir}/figures/fid_vs_steps", config=config)
  # -> fid_vs_steps.pdf (vector), fid_vs_steps.png (300 dpi), fid_vs_steps.json (sidecar)

The sidecar JSON holds the config that produced the figure, the git revision and the full
provenance record (gan/provenance.py), so a figure found in a paper folder can be traced back; the
PNG also carries a short record inside (kind "figure": git revision, time, command, what it shows),
which survives the PNG being copied without its sidecar (`python -m gan.provenance show FIG.png`).
Raster grids composed with PIL / numpy are saved the same way by `save_image`.
Sizes follow a two-column paper: "column" is 3.4 in wide, "text" 7.0 in; fonts are 8-9 pt, so
figures are saved at their printed size and never scaled (all text ends up the same size).

Tables: `summarize` turns per-run rows (e.g. a sweep's results.csv) into mean and sample standard
deviation per group; `latex_table` writes them as a booktabs table.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import statistics
import sys
from typing import Any, Iterator, Mapping, Optional, Sequence

from cycler import cycler
import matplotlib
import matplotlib.pyplot as plt

from gan import provenance

# Okabe & Ito (2008): distinguishable with the common colour-vision deficiencies and in greyscale
# by lightness; blue first, black last.
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
WIDTHS = {"column": 3.4, "text": 7.0}     # inches: one column / full text width of a two-column paper
GOLDEN = (math.sqrt(5) - 1) / 2

STYLE = {
    "font.family": "DejaVu Sans",        # ships with matplotlib: identical glyphs on every machine
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.4,
    "axes.grid": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=list(COLORS)),
    "errorbar.capsize": 2.5,
    "image.cmap": "gray",
    "figure.dpi": 110,                   # on screen
    "savefig.dpi": 300,                  # PNG
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,                  # TrueType in the PDF: text stays text (editable, searchable)
    "ps.fonttype": 42,
}
SUFFIXES = (".pdf", ".png", ".json")


def use_style() -> None:
  """Makes STYLE the default for every later figure of this process."""
  matplotlib.rcParams.update(STYLE)


@contextlib.contextmanager
def style() -> Iterator[None]:
  """STYLE inside a `with` block only."""
  with matplotlib.rc_context(STYLE):
    yield


def size(width: str | float = "column", aspect: float = GOLDEN) -> tuple[float, float]:
  """(width, height) in inches: width "column" (3.4), "text" (7.0) or inches; height = width * aspect."""
  if isinstance(width, str):
    if width not in WIDTHS:
      raise ValueError(f"Unknown figure width {width!r}; valid: {', '.join(WIDTHS)} or a number of inches.")
    width = WIDTHS[width]
  if not width > 0 or not aspect > 0:
    raise ValueError(f"Figure width and aspect must be positive, got {width} and {aspect}.")
  return float(width), float(width) * aspect


def save_figure(fig: matplotlib.figure.Figure, path_without_suffix: str | os.PathLike, *,
                config: Any = None, extra: Optional[Mapping[str, Any]] = None,
                operations: Sequence[str] = (), run: Optional[str] = None,
                step: Optional[int] = None) -> dict[str, str]:
  """Writes <path>.pdf (vector), <path>.png (300 dpi, its provenance record inside) and the sidecar
  <path>.json.

  Args:
    fig: the figure.
    path_without_suffix: e.g. "runs/dcgan/figures/samples" (folders are created).
    config: what produced the figure (a run's ConfigDict, a dict of notebook parameters, ...).
    extra: anything else worth keeping beside it (data files read, sample counts, ...).
    operations: what the figure shows, in words, for the PNG's record (default: "figure <name>").
    run, step: the run (workdir) and checkpoint step it shows, when it shows one, for that record.

  Returns:
    {"pdf": path, "png": path, "json": path}.

  Sidecar JSON: {"figure": file stem, "files": [pdf, png names], "config", "git_revision",
  "git_dirty", "provenance" (gan.provenance.record without the config; devices included when JAX
  is loaded), "extra"}.
  The PDF carries no creation date, so re-running a notebook on unchanged data changes no bytes
  (the PNG's record holds the time it was written).
  """
  base = os.fspath(path_without_suffix)
  if base.lower().endswith(SUFFIXES):
    raise ValueError(f"save_figure takes the path without a suffix (it writes .pdf, .png and .json): "
                     f"got {base!r}; drop the {os.path.splitext(base)[1]!r}.")
  if not os.path.basename(base):
    raise ValueError(f"save_figure needs a file name, got the folder {base!r}.")
  os.makedirs(os.path.dirname(os.path.abspath(base)), exist_ok=True)
  paths = {"pdf": base + ".pdf", "png": base + ".png", "json": base + ".json"}
  # The output settings apply however the figure was made (inside `style()` or not).
  with matplotlib.rc_context({k: v for k, v in STYLE.items() if k.startswith(("savefig.", "pdf.", "ps."))}):
    fig.savefig(paths["pdf"], metadata={"CreationDate": None, "ModDate": None})
    png = io.BytesIO()
    fig.savefig(png, format="png", metadata={"Software": None})
  from PIL import Image  # pylint: disable=g-import-not-at-top
  png.seek(0)
  with Image.open(png) as image:   # re-written by the one image writer, its record inside (dpi kept)
    image.load()
    _write_with_record(paths["png"], image, operations, run, step)
  _write_sidecar(base, [paths["pdf"], paths["png"]], config, extra)
  return paths


def save_image(path: str | os.PathLike, image: Any, *, config: Any = None,
               extra: Optional[Mapping[str, Any]] = None, operations: Sequence[str] = (),
               run: Optional[str] = None, step: Optional[int] = None) -> str:
  """Saves a raster figure composed by other means than matplotlib (a uint8 (H, W, C) grid, e.g.
  sampling.make_grid's) as PNG / JPEG with its provenance record inside, and its sidecar
  <stem>.json in `save_figure`'s format; returns the sidecar's path.

  Args:
    path: ends in .png, .jpg or .jpeg (folders are created).
    image: uint8 (H, W, 1|3) array in [0, 255].
    config, extra, run, step: as in `save_figure`.
    operations: what the image shows, in words, for its record (default: "figure <name>").
  """
  path = os.fspath(path)
  _write_with_record(path, image, operations, run, step)
  base = os.path.splitext(path)[0]
  _write_sidecar(base, [path], config, extra)
  return base + ".json"


def _write_with_record(path: str, image: Any, operations: Sequence[str], run: Optional[str],
                       step: Optional[int]) -> None:
  name = os.path.splitext(os.path.basename(path))[0]
  rec = provenance.image_record("figure", run=run, step=step, operations=list(operations) or [f"figure {name}"])
  provenance.write_image(path, image, rec)


def _write_sidecar(base: str, files: Sequence[str], config: Any, extra: Optional[Mapping[str, Any]]) -> None:
  # Device details only when this process uses JAX: plotting a CSV should not start a backend.
  rec = provenance.record(config=config, devices="jax" in sys.modules)
  provenance.write(base + ".json", {
      "figure": os.path.basename(base), "files": [os.path.basename(f) for f in files],
      "config": rec["config"], "git_revision": rec["git"]["revision"], "git_dirty": rec["git"]["dirty"],
      "provenance": {k: v for k, v in rec.items() if k != "config"},   # the config once, above
      "extra": provenance.to_jsonable(extra or {})})


def image_grid_figure(grid: Any, width: str | float = "column", title: Optional[str] = None
                      ) -> matplotlib.figure.Figure:
  """A figure showing one image (H, W, 1|3) uint8 / [0, 1] float (e.g. sampling.make_grid's) at `width`."""
  height, cols = grid.shape[:2]
  w, _ = size(width)
  fig, ax = plt.subplots(figsize=(w, w * height / cols))
  ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0,
            vmax=255 if grid.dtype.kind in "ui" else 1, interpolation="nearest")
  ax.set_axis_off()
  if title:
    ax.set_title(title)
  return fig


# ------------------------------------------------------------------------------------------ tables


def read_csv(path: str | os.PathLike, text_columns: Sequence[str] = ("group",)) -> list[dict[str, Any]]:
  """Rows of a CSV file as dicts; cells that parse as numbers become floats (except in
  `text_columns`: a group named "1e-4" stays that string), empty cells None."""
  def cell(key: str, text: str) -> Any:
    if text == "":
      return None
    if key in text_columns:
      return text
    try:
      return float(text)
    except ValueError:
      return text

  if not os.path.isfile(path):
    raise FileNotFoundError(f"No results file at {path}: run the sweep first (experiments/README.md) "
                            "or point the notebook at another results.csv.")
  with open(path, newline="", encoding="utf-8") as f:
    return [{k: cell(k, v) for k, v in row.items()} for row in csv.DictReader(f)]


def summarize(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], group_key: str = "group"
              ) -> dict[str, dict[str, tuple[float, float, int]]]:
  """{group: {metric: (mean, sample std (0 for one value), count)}} in first-seen group order.

  Rows missing a metric (None / absent) are left out of that metric's statistics only.
  """
  if rows and group_key not in rows[0]:
    raise ValueError(f"Rows have no {group_key!r} column; columns: {', '.join(rows[0])}.")
  groups: dict[str, list[Mapping[str, Any]]] = {}
  for row in rows:
    groups.setdefault(str(row[group_key]), []).append(row)
  summary = {}
  for group, members in groups.items():
    summary[group] = {}
    for metric in metrics:
      values = [float(r[metric]) for r in members if r.get(metric) is not None]
      if values:
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[group][metric] = (statistics.mean(values), std, len(values))
  return summary


def _latex_escape(text: str) -> str:
  for char, escaped in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"),
                        ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}")):
    text = text.replace(char, escaped)
  return text


def latex_table(summary: Mapping[str, Mapping[str, tuple[float, float, int]]],
                columns: Mapping[str, str], *, lower_is_better: Sequence[str] = (),
                higher_is_better: Sequence[str] = (), floor: Optional[Mapping[str, float]] = None,
                digits: int | Mapping[str, int] = 3, caption: str = "", label: str = "") -> str:
  """A booktabs LaTeX table: one row per group, "$mean \\pm std$" per metric, the best mean in bold.

  Args:
    summary: `summarize`'s output (row order kept).
    columns: {metric key: column header} (headers are LaTeX-escaped).
    lower_is_better / higher_is_better: metrics whose best group mean is set in bold.
    floor: {metric: value} of a reference row ("real-data floor") below a \\midrule.
    digits: decimals, for every metric or per metric ({metric: decimals}, default 3).
    caption, label: wrapped in a table environment when either is given.
  """
  places = {m: (digits.get(m, 3) if isinstance(digits, Mapping) else digits) for m in columns}
  best = {}
  for metric in columns:
    means = {g: s[metric][0] for g, s in summary.items() if metric in s}
    if means and metric in lower_is_better:
      best[metric] = min(means.values())
    elif means and metric in higher_is_better:
      best[metric] = max(means.values())
  lines = [r"\begin{tabular}{l" + "r" * len(columns) + "}", r"\toprule",
           " & ".join(["group", *(_latex_escape(h) for h in columns.values())]) + r" \\", r"\midrule"]
  for group, stats in summary.items():
    cells = [_latex_escape(group)]
    for metric in columns:
      if metric not in stats:
        cells.append("--")
        continue
      mean, std, _ = stats[metric]
      text = f"{mean:.{places[metric]}f} \\pm {std:.{places[metric]}f}"
      cells.append(f"$\\mathbf{{{text}}}$" if best.get(metric) == mean else f"${text}$")
    lines.append(" & ".join(cells) + r" \\")
  if floor:
    lines.append(r"\midrule")
    cells = ["real-data floor"] + [f"${floor[m]:.{places[m]}f}$" if floor.get(m) is not None else "--"
                                   for m in columns]
    lines.append(" & ".join(cells) + r" \\")
  lines += [r"\bottomrule", r"\end{tabular}"]
  if caption or label:
    lines = [r"\begin{table}[t]", r"\centering", *lines]
    if caption:
      lines.append(f"\\caption{{{caption}}}")
    if label:
      lines.append(f"\\label{{{label}}}")
    lines.append(r"\end{table}")
  return "\n".join(lines) + "\n"
