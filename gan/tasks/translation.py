"""Translation: pix2pix (paired) and CycleGAN (unpaired) image-to-image GANs, trained by gan/train.py.

  python -m gan.main --config configs/pix2pix_products.py --workdir runs/pix2pix_products
  python -m gan.main --config configs/cyclegan_products.py --workdir runs/cyclegan_products
  python -m gan.evaluate --workdir runs/pix2pix_products            # detects the task
  python -m gan.stylize --method cyclegan --workdir runs/cyclegan_products --content shoe.jpg --out bag.png

  from gan.tasks import translation                                   # in a notebook
  model = translation.load("runs/cyclegan_products")
  bags = translation.translate(model, shoes, "a2b")                   # (N, S, S, 3) in [-1, 1]

pix2pix (Isola et al. 2017), config.task = "pix2pix": G = U-Net from the edge map x to the photo y,
D = PatchGAN on concat(x, image). Per step (one jit): G(x) once; D update on (x, y) vs (x, G(x)) with
loss.name's discriminator loss (e.g. non_saturating, least_squares; gan/losses/adversarial.py) over
all patch logits; then the G update through the updated D: loss.name's generator loss +
translation.lambda_l1 * mean |G(x) - y| (100 in the paper), pulled back through the VJP of the same
G forward pass (as gan/steps.py does). Dropout in G is its noise (train=True only).
Isola et al. halve D's objective; Adam is invariant to a constant loss scale, so it is not done here.

CycleGAN (Zhu et al. 2017), config.task = "cyclegan": domain A = photos of class
translation.domain_a (0, shoes), B = class translation.domain_b (1, handbags), each drawn with its own
order (unpaired). G_AB, G_BA = ResNet generators, D_A, D_B = PatchGANs. Per step (one jit), as the
reference code: the G update first, with the current Ds,
  loss.name's G loss on D_B(G_AB(a)) and D_A(G_BA(b))             (least_squares in the paper)
  + lambda_cycle * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|)     (cycle, lambda 10)
  + lambda_identity * lambda_cycle * (|G_AB(b) - b| + |G_BA(a) - a|)   (identity, 0.5 * 10)
(|.| = mean absolute error), then the D update of D_A and D_B on real images vs fakes from an image
pool (Shrivastava et al. 2017): a fixed-size buffer of past fakes inside the state, so the step
stays pure and the pool is checkpointed with everything else (`ImagePool`, `query_pool`).

State (`TranslationState`): step, rng, generator params + one Adam state (both generators in one
dict for CycleGAN, as the reference's single optimizer), discriminator params + Adam state, pools.
Instance norm everywhere: no batch statistics. Step keys are fold_in(rng, step); the data order is
a pure function of seed and step (gan/input_pipeline.py), so a resumed run continues exactly.

Batches (host, then sharded over the "data" mesh axis by the train loop):
  pix2pix:  {"input": edges (B, S, S, C), "target": photos (B, S, S, C)} float32 in [-1, 1]
  cyclegan: {"a": (B, S, S, C), "b": (B, S, S, C)} float32 in [-1, 1]
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Iterator, NamedTuple, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from absl import logging

from gan import data
from gan import input_pipeline
from gan import runs
from gan import sampling
from gan import state as state_lib
from gan.losses import adversarial
from gan.metrics import evaluation
from gan.metrics import image as image_metrics
from gan.metrics import lpips
from gan.metrics import train_classifier
from gan.models import translation as nets
from gan.tasks import common

Params = Any
Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]

TASKS = ("pix2pix", "cyclegan")
# Generator parameter sets of each task, by the direction they translate.
DIRECTIONS = {"pix2pix": ("edges2photo",), "cyclegan": ("a2b", "b2a")}


TRAIN_COMMAND = "python -m gan.main --config configs/{task}_products.py --workdir {workdir}"


class TranslationError(ValueError):
  """A user error (bad workdir, images, direction); the message says how to fix it."""


# --------------------------------------------------------------------------- image pool


@flax.struct.dataclass
class ImagePool:
  """Past generated images, fixed size so it can live in a jitted, checkpointed state.

  images: (size, H, W, C) float32; rows >= count are unused (zeros).
  count: int32 scalar, the number of stored images, <= size.
  """
  images: jax.Array
  count: jax.Array


def empty_pool(size: int, image_shape: tuple[int, int, int]) -> ImagePool:
  """A pool of `size` images of `image_shape` (H, W, C); size 0 = no pool (queries pass through)."""
  return ImagePool(jnp.zeros((size, *image_shape), jnp.float32), jnp.zeros((), jnp.int32))


def pool_draws(key: jax.Array, num: int, size: int) -> tuple[jax.Array, jax.Array]:
  """The random numbers of one query of `num` images: u (num,) uniform in [0, 1), slot (num,) in [0, size)."""
  u_key, slot_key = jax.random.split(key)
  return (jax.random.uniform(u_key, (num,), jnp.float32),
          jax.random.randint(slot_key, (num,), 0, max(size, 1), jnp.int32))


def query_pool(pool: ImagePool, images: jax.Array, key: jax.Array) -> tuple[ImagePool, jax.Array]:
  """CycleGAN's ImagePool.query, image by image, in order: (new pool, images for D (N, H, W, C)).

  While the pool is not full, each image is stored and returned as is. Once full, with probability
  1/2 (u > 0.5) a stored image at a random slot is returned and replaced by the new one; otherwise
  the new image is returned and the pool is unchanged. Pure: the randomness is `pool_draws(key, ...)`.
  """
  size = pool.images.shape[0]
  if size == 0:
    return pool, images
  u, slots = pool_draws(key, images.shape[0], size)

  def push(carry, x):
    stored, count = carry
    image, u_i, slot_i = x
    filling = count < size
    swap = jnp.logical_and(jnp.logical_not(filling), u_i > 0.5)
    slot = jnp.where(filling, count, slot_i)
    old = stored[slot]
    stored = stored.at[slot].set(jnp.where(jnp.logical_or(filling, swap), image, old))
    return (stored, count + filling.astype(jnp.int32)), jnp.where(swap, old, image)

  (stored, count), out = jax.lax.scan(push, (pool.images, pool.count), (images, u, slots))
  return ImagePool(stored, count), out


# --------------------------------------------------------------------------- state


@flax.struct.dataclass
class TranslationState:
  step: jax.Array            # int32 scalar: completed train steps (= data position)
  rng: jax.Array             # base key; step keys are fold_in(rng, step)
  g_params: Params           # pix2pix: U-Net params; cyclegan: {"a2b": ..., "b2a": ...}
  g_opt_state: optax.OptState
  d_params: Params           # pix2pix: PatchGAN params; cyclegan: {"a": D_A, "b": D_B}
  d_opt_state: optax.OptState
  pools: dict[str, ImagePool]  # cyclegan: {"a": past fake A (for D_A), "b": past fake B}; pix2pix: {}


def build(config: ml_collections.ConfigDict) -> tuple[nn.Module, nn.Module]:
  """(generator, discriminator) of config.task from config.translation and config.data."""
  t = config.translation
  if config.task == "pix2pix":
    generator = nets.UNet(channels=config.data.channels, width=t.g_width, depth=t.unet_depth,
                          dropout=t.dropout, norm=t.norm)
  elif config.task == "cyclegan":
    generator = nets.ResNetGenerator(channels=config.data.channels, width=t.g_width, blocks=t.resnet_blocks,
                                     norm=t.norm)
  else:
    raise ValueError(f"Unknown translation task {config.task!r}; valid: {', '.join(TASKS)}.")
  return generator, nets.PatchDiscriminator(width=t.d_width, num_layers=t.d_layers, norm=t.norm)


def shape_signature(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config values that fix the state's array shapes (checkpointing.restore_latest checks them)."""
  keys = ("g_width", "d_width", "norm", "unet_depth", "resnet_blocks", "d_layers", "pool_size")
  return {"task": config.task, **{f"translation.{k}": config.translation[k] for k in keys},
          "data.image_size": config.data.image_size, "data.channels": config.data.channels}


