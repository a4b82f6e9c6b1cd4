// Measures how responsive the Ask view stays while `quarry serve` indexes a 1,000-file folder:
// key-to-paint latency in the question box (idle, then during indexing) and the time to an
// answer asked mid-run. A benchmark run by hand (`npm run bench:ui`), never a timed test.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { launchChromium, modelsOf, startServer } from "./harness.mjs";

const repo = resolve(import.meta.dirname, "../..");
const bin = process.env.QUARRY_BIN ?? join(process.env.HOME, ".cache/quarry/target/debug/quarry");
const data = process.env.QUARRY_TEST_DATA ?? resolve(repo, "../shared/data");
const files = Number(process.env.FILES ?? 1000);

const topics = ["lease", "invoice", "warranty", "insurance", "salary", "holiday", "pension", "tax", "loan", "contract"];
function note(i) {
  const t = topics[i % topics.length];
  return `# Note ${i} on the ${t}\n\nThis note ${i} records that the ${t} number ${i * 7} was reviewed on day ${i % 28 + 1}. ` +
    `The reviewer found the ${t} terms acceptable and filed them under box ${i % 50}. ` +
    `Questions about the ${t} go to desk ${i % 13}, which answers within ${i % 5 + 1} working days.\n`;
}

const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

async function keyLatencies(page, n) {
  const box = page.getByLabel("Your question");
  await box.fill("");
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = Date.now();
    await box.press("a");
    // The character is in the box and a frame has been painted.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
    out.push(Date.now() - t0);
    await page.waitForTimeout(50);
  }
  return out;
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), "quarry-resp-"));
  const docs = join(work, "docs");
  mkdirSync(docs);
  for (let i = 0; i < files; i++) writeFileSync(join(docs, `note-${String(i).padStart(4, "0")}.md`), note(i));
  const { child, url } = await startServer(bin, join(work, "lib"), modelsOf(data));
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(url);
    const idle = await keyLatencies(page, 30);
    await page.getByRole("button", { name: "Library" }).click();
    await page.getByLabel("Folder or file path").fill(docs);
    const started = Date.now();
    await page.getByRole("button", { name: "Add folder" }).click();
    await page.locator("progress").waitFor({ timeout: 60_000 });
    await page.getByRole("button", { name: "Ask" }).first().click();
    const busy = await keyLatencies(page, 30);
    await page.getByLabel("Your question").fill("Which desk answers questions about the pension?");
    const askStart = Date.now();
    await page.locator("#ask-button").click();
    await page.locator("[data-testid=answer], [data-testid=refusal]").first().waitFor({ timeout: 120_000 });
    const askMs = Date.now() - askStart;
    await page.getByRole("button", { name: "Library" }).click();
    await page.getByText(`${files} documents indexed`).waitFor({ timeout: 3_600_000 });
    const indexS = (Date.now() - started) / 1000;
    console.log(JSON.stringify({
      files,
      key_to_paint_ms_idle: { p50: quantile(idle, 0.5), p95: quantile(idle, 0.95) },
      key_to_paint_ms_indexing: { p50: quantile(busy, 0.5), p95: quantile(busy, 0.95) },
      ask_while_indexing_ms: askMs,
      index_seconds: indexS,
    }, null, 2));
  } finally {
    await browser.close();
    child.kill("SIGINT");
    rmSync(work, { recursive: true, force: true });
  }
}
main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
