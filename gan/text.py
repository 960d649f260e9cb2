"""Text conditioning: a caption tokenizer and a small CLIP-style text encoder trained against images.

The GAN is conditioned on `cond` (N, cond_dim) = the text embedding of the image's caption. The text
encoder is trained before the GAN, contrastively against an image encoder (CLIP, Radford et al.
2021), both towers small enough to train on CPU in a few minutes on 60k 32x32 images. The shared loop
trains them as task "text_encoder" (gan/tasks/text_encoder.py; state, step and loading are here):

  python -m gan.main --config configs/text_encoder_fashion_mnist.py --workdir runs/text_encoder_fashion_mnist

  conditioner = text.load("runs/text_encoder_fashion_mnist")
  cond = conditioner.embed(["a dark ankle boot", "a light, wide bag"])   # (2, 32) float32, unit norm
  text.retrieval_accuracy(conditioner, held_out_captions, held_out_images)   # fraction, chance 1/#captions

Captions are short attribute phrases ("a dark ankle boot", "a red handbag"): the vocabulary is that of
the training captions, and an unknown word at inference is an error (`UnknownWordError`, with the
closest known words) rather than a silent <unk>, because a typo would otherwise condition the GAN on
the wrong thing.
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
import functools
import json
import math
import os
import re
from typing import Any, Optional, Sequence, Union

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gan import runs
from gan.models import layers

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1

# A word is a run of letters/digits, possibly joined by '-' or "'" ("t-shirt", "men's"): every other
# character (whitespace, commas, full stops, ...) separates words and is dropped.
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")

# CLIP's initial temperature 0.07 and its cap of 100 on exp(logit_scale).
_INIT_LOGIT_SCALE = math.log(1 / 0.07)
_MAX_LOGIT_SCALE = math.log(100.0)

Texts = Union[str, Sequence[str]]


def _as_list(texts: Texts) -> list[str]:
  return [texts] if isinstance(texts, str) else list(texts)


# ---------------------------------------------------------------------------------------------------
# Tokenizer.


class UnknownWordError(ValueError):
  """A caption contains a word outside the tokenizer's vocabulary."""


def split_words(text: str) -> list[str]:
  """Lower-cased words of `text`: "A light, wide T-shirt." -> ['a', 'light', 'wide', 't-shirt']."""
  return _WORD.findall(text.lower())


@dataclasses.dataclass(frozen=True)
class Tokenizer:
  """Word-level tokenizer; `words[i]` is the word of id i, with <pad> = 0 and <unk> = 1."""
  words: tuple[str, ...]
  _ids: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)

  def __post_init__(self):
    if tuple(self.words[:2]) != (PAD, UNK):
      raise ValueError(f"Tokenizer words must start with {PAD!r}, {UNK!r}; got {list(self.words[:2])}.")
    if len(set(self.words)) != len(self.words):
      raise ValueError("Tokenizer words must be distinct.")
    object.__setattr__(self, "words", tuple(self.words))
    object.__setattr__(self, "_ids", {w: i for i, w in enumerate(self.words)})

  @classmethod
  def build(cls, captions: Sequence[str], min_count: int = 1) -> Tokenizer:
    """Vocabulary of the words seen at least `min_count` times in `captions`, sorted alphabetically."""
    counts = collections.Counter(w for caption in captions for w in split_words(caption))
    kept = sorted(w for w, c in counts.items() if c >= min_count)
    if not kept:
      raise ValueError(f"No word occurs at least min_count={min_count} times in {len(captions)} captions.")
    return cls((PAD, UNK, *kept))

  @property
  def vocab_size(self) -> int:
    return len(self.words)

  @property
  def known_words(self) -> list[str]:
    """The vocabulary without the special tokens."""
    return list(self.words[2:])

  def _unknown_word_error(self, word: str, text: str) -> UnknownWordError:
    known = self.known_words
    close = difflib.get_close_matches(word, known, n=3, cutoff=0.6)
    hint = f"Closest known words: {', '.join(close)}." if close else "No known word is close."
    listed = ", ".join(known[:100]) + (f", ... ({len(known) - 100} more)" if len(known) > 100 else "")
    return UnknownWordError(f"Unknown word {word!r} in {text!r}. {hint} Known words: {listed}.")

  def encode(self, texts: Texts, max_len: int, allow_unknown: bool = False) -> np.ndarray:
    """Token ids (N, max_len) int32, padded on the right with PAD_ID = 0.

    Args:
      texts: a caption or a sequence of N captions.
      max_len: the length to pad to; a caption with more words raises ValueError.
      allow_unknown: map unknown words to UNK_ID instead of raising UnknownWordError.
    """
    texts = _as_list(texts)
    tokens = np.full((len(texts), max_len), PAD_ID, np.int32)
    for row, text in enumerate(texts):
      words = split_words(text)
      if not words:
        raise ValueError(f"Caption {text!r} has no words.")
      if len(words) > max_len:
        raise ValueError(f"Caption {text!r} has {len(words)} words; at most max_len={max_len} are allowed.")
      for col, word in enumerate(words):
        token = self._ids.get(word, UNK_ID if allow_unknown else None)
        if token is None:
          raise self._unknown_word_error(word, text)
        tokens[row, col] = token
    return tokens

  def decode(self, tokens: np.ndarray) -> list[str]:
    """Inverse of `encode` up to normalisation: (N, L) ids -> N space-joined words, padding dropped."""
    return [" ".join(self.words[t] for t in row if t != PAD_ID) for row in np.asarray(tokens)]

  def to_json(self) -> str:
    return json.dumps({"words": list(self.words)})

  @classmethod
  def from_json(cls, text: str) -> Tokenizer:
    return cls(tuple(json.loads(text)["words"]))


