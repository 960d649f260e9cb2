"""The studio's HTML: Jinja templates (autoescaped by Flask) and a little vanilla JavaScript; no build step."""

from __future__ import annotations

from typing import Sequence

QUESTIONS = {"preference": "Which looks more like a real product photo?",
             "real_vs_generated": "Is this a real product photo or a generated one?"}

BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}{% endblock %} - productgan studio</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
 nav a { margin-right: 1em; }
 table { border-collapse: collapse; } td, th { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
 img.px { image-rendering: pixelated; }
 .trial img { width: 224px; height: 224px; image-rendering: pixelated; border: 1px solid #ccc; cursor: pointer; margin: 6px; }
 .error { color: #b00; } .muted { color: #777; }
 button { font-size: 1.1em; margin: 4px; padding: 6px 16px; }
</style></head>
<body><nav><a href="/">Runs</a><a href="/studies">Studies</a></nav>
{% block body %}{% endblock %}</body></html>
"""

RUNS = BASE.replace("{% block title %}{% endblock %}", "Runs").replace("{% block body %}{% endblock %}", """
<h1>Runs in {{ runs_dir }}</h1>
<table id="runs">
<tr><th>run</th><th>config</th><th>step</th><th>latest metrics</th><th>FID over training</th><th>newest samples</th></tr>
{% for r in runs %}
 {% if r.readable %}
 <tr class="run" data-run="{{ r.name }}">
  <td><b>{{ r.name }}</b><br>{% if r.task == 'generation' %}<a href="/runs/{{ r.name }}/sample">sample</a>{% endif %}</td>
  <td>task {{ r.task }}<br>model {{ r.model }}, loss {{ r.loss }}<br>data {{ r.data }} ({{ r.image_size }} px)<br>
      condition {{ r.conditional }}<br>{{ r.steps }} steps</td>
  <td>{{ r.step if r.step is not none else 'no checkpoint' }}</td>
  <td>{% for k, v in r.metrics.items() %}{{ k }} = {{ '%.4g' % v }}<br>{% endfor %}</td>
  <td>{% if r.fid %}{{ svg(r.fid) | safe }}<br><span class="muted">{{ r.fid_key }}</span>{% else %}<span class="muted">no FID logged</span>{% endif %}</td>
  <td>{% if r.grid %}<img class="px" width="160" src="/api/runs/{{ r.name }}/grid.png" alt="{{ r.grid }}"><br><span class="muted">{{ r.grid }}</span>{% endif %}</td>
 </tr>
 {% else %}
 <tr class="unreadable" data-run="{{ r.name }}"><td><b>{{ r.name }}</b></td><td colspan="5" class="error">unreadable: {{ r.error }}</td></tr>
 {% endif %}
{% else %}<tr><td colspan="6">No runs in this folder.</td></tr>{% endfor %}
</table>
""")

SAMPLE = BASE.replace("{% block title %}{% endblock %}", "Sample").replace("{% block body %}{% endblock %}", """
<h1>Sample {{ run.name }}</h1>
<p class="muted">{{ run.model }} on {{ run.data }}, checkpoint step {{ run.step }}, condition {{ run.conditional }}</p>
<form id="sample-form">
 seed <input name="seed" type="number" min="0" value="{{ args.get('seed', 0) }}">
 images <input name="num" type="number" min="1" max="64" value="{{ args.get('num', 16) }}">
 {% if run.conditional == 'class' %}label <input name="label" placeholder="e.g. sneaker or 7" value="{{ args.get('label', '') }}">{% endif %}
 {% if run.conditional == 'text' %}text <input name="text" placeholder="a dark ankle boot" value="{{ args.get('text', '') }}">{% endif %}
 {% if run.conditional == 'attributes' %}attributes <input name="attributes" placeholder="brightness=0.8,size=0.3" value="{{ args.get('attributes', '') }}">{% endif %}
 generator <select name="ema"><option value="1">EMA</option><option value="0">raw</option></select>
 <button id="draw" type="submit">Draw</button>
</form>
<p id="sample-error" class="error"></p>
<img id="sample-image" class="px" width="384" alt="">
<script>
const form = document.getElementById('sample-form');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const query = new URLSearchParams(new FormData(form));
  const response = await fetch('/api/runs/{{ run.name | urlencode }}/samples.png?' + query);
  const error = document.getElementById('sample-error'), image = document.getElementById('sample-image');
  if (!response.ok) { error.textContent = (await response.json()).error; image.removeAttribute('src'); return; }
  error.textContent = '';
  image.src = URL.createObjectURL(await response.blob());
  image.dataset.loaded = query.toString();
});
</script>
""")

STUDIES = BASE.replace("{% block title %}{% endblock %}", "Studies").replace("{% block body %}{% endblock %}", """
<h1>Studies</h1>
<table id="studies"><tr><th>name</th><th>kind</th><th>runs</th><th>trials</th><th>answers</th><th>status</th><th>links</th></tr>
{% for s in studies %}<tr><td>{{ s.name }}</td><td>{{ s.kind }}</td><td>{{ s.runs | join(', ') }}</td><td>{{ s.num_trials }}</td>
 <td>{{ s.answers }}</td><td>{{ s.status }}</td><td><a href="/s/{{ s.id }}">rater link</a> <a href="/studies/{{ s.id }}/results">results</a></td></tr>
{% else %}<tr><td colspan="7">No studies yet.</td></tr>{% endfor %}</table>
<h2>New study</h2>
<form id="study-form">
 <p>name <input name="name" required></p>
 <p>kind <select name="kind"><option value="preference">pairwise preference (two runs of the same data)</option>
  <option value="real_vs_generated">real vs generated (HYPE)</option></select></p>
 <p>runs {% for r in runs %}<label><input type="checkbox" name="runs" value="{{ r.name }}"> {{ r.name }}</label> {% endfor %}</p>
 <p>trials <input name="num_trials" type="number" min="1" value="20">
    time limit per image (ms, 0 = none) <input name="time_limit_ms" type="number" min="0" value="0">
    seed <input name="seed" type="number" min="0" value="0">
    <label><input type="checkbox" name="ema" checked> EMA generator</label></p>
 <button id="create" type="submit">Create</button>
</form>
<p id="study-error" class="error"></p>
<p id="study-link"></p>
<script>
const form = document.getElementById('study-form');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const f = new FormData(form);
  const body = {name: f.get('name'), kind: f.get('kind'), runs: f.getAll('runs'),
                num_trials: parseInt(f.get('num_trials')), time_limit_ms: parseInt(f.get('time_limit_ms')),
                seed: parseInt(f.get('seed')), ema: f.get('ema') !== null};
  const response = await fetch('/api/studies', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                body: JSON.stringify(body)});
  const result = await response.json();
  if (!response.ok) { document.getElementById('study-error').textContent = result.error; return; }
  const link = document.getElementById('study-link');
  link.innerHTML = 'Share this link with raters: <a id="share" href="' + result.url + '">' + result.url +
                   '</a> &middot; <a href="' + result.results + '">results</a>';
});
</script>
""")

RATER = BASE.replace("{% block title %}{% endblock %}", "Study").replace("{% block body %}{% endblock %}", """
<h1>{{ study.name }}</h1>
<p id="question"><b>{{ question }}</b>
 {% if study.time_limit_ms %}<span class="muted">(each image is shown for {{ study.time_limit_ms }} ms)</span>{% endif %}</p>
