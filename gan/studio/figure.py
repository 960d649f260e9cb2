"""The figure of a study's results for a paper (gan.figures style, sidecar with provenance).

Kept apart from app.py because matplotlib is optional for the studio (the `dev` / `notebooks` extras).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib import figure as mpl_figure

from gan import figures


def save_results_figure(path_without_suffix: Path, study: dict[str, Any], results: dict[str, Any]) -> list[str]:
  """Bradley-Terry scores (preference) or fool rates (real vs generated) per run with their 95%
  intervals, as horizontal error bars; returns the files written (.pdf, .png, .json)."""
  rows = [r for r in results["runs"] if (r.get("score") if results["kind"] == "preference" else r.get("rate"))
          is not None]
  with figures.style():
    fig = mpl_figure.Figure(figsize=figures.size("column", aspect=0.25 + 0.12 * max(len(rows), 1)))
    ax = fig.add_subplot()
    key = "score" if results["kind"] == "preference" else "rate"
    values = [r[key] for r in rows]
    ax.errorbar(values, range(len(rows)), xerr=[[v - r["low"] for v, r in zip(values, rows)],
                                                [r["high"] - v for v, r in zip(values, rows)]], fmt="o")
    ax.set_yticks(range(len(rows)), [r["run"] for r in rows])
    ax.set_xlabel("Bradley-Terry log-score (95% bootstrap CI)" if key == "score"
                  else "fool rate: generated judged real (95% Wilson CI)")
    ax.set_title(f"{study['name']} ({results['answers']} answers)")
    paths = figures.save_figure(fig, path_without_suffix, config={"study": study},
                                extra={"results": results})
  return [paths["pdf"], paths["png"], paths["json"]]
