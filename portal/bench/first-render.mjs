// What the portal costs a phone on a slow network: bytes transferred and the
// time until the sign-in form can be used, on Chrome's "Slow 4G" profile
// (1.6 Mbit/s down, 750 kbit/s up, 150 ms round trip) with the CPU slowed
// 4x, cold cache each time; median of RUNS. Against the stack of
// .build/meterai-local.env. Usage: node portal/bench/first-render.mjs [runs]

import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const root = new URL("../../", import.meta.url).pathname;
const env = Object.fromEntries(readFileSync(`${root}.build/meterai-local.env`, "utf8").split("\n")
  .filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
const runs = Number(process.argv[2] ?? 5);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const results = [];
for (let i = 0; i < runs; i++) {
  const context = await browser.newContext({ viewport: { width: 360, height: 780 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 150, downloadThroughput: (1.6 * 1024 * 1024) / 8, uploadThroughput: (750 * 1024) / 8 });
  await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 });
  let bytes = 0;
  cdp.on("Network.loadingFinished", (e) => (bytes += e.encodedDataLength));
  const started = Date.now();
  await page.goto(`${env.METERAI_API_URL}/#/masuk`);
  await page.waitForSelector("#f-password");
  const usable = Date.now() - started;
  await page.waitForLoadState("networkidle");
  const paint = await page.evaluate(() => performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null);
  results.push({ usable_ms: usable, first_paint_ms: Math.round(paint), bytes });
  await context.close();
}
await browser.close();
const summary = {
  profile: "Slow 4G (1.6 Mbit/s, 150 ms RTT), CPU 4x slower, 360 px phone, cold cache",
  runs,
  median_sign_in_usable_ms: median(results.map((r) => r.usable_ms)),
  median_first_contentful_paint_ms: median(results.map((r) => r.first_paint_ms)),
  median_bytes_transferred: median(results.map((r) => r.bytes)),
  results,
};
mkdirSync(`${root}.build/bench`, { recursive: true });
writeFileSync(`${root}.build/bench/portal-first-render.json`, JSON.stringify(summary, null, 2));
console.log(JSON.stringify(summary, null, 2));
