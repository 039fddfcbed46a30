// Screenshots of a running TensorBoard's Time Series, Scalars and HParams (table view) pages,
// taken in Debian's headless Chromium through playwright-core (no browser download).
//
//   node docs/tensorboard_screenshots.cjs http://127.0.0.1:6006 OUT_DIR [PREFIX]
//
// Usually run through tensorboard_screenshots.sh, which starts TensorBoard; its header has the set-up
// (apt-get install chromium; npm i playwright-core, found through NODE_PATH). CommonJS, so that
// NODE_PATH works. CHROMIUM=/path overrides the browser, VIEWPORT=WIDTHxHEIGHT the window (1600x1000).
const { chromium } = require("playwright-core");
const { mkdirSync } = require("node:fs");

const [url, outDir, prefix = "tb"] = process.argv.slice(2);
if (!url || !outDir) {
  console.error("usage: node tensorboard_screenshots.cjs TENSORBOARD_URL OUT_DIR [PREFIX]");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const [width, height] = (process.env.VIEWPORT || "1600x1000").split("x").map(Number);
  const page = await browser.newPage({ viewport: { width, height } });

  async function shot(name, hash, ready, report) {
    // forceSVG: headless Chromium without a GPU draws TensorBoard's WebGL line charts blank.
    await page.goto(`${url}/?forceSVG=true#${hash}`, { waitUntil: "networkidle" });
    await page.waitForSelector(ready, { state: "attached", timeout: 30000 });
    await page.waitForLoadState("networkidle");
    await page.waitForTimeout(2500); // charts draw after the data arrives
    if (report) console.log(`${name}: ${JSON.stringify(await page.evaluate(report))}`);
    const file = `${outDir}/${prefix}_${name}.png`;
    await page.screenshot({ path: file });
    console.log(file);
  }

  // Also print what a reader sees first: the tag groups in order, [name, open?] ...
  await shot("timeseries", "timeseries", "metrics-card-group-toolbar", () =>
    [...document.querySelectorAll("metrics-card-group-toolbar button.group-toolbar")].map((b) => [
      b.querySelector(".group-title").textContent.trim(),
      b.querySelector("mat-icon[svgicon^='expand_less']") !== null]));
  await shot("scalars", "scalars", "tf-scalar-card");
  // ... and the HParams columns ticked by default, in table order (Polymer, so search shadow DOMs).
  await shot("hparams", "hparams", "tf-hparams-query-pane", () => {
    const deep = (root, sel) => [...root.querySelectorAll(sel),
      ...[...root.querySelectorAll("*")].flatMap((e) => (e.shadowRoot ? deep(e.shadowRoot, sel) : []))];
    const pane = deep(document, "tf-hparams-query-pane")[0];
    return { hparams: pane._hparams.filter((h) => h.displayed).map((h) => h.info.name),
             metrics: pane._metrics.filter((m) => m.displayed).map((m) => m.info.name.tag) };
  });
  await browser.close();
})().catch((err) => { console.error(err); process.exit(1); });