# ---------------------------------------------------------------------------------------------------
# The two towers.


def l2_normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
  return x / jnp.sqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True) + eps)


class _EncoderBlock(nn.Module):
  """Pre-LayerNorm transformer block: x + MHA(LN(x)), then x + MLP(LN(x))."""
  num_heads: int
  mlp_dim: int
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, train: bool) -> jax.Array:
    deterministic = not train or self.dropout_rate == 0.0
    y = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, dropout_rate=self.dropout_rate,
                                        deterministic=deterministic)(nn.LayerNorm()(x), mask=mask)
    x = x + nn.Dropout(self.dropout_rate, deterministic=deterministic)(y)
    y = nn.Dense(self.mlp_dim)(nn.LayerNorm()(x))
    y = nn.Dense(x.shape[-1])(nn.gelu(y))
    return x + nn.Dropout(self.dropout_rate, deterministic=deterministic)(y)


class TextEncoder(nn.Module):
  """Token ids (N, L) int32, L <= max_len, right-padded with 0 -> unit-norm embeddings (N, embed_dim).

  Token + learned position embeddings, `num_layers` transformer blocks whose attention ignores padded
  keys, then the mean over the non-padded positions and a Dense layer. Padding does not change the
  embedding. No dropout unless dropout_rate > 0 and train=True (then a "dropout" rng is needed).
  """
  vocab_size: int
  max_len: int
  embed_dim: int = 32
  width: int = 64
  num_layers: int = 2
  num_heads: int = 4
  mlp_dim: int = 128
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, tokens: jax.Array, *, train: bool = False) -> jax.Array:
    if tokens.ndim != 2 or tokens.shape[1] > self.max_len:
      raise ValueError(f"TextEncoder expects token ids of shape (N, L <= {self.max_len}), got {tokens.shape}.")
    mask = tokens != PAD_ID                                                     # (N, L)
    init = nn.initializers.normal(stddev=0.02)
    x = nn.Embed(self.vocab_size, self.width, embedding_init=init, name="token_embed")(tokens)
    positions = self.param("position_embed", init, (self.max_len, self.width))
    x = x + positions[None, :tokens.shape[1]]
    for _ in range(self.num_layers):
      # (N, 1, 1, L): every query (padded ones too) attends to the non-padded keys only.
      x = _EncoderBlock(self.num_heads, self.mlp_dim, self.dropout_rate)(x, mask[:, None, None, :], train)
    x = nn.LayerNorm()(x)
    weights = mask[..., None].astype(x.dtype)
    pooled = jnp.sum(x * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1.0)
    return l2_normalize(nn.Dense(self.embed_dim)(pooled))


class ImageEncoder(nn.Module):
  """Images (N, S, S, C) float in [-1, 1], S = 32 or 64, C = 1 or 3 -> unit-norm embeddings (N, embed_dim).

  A DCGAN-discriminator-like stack of stride-2 4x4 convolutions down to 4x4, widths `width`, 2*width,
  ..., then the mean over the 4x4 map and a Dense layer. The mean (rather than flattening) makes the
  embedding nearly translation invariant: flattening let the tower memorise where each training
  object sits, and captions say what an object is, not where.
  """
  embed_dim: int = 32
  width: int = 16

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
      raise ValueError(f"ImageEncoder expects images of shape (N, S, S, C), got {images.shape}.")
    x = images.astype(jnp.float32)
    for w in layers.channel_widths(self.width, layers.num_upsamplings(images.shape[1]))[::-1]:
      x = nn.leaky_relu(nn.Conv(w, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))(x), 0.2)
    return l2_normalize(nn.Dense(self.embed_dim)(jnp.mean(x, axis=(1, 2))))


