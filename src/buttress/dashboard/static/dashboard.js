// The buttress live dashboard: subscribes to the server-sent events of api/stream and redraws.
// Plain browser JavaScript, no build step; charts by uPlot (vendored beside this file, MIT licence).
(function () {
  "use strict";
  const HISTORY = 180;       // points kept per chart (one per update)
  const MAX_SERIES = 6;      // endpoints drawn on the latency chart
  const PALETTE = ["#3b6fe0", "#e0683b", "#1f9d55", "#9b59b6", "#d98e04", "#16a2b8", "#c0392b", "#7f8c8d"];
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const fmt = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(d));
  const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + " %");
  const clock = (t) => new Date(t * 1000).toLocaleTimeString();

  // ---------------------------------------------------------------- charts
  function makeChart(el, seriesNames, yLabel) {
    const opts = {
      width: el.clientWidth || 400, height: 200,
      scales: { x: { time: true } },
      axes: [{}, { label: yLabel, size: 50 }],
      legend: { live: false },
      series: [{}].concat(seriesNames.map((name, i) => ({ label: name, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true }))),
    };
    return new uPlot(opts, [[]].concat(seriesNames.map(() => [])), el);
  }

  class SeriesChart {
    constructor(el, yLabel) { this.el = el; this.yLabel = yLabel; this.names = []; this.data = [[]]; this.plot = null; }
    push(t, values) {  // values: {name: number|null}
      const names = Object.keys(values);
      const changed = names.length !== this.names.length || names.some((n, i) => n !== this.names[i]);
      if (changed) {  // keep history of series that stay, start new ones empty
        const old = {};
        this.names.forEach((n, i) => { old[n] = this.data[i + 1]; });
        this.names = names;
        this.data = [this.data[0]].concat(names.map((n) => old[n] || this.data[0].map(() => null)));
        if (this.plot) { this.plot.destroy(); }
        this.el.innerHTML = "";
        this.plot = makeChart(this.el, names, this.yLabel);
      }
      this.data[0].push(t);
      names.forEach((n, i) => this.data[i + 1].push(values[n]));
      if (this.data[0].length > HISTORY) { this.data.forEach((s) => s.shift()); }
      this.plot.setData(this.data);
    }
    resize() { if (this.plot) { this.plot.setSize({ width: this.el.clientWidth, height: 200 }); } }
  }

  const charts = {
    latency: new SeriesChart($("chart-latency"), "ms"),
    rps: new SeriesChart($("chart-rps"), "req/s"),
    cache: new SeriesChart($("chart-cache"), "%"),
  };
  window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));

  // ---------------------------------------------------------------- tables
  function rows(tbody, items, render) { tbody.innerHTML = items.map(render).join(""); }

  function render(s) {
    const eps = s.endpoints || [];
    const total = eps.reduce((a, e) => a + (e.rps || 0), 0);
    const errors = eps.reduce((a, e) => a + (e.errors_rps || 0), 0);
    $("total-rps").textContent = fmt(total, 1);
    $("error-rps").textContent = fmt(errors, 2);
    const busiest = eps.filter((e) => e.rps > 0).sort((a, b) => b.rps - a.rps)[0];
    $("top-p95").textContent = busiest ? fmt(busiest.p95_ms, 1) : "–";
    $("workers").textContent = (s.workers || []).length + " worker" + ((s.workers || []).length === 1 ? "" : "s");
    $("updated").textContent = clock(s.time);
    $("window").textContent = s.window_s ? "(last " + fmt(s.window_s, 0) + " s)" : "";

    rows($("endpoints").tBodies[0], eps, (e) =>
      `<tr><td>${esc(e.method)} ${esc(e.route)}</td><td class="num">${fmt(e.rps)}</td><td class="num">${fmt(e.p50_ms)}</td>` +
      `<td class="num">${fmt(e.p95_ms)}</td><td class="num">${fmt(e.p99_ms)}</td><td class="num">${fmt(e.errors_rps, 2)}</td><td class="num">${e.total}</td></tr>`);

    const caches = s.cache || [];
    let hits = 0, reads = 0;
    caches.forEach((c) => { if (c.window_hit_rate !== null) { hits += c.window_hit_rate; reads += 1; } });
    const totalHits = caches.reduce((a, c) => a + c.hits, 0), totalReads = caches.reduce((a, c) => a + c.hits + c.misses, 0);
    $("hit-rate").textContent = totalReads ? pct(reads ? hits / reads : totalHits / totalReads) : "–";
    rows($("cache").tBodies[0], caches, (c) =>
      `<tr><td>${esc(c.namespace)}</td><td class="num">${pct(c.window_hit_rate)}</td><td class="num">${pct(c.hit_rate)}</td><td class="num">${fmt(c.entries, 0)}</td></tr>`);

    const slos = s.slo || [];
    $("slo-empty").hidden = slos.length > 0;
    rows($("slo").tBodies[0], slos, (o) => {
      const burns = Object.entries(o.burn_rates || {}).map(([w, b]) => `${esc(w)}: ${fmt(b, 2)}`).join(" · ");
      const ok = o.compliance === null || o.compliance === undefined || o.compliance >= o.objective;
      return `<tr><td>${esc(o.name)}</td><td class="num">${pct(o.objective)}</td><td class="num ${ok ? "good" : "bad"}">${pct(o.compliance)}</td>` +
        `<td class="num">${pct(o.budget_remaining)}</td><td>${burns || "–"}</td></tr>`;
    });

    $("breakers").innerHTML = (s.breakers || []).map((b) => {
      const calls = Object.entries(b.calls || {}).map(([k, v]) => `${esc(k)} ${fmt(v, 0)}`).join(", ");
      return `<div class="breaker state-${esc(b.state)}" data-breaker="${esc(b.name)}"><div class="name">${esc(b.name)}</div>` +
        `<div class="state">${esc(b.state.replace("_", "-"))}</div><div class="calls">${calls}</div></div>`;
    }).join("") || '<p class="empty">No circuit breakers yet.</p>';
    $("transitions").innerHTML = (s.transitions || []).slice().reverse().map((t) =>
      `<li>${clock(t.time)} <b>${esc(t.name)}</b> ${esc(t.from_state)} → ${esc(t.to_state)}${t.worker ? " (" + esc(t.worker) + ")" : ""}</li>`).join("");

    const dlq = s.dead_letters || [];
    $("dlq-depth").textContent = dlq.length ? fmt(dlq.reduce((a, d) => a + d.depth, 0), 0) : "–";
    rows($("dlq").tBodies[0], dlq, (d) => `<tr title="${esc(d.store || "")}"><td>${esc(d.name)}</td><td class="num">${fmt(d.depth, 0)}</td>` +
      `<td class="num">${d.depth ? fmt(d.oldest_age_s, 0) + " s" : "–"}</td><td class="num">${fmt(d.dead_lettered, 0)}</td><td class="num">${fmt(d.replayed, 0)}</td></tr>`);

    const controls = s.controls || [];
    $("controls-card").hidden = controls.length === 0;
    const box = $("controls");
    if (!box.dataset.names || box.dataset.names !== controls.map((c) => c.name).join(",")) {
      box.dataset.names = controls.map((c) => c.name).join(",");
      box.innerHTML = controls.map((c) => `<div class="control" data-control="${esc(c.name)}"><span class="name">${esc(c.name)}</span>` +
        `<span class="state"></span>` + c.actions.map((a) => `<button class="${esc(a)}" data-action="${esc(a)}">${esc(a)}</button>`).join("") + "</div>").join("");
    }
    controls.forEach((c) => {
      const el = box.querySelector(`[data-control="${CSS.escape(c.name)}"] .state`);
      if (el) { el.textContent = Object.entries(c.state || {}).map(([k, v]) => `${k}: ${v}`).join(" · "); }
    });

    $("extras").innerHTML = Object.entries(s.extras || {}).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(typeof v === "number" ? fmt(v, v % 1 ? 2 : 0) : v)}</dd>`).join("");

    // charts: the busiest endpoints' P95, total and error throughput, hit rate per namespace
    const top = eps.slice().sort((a, b) => b.total - a.total).slice(0, MAX_SERIES).sort((a, b) => (a.route < b.route ? -1 : 1));
    const lat = {};
    top.forEach((e) => { lat[`${e.method} ${e.route}`] = e.p95_ms; });
    charts.latency.push(s.time, lat);
    charts.rps.push(s.time, { total: total, "5xx": errors });
    const hr = {};
    caches.forEach((c) => { hr[c.namespace] = c.window_hit_rate === null ? null : 100 * c.window_hit_rate; });
    charts.cache.push(s.time, hr);
    document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
  }

  // ---------------------------------------------------------------- wiring
  $("controls").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (!button) { return; }
    const name = button.closest("[data-control]").dataset.control;
    button.disabled = true;
    fetch(`api/controls/${encodeURIComponent(name)}/${encodeURIComponent(button.dataset.action)}`, { method: "POST" })
      .finally(() => { button.disabled = false; });
  });

  function connect() {
    const source = new EventSource("api/stream");
    source.onopen = () => { $("conn").className = "dot live"; $("conn-text").textContent = "live"; };
    source.onerror = () => { $("conn").className = "dot down"; $("conn-text").textContent = "reconnecting…"; };
    source.onmessage = (ev) => render(JSON.parse(ev.data));
  }
  connect();
})();
