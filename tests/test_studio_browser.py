"""gan.studio in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`) driven by
Selenium opens every page, answers two short studies by clicking and reads the results page.

Skips, saying why, without selenium, chromium or chromedriver (.ci/run installs them).
Screenshots of each page go to a temporary folder, or to docs/studio_*.png with
PRODUCTGAN_WRITE_SCREENSHOTS=1 (how the README's screenshots are made).
"""

import importlib.util
import os
from pathlib import Path
import shutil
import threading

import pytest

from test_studio import make_runs_folder

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

# Checked before any fixture is set up (a skip after the tiny run is trained would cost ~25 s).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("selenium") is None,
                       reason="selenium is not installed (pip install -e '.[dev]')"),
    pytest.mark.skipif(not CHROMIUM or not CHROMEDRIVER,
                       reason="chromium / chromedriver not found on PATH (Debian: apt-get install chromium "
                              "chromium-driver; .ci/run does it)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_run, tiny_data_dir):
  """The studio served by waitress on a free loopback port in a thread: (base URL, runs folder)."""
  import waitress  # pylint: disable=g-import-not-at-top
  from gan.studio import app as studio_app  # pylint: disable=g-import-not-at-top
  runs_dir = make_runs_folder(tmp_path_factory.mktemp("browser"), tiny_run, tiny_data_dir)
  web_server = waitress.create_server(studio_app.create_app(runs_dir), host="127.0.0.1", port=0, threads=4)
  thread = threading.Thread(target=web_server.run, daemon=True)
  thread.start()
  yield f"http://127.0.0.1:{web_server.effective_port}", runs_dir
  web_server.close()


@pytest.fixture(scope="module")
def browser():
  from selenium import webdriver  # pylint: disable=g-import-not-at-top
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,850"):
    options.add_argument(arg)
  from selenium.webdriver.chrome.service import Service  # pylint: disable=g-import-not-at-top
  driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
  driver.set_page_load_timeout(120)
  yield driver
  driver.quit()


@pytest.fixture(scope="module")
def screenshot(tmp_path_factory):
  folder = REPO / "docs" if os.environ.get("PRODUCTGAN_WRITE_SCREENSHOTS") == "1" else tmp_path_factory.mktemp("shots")

  def save(driver, name: str) -> Path:
    path = folder / f"studio_{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 1000
    return path

  return save


def wait(driver, predicate, timeout: float = 120.0):
  from selenium.webdriver.support.ui import WebDriverWait  # pylint: disable=g-import-not-at-top
  return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: predicate(d))


def answer_all(driver, click) -> int:
  """Answers the open rater page until it says done, `click(driver, k)` for trial k; returns the count."""
  k = 0
  while True:
    wait(driver, lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    if driver.execute_script("return document.body.dataset.done") == "1":
      return k
    click(driver, k)
    k += 1
    wait(driver, lambda d: d.execute_script("return document.body.dataset.answered") == str(k))


def test_browse_sample_run_a_study_and_read_the_results(browser, server, screenshot):
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  base, _ = server
  d = browser

  d.get(base + "/")                                          # Runs
  rows = {r.get_attribute("data-run"): r for r in d.find_elements(By.CSS_SELECTOR, "#runs tr[data-run]")}
  assert set(rows) == {"dcgan_a", "dcgan_b", "broken", "empty"}
  assert "unreadable" in rows["broken"].text and rows["dcgan_a"].find_elements(By.CSS_SELECTOR, "svg.fid")
  wait(d, lambda d: d.execute_script("return [...document.images].every(i => i.complete && i.naturalWidth > 0)"))
  screenshot(d, "runs")

  d.get(base + "/runs/dcgan_a/sample")                       # Sample
  d.find_element(By.NAME, "seed").clear()
  d.find_element(By.NAME, "seed").send_keys("7")
  d.find_element(By.ID, "draw").click()
  wait(d, lambda d: d.find_element(By.ID, "sample-image").get_attribute("data-loaded"))
  wait(d, lambda d: d.execute_script("const i = document.getElementById('sample-image'); "
                                     "return i.complete && i.naturalWidth > 0"))
  screenshot(d, "sample")

  d.get(base + "/studies")                                   # Study: create, then rate by clicking
  d.find_element(By.NAME, "name").send_keys("Which is more real?")
  for box in d.find_elements(By.NAME, "runs"):
    box.click()
  trials = d.find_element(By.NAME, "num_trials")
  trials.clear()
  trials.send_keys("4")
  d.find_element(By.ID, "create").click()
  share = wait(d, lambda d: d.find_elements(By.ID, "share"))[0]
  share.click()
  # Trials 0-2: click the left image, trial 3: the "Right" button; screenshot with the images shown.
  def click(driver, k):
    if k == 1:
      screenshot(driver, "study")
    if k < 3:
      driver.find_elements(By.CSS_SELECTOR, "#images img")[0].click()
    else:
      driver.find_element(By.ID, "choose-b").click()
  assert answer_all(d, click) == 4
  assert "answered all 4" in d.find_element(By.ID, "status").text

  study_id = d.current_url.rsplit("/", 1)[1]
  d.get(f"{base}/studies/{study_id}/results")                # Results
  assert d.find_element(By.ID, "answer-count").text == "4"
  wins = {r.get_attribute("data-run"): int(r.find_element(By.CLASS_NAME, "wins").text)
          for r in d.find_elements(By.CSS_SELECTOR, "#results tr[data-run]")}
  comparisons = [int(e.text) for e in d.find_elements(By.CSS_SELECTOR, "#results td.comparisons")]
  assert sum(wins.values()) == 4 and comparisons == [4, 4]
  d.find_element(By.ID, "export").click()
  wait(d, lambda d: "answers.csv" in d.find_element(By.ID, "exported").text)
  screenshot(d, "results")


def test_real_vs_generated_by_buttons_with_a_time_limit(browser, server):
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  base, _ = server
  d = browser
  d.get(base + "/studies")
  study = d.execute_script("""
    const r = await fetch('/api/studies', {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({name: 'HYPE', kind: 'real_vs_generated', runs: ['dcgan_a'], num_trials: 3,
                            seed: 2, time_limit_ms: 300})});
    return await r.json();""")
  d.get(study["url"])

  def click(driver, k):
    if k == 0:   # HYPE: the image disappears after the time limit; the answer buttons stay
      wait(driver, lambda d: d.execute_script(
          "return [...document.querySelectorAll('#images img')].every(i => i.style.visibility === 'hidden')"))
    driver.find_element(By.ID, "choose-real").click()
  assert answer_all(d, click) == 3
  d.get(study["results"])
  assert d.find_element(By.ID, "answer-count").text == "3"
  fooled = int(d.find_element(By.CSS_SELECTOR, "#results td.fooled").text)
  shown = int(d.find_element(By.CSS_SELECTOR, "#results td.n").text)
  real = int(d.find_element(By.ID, "real-called-real").text)
  assert fooled == shown and fooled + real == 3     # every image answered "real"
