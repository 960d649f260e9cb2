"""Continuous conditions end to end: attribute and caption conditions of a dataset, training with
them, and sampling from a user's attribute profile or a caption."""

import numpy as np
import pytest

from configs import default
from configs import text_encoder_fashion_mnist
from configs import tiny
from gan import attributes
from gan import conditioning
from gan import data
from gan import sample
from gan import sampling
from gan import text
from gan import train
from gan.studio import app as studio_app

from conftest import assert_studio_samples


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, write_idx):
  """256 synthetic 28x28 'products' on black: class c is a bar at row 2c whose brightness varies."""
  rng = np.random.default_rng(0)
  labels = np.arange(256) % 4
  images = np.zeros((256, 28, 28), np.uint8)
  for i, c in enumerate(labels):
    images[i, 2 * c + 2:2 * c + 10, 4:24] = 60 + (i * 7) % 190
  folder = tmp_path_factory.mktemp("idx")
  write_idx(folder, images, labels, split="train")
  return str(folder)


def config_for(data_dir, condition, cond_dim, text_dir=""):
  config = tiny.get_config()
  config.data.dir = data_dir
  config.data.num_classes = 10
  config.data.condition = condition
  config.data.text_encoder_dir = text_dir
  config.model.cond_dim = cond_dim
  return config


def test_attribute_conditions_are_the_measured_vectors(data_dir):
  config = config_for(data_dir, "attributes", len(attributes.ATTRIBUTE_NAMES))
  dataset = data.load_dataset(config.data)
  conditions = conditioning.dataset_conditions(config, dataset)
  np.testing.assert_array_equal(conditions, attributes.attribute_vectors(attributes.measure(dataset.images)))
  brightness = conditions[:, attributes.ATTRIBUTE_NAMES.index("brightness")]
  # The bars' pixel values are 60 + (7 i mod 190): brightness follows them (padding 28 -> 32 is black).
  expected = (60 + (np.arange(256) * 7) % 190) / 255
  assert np.corrcoef(brightness, expected)[0, 1] > 0.99


def test_train_and_sample_from_an_attribute_profile(tmp_path, data_dir):
  config = config_for(data_dir, "attributes", len(attributes.ATTRIBUTE_NAMES))
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  pool = conditioning.load_pool(workdir)
  assert pool.cond.shape == (256, len(attributes.ATTRIBUTE_NAMES))
  dark = sample.sample_images(workdir, 4, attribute_spec="brightness=0.1", seed=1).images
  light = sample.sample_images(workdir, 4, attribute_spec="brightness=0.9", seed=1).images
  assert dark.shape == (4, 32, 32, 1)
  assert np.abs(dark.astype(int) - light.astype(int)).max() > 0     # the profile reaches G
  with pytest.raises(sample.SampleError, match="Unknown attribute 'brightnes'.*valid: brightness"):
    sample.sample_images(workdir, 4, attribute_spec="brightnes=0.5")
  with pytest.raises(sample.SampleError, match="values are in \\[0, 1\\]"):
    sample.sample_images(workdir, 4, attribute_spec="size=3")
  with pytest.raises(sample.SampleError, match="--text needs a model trained with data.condition='text'"):
    sample.sample_images(workdir, 4, text="a bag")
  # The studio's Sample page draws the same images for the same attributes (and says what is wrong).
  client = studio_app.create_app(tmp_path).test_client()
  page = client.get("/runs/run/sample")
  assert page.status_code == 200 and b'name="attributes"' in page.data
  assert_studio_samples(client, "run", {"num": 4, "seed": 1, "attributes": "brightness=0.1"}, dark, 2)
  bad = client.get("/api/runs/run/samples.png", query_string={"num": 4, "attributes": "brightnes=0.5"})
  assert bad.status_code == 400 and b"Unknown attribute" in bad.data


def test_text_conditioned_run_samples_from_free_text(tmp_path, data_dir):
  config = config_for(data_dir, "text", 8, str(tmp_path / "encoder"))
  # The text encoder first: a run of task "text_encoder" on the same data (4 steps, no held-out split).
  encoder_config = default.apply_overrides(text_encoder_fashion_mnist.get_config(), {
      "data.dir": data_dir, "model.embed_dim": 8, "model.width": 16, "model.num_layers": 1,
      "model.num_heads": 2, "model.image_width": 8, "train.steps": 4, "train.batch_size": 32,
      "eval.every": 0})
  encoder_state = train.train_and_evaluate(encoder_config, config.data.text_encoder_dir)
  dataset = data.load_dataset(config.data)
  captions = conditioning.dataset_captions(dataset)
  conditioner = text.conditioner_of(encoder_config, text.Tokenizer.build(captions), encoder_state.params)
  conditions = conditioning.dataset_conditions(config, dataset)
  np.testing.assert_allclose(conditions[:3], conditioner.embed(captions[:3]), atol=1e-6)
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  images = sample.sample_images(workdir, 2, text=captions[0]).images
  assert images.shape == (2, 32, 32, 1)
  client = studio_app.create_app(tmp_path).test_client()   # the text encoder's run is listed beside it
  assert b'name="text"' in client.get("/runs/run/sample").data
  assert_studio_samples(client, "run", {"num": 2, "seed": 0, "text": captions[0]}, images, 2)
  word = captions[0].split()[-1]
  with pytest.raises(sample.SampleError, match=f"Closest known words: .*{word}"):
    sample.sample_images(workdir, 2, text=captions[0][:-1] + word[-1] + "x")


def test_text_condition_without_an_encoder_says_how_to_train_one(data_dir):
  config = config_for(data_dir, "text", 8, "")
  with pytest.raises(conditioning.ConditionError, match="python -m gan.main --config "
                                                       "configs/text_encoder_fashion_mnist.py --workdir <dir>"):
    conditioning.dataset_conditions(config, data.load_dataset(config.data))


def test_draw_conditions_takes_rows_of_the_pool():
  import jax
  pool = sampling.ConditionPool(np.array([3, 5, 7], np.int32), np.array([[0.3], [0.5], [0.7]], np.float32))
  labels, cond = sampling.draw_conditions(jax.random.PRNGKey(0), 50, 10, pool)
  np.testing.assert_allclose(np.asarray(cond)[:, 0], np.asarray(labels) / 10, atol=1e-6)  # rows stay paired
  assert set(np.asarray(labels).tolist()) == {3, 5, 7}