def init_state(config: ml_collections.ConfigDict, generator: nn.Module, discriminator: nn.Module,
               g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation) -> TranslationState:
  """Parameters from config.seed, empty pools (pure; jit it with the desired out_shardings)."""
  size, channels = config.data.image_size, config.data.channels
  g_key, d_key, train_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  image = jnp.zeros((1, size, size, channels), jnp.float32)
  init_g = lambda key: generator.init({"params": key}, image, train=False)["params"]
  if config.task == "pix2pix":
    g_params = init_g(g_key)
    d_params = discriminator.init(d_key, jnp.concatenate([image, image], -1), train=False)["params"]
    pools = {}
  else:
    g_params = dict(zip(DIRECTIONS["cyclegan"], map(init_g, jax.random.split(g_key))))
    d_params = {name: discriminator.init(key, image, train=False)["params"]
                for name, key in zip(("a", "b"), jax.random.split(d_key))}
    pools = {name: empty_pool(config.translation.pool_size, (size, size, channels)) for name in ("a", "b")}
  return TranslationState(step=jnp.zeros((), jnp.int32), rng=train_key, g_params=g_params,
                          g_opt_state=g_tx.init(g_params), d_params=d_params, d_opt_state=d_tx.init(d_params),
                          pools=pools)


# --------------------------------------------------------------------------- losses


