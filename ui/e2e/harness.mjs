// What the UI suite and the UI benchmark share: starting `quarry serve` on a library and
// reading the address it prints, and launching Debian's Chromium the way this machine allows.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

/** This checkout's UI build, named to `serve` so a binary built from another checkout (the
 * build cache is shared) still serves the UI under test. */
const uiDist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");

/** Starts `quarry serve --port 0`; resolves with the child and the printed address. */
export function startServer(bin, dataDir, modelsDir) {
  const args = ["--data-dir", dataDir, "--models-dir", modelsDir, "serve", "--port", "0", "--ui-dir", uiDist];
  const child = spawn(bin, args, {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolveUrl, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+\/#token=[0-9a-f]+/);
      if (m) resolveUrl({ child, url: m[0] });
    });
    child.on("exit", (code) => reject(new Error(`quarry serve exited with ${code}: ${stderr}`)));
    setTimeout(() => reject(new Error(`quarry serve printed no address: ${out} ${stderr}`)), 60_000);
  });
}

/** Headless Chromium without the background connections a closed network refuses. */
export function launchChromium(executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium") {
  return chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export const modelsOf = (data) => join(data, "models");