def images_to_float(images: Union[np.ndarray, jax.Array]) -> jax.Array:
  """uint8 images in [0, 255] -> float32 in [-1, 1]; float images are taken to be in [-1, 1] already."""
  images = jnp.asarray(images)
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 127.5 - 1.0
  return images.astype(jnp.float32)


# ---------------------------------------------------------------------------------------------------
# Contrastive loss.


def clip_loss(text_emb: jax.Array, image_emb: jax.Array, logit_scale: jax.Array,
              caption_ids: Optional[jax.Array] = None) -> jax.Array:
  """Symmetric InfoNCE (CLIP) between N paired text and image embeddings.

  logits = exp(min(logit_scale, log 100)) * text_emb @ image_emb.T (N, N); the loss is the mean of the
  text->image and image->text cross-entropies. Without `caption_ids` pair i is the only positive of row
  i (plain CLIP). With `caption_ids` (N,) int, pairs whose captions are identical are all positives:
  the target of row i is uniform over {j : caption_ids[j] == caption_ids[i]} (UniCL, Yang et al. 2022),
  so another image of the same caption is not a negative. The minimum is then mean_i log(#positives
  of i), not 0. (When identical captions have identical embeddings, as with the deterministic
  TextEncoder, this equals plain CLIP exactly: the duplicate rows' terms add up to the same sum. The
  ids matter when one caption's embeddings differ, e.g. with dropout or <unk> augmentation, and they
  make the positives explicit rather than relying on that identity.)

  Args:
    text_emb, image_emb: (N, D), normally unit-norm.
    logit_scale: scalar, the log of the inverse temperature (learned; CLIP starts at log(1 / 0.07)).
    caption_ids: optional (N,) ints, equal for identical captions.
  Returns:
    The scalar loss (float32).
  """
  scale = jnp.exp(jnp.minimum(logit_scale, _MAX_LOGIT_SCALE))
  logits = scale * (text_emb.astype(jnp.float32) @ image_emb.astype(jnp.float32).T)
  if caption_ids is None:
    targets = jnp.eye(logits.shape[0], dtype=jnp.float32)
  else:
    same = (caption_ids[:, None] == caption_ids[None, :]).astype(jnp.float32)
    targets = same / jnp.sum(same, axis=1, keepdims=True)
  # `same` is symmetric, so the image->text targets are the same matrix.
  text_to_image = optax.softmax_cross_entropy(logits, targets)
  image_to_text = optax.softmax_cross_entropy(logits.T, targets)
  return 0.5 * (jnp.mean(text_to_image) + jnp.mean(image_to_text))


# ---------------------------------------------------------------------------------------------------
# The trained conditioner.


@dataclasses.dataclass(frozen=True, eq=False)
class TextConditioner:
  """A trained text encoder (and the image encoder it was trained against), frozen.

  `embed(texts)` gives the GAN's `cond`; `embed_images` lets one check that images (real or generated)
  match their captions (see `retrieval_accuracy`).
  """
  tokenizer: Tokenizer
  text_encoder: TextEncoder
  text_params: Any
  max_len: int
  image_encoder: Optional[ImageEncoder] = None
  image_params: Any = None
  logit_scale: float = _INIT_LOGIT_SCALE

  @property
  def embed_dim(self) -> int:
    return self.text_encoder.embed_dim

  @property
  def _embed_tokens(self):
    return _jitted_text_tower(self.text_encoder)

  @property
  def _embed_images(self):
    return _jitted_image_tower(self.image_encoder)

  def embed(self, texts: Texts) -> np.ndarray:
    """Caption(s) -> (N, embed_dim) float32 unit vectors. Raises UnknownWordError for unknown words."""
    tokens = self.tokenizer.encode(texts, self.max_len)
    return np.asarray(self._embed_tokens(self.text_params, tokens), np.float32)

  def embed_images(self, images: Union[np.ndarray, jax.Array], batch_size: int = 512) -> np.ndarray:
    """Images (N, S, S, C), uint8 in [0, 255] or float in [-1, 1] -> (N, embed_dim) float32 unit vectors."""
    if self.image_encoder is None:
      raise ValueError("This TextConditioner holds no image encoder.")
    return np.concatenate([np.asarray(self._embed_images(self.image_params, images[i:i + batch_size]))
                           for i in range(0, len(images), batch_size)]).astype(np.float32)