def l1(a: jax.Array, b: jax.Array) -> jax.Array:
  """Mean absolute difference over every pixel and channel of the batch (PyTorch's L1Loss)."""
  return jnp.mean(jnp.abs(a - b))


def pix2pix_generator_loss(loss: adversarial.AdversarialLoss, real_logits: Optional[jax.Array],
                           fake_logits: jax.Array, fake: jax.Array, target: jax.Array, lambda_l1: float
                           ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """loss.generator(real_logits, fake_logits) + lambda_l1 * l1(fake, target); (total, terms)."""
  adv, l1_term = loss.generator(real_logits, fake_logits), l1(fake, target)
  return adv + lambda_l1 * l1_term, {"g_adv_loss": adv, "l1": l1_term}


def cyclegan_generator_loss(g_ab: Callable, g_ba: Callable, d_a: Callable, d_b: Callable, real_a: jax.Array,
                            real_b: jax.Array, *, loss: adversarial.AdversarialLoss, lambda_cycle: float,
                            lambda_identity: float) -> tuple[jax.Array, dict[str, jax.Array], dict[str, jax.Array]]:
  """CycleGAN's generator objective for callables g_ab, g_ba (images -> images), d_a, d_b (images -> logits).

  Returns (total, terms {"g_adv_loss", "cycle", "identity"}, fakes {"a": G_BA(b), "b": G_AB(a)}), with
  cycle = l1(G_BA(G_AB(a)), a) + l1(G_AB(G_BA(b)), b) and identity = l1(G_AB(b), b) + l1(G_BA(a), a)
  (only computed when lambda_identity > 0), total = adv + lambda_cycle * (cycle + lambda_identity *
  identity).
  """
  fake_b, fake_a = g_ab(real_a), g_ba(real_b)
  rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
  uses_real = loss.generator_uses_real
  adv = (loss.generator(jax.lax.stop_gradient(d_b(real_b)) if uses_real else None, d_b(fake_b))
         + loss.generator(jax.lax.stop_gradient(d_a(real_a)) if uses_real else None, d_a(fake_a)))
  cycle = l1(rec_a, real_a) + l1(rec_b, real_b)
  identity = (l1(g_ab(real_b), real_b) + l1(g_ba(real_a), real_a)) if lambda_identity else jnp.zeros(())
  total = adv + lambda_cycle * (cycle + lambda_identity * identity)
  return total, {"g_adv_loss": adv, "cycle": cycle, "identity": identity}, {"a": fake_a, "b": fake_b}


# --------------------------------------------------------------------------- train steps


def make_train_step(config: ml_collections.ConfigDict, generator: nn.Module, discriminator: nn.Module,
                    g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation
                    ) -> Callable[[TranslationState, Batch], tuple[TranslationState, Metrics]]:
  """train_step(state, batch) -> (state, metrics) of config.task (see the module docstring). Pure."""
  loss = adversarial.get(config.loss.name)
  t = config.translation

  def d_logits(params, images):
    return discriminator.apply({"params": params}, images, train=True).reshape(-1)  # every patch

  def update(tx, grads, opt_state, params):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  def pix2pix_step(state: TranslationState, batch: Batch) -> tuple[TranslationState, Metrics]:
    x, y = batch["input"], batch["target"]
    dropout_key = jax.random.fold_in(state.rng, state.step)
    fake, g_vjp = jax.vjp(lambda p: generator.apply({"params": p}, x, train=True, rngs={"dropout": dropout_key}),
                          state.g_params)
    cond = lambda images: jnp.concatenate([x, images], axis=-1)   # D sees the input with the image

    def d_loss_fn(params):
      real_logits, fake_logits = d_logits(params, cond(y)), d_logits(params, cond(jax.lax.stop_gradient(fake)))
      return loss.discriminator(real_logits, fake_logits), (real_logits, fake_logits)

    (d_loss, (real_logits, fake_logits)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.d_params)
    d_params, d_opt_state = update(d_tx, d_grads, state.d_opt_state, state.d_params)
    if loss.generator_uses_real:
      real_logits = d_logits(d_params, cond(y))

    def g_loss_fn(fake_images):
      return pix2pix_generator_loss(loss, jax.lax.stop_gradient(real_logits),
                                    d_logits(d_params, cond(fake_images)), fake_images, y, t.lambda_l1)

    (g_loss, terms), fake_grad = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
    (g_grads,) = g_vjp(fake_grad)
    g_params, g_opt_state = update(g_tx, g_grads, state.g_opt_state, state.g_params)
    new_state = state.replace(step=state.step + 1, g_params=g_params, g_opt_state=g_opt_state,
                              d_params=d_params, d_opt_state=d_opt_state)
    return new_state, {"d_loss": d_loss, "g_loss": g_loss, **terms, "d_real_logit": jnp.mean(real_logits),
                       "d_fake_logit": jnp.mean(fake_logits), "d_grad_norm": optax.tree.norm(d_grads),
                       "g_grad_norm": optax.tree.norm(g_grads)}

  def cyclegan_step(state: TranslationState, batch: Batch) -> tuple[TranslationState, Metrics]:
    real_a, real_b = batch["a"], batch["b"]
    key_a, key_b = jax.random.split(jax.random.fold_in(state.rng, state.step))
    apply_g = lambda p: lambda images: generator.apply({"params": p}, images, train=True)
    apply_d = lambda p: lambda images: d_logits(p, images)

    def g_loss_fn(g_params):
      total, terms, fakes = cyclegan_generator_loss(
          apply_g(g_params["a2b"]), apply_g(g_params["b2a"]), apply_d(state.d_params["a"]),
          apply_d(state.d_params["b"]), real_a, real_b, loss=loss, lambda_cycle=t.lambda_cycle,
          lambda_identity=t.lambda_identity)
      return total, (terms, fakes)

    (g_loss, (terms, fakes)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
    g_params, g_opt_state = update(g_tx, g_grads, state.g_opt_state, state.g_params)
    pool_a, fake_a = query_pool(state.pools["a"], jax.lax.stop_gradient(fakes["a"]), key_a)
    pool_b, fake_b = query_pool(state.pools["b"], jax.lax.stop_gradient(fakes["b"]), key_b)

    def d_loss_fn(params):
      real_logits_a, real_logits_b = d_logits(params["a"], real_a), d_logits(params["b"], real_b)
      d_a_loss = loss.discriminator(real_logits_a, d_logits(params["a"], fake_a))
      d_b_loss = loss.discriminator(real_logits_b, d_logits(params["b"], fake_b))
      return d_a_loss + d_b_loss, {"d_a_loss": d_a_loss, "d_b_loss": d_b_loss,
                                   "d_real_logit": 0.5 * (jnp.mean(real_logits_a) + jnp.mean(real_logits_b))}

    (d_loss, d_terms), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.d_params)
    d_params, d_opt_state = update(d_tx, d_grads, state.d_opt_state, state.d_params)
    new_state = state.replace(step=state.step + 1, g_params=g_params, g_opt_state=g_opt_state,
                              d_params=d_params, d_opt_state=d_opt_state, pools={"a": pool_a, "b": pool_b})
    return new_state, {"d_loss": d_loss, "g_loss": g_loss, **terms, **d_terms,
                       "d_grad_norm": optax.tree.norm(d_grads), "g_grad_norm": optax.tree.norm(g_grads)}

  if config.task == "pix2pix":
    return pix2pix_step
  if config.task == "cyclegan":
    return cyclegan_step
  raise ValueError(f"Unknown translation task {config.task!r}; valid: {', '.join(TASKS)}.")


def create_state_and_step(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh):
  """(generator, initial state replicated on `mesh`, jitted train_step(state, batch)).

  As gan/train.py's GAN step: state replicated and donated, batch sharded along "data".
  """
  generator, discriminator = build(config)
  g_tx, d_tx = state_lib.make_optimizers(config)
  state, train_step = common.replicated_state_and_step(
      mesh, lambda: init_state(config, generator, discriminator, g_tx, d_tx),
      make_train_step(config, generator, discriminator, g_tx, d_tx))
  return generator, state, train_step


def abstract_state(config: ml_collections.ConfigDict) -> TranslationState:
  """The state's shapes and dtypes (jax.ShapeDtypeStruct leaves), without computing anything."""
  generator, discriminator = build(config)
  g_tx, d_tx = state_lib.make_optimizers(config)
  return jax.eval_shape(lambda: init_state(config, generator, discriminator, g_tx, d_tx))


# --------------------------------------------------------------------------- data


def load_pairs(data_config: ml_collections.ConfigDict, split: str) -> data.Dataset:
  """One split of paired data: images = photos (targets), pairs = edge maps (inputs), uint8."""
  config = data_config.copy_and_resolve_references()
  config.split = split
  if split != data_config.split:
    config.max_examples = 0   # held-out splits are used whole
  dataset = data.load_dataset(config)
  if dataset.pairs is None:
    raise data.DataError(f"task 'pix2pix' needs paired data (an edge map per photo): use "
                         f"data.source='products' with data.view='pair' (got source {data_config.source!r}, "
                         f"view {data_config.get('view', 'photo')!r}).")
  return dataset


def load_domains(data_config: ml_collections.ConfigDict, split: str, domain_a: int, domain_b: int
                 ) -> tuple[data.Dataset, data.Dataset]:
  """Photos of class domain_a and of class domain_b in one split, as two datasets (uint8)."""
  config = data_config.copy_and_resolve_references()
  config.split = split
  if split != data_config.split:
    config.max_examples = 0
  dataset = data.load_dataset(config)
  domains = []
  for name, label in (("domain_a", domain_a), ("domain_b", domain_b)):
    keep = dataset.labels == label
    if not keep.any():
      raise data.DataError(f"translation.{name}={label}: the {split!r} split has no images of that class "
                           f"(classes {dict(enumerate(dataset.class_names))}, counts "
                           f"{np.bincount(dataset.labels).tolist()}).")
    domains.append(data.Dataset(dataset.images[keep], dataset.labels[keep], dataset.class_names))
  return domains[0], domains[1]


def pix2pix_batches(dataset: data.Dataset, *, global_batch_size: int, seed: int, random_flip: bool,
                    start_step: int = 0, process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
  """Endless {"input": edges, "target": photos} host batches, (B / P, S, S, C) float32 in [-1, 1].

  Photo and edge map go through the input pipeline as one 2C-channel image, so a flip mirrors both.
  """
  c = dataset.images.shape[-1]
  joined = data.Dataset(np.concatenate([dataset.pairs, dataset.images], axis=-1), dataset.labels,
                        dataset.class_names)
  for batch in input_pipeline.batches(joined, global_batch_size=global_batch_size, seed=seed,
                                      random_flip=random_flip, start_step=start_step,
                                      process_index=process_index, process_count=process_count):
    yield {"input": batch["image"][..., :c], "target": batch["image"][..., c:]}


def cyclegan_batches(domain_a: data.Dataset, domain_b: data.Dataset, *, global_batch_size: int, seed: int,
                     random_flip: bool, start_step: int = 0, process_index: int = 0,
                     process_count: int = 1) -> Iterator[dict]:
  """Endless unpaired {"a": ..., "b": ...} host batches, (B / P, S, S, C) float32 in [-1, 1].

  B's order uses seed + 1: with the same seed two equal-sized domains would be drawn in the same
  order, pairing the k-th A image with the k-th B image every epoch.
  """
  kwargs = dict(global_batch_size=global_batch_size, random_flip=random_flip, start_step=start_step,
                process_index=process_index, process_count=process_count)
  for a, b in zip(input_pipeline.batches(domain_a, seed=seed, **kwargs),
                  input_pipeline.batches(domain_b, seed=seed + 1, **kwargs)):
    yield {"a": a["image"], "b": b["image"]}


# uint8 [0, 255] -> float32 [-1, 1], as the input pipeline scales (one implementation, the metrics').
to_float = train_classifier.to_model_input


def sample_examples(config: ml_collections.ConfigDict, rows: int) -> dict[str, np.ndarray]:
  """Fixed held-out inputs for sample grids: the first rows (pix2pix) / rows // 2 per domain (cyclegan).

  pix2pix: {"input": (R, S, S, C), "target": (R, S, S, C)}; cyclegan: {"a": (R / 2, ...), "b": ...};
  float32 in [-1, 1], spread evenly over the split (so both classes appear).
  """
  split = data.held_out_split(config.data)
  if config.task == "pix2pix":
    val = load_pairs(config.data, split)
    pick = np.linspace(0, len(val) - 1, min(rows, len(val))).round().astype(int)
    return {"input": to_float(val.pairs[pick]), "target": to_float(val.images[pick])}
  domain_a, domain_b = load_domains(config.data, split, config.translation.domain_a, config.translation.domain_b)
  half = max(1, rows // 2)
  pick = lambda d: to_float(d.images[np.linspace(0, len(d) - 1, min(half, len(d))).round().astype(int)])
  return {"a": pick(domain_a), "b": pick(domain_b)}


def apply_generator(generator: nn.Module, params: Params, images: jax.Array) -> jax.Array:
  """Eval-mode translation (dropout off): (N, S, S, C) -> (N, S, S, C), both in [-1, 1]."""
  return generator.apply({"params": params}, images, train=False)


def make_sample_grid(task: str, generator: nn.Module, examples: dict[str, np.ndarray]
                     ) -> Callable[[Params], np.ndarray]:
  """fn(g_params) -> uint8 grid with 3 columns per row: input | output | target (pix2pix) or
  input | translation | translated back (cyclegan: A rows first, then B rows)."""

  @jax.jit
  def rows(g_params):
    if task == "pix2pix":
      x = examples["input"]
      return jnp.stack([x, apply_generator(generator, g_params, x), examples["target"]], axis=1)
    a, b = examples["a"], examples["b"]
    to_b, to_a = functools.partial(apply_generator, generator, g_params["a2b"]), functools.partial(
        apply_generator, generator, g_params["b2a"])
    fake_b, fake_a = to_b(a), to_a(b)
    return jnp.concatenate([jnp.stack([a, fake_b, to_a(fake_b)], 1), jnp.stack([b, fake_a, to_b(fake_a)], 1)])

  def grid(g_params) -> np.ndarray:
    images = sampling.to_uint8(rows(g_params))
    return sampling.make_grid(images.reshape(-1, *images.shape[2:]), 3)

  return grid


# --------------------------------------------------------------------------- inference for users


class Translator(NamedTuple):
  """A trained translation run, loaded by `load`.

  task: "pix2pix" or "cyclegan".
  params: generator parameters by direction: pix2pix {"edges2photo"}, cyclegan {"a2b", "b2a"}.
  domains: what each direction maps, e.g. {"a2b": ("shoe", "handbag"), ...}.
  """
  task: str
  config: ml_collections.ConfigDict
  generator: nn.Module
  params: dict[str, Params]
  step: int
  domains: dict[str, tuple[str, str]]

  @property
  def image_size(self) -> int:
    return int(self.config.data.image_size)


def load(workdir: str) -> Translator:
  """The latest checkpoint of a pix2pix / CycleGAN training workdir.

  Raises:
    TranslationError: no such run, not a translation run, or no checkpoint yet.
  """
  try:
    config = runs.load_config(workdir)
  except runs.RunError as e:
    raise TranslationError(str(e)) from None
  task = runs.task_of(config)
  if task not in TASKS:
    raise TranslationError(f"{workdir} is a {task!r} run, not an image translation run (task pix2pix or "
                           "cyclegan); for GAN samples use python -m gan.sample.")
  generator, _ = build(config)
  try:
    state, meta = runs.restore_checkpoint(workdir, runs.on_one_device(abstract_state(config)),
                                          shape_signature(config), config.train.keep_checkpoints,
                                          train_command=TRAIN_COMMAND.format(task=task, workdir="{workdir}"))
  except runs.RunError as e:
    raise TranslationError(str(e)) from None
  names = tuple(meta.get("class_names", data.PRODUCT_CLASSES))
  if task == "pix2pix":
    params, domains = {"edges2photo": state.g_params}, {"edges2photo": ("edges", "photo")}
  else:
    a, b = (names[i] if 0 <= i < len(names) else str(i)
            for i in (config.translation.domain_a, config.translation.domain_b))
    params, domains = dict(state.g_params), {"a2b": (a, b), "b2a": (b, a)}
  return Translator(task, config, generator, params, int(state.step), domains)


@functools.lru_cache(maxsize=4)
def _jitted_apply(generator: nn.Module) -> Callable:
  return jax.jit(functools.partial(apply_generator, generator))


def translate(model: Translator, images: Any, direction: Optional[str] = None, batch_size: int = 64
              ) -> np.ndarray:
  """Translates a batch: (N, S, S, C) uint8 [0, 255] or float [-1, 1] -> (N, S, S, C) float32 [-1, 1].

  direction: pix2pix "edges2photo" (the default); cyclegan "a2b" (the default) or "b2a". S and C must
  be the run's data.image_size and data.channels (gan.style.controls.load_image(path, S) reads a file).
  """
  directions = DIRECTIONS[model.task]
  direction = direction or directions[0]
  if direction not in directions:
    raise TranslationError(f"Unknown direction {direction!r} for a {model.task} run; valid: "
                           f"{', '.join(f'{d} ({model.domains[d][0]} -> {model.domains[d][1]})' for d in directions)}.")
  images = np.asarray(images)
  images = to_float(images) if images.dtype == np.uint8 else images.astype(np.float32)
  if images.ndim == 3:
    images = images[None]
  want = (model.image_size, model.image_size, int(model.config.data.channels))
  if images.ndim != 4 or images.shape[1:] != want:
    raise TranslationError(f"Expected images of shape (N, {want[0]}, {want[1]}, {want[2]}) (the run's "
                           f"data.image_size and channels), got {images.shape}; resize first, e.g. with "
                           f"gan.style.controls.load_image(path, {want[0]}).")
  if images.size and (images.min() < -1.0 - 1e-3 or images.max() > 1.0 + 1e-3):
    raise TranslationError(f"Float images must be in [-1, 1], got values in [{images.min():.3g}, "
                           f"{images.max():.3g}]; pass uint8 images for [0, 255].")
  return run_generator(model.generator, model.params[direction], images, batch_size)


def run_generator(generator: nn.Module, params: Params, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
  """Eval-mode generator over (N, S, S, C) float32 [-1, 1] images in batches -> (N, S, S, C) float32.

  Every batch is padded to the same size, so the generator compiles once.
  """
  apply = _jitted_apply(generator)
  size = min(batch_size, len(images))
  outputs = []
  for i in range(0, len(images), size):
    chunk = np.asarray(images[i:i + size], np.float32)
    padded = np.concatenate([chunk, np.zeros((size - len(chunk), *chunk.shape[1:]), np.float32)])
    outputs.append(np.asarray(apply(params, padded))[:len(chunk)])
  return np.concatenate(outputs) if outputs else np.zeros_like(np.asarray(images, np.float32))


# --------------------------------------------------------------------------- evaluation
# pix2pix: PSNR / SSIM of G(edges) against the real photos of the held-out pairs, and FID / KID of the
# outputs vs those real photos. CycleGAN: FID / KID of G_AB(held-out A) vs real training B and of
# G_BA(held-out B) vs real training A. Floors: the same distances for real held-out images.


def domain_classifier_or_none(classifier_dir: str, who: str) -> Optional[evaluation.FeatureNetwork]:
  """The domain classifier, or None with a warning saying how to train it (FID / KID skipped)."""
  if os.path.isdir(os.path.join(classifier_dir, "checkpoints")):
    return evaluation.domain_network(classifier_dir)
  logging.warning("%s: no domain classifier in %r, so FID / KID are skipped. Train one with python -m "
                  "gan.main --config configs/classifier_products.py --workdir %s.",
                  who, classifier_dir, classifier_dir)
  return None

def fid_kid_metrics(real: dict[str, np.ndarray], fake: dict[str, np.ndarray], seed: int, suffix: str = ""
             ) -> dict[str, float]:
  results = evaluation.fid_kid(real["features"], fake["features"], seed)
  return {f"fid{suffix}": results["fid"], f"kid{suffix}": results["kid"]}

def select_rows(features: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
  return {k: v[keep] for k, v in features.items()}

def pix2pix_metrics(outputs: np.ndarray, targets: np.ndarray, net: Optional[evaluation.FeatureNetwork] = None,
                    real: Optional[dict[str, np.ndarray]] = None, seed: int = 0) -> dict[str, float]:
  """outputs, targets (N, S, S, C) float32 in [-1, 1] -> mean "psnr" (dB), "ssim" and, when its
  weights are fetched (`python -m gan.weights fetch lpips`), "lpips_alex" over the N pairs (images
  of at least 31 px), and with a feature network "fid" / "kid" of the outputs vs the `real`
  features (real_features)."""
  results = {"psnr": float(np.mean(image_metrics.psnr(outputs, targets, data_range=2.0))),
             "ssim": float(np.mean(image_metrics.ssim(outputs, targets, data_range=2.0)))}
  if lpips.available("alex") and min(outputs.shape[1:3]) >= lpips.MIN_SIZE["alex"]:
    results["lpips_alex"] = lpips.mean_distance(lpips.cached("alex"), outputs, targets)
  if net is not None:
    results.update(fid_kid_metrics(real, evaluation.features_of(net, outputs), seed))
  return results

def cyclegan_references(net: evaluation.FeatureNetwork, config: ml_collections.ConfigDict
                         ) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray, np.ndarray]:
  """(real training features per domain {"a", "b"}, held-out A images, held-out B images (float [-1, 1]))."""
  tr = config.translation
  train_real = evaluation.real_features(net, config.data, config.data.split)
  references = {"a": select_rows(train_real, train_real["labels"] == tr.domain_a),
                "b": select_rows(train_real, train_real["labels"] == tr.domain_b)}
  val_a, val_b = load_domains(config.data, data.held_out_split(config.data), tr.domain_a, tr.domain_b)
  return references, to_float(val_a.images), to_float(val_b.images)

def cyclegan_metrics(generator, g_params, val_a: np.ndarray, val_b: np.ndarray,
                     references: dict[str, dict[str, np.ndarray]], net: evaluation.FeatureNetwork, seed: int = 0
                     ) -> dict[str, float]:
  """"fid_a2b" / "kid_a2b" (G_AB(val_a) vs real B), "fid_b2a" / "kid_b2a", and "fid", their mean FID."""
  fake_b = run_generator(generator, g_params["a2b"], val_a)
  fake_a = run_generator(generator, g_params["b2a"], val_b)
  results = {**fid_kid_metrics(references["b"], evaluation.features_of(net, fake_b), seed, "_a2b"),
             **fid_kid_metrics(references["a"], evaluation.features_of(net, fake_a), seed, "_b2a")}
  results["fid"] = 0.5 * (results["fid_a2b"] + results["fid_b2a"])
  return results

def make_translation_evaluator(config: ml_collections.ConfigDict, generator
                               ) -> Optional[Callable[[Any], dict[str, float]]]:
  """fn(translation state) -> held-out metrics for the train loop, or None when evaluation is off.

  Off when config.eval.every is 0. Without the domain classifier (config.eval.classifier_dir) pix2pix
  still reports PSNR / SSIM and CycleGAN is off, both with a warning.
  """
  if not config.eval.every:
    return None
  net = domain_classifier_or_none(config.eval.classifier_dir, "In-training evaluation")
  seed = config.eval.seed
  if config.task == "pix2pix":
    split = data.held_out_split(config.data)
    val = load_pairs(config.data, split)
    inputs, targets = to_float(val.pairs), to_float(val.images)
    real = evaluation.real_features(net, config.data, split) if net is not None else None
    return lambda state: pix2pix_metrics(run_generator(generator, state.g_params, inputs),
                                         targets, net, real, seed)
  if net is None:
    return None
  references, val_a, val_b = cyclegan_references(net, config)
  return lambda state: cyclegan_metrics(generator, state.g_params, val_a, val_b, references, net, seed)


# --------------------------------------------------------------------------- the task


def config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """What is wrong with the config.translation keys (and the data / loss keys they constrain)."""
  tr, problems = config.translation, state_lib.config_problems(config)
  if config.loss.name not in adversarial.LOSSES:
    problems.append(f"Unknown loss.name {config.loss.name!r}; valid names: {sorted(adversarial.LOSSES)}.")
  for key in ("g_width", "d_width", "unet_depth", "d_layers"):
    if not isinstance(tr[key], int) or tr[key] < 1:
      problems.append(f"translation.{key} must be an int >= 1, got {tr[key]!r}.")
  for key in ("resnet_blocks", "pool_size"):
    if not isinstance(tr[key], int) or tr[key] < 0:
      problems.append(f"translation.{key} must be an int >= 0, got {tr[key]!r}.")
  for key in ("lambda_l1", "lambda_cycle", "lambda_identity"):
    if tr[key] < 0:
      problems.append(f"translation.{key} must be >= 0, got {tr[key]}.")
  if not 0.0 <= tr.dropout < 1.0:
    problems.append(f"translation.dropout must be in [0, 1), got {tr.dropout}.")
  if tr.norm not in nets.NORMS:
    problems.append(f"Unknown translation.norm {tr.norm!r}; valid: {list(nets.NORMS)}.")
  size = config.data.image_size
  if config.task == "pix2pix" and isinstance(tr.unet_depth, int) and size % 2 ** tr.unet_depth:
    problems.append(f"data.image_size {size} must be divisible by 2^translation.unet_depth = "
                    f"{2 ** tr.unet_depth}: use --config.translation.unet_depth={max(1, (size & -size).bit_length() - 1)}.")
  if config.task == "pix2pix" and config.data.get("view", "photo") != "pair":
    problems.append("task 'pix2pix' trains on edge map / photo pairs: set --config.data.view=pair "
                    "(data.source='products').")
  if config.task == "cyclegan" and size % 4:
    problems.append(f"task 'cyclegan' needs data.image_size divisible by 4, got {size}.")
  if config.task == "cyclegan" and tr.domain_a == tr.domain_b:
    problems.append(f"translation.domain_a and domain_b must be different classes, both are {tr.domain_a}.")
  if config.loss.d_steps != 1:
    problems.append(f"loss.d_steps must be 1 for task {config.task!r} (one D update per step), "
                    f"got {config.loss.d_steps}.")
  return problems


def setup(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, workdir: str, is_main: bool
          ) -> common.Task:
  """Data, models, state and step; sample grids of fixed held-out examples (input | output | target
  or translated back); the held-out evaluator."""
  del workdir, is_main
  kwargs = dict(global_batch_size=config.train.batch_size, seed=config.seed, random_flip=config.data.random_flip,
                process_index=jax.process_index(), process_count=jax.process_count())
  if config.task == "pix2pix":
    pairs = load_pairs(config.data, config.data.split)
    class_names = pairs.class_names
    batches = lambda start_step: pix2pix_batches(pairs, start_step=start_step, **kwargs)
  else:
    domain_a, domain_b = load_domains(config.data, config.data.split, config.translation.domain_a,
                                      config.translation.domain_b)
    class_names = domain_a.class_names
    batches = lambda start_step: cyclegan_batches(domain_a, domain_b, start_step=start_step, **kwargs)
  generator, state, train_step = create_state_and_step(config, mesh)
  grid = make_sample_grid(config.task, generator, sample_examples(config, config.sample.grid_rows))
  return common.Task(state, train_step, batches, lambda state: grid(state.g_params),
                     make_translation_evaluator(config, generator), shape_signature(config),
                     tuple(class_names), 1, description=config.task)
