// Loads the buttress dashboard in Debian's headless Chromium and reports what a person would see.
// Usage: node drive.mjs <dashboard url> <screenshot path> [control to break and heal]
// Prints one JSON object: two readings taken a few updates apart, and the control's state after clicks.
import { chromium } from "playwright-core";

const [url, screenshot, control] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1500 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: "load" });
  const updates = () => page.evaluate(() => Number(document.body.dataset.updates));
  const read = () => page.evaluate(() => ({
    updates: Number(document.body.dataset.updates),
    totalRps: document.getElementById("total-rps").textContent,
    topP95: document.getElementById("top-p95").textContent,
    hitRate: document.getElementById("hit-rate").textContent,
    connection: document.getElementById("conn-text").textContent,
    endpoints: [...document.querySelectorAll("#endpoints tbody tr")].map((tr) => [...tr.cells].map((c) => c.textContent)),
    caches: [...document.querySelectorAll("#cache tbody tr")].map((tr) => [...tr.cells].map((c) => c.textContent)),
    breakers: [...document.querySelectorAll("[data-breaker]")].map((b) => `${b.dataset.breaker} ${b.querySelector(".state").textContent}`),
    dlqDepth: document.getElementById("dlq-depth").textContent,
    dlq: [...document.querySelectorAll("#dlq tbody tr")].map((tr) => [...tr.cells].map((c) => c.textContent)),
    charts: document.querySelectorAll(".uplot").length,
  }));
  await page.waitForFunction(() => Number(document.body.dataset.updates) >= 3, null, { timeout: 30000 });
  const first = await read();
  const target = first.updates + 3;
  await page.waitForFunction((n) => Number(document.body.dataset.updates) >= n, target, { timeout: 30000 });
  const second = await read();
  const controls = [];
  if (control) {
    for (const action of ["break", "heal"]) {
      await page.click(`[data-control="${control}"] button[data-action="${action}"]`);
      const want = action === "break" ? "down: true" : "down: false";
      await page.waitForFunction(([c, w]) => {
        const el = document.querySelector(`[data-control="${c}"] .state`);
        return el && el.textContent.includes(w);
      }, [control, want], { timeout: 30000 });
      controls.push(await page.evaluate((c) => document.querySelector(`[data-control="${c}"] .state`).textContent, control));
    }
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ first, second, controls, errors, updates: await updates() }));
} finally {
  await browser.close();
}
