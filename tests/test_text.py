"""Tokenizer, text/image towers, the CLIP loss maths, and that training (the task's step, in memory)
makes captions retrievable."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from configs import text_encoder_fashion_mnist
from gan import runs
from gan import text
from gan.tasks import text_encoder

CAPTIONS = ["a dark ankle boot", "a light, wide bag", "a red handbag", "A Grey T-shirt."]
SHAPE_CAPTIONS = ["a dark square", "a light square", "a dark circle", "a light circle"]


def _random_params(module, *inputs):
  """N(0, 0.3^2) params of the shapes module.init would give.

  numpy, not module.init: on CPU, eager flax init compiles one RNG program per parameter shape
  (seconds each), and random params (not the identity-like init of LayerNorm) test the maths no worse.
  """
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), *inputs)["params"]
  rng = np.random.default_rng(0)
  return jax.tree.map(lambda s: rng.normal(0.0, 0.3, s.shape).astype(np.float32), shapes)


def _encoder(dropout_rate=0.0):
  """A small TextEncoder over the words of CAPTIONS and SHAPE_CAPTIONS (max_len 8) and its params."""
  tokenizer = text.Tokenizer.build(CAPTIONS + SHAPE_CAPTIONS)
  module = text.TextEncoder(tokenizer.vocab_size, 8, embed_dim=16, width=32, num_layers=2, num_heads=2,
                            mlp_dim=64, dropout_rate=dropout_rate)
  return tokenizer, module, _random_params(module, tokenizer.encode(CAPTIONS, 8))


def test_tokenizer_vocab_and_round_trip():
  tok = text.Tokenizer.build(CAPTIONS)
  # Lower-cased, commas and full stops dropped, "t-shirt" kept whole; specials first, then sorted.
  assert tok.words == ("<pad>", "<unk>", "a", "ankle", "bag", "boot", "dark", "grey", "handbag",
                       "light", "red", "t-shirt", "wide")
  ids = tok.encode(["a light, wide bag", "A Grey T-shirt."], max_len=5)
  assert ids.dtype == np.int32
  np.testing.assert_array_equal(ids, [[2, 9, 12, 4, 0], [2, 7, 11, 0, 0]])
  assert tok.decode(ids) == ["a light wide bag", "a grey t-shirt"]
  again = text.Tokenizer.from_json(tok.to_json())
  assert again == tok
  np.testing.assert_array_equal(again.encode(CAPTIONS, 5), tok.encode(CAPTIONS, 5))
  # min_count drops rare words: only "a" occurs in more than one caption.
  assert text.Tokenizer.build(CAPTIONS, min_count=2).known_words == ["a"]


def test_unknown_word_error_names_the_closest_known_words():
  tok = text.Tokenizer.build(CAPTIONS)
  with pytest.raises(text.UnknownWordError) as info:
    tok.encode(["a red handbag", "a red hnadbag"], max_len=4)
  message = str(info.value)
  assert "Unknown word 'hnadbag' in 'a red hnadbag'" in message
  assert "Closest known words: handbag, bag." in message
  assert "Known words: a, ankle, bag," in message
  assert isinstance(info.value, ValueError)
  # Opt-in robustness: unknown words map to <unk>.
  np.testing.assert_array_equal(tok.encode("a red hnadbag", 4, allow_unknown=True), [[2, 10, text.UNK_ID, 0]])
  with pytest.raises(ValueError, match="at most max_len=2"):
    tok.encode("a red handbag", max_len=2)
  with pytest.raises(ValueError, match="no words"):
    tok.encode(", .", max_len=2)


def test_padding_does_not_change_the_embedding():
  tok, module, params = _encoder()
  short = tok.encode(CAPTIONS, max_len=4)                  # the longest caption has 4 words
  long = tok.encode(CAPTIONS, max_len=8)                   # the same plus 4 padding tokens
  e_short = module.apply({"params": params}, short)
  e_long = module.apply({"params": params}, long)
  assert e_short.shape == (4, 16)
  np.testing.assert_allclose(jnp.linalg.norm(e_long, axis=-1), 1.0, atol=1e-5)
  np.testing.assert_allclose(e_short, e_long, atol=1e-5)
  # Whereas a real token in place of padding does change it (the check above is not vacuous).
  changed = module.apply({"params": params}, np.where(long == text.PAD_ID, 2, long))
  assert float(jnp.max(jnp.abs(changed - e_long))) > 1e-3


def test_different_captions_give_different_embeddings():
  tok, module, params = _encoder()
  emb = module.apply({"params": params}, tok.encode(SHAPE_CAPTIONS[:3] + SHAPE_CAPTIONS[:1], 8))
  sims = np.asarray(emb @ emb.T)
  assert abs(sims[0, 3] - 1.0) < 1e-5                     # same caption, same embedding
  assert max(sims[0, 1], sims[0, 2], sims[1, 2]) < 0.999   # one changed word moves it


def test_dropout_is_off_by_default_and_needs_train():
  tok, module, params = _encoder(dropout_rate=0.5)
  ids = tok.encode(CAPTIONS, 8)
  eval_a = module.apply({"params": params}, ids)
  np.testing.assert_array_equal(eval_a, module.apply({"params": params}, ids))
  train = module.apply({"params": params}, ids, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
  assert float(jnp.max(jnp.abs(train - eval_a))) > 1e-3


def test_image_encoder_shapes_and_unit_norm():
  # 64x64x3 here; the training test below runs 32x32x1.
  module = text.ImageEncoder(embed_dim=8, width=4)
  x = np.random.default_rng(0).uniform(-1, 1, (3, 64, 64, 3)).astype(np.float32)
  params = _random_params(module, x)
  assert params["Conv_3"]["kernel"].shape == (4, 4, 16, 32)   # 64 -> 32 -> 16 -> 8 -> 4
  emb = module.apply({"params": params}, x)
  assert emb.shape == (3, 8)
  np.testing.assert_allclose(jnp.linalg.norm(emb, axis=-1), 1.0, atol=1e-5)
  with pytest.raises(ValueError, match="image_size must be"):
    module.apply({"params": params}, x[:, :48, :48])


def test_clip_loss_matches_hand_computation_on_2x2():
  t = jnp.array([[1.0, 0.0], [0.0, 1.0]])
  v = jnp.array([[0.6, 0.8], [1.0, 0.0]])
  # logits = 2 * t @ v.T = [[1.2, 2.0], [1.6, 0.0]]; rows = text->image, columns = image->text.
  lse = lambda a, b: math.log(math.exp(a) + math.exp(b))
  t2i = ((lse(1.2, 2.0) - 1.2) + (lse(1.6, 0.0) - 0.0)) / 2
  i2t = ((lse(1.2, 1.6) - 1.2) + (lse(2.0, 0.0) - 0.0)) / 2
  expected = (t2i + i2t) / 2
  np.testing.assert_allclose(text.clip_loss(t, v, jnp.log(2.0)), expected, rtol=1e-6)
  # Distinct captions as ids: the same as plain CLIP.
  np.testing.assert_allclose(text.clip_loss(t, v, jnp.log(2.0), jnp.array([0, 1])), expected, rtol=1e-6)
  # The scale is capped at 100 (CLIP): log(1000) acts as log(100).
  np.testing.assert_allclose(text.clip_loss(t, v, jnp.log(1000.0)), text.clip_loss(t, v, jnp.log(100.0)),
                             rtol=1e-6)


def test_clip_loss_is_lower_for_aligned_than_shuffled_pairs():
  rng = np.random.default_rng(0)
  t = text.l2_normalize(rng.normal(size=(16, 8)))
  v = text.l2_normalize(t + 0.1 * rng.normal(size=(16, 8)))
  aligned = float(text.clip_loss(t, v, jnp.log(10.0)))
  shuffled = float(text.clip_loss(t, v[::-1], jnp.log(10.0)))
  assert aligned < 0.5 * shuffled
  assert aligned < math.log(16)                    # chance level of a 16-way choice


def _reference_multi_positive_loss(t, v, scale, ids):
  """Loops: each row's target is uniform over the pairs sharing its caption."""
  logits = scale * np.asarray(t, np.float64) @ np.asarray(v, np.float64).T
  total = 0.0
  for mat in (logits, logits.T):
    for i in range(len(ids)):
      positives = [j for j in range(len(ids)) if ids[j] == ids[i]]
      log_norm = math.log(sum(math.exp(x) for x in mat[i]))
      total += -sum(mat[i, j] - log_norm for j in positives) / len(positives) / len(ids)
  return total / 2


