"""Text encoder: the caption encoder of text-conditioned GANs (gan/text.py), trained contrastively.

config.task = "text_encoder" (configs/text_encoder_fashion_mnist.py). Captions come from the data:
class name + attributes measured on each training image (gan.conditioning.dataset_captions); the
tokenizer of their words is written to workdir/tokenizer.json when the run starts (a restart with
data of other words is refused). The state is a TextEncoderState (gan/text.py: both towers, the
learned temperature, the Adam state); the step is one symmetric InfoNCE update (text.clip_loss) on a
batch of (caption, image) pairs, identical captions being positives of each other. Batches come from
gan/input_pipeline.py over the training images labelled by caption id, so they are a pure function
of (data, seed, step) like every task's: {"image": (B, S, S, C) float32 in [-1, 1],
"tokens": (B, model.max_len) int32, "caption_id": (B,) int32}.

Evaluation: top-1 caption retrieval (text.retrieval_accuracy) of the held-out images (captions with
a word outside the training vocabulary are left out) and of the first eval.num_train_examples
training images; the checkpoint of lowest test_retrieval_error goes to best_checkpoint/. No sample
grids.

  python -m gan.main --config configs/text_encoder_fashion_mnist.py --workdir runs/text_encoder_fashion_mnist
  conditioner = text_encoder.load("runs/text_encoder_fashion_mnist")   # a text.TextConditioner
  conditioner = text_encoder.fit(config, captions, images)              # in memory (tests, notebooks)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterator, Optional, Sequence

from absl import logging
import jax
import ml_collections
import numpy as np

from gan import conditioning
from gan import data
from gan import input_pipeline
from gan import runs
from gan import text
from gan.models import layers
from gan.tasks import common
from gan.tasks import in_memory

TRAIN_COMMAND = text.TRAIN_COMMAND
abstract_state = text.abstract_state
shape_signature = text.shape_signature
load = text.load


def config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """What is wrong with the keys the text encoder reads (model, optimizer.lr, eval, data.image_size)."""
  m, problems = config.model, []
  for key in ("max_len", "embed_dim", "width", "num_layers", "num_heads", "image_width"):
    if not isinstance(m[key], int) or m[key] < 1:
      problems.append(f"model.{key} must be an int >= 1, got {m[key]!r}.")
  if not isinstance(m.vocab_size, int) or m.vocab_size < 3:
    problems.append(f"model.vocab_size must be an int >= 3 (<pad>, <unk> and a word), got {m.vocab_size!r}.")
  if isinstance(m.width, int) and isinstance(m.num_heads, int) and m.num_heads > 0 and m.width % m.num_heads:
    problems.append(f"model.width ({m.width}) must be divisible by model.num_heads ({m.num_heads}).")
  try:
    layers.num_upsamplings(config.data.image_size)   # the image tower's stride-2 convs down to 4x4
  except ValueError as e:
    problems.append(f"data.image_size: {e}")
  if config.optimizer.lr <= 0:
    problems.append(f"optimizer.lr must be positive, got {config.optimizer.lr}.")
  if config.eval.num_train_examples < 0:
    problems.append(f"eval.num_train_examples must be >= 0, got {config.eval.num_train_examples}.")
  return problems


def _check_capacity(config: ml_collections.ConfigDict, tokenizer: text.Tokenizer, captions: Sequence[str]) -> None:
  """The text tower's sizes are config values (so checkpoints restore from the config alone): the
  training captions must fit them."""
  longest = max(len(text.split_words(c)) for c in captions)
  problems = []
  if tokenizer.vocab_size > config.model.vocab_size:
    problems.append(f"The training captions use {tokenizer.vocab_size - 2} distinct words (+ <pad>, <unk>) "
                    f"but model.vocab_size is {config.model.vocab_size}: set "
                    f"--config.model.vocab_size={tokenizer.vocab_size} or more.")
  if longest > config.model.max_len:
    problems.append(f"The longest training caption has {longest} words but model.max_len is "
                    f"{config.model.max_len}: set --config.model.max_len={longest} or more.")
  if problems:
    raise runs.ConfigError("Invalid config:\n  " + "\n  ".join(problems))


def make_task(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, tokenizer: text.Tokenizer,
              captions: Sequence[str], images: np.ndarray, class_names: tuple[str, ...] = (),
              evaluate: Optional[Callable[[Any], dict[str, float]]] = None) -> common.Task:
  """The task of training on (captions[i], images[i]) pairs; images (N, S, S, C) uint8."""
  if len(captions) != len(images):
    raise ValueError(f"Got {len(captions)} captions for {len(images)} images.")
  _check_capacity(config, tokenizer, captions)
  distinct, caption_ids = np.unique(np.asarray(captions), return_inverse=True)
  table = tokenizer.encode(list(distinct), config.model.max_len)          # (U, max_len) tokens per caption id
  pairs = data.Dataset(np.asarray(images), caption_ids.astype(np.int32), tuple(distinct))
  text_encoder, image_encoder = text.build(config)
  tx = text.make_optimizer(config)
  state, train_step = common.replicated_state_and_step(
      mesh, lambda: text.init_state(config, text_encoder, image_encoder, tx),
      functools.partial(text.train_step, text_encoder, image_encoder, tx))

  def batches(start_step: int) -> Iterator[dict[str, np.ndarray]]:
    return ({"image": b["image"], "tokens": table[b["label"]], "caption_id": b["label"]}
            for b in input_pipeline.batches(pairs, global_batch_size=config.train.batch_size, seed=config.seed,
                                            random_flip=config.data.random_flip, start_step=start_step,
                                            process_index=jax.process_index(),
                                            process_count=jax.process_count()))

  return common.Task(state, train_step, batches, None, evaluate, shape_signature(config), class_names, 1,
                     description="text encoder", best_metric="test_retrieval_error")


def _known(tokenizer: text.Tokenizer, max_len: int, captions: Sequence[str]) -> np.ndarray:
  """(N,) bool: the caption's words are all in the vocabulary and at most max_len of them."""
  words = set(tokenizer.known_words)
  return np.array([len(w) <= max_len and set(w) <= words for w in map(text.split_words, captions)], bool)


