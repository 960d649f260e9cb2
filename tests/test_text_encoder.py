"""The text encoder as a task of the shared loop: a run, its evaluation, stop and resume, loading it as
the GAN's conditioner, and the runs it refuses."""

import os
import shutil
import threading

import jax
import numpy as np
import pytest

from configs import default
from configs import text_encoder_fashion_mnist
from gan import checkpointing
from gan import conditioning
from gan import data
from gan import runs
from gan import tasks
from gan import text
from gan import train
from gan import writers

from conftest import assert_states_equal

# configs/text_encoder_fashion_mnist.py shrunk: 12 steps of narrow towers, checkpoints and evaluations
# at steps 6 and 12.
TINY = {"model.embed_dim": 8, "model.width": 16, "model.num_layers": 1, "model.num_heads": 2,
        "model.image_width": 8, "train.steps": 12, "train.batch_size": 32, "train.log_every": 2,
        "train.checkpoint_every": 6, "eval.every": 6, "eval.num_train_examples": 64}


def tiny_config(data_dir, **overrides):
  return default.apply_overrides(text_encoder_fashion_mnist.get_config(), {"data.dir": data_dir, **TINY, **overrides})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, write_idx):
  """Train (256) and test (128) splits: class c (of 4) is a bar at row 2c whose brightness varies, so
  the captions say "a dark ..." or "a light ..." of 4 Fashion-MNIST class names."""
  folder = tmp_path_factory.mktemp("idx")
  for split, n in (("train", 256), ("test", 128)):
    labels = np.arange(n) % 4
    images = np.zeros((n, 28, 28), np.uint8)
    for i, c in enumerate(labels):
      images[i, 2 * c + 2:2 * c + 10, 4:24] = 30 + (i * 37) % 220
    write_idx(folder, images, labels, split=split)
  return str(folder)


@pytest.fixture(scope="module")
def encoder_run(tmp_path_factory, data_dir):
  """An uninterrupted tiny run: (workdir, config, final state)."""
  config = tiny_config(data_dir)
  workdir = str(tmp_path_factory.mktemp("text_encoder"))
  return workdir, config, train.train_and_evaluate(config, workdir)


def test_run_is_evaluated_and_loads_as_the_gan_conditioner(encoder_run, data_dir):
  workdir, config, state = encoder_run
  dataset = data.load_dataset(config.data)
  captions = conditioning.dataset_captions(dataset)
  tokenizer = text.Tokenizer.build(captions)
  assert text.read_tokenizer(workdir) == tokenizer
  conditioner = conditioning.load_text_conditioner(workdir)     # what a text-conditioned GAN loads
  assert conditioner.tokenizer == tokenizer and conditioner.embed_dim == 8
  expected = text.conditioner_of(config, tokenizer, state.params)
  np.testing.assert_array_equal(conditioner.embed(captions[:4]), expected.embed(captions[:4]))
  np.testing.assert_array_equal(conditioner.embed_images(dataset.images[:4]), expected.embed_images(dataset.images[:4]))
  # Retrieval at steps 6 and 12 (eval.every, the end): the logged numbers are those of the weights.
  evals = [r for r in writers.read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "eval/test_retrieval_accuracy" in r]
  assert [r["step"] for r in evals] == [6, 12]
  test = data.held_out_dataset(config.data)
  test_captions = conditioning.dataset_captions(test, reference=dataset)
  assert set(test_captions) <= set(captions)      # same bars, same words: every held-out image counts
  assert evals[-1]["eval/test_retrieval_accuracy"] == text.retrieval_accuracy(conditioner, test_captions, test.images)
  assert evals[-1]["eval/train_retrieval_accuracy"] == text.retrieval_accuracy(
      conditioner, captions[:64], dataset.images[:64])
  assert os.listdir(os.path.join(workdir, "best_checkpoint")) == [
      str(min(evals, key=lambda r: r["eval/test_retrieval_error"])["step"])]
  assert tasks.restore(workdir)[0].task == "text_encoder"


def test_stopped_mid_run_then_resumed_ends_with_the_uninterrupted_weights(encoder_run, data_dir, tmp_path,
                                                                          monkeypatch):
  """The `stop` event (what SIGTERM / Ctrl-C set) after the first logged losses: a checkpoint at the
  current step; training again resumes there and ends exactly where the uninterrupted run did."""
  _, config, uninterrupted = encoder_run
  config = default.apply_overrides(config, {"eval.every": 0})   # evaluation does not change the weights
  stop = threading.Event()
  original = writers.create_writer

  def create_writer(workdir, is_main):
    writer = original(workdir, is_main)
    write_scalars = writer.write_scalars

    def write_and_stop(step, scalars):
      write_scalars(step, scalars)
      if "clip_loss" in scalars:
        stop.set()
    writer.write_scalars = write_and_stop
    return writer

  monkeypatch.setattr(writers, "create_writer", create_writer)
  workdir = str(tmp_path / "run")
  stopped = train.train_and_evaluate(config, workdir, stop)
  assert int(stopped.step) == 3          # losses logged at step 2; the stop is read at the next step
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["3"]
  monkeypatch.setattr(writers, "create_writer", original)
  state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == 12
  assert_states_equal(state, uninterrupted)


def test_checkpoint_of_another_width_is_refused(encoder_run, data_dir, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(encoder_run[0], workdir)
  with pytest.raises(checkpointing.CheckpointMismatchError, match="model.width: checkpoint 16 vs config 32"):
    train.train_and_evaluate(tiny_config(data_dir, **{"model.width": 32, "train.steps": 18}), str(workdir))
  assert sorted(os.listdir(workdir / "checkpoints")) == ["12", "6"]


def test_a_run_of_other_words_is_refused(tmp_path):
  """Token ids mean the words of the run's tokenizer.json: data of other captions cannot resume it."""
  text.write_tokenizer(str(tmp_path), text.Tokenizer.build(["a dark bag", "a light bag"]))
  text.write_tokenizer(str(tmp_path), text.Tokenizer.build(["a light bag", "a dark bag"]))   # same words
  with pytest.raises(runs.RunError, match=r"new words \['coat'\], missing words \['bag'\]\): the data changed"):
    text.write_tokenizer(str(tmp_path), text.Tokenizer.build(["a dark coat", "a light coat"]))


def test_load_of_something_else_says_how_to_train(tmp_path, encoder_run):
  (tmp_path / "params.npz").write_bytes(b"")        # the layout of the former `python -m gan.conditioning`
  with pytest.raises(runs.RunError, match="saved by an older version .* python -m gan.main --config "
                                          "configs/text_encoder_fashion_mnist.py"):
    text.load(str(tmp_path))
  with pytest.raises(runs.RunError, match="not found"):
    text.load(str(tmp_path / "nothing"))


@pytest.mark.parametrize("override,message", [
    ({"model.num_heads": 3}, r"model.width \(64\) must be divisible by model.num_heads \(3\)"),
    ({"model.vocab_size": 2}, "model.vocab_size must be an int >= 3"),
    ({"data.image_size": 48}, "data.image_size: image_size must be 4 times a power of two"),
])
def test_bad_text_encoder_config_values(override, message):
  with pytest.raises(runs.ConfigError, match=message):
    train.check_config(default.apply_overrides(text_encoder_fashion_mnist.get_config(), override))