# One compiled program per tower (and input shape), shared by every conditioner of that tower: the
# task evaluates a new conditioner of the same towers every eval.every steps.
@functools.lru_cache(maxsize=8)
def _jitted_text_tower(encoder: TextEncoder):
  return jax.jit(lambda params, tokens: encoder.apply({"params": params}, tokens))


@functools.lru_cache(maxsize=8)
def _jitted_image_tower(encoder: ImageEncoder):
  return jax.jit(lambda params, images: encoder.apply({"params": params}, images_to_float(images)))


def retrieval_accuracy(conditioner: TextConditioner, captions: Sequence[str],
                       images: Union[np.ndarray, jax.Array], top_k: int = 1) -> float:
  """How often an image's true caption ranks among the `top_k` of the distinct captions.

  For each image, the distinct captions of `captions` are ranked by cosine similarity with it; the
  image counts if fewer than `top_k` other captions score at least as high as its own (ties count
  against it, so collapsed embeddings score 0, not chance). Chance is about top_k / #distinct captions.
  Works for held-out real pairs and for generated images paired with their conditioning captions.

  Args:
    captions: N captions; images: (N, S, S, C) uint8 in [0, 255] or float in [-1, 1].
  """
  captions = list(captions)
  if len(captions) != len(images):
    raise ValueError(f"Got {len(captions)} captions for {len(images)} images.")
  distinct, truth = np.unique(np.asarray(captions, dtype=object), return_inverse=True)
  sims = conditioner.embed_images(images) @ conditioner.embed(list(distinct)).T      # (N, #distinct)
  own = sims[np.arange(len(captions)), truth]
  rivals = np.sum(sims >= own[:, None], axis=1) - 1
  return float(np.mean(rivals < top_k))


# ---------------------------------------------------------------------------------------------------
# Training state and step (the shared loop runs them as task "text_encoder", gan/tasks/text_encoder.py).

TRAIN_COMMAND = "python -m gan.main --config configs/text_encoder_fashion_mnist.py --workdir {workdir}"
TOKENIZER_FILE = "tokenizer.json"   # in the run's workdir: the words of the token ids


@flax.struct.dataclass
class TextEncoderState:
  step: jax.Array            # () int32, train steps done
  params: Any                # {"text": TextEncoder, "image": ImageEncoder, "logit_scale": () float32}
  opt_state: optax.OptState


def build(config: ml_collections.ConfigDict) -> tuple[TextEncoder, ImageEncoder]:
  """The two towers of config.model. The text tower's vocabulary and caption length are capacities
  (model.vocab_size, model.max_len) so its shapes follow from the config alone; the tokenizer of the
  training captions uses the first ids."""
  m = config.model
  text_encoder = TextEncoder(m.vocab_size, m.max_len, embed_dim=m.embed_dim, width=m.width,
                             num_layers=m.num_layers, num_heads=m.num_heads, mlp_dim=2 * m.width)
  return text_encoder, ImageEncoder(embed_dim=m.embed_dim, width=m.image_width)


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam, optimizer.lr after a linear warm-up (a tenth of train.steps, at most 100) with cosine
  decay to 5% of it at train.steps; gradients clipped to global norm 1."""
  steps, lr = config.train.steps, config.optimizer.lr
  schedule = optax.warmup_cosine_decay_schedule(0.0, lr, max(1, min(100, steps // 10)), max(steps, 2),
                                                end_value=0.05 * lr)
  return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))


def init_state(config: ml_collections.ConfigDict, text_encoder: TextEncoder, image_encoder: ImageEncoder,
               tx: optax.GradientTransformation) -> TextEncoderState:
  text_key, image_key = jax.random.split(jax.random.PRNGKey(config.seed))
  size, channels = config.data.image_size, config.data.channels
  params = {
      "text": text_encoder.init(text_key, jnp.ones((1, text_encoder.max_len), jnp.int32))["params"],
      "image": image_encoder.init(image_key, jnp.zeros((1, size, size, channels)))["params"],
      "logit_scale": jnp.asarray(_INIT_LOGIT_SCALE, jnp.float32),
  }
  return TextEncoderState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))


def abstract_state(config: ml_collections.ConfigDict) -> TextEncoderState:
  """The TextEncoderState's shapes and dtypes (jax.ShapeDtypeStruct leaves), without computing anything."""
  return jax.eval_shape(lambda: init_state(config, *build(config), make_optimizer(config)))