def make_evaluator(config: ml_collections.ConfigDict, tokenizer: text.Tokenizer, dataset: data.Dataset,
                   captions: Sequence[str]) -> Callable[[Any], dict[str, float]]:
  """fn(state) -> caption retrieval of the held-out split (when the data has one) and of the first
  eval.num_train_examples training images."""
  n = config.eval.num_train_examples
  train_captions, train_images = list(captions[:n]), dataset.images[:n]
  held_out = None
  try:
    test = data.held_out_dataset(config.data)
    test_captions = conditioning.dataset_captions(test, reference=dataset)
    keep = _known(tokenizer, config.model.max_len, test_captions)
    logging.info("Caption retrieval on %d held-out images (%d left out: their captions have words the "
                 "training captions do not).", keep.sum(), len(keep) - keep.sum())
    held_out = [c for c, k in zip(test_captions, keep) if k], test.images[keep]
  except data.DataError as e:
    logging.warning("No held-out caption retrieval (training images only): %s", e)

  def evaluate(state: text.TextEncoderState) -> dict[str, float]:
    conditioner = text.conditioner_of(config, tokenizer, state.params)
    results = {}
    if n:
      results["train_retrieval_accuracy"] = text.retrieval_accuracy(conditioner, train_captions, train_images)
    if held_out is not None and len(held_out[0]):
      accuracy = text.retrieval_accuracy(conditioner, *held_out)
      results.update(test_retrieval_accuracy=accuracy, test_retrieval_error=1.0 - accuracy)
    return results

  return evaluate


def setup(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, workdir: str, is_main: bool
          ) -> common.Task:
  """Captions of the training split, their tokenizer (workdir/tokenizer.json), state, step, evaluator."""
  dataset = data.load_dataset(config.data)
  captions = conditioning.dataset_captions(dataset)
  tokenizer = text.Tokenizer.build(captions)
  evaluate = make_evaluator(config, tokenizer, dataset, captions) if config.eval.every else None
  task = make_task(config, mesh, tokenizer, captions, dataset.images, tuple(dataset.class_names), evaluate)
  if is_main:
    text.write_tokenizer(workdir, tokenizer)
  return task


def fit(config: ml_collections.ConfigDict, captions: Sequence[str], images: np.ndarray,
        writer: Optional[Any] = None) -> text.TextConditioner:
  """A text encoder trained on (captions[i], images[i]) for config.train.steps in memory (no workdir),
  with the task's own state, step and batches; images (N, S, S, C) uint8. Metrics go to `writer` (CLU)."""
  captions = list(captions)
  tokenizer = text.Tokenizer.build(captions)
  mesh = runs.make_mesh()
  state = in_memory.train(make_task(config, mesh, tokenizer, captions, images), mesh, config.train.steps,
                          log_every=config.train.log_every, writer=writer)
  return text.conditioner_of(config, tokenizer, state.params)
