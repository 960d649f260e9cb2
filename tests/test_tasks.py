"""The layout rules of the redesign: one task contract, one way to open a run, no import cycles,
one flag system, no process settings on import."""

import ast
import importlib
from pathlib import Path

import jax
import numpy as np
import pytest

from gan import runs
from gan import tasks
from gan.tasks import generation

REPO = Path(__file__).resolve().parents[1]
CONTRACT = ("config_problems", "setup", "abstract_state", "shape_signature", "TRAIN_COMMAND")


def _gan_modules() -> dict[str, Path]:
  modules = {}
  for path in sorted((REPO / "gan").rglob("*.py")):
    name = ".".join(path.relative_to(REPO).with_suffix("").parts)
    modules[name.removesuffix(".__init__")] = path
  return modules


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
  """The gan modules `path` imports, at module level or inside functions (a lazy import that only
  hides a cycle is still a cycle)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gan"):
      for alias in node.names:
        name = f"{node.module}.{alias.name}"
        found.add(name if name in modules else node.module)
    elif isinstance(node, ast.Import):
      found.update(a.name for a in node.names if a.name.startswith("gan."))
  return {m for m in found if m in modules and m != "gan"}


def import_cycles() -> list[list[str]]:
  """The strongly connected components of more than one module in gan/'s import graph."""
  modules = _gan_modules()
  graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
  index, low, stack, on_stack, cycles = {}, {}, [], set(), []

  def visit(v):   # Tarjan
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in graph[v]:
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        cycles.append(sorted(component))

  for v in graph:
    if v not in index:
      visit(v)
  return cycles


def test_no_import_cycles_in_gan():
  assert import_cycles() == []


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
  """The check above can fail: two modules importing each other are one component."""
  (tmp_path / "gan").mkdir()
  (tmp_path / "gan" / "__init__.py").write_text("")
  (tmp_path / "gan" / "a.py").write_text("from gan import b\n")
  (tmp_path / "gan" / "b.py").write_text("def f():\n  from gan import a\n")
  (tmp_path / "gan" / "c.py").write_text("from gan import a\n")
  monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
  assert import_cycles() == [["gan.a", "gan.b"]]


def test_commands_use_one_flag_system():
  """absl flags everywhere: no argparse in gan/ (the command-line core is gan/cli.py)."""
  users = [str(p.relative_to(REPO)) for p in _gan_modules().values() if "argparse" in p.read_text()]
  assert users == []


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_every_task_module_fulfils_the_contract(name):
  module = tasks.TASKS[name]
  missing = [attr for attr in CONTRACT if not hasattr(module, attr)]
  assert not missing, f"gan.tasks.{name} lacks {missing} (see gan/tasks/common.py)"
  assert "{workdir}" in module.TRAIN_COMMAND


def test_unknown_task_is_a_config_error():
  config = generation.runs.merge_config(importlib.import_module("configs.default").get_config(),
                                        {"task": "pix2vid"})
  with pytest.raises(runs.ConfigError, match=r"Unknown task 'pix2vid'; valid: \['generation', 'pix2pix'"):
    tasks.get(config)


def test_restore_opens_a_run_of_any_task_as_its_module_does(tiny_run):
  workdir, final_state = tiny_run
  config, state, meta = tasks.restore(str(workdir))
  assert runs.task_of(config) == "generation" and meta["step"] == int(final_state.step) == int(state.step)
  for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(generation.load(str(workdir))[2])):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_restore_of_a_folder_that_is_not_a_run_says_how_to_train(tmp_path):
  with pytest.raises(runs.RunError, match="is not a training workdir.*python -m gan.main --config"):
    tasks.restore(str(tmp_path))
