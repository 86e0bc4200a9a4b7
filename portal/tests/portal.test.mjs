// The portal in a real browser (Debian's Chromium, driven by playwright-core)
// against the deployed local stack: a new applicant signs up, confirms with
// the e-mailed code, signs in, buys 3 stamps and pays on the gateway's page,
// uploads a 2-page PDF, places the stamp on page 2, downloads the stamped
// file under their own name, refunds the 2 unused stamps and verifies the
// file on the public page. Also: a wrong password, a non-PDF, an oversized
// file, an API answering 503 for a while, an ended session.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, mkdirSync, writeFileSync, statSync } from "node:fs";
import { chromium } from "playwright-core";

const root = new URL("../../", import.meta.url).pathname;
const env = Object.fromEntries(
  readFileSync(`${root}.build/meterai-local.env`, "utf8").split("\n").filter((l) => l.includes("="))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
);
const API = env.METERAI_API_URL;
const out = `${root}.build/portal`;
mkdirSync(out, { recursive: true });

// A valid PDF of `pages` A4 pages, each saying its number.
function pdf(pages) {
  const objects = ["<< /Type /Catalog /Pages 2 0 R >>", null];
  const kids = [];
  for (let i = 0; i < pages; i++) {
    const text = `BT /F1 24 Tf 72 760 Td (Halaman ${i + 1}) Tj ET`;
    objects.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 ${3 + pages * 2} 0 R >> >> /Contents ${objects.length + 2} 0 R >>`);
    kids.push(`${objects.length} 0 R`);
    objects.push(`<< /Length ${text.length} >>\nstream\n${text}\nendstream`);
  }
  objects[1] = `<< /Type /Pages /Kids [${kids.join(" ")}] /Count ${pages} >>`;
  objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  let body = "%PDF-1.7\n";
  const offsets = objects.map((o, i) => { const at = body.length; body += `${i + 1} 0 obj\n${o}\nendobj\n`; return at; });
  const xref = body.length;
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("")}`;
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(body, "latin1");
}

async function codeFor(address) {
  for (let i = 0; i < 50; i++) {
    const text = JSON.stringify(await (await fetch(`${env.METERAI_ENDPOINT_URL}/_ministack/ses/messages`)).json());
    const at = text.lastIndexOf(address);
    const match = at >= 0 && /Kode verifikasi meterai Anda: (\d{6})/.exec(text.slice(Math.max(0, at - 2000)));
    if (match) return match[1];
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no code e-mailed to ${address}`);
}

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});
after(async () => browser?.close());

const phone = { viewport: { width: 360, height: 780 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, acceptDownloads: true };

async function signedUp(page, address, password) {
  await page.goto(`${API}/#/daftar`);
  await page.fill("#f-username", address);
  await page.fill("#f-password", password);
  await page.click("button[type=submit]");
  await page.waitForURL(/#\/konfirmasi/);
  await page.fill("#f-code", await codeFor(address));
  await page.click("button[type=submit]");
  await page.waitForURL(/#\/masuk/);
}

async function signIn(page, address, password) {
  await page.fill("#f-username", address);
  await page.fill("#f-password", password);
  await page.click("button[type=submit]");
}

test("an applicant buys, pays, places the stamp on page 2, downloads, refunds and verifies", async () => {
  const context = await browser.newContext(phone);
  const page = await context.newPage();
  const address = `pelamar-${Date.now()}@example.test`;
  const password = "Lamaran-2026";
  await signedUp(page, address, password);

  await signIn(page, address, "Salah-sandi-1");
  await page.getByRole("alert").getByText("kata sandi salah").waitFor();
  await signIn(page, address, password);
  await page.waitForSelector("#available");
  assert.equal(await page.textContent("#available"), "0");
  await page.screenshot({ path: `${out}/phone-dashboard.png`, fullPage: true });

  // Buy 3: the price in rupiah, then the gateway's page.
  await page.goto(`${API}/#/beli`);
  await page.fill("#f-quantity", "3");
  assert.match(await page.textContent("#total"), /Rp\s?30\.000/);
  await page.screenshot({ path: `${out}/phone-buy.png`, fullPage: true });
  await page.click("button[type=submit]");
  await page.waitForURL(/snap\/v4\/redirection/);
  await page.check("input[value=qris]");
  await page.click("button[value=pay]");
  await page.getByText("Pembayaran berhasil").waitFor();
  // Back to the portal by the payment page's own link (Snap's finish URL).
  await page.click("#finish");
  await page.waitForURL(/#\/pesanan\/ord_/);
  await page.getByText("3 meterai masuk").waitFor({ timeout: 30_000 });

  // Bad files are told before anything is sent.
  await page.goto(`${API}/#/bubuhkan`);
  await page.setInputFiles("#f-file", { name: "foto.jpg", mimeType: "image/jpeg", buffer: Buffer.from("\xff\xd8\xff\xe0 not a pdf") });
  await page.getByText("bukan PDF").waitFor();
  await page.setInputFiles("#f-file", { name: "besar.pdf", mimeType: "application/pdf", buffer: Buffer.alloc(10_000_001, 0x25) });
  await page.getByText("terlalu besar").waitFor();

  // A 2-page letter; the stamp goes on page 2 near the bottom right.
  await page.setInputFiles("#f-file", { name: "surat-lamaran.pdf", mimeType: "application/pdf", buffer: pdf(2) });
  await page.waitForSelector("#page canvas");
  await page.selectOption("#f-page", "2");
  await page.waitForSelector('#page canvas[aria-label$="2"]');
  await page.locator("#page").evaluate((el) => el.scrollIntoView({ block: "end" }));
  const box = await page.locator("#page canvas").boundingBox();
  // Tap where the box's centre should be: 3/4 across, 3/4 down.
  await page.touchscreen.tap(box.x + box.width * 0.75, box.y + box.height * 0.75);
  await page.screenshot({ path: `${out}/phone-place.png`, fullPage: true });
  await page.click("#stamp-here");
  await page.waitForURL(/#\/stamps\/job_/);
  await page.getByText("Selesai").waitFor({ timeout: 60_000 });
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  assert.equal(download.suggestedFilename(), "surat-lamaran-meterai.pdf");
  const stamped = `${out}/surat-lamaran-meterai.pdf`;
  await download.saveAs(stamped);
  execFileSync("qpdf", ["--check", stamped]);
  // The mark (its serial's text) is on page 2, around where it was tapped:
  // the centre of the 100-point box at 3/4 of the page in both directions.
  const words = execFileSync("pdftotext", ["-f", "2", "-l", "2", "-bbox", stamped, "-"]).toString();
  const serial = (await page.textContent("#job-status")).match(/[0-9A-Z]{22}/)[0];
  const word = [...words.matchAll(/<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<\/word>/g)]
    .find((m) => m[5].includes(serial));
  assert.ok(word, `the serial ${serial} is on page 2:\n${words}`);
  const [cx, cy] = [(+word[1] + +word[3]) / 2, (+word[2] + +word[4]) / 2];
  assert.ok(Math.abs(cx - 595 * 0.75) < 50 && Math.abs(cy - 842 * 0.75) < 50, `mark centre at ${cx},${cy}`);
  const firstPage = execFileSync("pdftotext", ["-f", "1", "-l", "1", stamped, "-"]).toString();
  assert.ok(!firstPage.includes(serial), "page 1 has no mark");

  // Refund the 2 unused stamps.
  await page.goto(`${API}/#/riwayat`);
  await page.getByRole("button", { name: "Kembalikan meterai" }).click();
  await page.getByText("2 meterai dikembalikan").waitFor();
  for (const move of ["pembelian", "terpakai", "dikembalikan (refund)"]) await page.getByRole("cell", { name: move, exact: true }).waitFor();
  await page.screenshot({ path: `${out}/phone-history.png`, fullPage: true });
  // Nothing is wider than the 360-pixel phone, in either language.
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth), "no sideways scrolling");
  await page.click("#lang");
  await page.getByRole("heading", { name: "Quota movements" }).waitFor();
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth), "no sideways scrolling in English");
  await page.screenshot({ path: `${out}/phone-history-en.png`, fullPage: true });
  await page.click("#lang");

  // The public page, signed out, in English.
  const visitor = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const desk = await visitor.newPage();
  await desk.goto(`${API}/#/verifikasi`);
  await desk.getByRole("heading", { name: "Periksa dokumen bermeterai" }).waitFor();
  await desk.screenshot({ path: `${out}/desktop-verify-id.png`, fullPage: true });
  await desk.click("#lang");
  await desk.setInputFiles("#f-verify-file", stamped);
  await desk.getByText("The stamp is genuine").waitFor();
  // The QR code's address, followed by a browser: the portal checks the serial.
  await desk.goto(`${API}/v1/verify/${serial}`);
  await desk.waitForURL(new RegExp(`#/verifikasi/${serial}`));
  await desk.getByText("We issued this serial").waitFor();
  await desk.screenshot({ path: `${out}/desktop-verify.png`, fullPage: true });
  await visitor.close();
  await context.close();
});

test("a busy API is retried without losing the action, and an ended session asks to sign in", async () => {
  const context = await browser.newContext(phone);
  const page = await context.newPage();
  const address = `sibuk-${Date.now()}@example.test`;
  const password = "Lamaran-2026";
  await signedUp(page, address, password);
  await signIn(page, address, password);
  await page.waitForSelector("#available");

  // Two 503s, then the API answers: the user sees the retry notice, then the page.
  let refused = 0;
  await page.route("**/v1/quota", (route) => (refused++ < 2
    ? route.fulfill({ status: 503, contentType: "application/json", body: '{"error":{"code":"DEPENDENCY_UNAVAILABLE","message":"busy"}}' })
    : route.continue()));
  await page.goto(`${API}/#/riwayat`);
  await page.goto(`${API}/#/`);
  await page.getByText("Mencoba lagi").waitFor();
  await page.waitForSelector("#available", { timeout: 20_000 });
  assert.equal(refused, 3);
  await page.unroute("**/v1/quota");

  // The session ended (the refresh token no longer works).
  await page.route("**/auth/refresh", (route) => route.fulfill({ status: 401, contentType: "application/json", body: '{"error":{"code":"SESSION_ENDED","message":"ended"}}' }));
  await page.reload();
  await page.waitForURL(/#\/masuk/);
  await context.close();
});