def test_clip_loss_treats_identical_captions_as_positives():
  ids = np.array([0, 1, 0, 2, 1, 0])
  rng = np.random.default_rng(0)
  base = rng.normal(size=(3, 4))[ids]
  # Embeddings of one caption that differ a little (as with dropout or <unk> augmentation).
  t = text.l2_normalize(base + 0.3 * rng.normal(size=(6, 4)))
  v = text.l2_normalize(rng.normal(size=(6, 4)))
  scale = jnp.log(5.0)
  loss = text.clip_loss(t, v, scale, jnp.asarray(ids))
  np.testing.assert_allclose(loss, _reference_multi_positive_loss(t, v, 5.0, ids), rtol=1e-5)
  # Images 0 and 2 share a caption: swapping them changes nothing with ids, but does without.
  swapped = v[np.array([2, 1, 0, 3, 4, 5])]
  np.testing.assert_allclose(text.clip_loss(t, swapped, scale, jnp.asarray(ids)), loss, rtol=1e-6)
  assert abs(float(text.clip_loss(t, swapped, scale)) - float(text.clip_loss(t, v, scale))) > 1e-3
  # When one caption has one embedding (the deterministic encoder), the false-negative terms of its
  # duplicate rows add up to the same sum: the uniform-target loss equals plain CLIP exactly.
  t_same = text.l2_normalize(base)
  np.testing.assert_allclose(text.clip_loss(t_same, v, scale, jnp.asarray(ids)),
                             text.clip_loss(t_same, v, scale), rtol=1e-5)
  np.testing.assert_allclose(text.clip_loss(t_same, v, scale, jnp.asarray(ids)),
                             _reference_multi_positive_loss(t_same, v, 5.0, ids), rtol=1e-5)


