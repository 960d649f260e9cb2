"""Text conditioning: a caption tokenizer and a small CLIP-style text encoder trained against images.

The GAN is conditioned on `cond` (N, cond_dim) = the text embedding of the image's caption. The text
encoder is trained before the GAN, contrastively against an image encoder (CLIP, Radford et al.
2021), both towers small enough to train on CPU in about a minute on ~10k 32x32 images:

  conditioner = text.train_text_encoder(captions, images, embed_dim=32, steps=1000)
  cond = conditioner.embed(["a dark ankle boot", "a light, wide bag"])   # (2, 32) float32, unit norm
  text.retrieval_accuracy(conditioner, held_out_captions, held_out_images)   # fraction, chance 1/#captions
  text.save(conditioner, workdir + "/text"); conditioner = text.load(workdir + "/text")

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

from absl import logging
import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import optax

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


def _module_config(module: nn.Module) -> dict[str, Any]:
  return {f.name: getattr(module, f.name) for f in dataclasses.fields(module)
          if f.name not in ("parent", "name")}


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

  @functools.cached_property
  def _embed_tokens(self):
    return jax.jit(lambda params, tokens: self.text_encoder.apply({"params": params}, tokens))

  @functools.cached_property
  def _embed_images(self):
    return jax.jit(lambda params, images: self.image_encoder.apply({"params": params},
                                                                   images_to_float(images)))

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
# Training.


def train_text_encoder(captions: Sequence[str], images: np.ndarray, *, embed_dim: int = 32,
                       steps: int = 1000, batch_size: int = 128, learning_rate: float = 2e-3,
                       seed: int = 0, width: int = 64, num_layers: int = 2, num_heads: int = 4,
                       image_width: int = 16, max_len: Optional[int] = None,
                       log_every: int = 100) -> TextConditioner:
  """Trains a TextEncoder and an ImageEncoder with `clip_loss` on (caption, image) pairs.

  Identical captions are positives of each other (`caption_ids` in clip_loss). Adam with a linear
  warm-up then cosine decay, gradients clipped to norm 1. For scale: with the defaults, 9k Fashion-MNIST
  images (padded to 32x32) captioned "a {dark|light} {class}" (20 captions) train in about a minute
  on 2 CPU cores and reach held-out caption retrieval 0.81 top-1, 0.97 top-3 (train 0.94).

  Args:
    captions: N captions, one per image.
    images: (N, S, S, C) uint8 in [0, 255], S = 32 or 64, C = 1 or 3.
    max_len: longest caption (in words) the encoder accepts; default the longest training caption.
  Returns:
    The frozen TextConditioner (both towers, the tokenizer and the learned logit_scale).
  """
  captions = list(captions)
  images = np.asarray(images)
  if images.ndim != 4 or images.dtype != np.uint8:
    raise ValueError(f"images must be uint8 of shape (N, S, S, C), got {images.dtype} {images.shape}.")
  if len(captions) != len(images):
    raise ValueError(f"Got {len(captions)} captions for {len(images)} images.")
  tokenizer = Tokenizer.build(captions)
  max_len = max_len or max(len(split_words(c)) for c in captions)
  tokens = jnp.asarray(tokenizer.encode(captions, max_len))
  _, caption_ids = np.unique(np.asarray(captions, dtype=object), return_inverse=True)
  caption_ids = jnp.asarray(caption_ids.astype(np.int32))
  images_u8 = jnp.asarray(images)   # kept uint8 on device; converted per batch
  batch_size = min(batch_size, len(images))

  text_encoder = TextEncoder(tokenizer.vocab_size, max_len, embed_dim=embed_dim, width=width,
                             num_layers=num_layers, num_heads=num_heads, mlp_dim=2 * width)
  image_encoder = ImageEncoder(embed_dim=embed_dim, width=image_width)

  @jax.jit   # one compilation instead of op-by-op dispatch of both inits (seconds on CPU)
  def init(key, tokens, images_u8):
    text_key, image_key = jax.random.split(key)
    return {
        "text": text_encoder.init(text_key, tokens)["params"],
        "image": image_encoder.init(image_key, images_to_float(images_u8))["params"],
        "logit_scale": jnp.asarray(_INIT_LOGIT_SCALE, jnp.float32),
    }

  params = init(jax.random.PRNGKey(seed), tokens[:1], images_u8[:1])
  schedule = optax.warmup_cosine_decay_schedule(0.0, learning_rate, max(1, min(100, steps // 10)),
                                                max(steps, 2), end_value=0.05 * learning_rate)
  optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
  opt_state = optimizer.init(params)

  def loss_fn(params, batch_tokens, batch_images, batch_ids):
    text_emb = text_encoder.apply({"params": params["text"]}, batch_tokens)
    image_emb = image_encoder.apply({"params": params["image"]}, images_to_float(batch_images))
    return clip_loss(text_emb, image_emb, params["logit_scale"], batch_ids)

  @jax.jit
  def train_step(params, opt_state, tokens, images_u8, caption_ids, index):
    loss, grads = jax.value_and_grad(loss_fn)(params, tokens[index], images_u8[index], caption_ids[index])
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    # Keep the scale where clip_loss uses it, so it does not drift beyond the cap unseen.
    params["logit_scale"] = jnp.minimum(params["logit_scale"], _MAX_LOGIT_SCALE)
    return params, opt_state, loss

  rng = np.random.default_rng(seed)
  order, position = rng.permutation(len(images)), 0
  for step in range(1, steps + 1):
    if position + batch_size > len(order):   # a new epoch: reshuffle
      order, position = rng.permutation(len(images)), 0
    index = jnp.asarray(order[position:position + batch_size])
    position += batch_size
    params, opt_state, loss = train_step(params, opt_state, tokens, images_u8, caption_ids, index)
    if log_every and (step % log_every == 0 or step == steps):
      logging.info("text encoder step %d/%d: clip loss %.4f, logit scale %.2f", step, steps, float(loss),
                   float(jnp.exp(params["logit_scale"])))
  params = jax.device_get(params)
  return TextConditioner(tokenizer, text_encoder, params["text"], max_len, image_encoder, params["image"],
                         float(params["logit_scale"]))


# ---------------------------------------------------------------------------------------------------
# Saving (JSON + npz, no pickle).

_TOKENIZER_FILE, _CONFIG_FILE, _PARAMS_FILE = "tokenizer.json", "config.json", "params.npz"


def save(conditioner: TextConditioner, directory: str) -> None:
  """Writes tokenizer.json, config.json (module configs, max_len, logit_scale) and params.npz."""
  os.makedirs(directory, exist_ok=True)
  config = {"max_len": conditioner.max_len, "logit_scale": conditioner.logit_scale,
            "text_encoder": _module_config(conditioner.text_encoder),
            "image_encoder": (None if conditioner.image_encoder is None
                              else _module_config(conditioner.image_encoder))}
  arrays = {f"text/{k}": np.asarray(v)
            for k, v in traverse_util.flatten_dict(conditioner.text_params, sep="/").items()}
  if conditioner.image_encoder is not None:
    arrays.update({f"image/{k}": np.asarray(v)
                   for k, v in traverse_util.flatten_dict(conditioner.image_params, sep="/").items()})
  with open(os.path.join(directory, _TOKENIZER_FILE), "w") as f:
    f.write(conditioner.tokenizer.to_json())
  with open(os.path.join(directory, _CONFIG_FILE), "w") as f:
    json.dump(config, f, indent=2)
  np.savez(os.path.join(directory, _PARAMS_FILE), **arrays)


def load(directory: str) -> TextConditioner:
  """Inverse of `save`."""
  for name in (_TOKENIZER_FILE, _CONFIG_FILE, _PARAMS_FILE):
    if not os.path.isfile(os.path.join(directory, name)):
      raise FileNotFoundError(f"{os.path.join(directory, name)} not found: not a saved TextConditioner.")
  with open(os.path.join(directory, _TOKENIZER_FILE)) as f:
    tokenizer = Tokenizer.from_json(f.read())
  with open(os.path.join(directory, _CONFIG_FILE)) as f:
    config = json.load(f)
  with np.load(os.path.join(directory, _PARAMS_FILE), allow_pickle=False) as npz:
    arrays = {k: npz[k] for k in npz.files}

  def tower(prefix: str) -> dict[str, Any]:
    flat = {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}
    return traverse_util.unflatten_dict(flat, sep="/")

  image_config = config["image_encoder"]
  return TextConditioner(
      tokenizer=tokenizer,
      text_encoder=TextEncoder(**config["text_encoder"]),
      text_params=tower("text"),
      max_len=config["max_len"],
      image_encoder=None if image_config is None else ImageEncoder(**image_config),
      image_params=None if image_config is None else tower("image"),
      logit_scale=config["logit_scale"])