<p id="progress" class="muted"></p>
<div class="trial" id="images"></div>
<div id="buttons">
 {% if study.kind == 'preference' %}<button id="choose-a" data-choice="a">Left</button><button id="choose-b" data-choice="b">Right</button>
 {% else %}<button id="choose-real" data-choice="real">Real</button><button id="choose-generated" data-choice="generated">Generated</button>{% endif %}
</div>
<p id="status" class="muted"></p>
<script>
const study = {{ study.id | tojson }}, session = {{ session | tojson }}, limit = {{ study.time_limit_ms }};
let trial = null, shownAt = null, busy = true;
const images = document.getElementById('images'), status = document.getElementById('status');
async function next() {
  busy = true; document.body.dataset.ready = '0';
  const response = await fetch('/api/studies/' + study + '/next?session=' + session);
  const t = await response.json();
  if (!response.ok) { status.textContent = t.error; return; }
  if (t.done) { images.innerHTML = ''; document.getElementById('buttons').hidden = true;
                status.textContent = 'Done, thank you! You answered all ' + t.total + ' trials.';
                document.body.dataset.done = '1'; document.body.dataset.ready = '1'; return; }
  trial = t.trial;
  document.getElementById('progress').textContent = 'Trial ' + (t.answered + 1) + ' of ' + t.total;
  images.innerHTML = '';
  const loads = t.images.map((src, i) => new Promise((resolve) => {
    const img = new Image(); img.onload = resolve; img.onerror = resolve; img.src = src;
    img.dataset.choice = t.kind === 'preference' ? 'ab'[i] : ''; img.alt = 'image ' + (i + 1);
    if (t.kind === 'preference') img.addEventListener('click', () => answer('ab'[i]));
    images.appendChild(img);
  }));
  await Promise.all(loads);
  shownAt = performance.now(); busy = false;
  document.body.dataset.trial = String(trial); document.body.dataset.ready = '1';   // for tests: answerable
  if (limit > 0) setTimeout(() => { if (document.body.dataset.trial === String(trial))
    images.querySelectorAll('img').forEach((img) => { img.style.visibility = 'hidden'; }); }, limit);
}
async function answer(choice) {
  if (busy) return;
  busy = true; document.body.dataset.ready = '0';
  const body = {trial: trial, session: session, choice: choice, response_ms: Math.round(performance.now() - shownAt)};
  const response = await fetch('/api/studies/' + study + '/answers', {method: 'POST',
      headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  if (!response.ok && response.status !== 409) { status.textContent = (await response.json()).error; return; }
  document.body.dataset.answered = String((parseInt(document.body.dataset.answered || '0')) + 1);
  next();
}
document.querySelectorAll('#buttons button').forEach((b) => b.addEventListener('click', () => answer(b.dataset.choice)));
next();
</script>
""")

RESULTS = BASE.replace("{% block title %}{% endblock %}", "Results").replace("{% block body %}{% endblock %}", """
<h1>Results: {{ study.name }}</h1>
<p>{{ study.kind }} &middot; status <span id="status">{{ study.status }}</span> &middot;
 <span id="answer-count">{{ results.answers }}</span> answers from {{ results.sessions }} raters &middot;
 {{ study.num_trials }} trials, study seed {{ study.seed }} &middot; <a href="/s/{{ study.id }}">rater link</a></p>
{% if results.kind == 'preference' %}
<table id="results"><tr><th>run</th><th>wins</th><th>comparisons</th><th>Bradley-Terry log-score</th><th>95% bootstrap CI</th></tr>
{% for r in results.runs %}<tr data-run="{{ r.run }}"><td>{{ r.run }}</td><td class="wins">{{ r.wins }}</td><td class="comparisons">{{ r.comparisons }}</td>
 <td>{{ '%.3f' % r.score if r.score is not none else '-' }}</td>
 <td>{{ '[%.3f, %.3f]' % (r.low, r.high) if r.low is not none else '-' }}</td></tr>{% endfor %}</table>
{% if results.prior %}<p class="muted">A run never won (or never lost): scores use {{ results.prior }} pseudo-wins per pair.</p>{% endif %}
{% else %}
<table id="results"><tr><th>run</th><th>generated judged real</th><th>generated shown</th><th>fool rate</th><th>95% Wilson CI</th></tr>
{% for r in results.runs %}<tr data-run="{{ r.run }}"><td>{{ r.run }}</td><td class="fooled">{{ r.fooled }}</td><td class="n">{{ r.n }}</td>
 <td>{{ '%.3f' % r.rate if r.rate is not none else '-' }}</td><td>[{{ '%.3f' % r.low }}, {{ '%.3f' % r.high }}]</td></tr>{% endfor %}
</table>
<p>Real images judged real: <span id="real-called-real">{{ results.real.called_real }}</span> of <span id="real-n">{{ results.real.n }}</span>.</p>
{% endif %}
<p><button id="export">Export CSV / JSON / figure</button> <button id="finish">Finish study</button></p>
<p id="exported" class="muted"></p>
<script>
const study = {{ study.id | tojson }};
document.getElementById('export').addEventListener('click', async () => {
  const response = await fetch('/api/studies/' + study + '/export', {method: 'POST',
      headers: {'Content-Type': 'application/json'}, body: '{}'});
  const result = await response.json();
  document.getElementById('exported').textContent = response.ok ? 'Wrote ' + result.files.join(', ') : result.error;
});
document.getElementById('finish').addEventListener('click', async () => {
  await fetch('/api/studies/' + study + '/finish', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                   body: '{}'});
  location.reload();
});
</script>
""")


def fid_svg(points: Sequence[tuple[int, float]], width: int = 200, height: int = 80) -> str:
  """An inline SVG line chart of (step, FID) points, axes labelled with the ranges; numbers only
  (no user text), so it is safe to embed unescaped."""
  if not points:
    return ""
  steps = [float(p[0]) for p in points]
  values = [float(p[1]) for p in points]
  x0, x1 = min(steps), max(steps) if max(steps) > min(steps) else min(steps) + 1
  y0, y1 = min(values), max(values) if max(values) > min(values) else min(values) + 1
  pad = 4
  xy = " ".join(f"{pad + (s - x0) / (x1 - x0) * (width - 2 * pad):.1f},"
                f"{height - pad - (v - y0) / (y1 - y0) * (height - 2 * pad):.1f}" for s, v in zip(steps, values))
  return (f'<svg class="fid" width="{width}" height="{height + 14}" viewBox="0 0 {width} {height + 14}">'
          f'<polyline fill="none" stroke="#0072B2" stroke-width="1.5" points="{xy}"/>'
          f'<text x="0" y="{height + 12}" font-size="10">step {x0:.0f}-{x1:.0f}, FID {min(values):.2f}-'
          f'{max(values):.2f}</text></svg>')