def _shapes_dataset(n, seed):
  """32x32x1 uint8: a dark or light square or circle at a random place/size on mid-grey noise."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:32, :32]
  images = np.empty((n, 32, 32, 1), np.uint8)
  captions = []
  for i in range(n):
    tone, shape = rng.choice(["dark", "light"]), rng.choice(["square", "circle"])
    r = rng.uniform(6, 10)
    cy, cx = rng.uniform(r + 1, 31 - r, size=2)
    inside = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r if shape == "circle"
              else (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r))
    image = rng.normal(128, 12, (32, 32))
    image[inside] = rng.normal(40 if tone == "dark" else 215, 12, inside.sum())
    images[i, ..., 0] = np.clip(image, 0, 255)
    captions.append(f"a {tone} {shape}")
  return captions, images


def shapes_config(**overrides):
  """configs/text_encoder_fashion_mnist.py shrunk for the shapes data (5 words, 3 per caption)."""
  return default.apply_overrides(text_encoder_fashion_mnist.get_config(), {
      "model.embed_dim": 16, "model.width": 32, "model.num_layers": 1, "model.num_heads": 2,
      "model.image_width": 16, "model.vocab_size": 8, "model.max_len": 3, "optimizer.lr": 3e-3,
      "train.steps": 300, "train.batch_size": 64, **overrides})


@pytest.fixture(scope="module")
def trained():
  captions, images = _shapes_dataset(640, seed=0)
  conditioner = text_encoder.fit(shapes_config(), captions[:512], images[:512])
  return conditioner, captions[512:], images[512:]


def test_training_makes_captions_retrievable_from_held_out_images(trained):
  conditioner, captions, images = trained
  assert len(set(captions)) == 4
  accuracy = text.retrieval_accuracy(conditioner, captions, images)
  assert accuracy >= 0.9, accuracy                       # chance: 0.25
  # The four caption embeddings are distinct unit vectors.
  emb = conditioner.embed(SHAPE_CAPTIONS)
  assert emb.dtype == np.float32 and emb.shape == (4, 16)
  np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1.0, atol=1e-5)
  assert np.max(emb @ emb.T - 2 * np.eye(4)) < 0.95
  with pytest.raises(text.UnknownWordError, match="Closest known words: square"):
    conditioner.embed("a dark sqaure")


def test_retrieval_accuracy_is_at_chance_for_an_untrained_pairing(trained):
  conditioner, captions, images = trained
  # Captions that do not describe their images: the same images with each caption replaced by another.
  other = {"a dark square": "a light circle", "a light circle": "a dark square",
           "a light square": "a dark circle", "a dark circle": "a light square"}
  assert text.retrieval_accuracy(conditioner, [other[c] for c in captions], images) < 0.1
  assert text.retrieval_accuracy(conditioner, [other[c] for c in captions], images, top_k=4) == 1.0


def test_captions_beyond_the_configured_capacity_are_a_clear_error():
  captions, images = _shapes_dataset(64, seed=1)
  with pytest.raises(runs.ConfigError, match=r"5 distinct words \(\+ <pad>, <unk>\) but model.vocab_size is 6: "
                                             "set --config.model.vocab_size=7 or more"):
    text_encoder.fit(shapes_config(**{"model.vocab_size": 6}), captions, images)
  with pytest.raises(runs.ConfigError, match="longest training caption has 3 words but model.max_len is 2"):
    text_encoder.fit(shapes_config(**{"model.max_len": 2}), captions, images)
