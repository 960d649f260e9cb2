"""Fine-tuning from another run (train.init_from): the parent's G / D / EMA weights at the chosen step,
fresh optimizers and step, re-initialised arrays listed, incompatible or broken parents refused with
the fix, the parent never modified, and a resumed run never re-initialised from its parent."""

import hashlib
import json
import os
from pathlib import Path
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import default
from configs import tiny
from gan import checkpointing
from gan import finetune
from gan import main
from gan import runs
from gan import train
from gan.tasks import generation

# The fine-tuned runs compile the same train step as the parent (tiny config): cache reads.
pytestmark = pytest.mark.usefixtures("persistent_compilation_cache")
WEIGHTS = generation.INIT_FROM_FIELDS


def tiny_config(data_dir, **overrides):
  return default.apply_overrides(tiny.get_config(), {"data.dir": data_dir, **overrides})


def folder_digest(folder) -> str:
  """sha256 over every path, size and byte of a folder: any write shows."""
  h = hashlib.sha256()
  for path in sorted(Path(folder).rglob("*")):
    h.update(str(path.relative_to(folder)).encode())
    if path.is_file():
      h.update(path.read_bytes())
  return h.hexdigest()


def checkpoint_state(workdir, step, target):
  manager = checkpointing.make_manager(str(workdir), 10)
  try:
    return manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))).state
  finally:
    manager.close()


def assert_trees_equal(a, b):
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path))


def test_parse():
  assert finetune.parse("runs/a") == ("runs/a", None)
  assert finetune.parse("runs/a:200") == ("runs/a", 200)
  assert finetune.parse("C:/runs/a:x") == ("C:/runs/a:x", None)


def test_fine_tuned_run_starts_from_the_parents_weights_at_the_step(tmp_path, tiny_run, tiny_data_dir):
  parent, parent_final = tiny_run
  before = folder_digest(parent)
  # steps = 0: the run sets up, initialises from the parent and returns its first state.
  state = train.train_and_evaluate(tiny_config(tiny_data_dir, **{"train.init_from": f"{parent}:2",
                                                                  "train.steps": 0, "seed": 7}), str(tmp_path))
  at_2 = checkpoint_state(parent, 2, parent_final)
  for field in WEIGHTS:
    assert_trees_equal(getattr(at_2, field), getattr(state, field))
  assert not np.array_equal(np.asarray(jax.tree.leaves(at_2.g_params)[0]),
                            np.asarray(jax.tree.leaves(parent_final.g_params)[0]))   # step 2, not 4
  # Fresh: step 0, Adam at its initial state (count 0, zero moments), the child's own RNG.
  assert int(state.step) == 0
  for leaf in jax.tree.leaves((state.g_opt_state, state.d_opt_state)):
    assert not np.any(np.asarray(leaf))
  assert not np.array_equal(np.asarray(state.rng), np.asarray(at_2.rng))
  record = json.loads((tmp_path / "provenance.json").read_text())["init_from"]
  assert record == {"workdir": os.path.abspath(parent), "step": 2, "reinitialised": [], "unused": []}
  assert json.loads((tmp_path / "config.json").read_text())["train"]["init_from"] == f"{parent}:2"
  assert folder_digest(parent) == before


@pytest.fixture(scope="module")
def conditional_child(tiny_run):
  """(config, state): a conditional tiny GAN (4 classes) initialised from the unconditional tiny_run."""
  config = default.apply_overrides(tiny.get_config(), {"model.conditional": True, "data.num_classes": 4})
  _, state, _ = generation.create_state_and_step(config, runs.make_mesh())
  return config, state


def test_newest_step_by_default_and_changed_classes_reinitialise_the_embeddings(tiny_run, conditional_child,
                                                                                   caplog):
  parent, parent_final = tiny_run
  # A conditional child of the unconditional parent, as after adding labels: new class embeddings
  # (and G's first layer, which takes z and the embedding) keep their initialisation.
  config, state = conditional_child
  state, record = generation.initialize_from(config, state, str(parent))
  assert record["step"] == 4
  listed = "\n".join(record["reinitialised"])
  assert "g_params/class_embed/embedding: not in the parent" in listed
  assert "g_params/Dense_0/kernel: parent (16, 512) vs new (24, 512)" in listed
  assert "d_params/projection/embedding: not in the parent" in listed
  assert "re-initialised" in caplog.text and "class_embed" in caplog.text
  # Everything else is the parent's newest checkpoint.
  np.testing.assert_array_equal(state.d_params["Conv_0"]["kernel"], parent_final.d_params["Conv_0"]["kernel"])
  np.testing.assert_array_equal(state.ema_g_params["ConvTranspose_0"]["kernel"],
                                parent_final.ema_g_params["ConvTranspose_0"]["kernel"])


def write_run(workdir, config, state, step):
  """A run folder as the training loop leaves it: config.json and one checkpoint."""
  os.makedirs(workdir)
  (Path(workdir) / "config.json").write_text(config.to_json_best_effort())
  manager = checkpointing.make_manager(str(workdir), 3, writer=True)
  checkpointing.save(manager, state, {"step": step, "signature": generation.shape_signature(config)})
  checkpointing.wait(manager)
  manager.close()


