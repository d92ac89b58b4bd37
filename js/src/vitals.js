// buttress Web Vitals beacon: reports LCP, INP, CLS, FCP and TTFB (measured by the web-vitals package)
// to the buttress vitals endpoint. Include it with
//   <script src="/_buttress/vitals.js" data-endpoint="/_buttress/vitals" data-page="/events/{id}" defer></script>
// data-page should be the route template, not the concrete URL, so pages aggregate (default: the path).
import { onCLS, onFCP, onINP, onLCP, onTTFB } from "web-vitals";

const script = document.currentScript;
const endpoint = (script && script.dataset.endpoint) || "/_buttress/vitals";
const page = (script && script.dataset.page) || location.pathname;

function deviceClass() {
  const hints = navigator.userAgentData;
  const ua = navigator.userAgent || "";
  if (/iPad|Tablet/i.test(ua)) return "tablet";
  if (hints && typeof hints.mobile === "boolean") return hints.mobile ? "mobile" : "desktop";
  if (/Mobi|Android|iPhone/i.test(ua)) return "mobile";
  return "desktop";
}

// One entry per metric id: a metric reported again (CLS grows, INP worsens) replaces its earlier value,
// and the server ignores ids it has already counted.
const pending = new Map();

function queue(metric) {
  pending.set(metric.id, {
    name: metric.name,
    value: metric.value,
    id: metric.id,
    rating: metric.rating,
    navigationType: metric.navigationType,
  });
}

function flush() {
  if (!pending.size) return;
  const body = JSON.stringify({ page: page, device: deviceClass(), metrics: Array.from(pending.values()) });
  pending.clear();
  const sent = navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([body], { type: "application/json" }));
  if (!sent) {
    fetch(endpoint, { body: body, method: "POST", keepalive: true, headers: { "Content-Type": "application/json" } });
  }
}

addEventListener("visibilitychange", function () {
  if (document.visibilityState === "hidden") flush();
});
addEventListener("pagehide", flush);

onCLS(queue);
onFCP(queue);
onINP(queue);
onLCP(queue);
onTTFB(queue);
