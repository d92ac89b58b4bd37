"""The platform's small public HTML page: the current event and the archive, read from the API.

It is what a visitor's browser loads, so it is where real-user timings come from: the page includes
buttress's Web Vitals beacon, which reports LCP, INP, CLS and TTFB to the SLO engine (see
:mod:`buttress.demo.wiring`). Everything on it comes from ``/api/v1``, like the real platform's pages.
"""

from __future__ import annotations

__all__ = ["HOME", "render_home"]

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>BATbern — event platform (buttress demo)</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2433; background: #f6f7fb; }
  header { background: #1d2433; color: #fff; padding: 18px 28px; }
  header a { color: #9ec5ff; }
  main { max-width: 980px; margin: 0 auto; padding: 20px 28px; }
  .current { background: #fff; border-radius: 10px; padding: 18px; display: flex; gap: 18px;
             box-shadow: 0 1px 3px rgba(0,0,0,.08); }
  .current img { width: 320px; height: 160px; border-radius: 8px; background: #dde; }
  table { width: 100%; border-collapse: collapse; background: #fff; margin-top: 18px; }
  td, th { padding: 6px 10px; border-bottom: 1px solid #eef; text-align: left; }
</style>
{beacon}
</head>
<body>
<header><strong>BATbern</strong> — the event platform buttress was built for ·
  <a href="/_buttress/">live dashboard</a> · <a href="/api/docs">API</a></header>
<main>
  <section class="current" id="current"><p>Loading the current event…</p></section>
  <h2>Archive</h2>
  <table><thead><tr><th>#</th><th>Event</th><th>Date</th><th>City</th></tr></thead>
  <tbody id="archive"></tbody></table>
</main>
<script>
const ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"};
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ENTITIES[c]);
fetch("/api/v1/events/current").then((r) => r.json()).then((body) => {
  const e = body.data;
  if (!e) { document.getElementById("current").textContent = "No event is open right now."; return; }
  document.getElementById("current").innerHTML =
    `<img alt="" src="${esc(e.image_url)}"><div><h1>${esc(e.title)}</h1>` +
    `<p>${esc(e.date)} · ${esc(e.city)} · ${e.sessions.length} sessions</p>` +
    `<p>${esc(e.description)}</p></div>`;
});
fetch("/api/v1/events?limit=20&sort=-date").then((r) => r.json()).then((body) => {
  document.getElementById("archive").innerHTML = body.data.map((e) =>
    `<tr><td>${e.number}</td><td>${esc(e.title)}</td><td>${esc(e.date)}</td>` +
    `<td>${esc(e.city)}</td></tr>`).join("");
});
</script>
</body>
</html>
"""


def render_home(beacon: str = "") -> str:
    """The page, with ``beacon`` (a ``<script>`` element) in its head."""
    return _TEMPLATE.replace("{beacon}", beacon)


#: The page without a beacon (the app renders its own with the SLO beacon once at startup).
HOME = render_home()