def test_changed_num_classes_reinitialises_only_the_class_embeddings(tmp_path, tiny_run, conditional_child):
  config, state = conditional_child
  state, _ = generation.initialize_from(config, state, str(tiny_run[0]))   # a 4-class parent
  write_run(tmp_path / "four_classes", config, state, step=5)
  child = default.apply_overrides(config, {"data.num_classes": 3})
  _, child_state, _ = generation.create_state_and_step(child, runs.make_mesh())
  child_state, record = generation.initialize_from(child, child_state, str(tmp_path / "four_classes"))
  assert record["step"] == 5 and record["reinitialised"] == [
      "g_params/class_embed/embedding: parent (4, 8) vs new (3, 8)",
      "d_params/projection/embedding: parent (4, 512) vs new (3, 512)",
      "ema_g_params/class_embed/embedding: parent (4, 8) vs new (3, 8)"]
  np.testing.assert_array_equal(child_state.g_params["Dense_0"]["kernel"], state.g_params["Dense_0"]["kernel"])


@pytest.mark.parametrize("overrides, message", [
    ({"model.name": "resnet"}, "another architecture, resolution or channel count, so its weights do not fit "
                               "this model (model.name: parent 'dcgan' vs new 'resnet')"),
    ({"data.image_size": 64}, "(data.image_size: parent 32 vs new 64)"),
])
def test_another_architecture_or_resolution_is_refused(tmp_path, tiny_run, overrides, message):
  parent = tiny_run[0]
  config = default.apply_overrides(tiny.get_config(), {**overrides, "train.init_from": str(parent)})
  with pytest.raises(finetune.InitFromError) as error:
    generation.initialize_from(config, None, str(parent))   # refused before the new state is looked at
  assert message in str(error.value) and "without --config.train.init_from" in str(error.value)


def garble(path):
  data = bytearray(Path(path).read_bytes())
  data[len(data) // 3:] = np.random.default_rng(0).integers(0, 256, len(data) - len(data) // 3,
                                                             dtype=np.uint8).tobytes()
  Path(path).write_bytes(bytes(data))


def largest_file(folder):
  return max((p for p in Path(folder).rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


BROKEN_PARENTS = {
    # name: (how to break a copy of the parent run, init_from suffix, expected message)
    "missing folder": (lambda p: shutil.rmtree(p), "", "is not a run to start from"),
    "no checkpoint": (lambda p: shutil.rmtree(p / "checkpoints"), "", "has no checkpoints yet"),
    "half-written": (lambda p: [os.rename(p / "checkpoints" / s, p / "checkpoints" / f"{s}.orbax-checkpoint-tmp")
                                for s in ("2", "4")], "", "holds no complete checkpoint (only "
                                                           "2.orbax-checkpoint-tmp, 4.orbax-checkpoint-tmp"),
    "corrupt checkpoint": (lambda p: garble(largest_file(p / "checkpoints" / "4" / "state")), "",
                           "checkpoints/4 cannot be read"),
    "step not kept": (lambda p: None, ":3", "has no checkpoint at step 3 (kept: [2, 4]). Use one of them, e.g. "
                                            "--config.train.init_from="),
}


@pytest.mark.parametrize("broken", sorted(BROKEN_PARENTS))
def test_broken_parent_is_a_clear_error_and_stays_untouched(tmp_path, tiny_run, tiny_data_dir, capsys, broken):
  damage, suffix, message = BROKEN_PARENTS[broken]
  parent = tmp_path / "parent"
  shutil.copytree(tiny_run[0], parent)
  damage(parent)
  before = folder_digest(parent) if parent.exists() else None
  workdir = tmp_path / "child"
  config = tiny_config(tiny_data_dir, **{"train.init_from": f"{parent}{suffix}"})
  with pytest.raises(SystemExit) as exit_info:
    main.run(config, str(workdir))                    # as `python -m gan.main`
  assert exit_info.value.code == 1
  err = capsys.readouterr().err
  assert err.startswith("error: train.init_from") and message in err, err
  assert len(err.strip().splitlines()) == 1           # one paragraph
  if broken == "corrupt checkpoint":
    assert f"--config.train.init_from={parent}:2" in err
  assert (folder_digest(parent) if parent.exists() else None) == before
  assert not (workdir / "config.json").exists() and not list((workdir / "checkpoints").glob("*"))


def test_resume_after_sigterm_does_not_reinitialise(tmp_path, tiny_run, tiny_data_dir, preempted, monkeypatch):
  parent = tiny_run[0]
  config = tiny_config(tiny_data_dir, **{"train.init_from": f"{parent}:2", "seed": 3})
  straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
  calls = []
  original = generation.initialize_from
  monkeypatch.setattr(generation, "initialize_from", lambda *a: calls.append(1) or original(*a))
  stopped, resumed = preempted(config, tmp_path / "preempted", "d_loss")
  assert 2 <= int(stopped.step) < 4 and int(resumed.step) == 4
  assert len(calls) == 1                              # the first start only
  assert_trees_equal(straight, resumed)
  # The resumed run still records its parent.
  record = json.loads((tmp_path / "preempted" / "provenance.json").read_text())
  assert record["init_from"]["step"] == 2 and record["previous_attempts"]