def shape_signature(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config values that fix the parameter shapes (named one by one: a restored run's config is
  merged over configs/default.py, whose GAN model keys mean nothing here)."""
  keys = ("vocab_size", "max_len", "embed_dim", "width", "num_layers", "num_heads", "image_width")
  return {**{f"model.{k}": config.model[k] for k in keys},
          "data.image_size": config.data.image_size, "data.channels": config.data.channels}


def train_step(text_encoder: TextEncoder, image_encoder: ImageEncoder, tx: optax.GradientTransformation,
               state: TextEncoderState, batch: dict[str, jax.Array]
               ) -> tuple[TextEncoderState, dict[str, jax.Array]]:
  """One `clip_loss` step on B (caption, image) pairs.

  batch: {"image": (B, S, S, C) float32 in [-1, 1], "tokens": (B, max_len) int32 (the caption),
  "caption_id": (B,) int32, equal for identical captions (they are positives of each other)}.
  """
  def loss_fn(params):
    text_emb = text_encoder.apply({"params": params["text"]}, batch["tokens"])
    image_emb = image_encoder.apply({"params": params["image"]}, batch["image"])
    return clip_loss(text_emb, image_emb, params["logit_scale"], batch["caption_id"])

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  # Keep the scale where clip_loss uses it, so it does not drift beyond the cap unseen.
  params["logit_scale"] = jnp.minimum(params["logit_scale"], _MAX_LOGIT_SCALE)
  return (state.replace(step=state.step + 1, params=params, opt_state=opt_state),
          {"clip_loss": loss, "inverse_temperature": jnp.exp(params["logit_scale"])})


def conditioner_of(config: ml_collections.ConfigDict, tokenizer: Tokenizer, params: Any) -> TextConditioner:
  """The TextConditioner of a state's params (TextEncoderState.params)."""
  text_encoder, image_encoder = build(config)
  return TextConditioner(tokenizer, text_encoder, params["text"], config.model.max_len, image_encoder,
                         params["image"], float(params["logit_scale"]))


# ---------------------------------------------------------------------------------------------------
# The tokenizer of a run (its arrays are in the checkpoints).


def write_tokenizer(workdir: str, tokenizer: Tokenizer) -> None:
  """Writes workdir/tokenizer.json; refuses to replace one with other words (the run's checkpoints
  map token ids to the words it was started with)."""
  path = os.path.join(workdir, TOKENIZER_FILE)
  if os.path.exists(path):
    saved = read_tokenizer(workdir)
    if saved != tokenizer:
      added, removed = sorted(set(tokenizer.words) - set(saved.words)), sorted(set(saved.words) - set(tokenizer.words))
      raise runs.RunError(
          f"The training captions give another vocabulary than the one {workdir} was started with ({path}: "
          f"new words {added}, missing words {removed}): the data changed. Use a new --workdir, or the "
          "data the run was started with.")
    return
  os.makedirs(workdir, exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write(tokenizer.to_json())


def read_tokenizer(workdir: str) -> Tokenizer:
  path = os.path.join(workdir, TOKENIZER_FILE)
  if not os.path.exists(path):
    raise runs.RunError(f"{path} is missing: it is written when a text-encoder run starts; rerun "
                        f"{TRAIN_COMMAND.format(workdir=workdir)} to recreate it.")
  with open(path, encoding="utf-8") as f:
    return Tokenizer.from_json(f.read())


def load(workdir: str) -> TextConditioner:
  """The TextConditioner of the latest checkpoint of a text-encoder run (task "text_encoder").

  Raises:
    runs.RunError: not a text-encoder run (or one saved by the old trainer), or no checkpoint yet.
    checkpointing.CheckpointMismatchError / CheckpointCorruptError: see gan/checkpointing.py.
  """
  command = TRAIN_COMMAND.format(workdir=workdir)
  if os.path.exists(os.path.join(workdir, "params.npz")):
    raise runs.RunError(f"{workdir} holds a text encoder saved by an older version (params.npz): retrain it "
                        f"with {command}")
  config = runs.load_config(workdir)
  if runs.task_of(config) != "text_encoder":
    raise runs.RunError(f"{workdir} is a {runs.task_of(config)!r} run, not a text encoder (task "
                        f"'text_encoder'); train one with {command}")
  tokenizer = read_tokenizer(workdir)
  state, _ = runs.restore_checkpoint(workdir, runs.on_one_device(abstract_state(config)),
                                     shape_signature(config), config.train.keep_checkpoints,
                                     train_command=TRAIN_COMMAND)
  return conditioner_of(config, tokenizer, state.params)
