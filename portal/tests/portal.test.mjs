// The portal in a real browser (Debian's Chromium, driven by playwright-core)
// against the deployed local stack: a new applicant signs up, confirms with
// the e-mailed code, signs in, buys 3 stamps and pays on the gateway's page,
// uploads a 2-page PDF, places the stamp on page 2, downloads the stamped
// file under their own name, refunds the 2 unused stamps and verifies the
// file on the public page; the file is judged by the API tests' oracles
// (qpdf, pdfsig, pyHanko) and every screen by axe-core's WCAG 2 A/AA rules.
// Also: a wrong password, a non-PDF, an oversized file, an API answering 503
// for a while, a session that ends in the middle of a purchase, several
// documents at once, a rotated page with a crop box.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { request as httpRequest } from "node:http";
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

// A valid PDF of `pages` A4 pages, each saying its number; `extra` is added
// to every page's dictionary (a /Rotate, a /CropBox).
function pdf(pages, extra = "") {
  const objects = ["<< /Type /Catalog /Pages 2 0 R >>", null];
  const kids = [];
  for (let i = 0; i < pages; i++) {
    const text = `BT /F1 24 Tf 72 760 Td (Halaman ${i + 1}) Tj ET`;
    objects.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] ${extra} /Resources << /Font << /F1 ${3 + pages * 2} 0 R >> >> /Contents ${objects.length + 2} 0 R >>`);
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

// The verification codes the user pool e-mailed to `address`, oldest first,
// from the emulator's record of what SES sent.
async function codesFor(address) {
  const sent = await (await fetch(`${env.METERAI_ENDPOINT_URL}/_ministack/ses/messages`)).json();
  return Object.values(sent.messages ?? {}).flat()
    .filter((m) => String(m.To).includes(address))
    .map((m) => /Kode verifikasi meterai Anda: (\d{6})/.exec(m.BodyText ?? "")?.[1])
    .filter(Boolean);
}

// The newest code once more than `seen` have been sent.
async function codeFor(address, seen = 0) {
  for (let i = 0; i < 50; i++) {
    const codes = await codesFor(address);
    if (codes.length > seen) return codes.at(-1);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no code e-mailed to ${address}`);
}

// Where the mark is drawn on `page` of `stamped`, as a viewer shows it
// (pdftoppm with the crop box and the page's rotation, 1 pixel = 1 point):
// the box of the pixels that differ from the same page of `original`, in
// points from the shown page's top-left corner.
function markBox(stamped, original, page, name) {
  const render = (file, prefix) => {
    execFileSync("pdftoppm", ["-cropbox", "-r", "72", "-gray", "-singlefile", "-f", String(page), "-l", String(page), file, prefix]);
    const pgm = readFileSync(`${prefix}.pgm`);
    const [, w, hgt] = /^P5\s+(\d+)\s+(\d+)\s+255\s/.exec(pgm.toString("latin1", 0, 40));
    const header = pgm.length - w * hgt;
    return { w: +w, h: +hgt, px: pgm.subarray(header) };
  };
  writeFileSync(`${out}/${name}-original.pdf`, original);
  const before = render(`${out}/${name}-original.pdf`, `${out}/${name}-original`);
  const after = render(stamped, `${out}/${name}-stamped`);
  assert.deepEqual([after.w, after.h], [before.w, before.h], "same page size");
  let [x0, y0, x1, y1] = [Infinity, Infinity, -1, -1];
  for (let y = 0; y < after.h; y++) {
    for (let x = 0; x < after.w; x++) {
      if (Math.abs(after.px[y * after.w + x] - before.px[y * after.w + x]) > 48) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    }
  }
  assert.ok(x1 >= 0, `${name}: a mark is drawn on page ${page}`);
  return { width: after.w, height: after.h, cx: (x0 + x1 + 1) / 2, cy: (y0 + y1 + 1) / 2, w: x1 - x0 + 1, h: y1 - y0 + 1 };
}

// The screen has no WCAG 2 A or AA violation that axe-core can find.
const axeSource = readFileSync(`${root}portal/node_modules/axe-core/axe.min.js`, "utf8");
async function accessible(page, screen) {
  if ((await page.evaluate(() => typeof window.axe)) === "undefined") await page.evaluate(axeSource);
  const { violations } = await page.evaluate(() => window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }));
  assert.deepEqual(violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`), [], `${screen}: accessibility`);
}

// Sends an intercepted request on to the API from here, for a test that
// must see (or change) the real answer before the page does. Node does not
// resolve the emulator's *.localhost API host as Chromium does: the request
// goes to loopback with the page's Host header.
function passOn(request) {
  const url = new URL(request.url());
  return new Promise((resolve, reject) => {
    const sent = httpRequest({ host: "127.0.0.1", port: url.port || 80, path: url.pathname + url.search, method: request.method(),
      headers: { ...request.headers(), host: url.host } }, (answer) => {
      const chunks = [];
      answer.on("data", (c) => chunks.push(c));
      answer.on("end", () => resolve({ status: answer.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    sent.on("error", reject);
    sent.end(request.postDataBuffer() ?? undefined);
  });
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
  await accessible(page, "sign-in with an error");
  await signIn(page, address, password);
  await page.waitForSelector("#available");
  assert.equal(await page.textContent("#available"), "0");
  await page.screenshot({ path: `${out}/phone-dashboard.png`, fullPage: true });
  await accessible(page, "dashboard");

  // Buy 3: the price in rupiah, then the gateway's page.
  await page.goto(`${API}/#/beli`);
  await page.fill("#f-quantity", "3");
  assert.match(await page.textContent("#total"), /Rp\s?30\.000/);
  await page.screenshot({ path: `${out}/phone-buy.png`, fullPage: true });
  await accessible(page, "buy");
  await page.click("button[type=submit]");
  await page.waitForURL(/snap\/v4\/redirection/);
  await page.check("input[value=qris]");
  await page.click("button[value=pay]");
  await page.getByText("Pembayaran berhasil").waitFor();
  // Back to the portal by the payment page's own link (Snap's finish URL).
  await page.click("#finish");
  await page.waitForURL(/#\/pesanan\/ord_/);
  await page.getByText("3 meterai masuk").waitFor({ timeout: 30_000 });
  // Its receipt: the total in rupiah and when it was paid, in WIB.
  assert.match(await page.textContent("#receipt-total"), /Rp\s?30\.000/);
  assert.match(await page.textContent("#receipt"), /Dibayar pada.*\d{2}\.\d{2} WIB/s);
  await page.screenshot({ path: `${out}/phone-receipt.png`, fullPage: true });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth), "the receipt fits the phone");
  await accessible(page, "receipt");

  // Bad files are told before anything is sent.
  await page.goto(`${API}/#/bubuhkan`);
  await page.setInputFiles("#f-file", { name: "foto.jpg", mimeType: "image/jpeg", buffer: Buffer.from("\xff\xd8\xff\xe0 not a pdf") });
  await page.getByText("bukan PDF").waitFor();
  await page.setInputFiles("#f-file", { name: "besar.pdf", mimeType: "application/pdf", buffer: Buffer.alloc(10_000_001, 0x25) });
  await page.getByText("terlalu besar").waitFor();

  // A 2-page letter; the stamp goes on page 2 near the bottom right.
  await page.setInputFiles("#f-file", { name: "surat-lamaran.pdf", mimeType: "application/pdf", buffer: pdf(2) });
  await page.waitForSelector("#page-1 canvas");
  await page.selectOption("#f-page-1", "2");
  await page.waitForSelector('#page-1 canvas[aria-label$="2"]');
  await page.locator("#page-1").evaluate((el) => el.scrollIntoView({ block: "end" }));
  const box = await page.locator("#page-1 canvas").boundingBox();
  // Tap where the box's centre should be: 3/4 across, 3/4 down.
  await page.touchscreen.tap(box.x + box.width * 0.75, box.y + box.height * 0.75);
  await page.screenshot({ path: `${out}/phone-place.png`, fullPage: true });
  await accessible(page, "placing the stamp");
  // The first read of the job finds it still queued, as at a deadline: the
  // page says how busy the queue is and by when the accept promised it.
  let firstRead;
  await page.route("**/v1/stamps/job_*", async (route) => {
    if (firstRead) return route.continue();
    const real = await passOn(route.request());
    firstRead = JSON.parse(real.body);
    return route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify({ ...firstRead, status: "queued", queue_position: 3, poll_after_seconds: 1 }) });
  });
  await page.click("#stamp-here");
  await page.waitForURL(/#\/stamps\/job_/);
  await page.getByText("Rampung paling lambat").waitFor({ timeout: 10_000 });
  await page.screenshot({ path: `${out}/phone-queued.png`, fullPage: true });
  await page.unroute("**/v1/stamps/job_*");
  const promisedIn = Date.parse(firstRead.done_by) - Date.parse(firstRead.created_at);
  assert.ok(promisedIn >= 60_000 && promisedIn <= 15 * 60_000, `promised ${firstRead.done_by} for ${firstRead.created_at}`);
  await page.getByText("Selesai").waitFor({ timeout: 60_000 });
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  assert.equal(download.suggestedFilename(), "surat-lamaran-meterai.pdf");
  const stamped = `${out}/surat-lamaran-meterai.pdf`;
  await download.saveAs(stamped);
  await accessible(page, "job done");
  // Judged as the API tests judge stamped files: qpdf finds no damage,
  // pyHanko and pdfsig one valid signature by the stage's signing chain.
  assert.match(execFileSync("qpdf", ["--check", stamped]).toString(), /No syntax or stream encoding errors/);
  const pyhanko = execFileSync(`${root}tests/.venv/bin/pyhanko`, ["sign", "validate", "--pretty-print", "--no-revocation-check",
    "--trust-replace", "--trust", env.METERAI_SIGNING_TRUST, stamped]).toString();
  assert.equal(pyhanko.match(/The signature is judged VALID/g)?.length, 1, pyhanko);
  assert.ok(!pyhanko.includes("INVALID"), pyhanko);
  let pdfsig;
  try { pdfsig = execFileSync("pdfsig", [stamped]).toString(); } catch (e) { pdfsig = `${e.stdout}${e.stderr}`; }
  assert.equal(pdfsig.match(/Signature Validation: Signature is Valid\./g)?.length, 1, pdfsig);
  // The mark is drawn on page 2 where it was tapped (the centre of the box
  // at 3/4 of the page in both directions), at its true size (100 points).
  const serial = (await page.textContent("#job-status")).match(/[0-9A-Z]{22}/)[0];
  assert.ok(execFileSync("pdftotext", ["-f", "2", "-l", "2", stamped, "-"]).toString().includes(serial), "the serial is on page 2");
  const mark = markBox(stamped, pdf(2), 2, "letter");
  assert.ok(Math.abs(mark.cx - 595 * 0.75) < 8 && Math.abs(mark.cy - 842 * 0.75) < 8, `mark centre at ${mark.cx},${mark.cy}`);
  assert.ok(Math.abs(mark.w - 100) <= 6 && Math.abs(mark.h - 100) <= 6, `mark ${mark.w} x ${mark.h} points`);
  const firstPage = execFileSync("pdftotext", ["-f", "1", "-l", "1", stamped, "-"]).toString();
  assert.ok(!firstPage.includes(serial), "page 1 has no mark");

  // Refund the 2 unused stamps.
  await page.goto(`${API}/#/riwayat`);
  await page.getByRole("button", { name: "Kembalikan meterai" }).click();
  await page.getByText("2 meterai dikembalikan").waitFor();
  for (const move of ["pembelian", "terpakai", "dikembalikan (refund)"]) await page.getByRole("cell", { name: move, exact: true }).waitFor();
  await page.screenshot({ path: `${out}/phone-history.png`, fullPage: true });
  await accessible(page, "history");
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
  await accessible(desk, "verification");
  await visitor.close();
  await context.close();
});

test("a busy API, a session ending mid-purchase, three documents at once (one rotated and cropped, one refused until a stamp is bought), an ended session, a forgotten password", async () => {
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
  // Two refused, then passed on (a busy answer from the stack itself, say a
  // cold start, is retried too).
  assert.ok(refused >= 3, `${refused}`);
  await page.unroute("**/v1/quota");

  // The platform sheds (429): first with Retry-After 3, then twice with no
  // header (as the gateway's own throttle answers). The page waits what it
  // was told, then backs off by itself, says it is in the waiting room, and
  // gets through without the user doing anything.
  const tries = [];
  await page.route("**/v1/quota", (route) => {
    tries.push(Date.now());
    if (tries.length === 1) {
      return route.fulfill({ status: 429, contentType: "application/json", headers: { "retry-after": "3" }, body: '{"message":"Too Many Requests"}' });
    }
    if (tries.length <= 3) return route.fulfill({ status: 429, contentType: "application/json", body: '{"message":"Too Many Requests"}' });
    return route.continue();
  });
  await page.goto(`${API}/#/riwayat`);
  await page.goto(`${API}/#/`);
  await page.getByText("percobaan ke-3").waitFor({ timeout: 10_000 });
  await page.screenshot({ path: `${out}/phone-waiting-room.png`, fullPage: true });
  await page.waitForSelector("#available", { timeout: 30_000 });
  assert.ok(tries.length >= 4, `${tries.length}`);
  assert.ok(tries[1] - tries[0] >= 2900, `Retry-After 3 was obeyed (${tries[1] - tries[0]} ms)`);
  // Without the header the page still waits (at least 1 s, growing), never hammers.
  assert.ok(tries[2] - tries[1] >= 900, `a bare 429 was waited out (${tries[2] - tries[1]} ms)`);
  assert.ok(tries[3] - tries[2] >= 900, `and again (${tries[3] - tries[2]} ms)`);
  await page.unroute("**/v1/quota");

  // The session ends while the order is being placed: the order reaches the
  // API, but its answer is a 401 (as for an expired token) and the session
  // cookie no longer refreshes. The user signs in again over the screen and
  // the purchase goes on with the same idempotency key: one order.
  // (After a reload, as after the way back from the payment page: the
  // page still knows whom to ask.)
  await page.goto(`${API}/#/beli`);
  await page.reload();
  await page.fill("#f-quantity", "2");
  const keys = [];
  let placed;
  await page.route("**/v1/orders", async (route) => {
    if (route.request().method() !== "POST") return route.continue();
    keys.push(route.request().headers()["idempotency-key"]);
    if (keys.length > 1) return route.continue();
    placed = await passOn(route.request());
    if (placed.status !== 201) return route.fulfill({ status: placed.status, contentType: "application/json", body: placed.body });
    return route.fulfill({ status: 401, contentType: "application/json", body: '{"message":"Unauthorized"}' });
  });
  await page.route("**/auth/refresh", (route) => route.fulfill({ status: 401, contentType: "application/json", body: '{"error":{"code":"SESSION_ENDED","message":"ended"}}' }));
  await page.click("button[type=submit]");
  await page.getByRole("dialog").getByText("Sesi Anda berakhir").waitFor();
  assert.equal(placed.status, 201, `the order was placed: ${placed.body}`);
  await page.screenshot({ path: `${out}/phone-signin-again.png`, fullPage: true });
  await accessible(page, "signing in again");
  assert.equal(await page.inputValue("#f-quantity"), "2", "what was typed is still there");
  await page.unroute("**/auth/refresh");
  await page.fill("#f-again-password", password);
  await page.getByRole("dialog").getByRole("button", { name: "Masuk" }).click();
  await page.waitForURL(/snap\/v4\/redirection/);
  assert.equal(keys.length, 2);
  assert.equal(keys[0], keys[1], "the retry is the same purchase");
  await page.unroute("**/v1/orders");
  await page.check("input[value=qris]");
  await page.click("button[value=pay]");
  await page.getByText("Pembayaran berhasil").waitFor();
  // Back before the payment is credited, the order page says it is coming.
  let held = 0;
  await page.route("**/v1/orders/ord_*", async (route) => {
    const answer = JSON.parse((await passOn(route.request())).body);
    if (held++ === 0) answer.status = "pending";
    return route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(answer) });
  });
  await page.click("#finish");
  await page.getByText("Pembayaran diterima").waitFor();
  await page.getByText("2 meterai masuk").waitFor({ timeout: 30_000 });
  await page.unroute("**/v1/orders/ord_*");
  await page.goto(`${API}/#/riwayat`);
  await page.getByRole("heading", { name: "Mutasi kuota" }).waitFor();
  assert.equal(await page.locator("a[href^='#/pesanan/ord_']").count(), 1, "one order");

  // Two documents in one go: a plain page, and a landscape-shown page (A4
  // turned by /Rotate 90) whose crop box leaves 50 and 60 points off.
  await page.goto(`${API}/#/bubuhkan`);
  // A third is one too many for the 2 stamps bought: it is refused alone,
  // and once a stamp is bought in another tab, pressing again sends only it.
  const originals = { 1: pdf(1), 2: pdf(1, "/Rotate 90 /CropBox [50 60 545 782]"), 3: pdf(3) };
  await page.setInputFiles("#f-file", [
    { name: "ijazah.pdf", mimeType: "application/pdf", buffer: originals[1] },
    { name: "transkrip.pdf", mimeType: "application/pdf", buffer: originals[2] },
    { name: "ktp.pdf", mimeType: "application/pdf", buffer: originals[3] },
  ]);
  await page.waitForSelector("#page-1 canvas");
  await page.waitForSelector("#page-2 canvas");
  const taps = { 1: [0.25, 0.25], 2: [0.7, 0.5] };
  for (const n of [1, 2]) {
    await page.locator(`#page-${n}`).evaluate((el) => el.scrollIntoView({ block: "center" }));
    const b = await page.locator(`#page-${n} canvas`).boundingBox();
    if (n === 2) assert.ok(b.width > b.height, "the rotated page is shown landscape");
    await page.touchscreen.tap(b.x + b.width * taps[n][0], b.y + b.height * taps[n][1]);
  }
  await page.waitForSelector("#page-3 canvas");
  await page.screenshot({ path: `${out}/phone-several.png`, fullPage: true });
  const stampRequests = [];
  page.on("request", (r) => r.url().endsWith("/v1/stamps") && r.method() === "POST" && stampRequests.push([JSON.parse(r.postData()).document_id, r.headers()["idempotency-key"]]));
  await page.click("#stamp-here");
  await page.getByRole("alert").getByText("Kuota meterai Anda habis").first().waitFor();
  assert.equal(stampRequests.length, 3);
  const other = await context.newPage();
  await other.goto(`${API}/#/beli`);
  await other.fill("#f-quantity", "1");
  await other.click("button[type=submit]");
  await other.waitForURL(/snap\/v4\/redirection/);
  await other.check("input[value=qris]");
  await other.click("button[value=pay]");
  await other.click("#finish");
  await other.getByText("1 meterai masuk").waitFor({ timeout: 30_000 });
  await other.close();
  await page.click("#stamp-here");
  await page.waitForURL(/#\/stamps\/job_\w+,job_\w+,job_\w+/);
  assert.equal(stampRequests.length, 4, "only the refused document is sent again");
  assert.equal(stampRequests[3][0], stampRequests[2][0], "the same upload");
  assert.notEqual(stampRequests[3][1], stampRequests[2][1], "a new request after a refusal: a new key");
  for (const n of [1, 2, 3]) await page.locator(`#job-status-${n}`).getByText("Selesai").waitFor({ timeout: 60_000 });
  // Each mark is drawn where it was tapped on the page as shown, upright:
  // the turned page is shown 722 x 495 points once cropped.
  const shown = { 1: [595, 842], 2: [782 - 60, 545 - 50] };
  for (const n of [1, 2]) {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click(`#download-${n}`)]);
    const file = `${out}/several-${n}.pdf`;
    await download.saveAs(file);
    const mark = markBox(file, originals[n], 1, `several-${n}`);
    const [w, hgt] = shown[n];
    assert.deepEqual([mark.width, mark.height], [w, hgt], `document ${n} is shown ${w} x ${hgt}`);
    const [ex, ey] = [Math.min(Math.max(w * taps[n][0], 50), w - 50), Math.min(Math.max(hgt * taps[n][1], 50), hgt - 50)];
    assert.ok(Math.abs(mark.cx - ex) < 8 && Math.abs(mark.cy - ey) < 8, `document ${n}: mark centre at ${mark.cx},${mark.cy}, tapped at ${ex},${ey}`);
    assert.ok(Math.abs(mark.w - 100) <= 6 && Math.abs(mark.h - 100) <= 6, `document ${n}: mark ${mark.w} x ${mark.h} points`);
  }

  // The session ended while away: a reload asks to sign in, and signing in
  // comes back to the screen the user was on.
  await page.goto(`${API}/#/riwayat`);
  await page.route("**/auth/refresh", (route) => route.fulfill({ status: 401, contentType: "application/json", body: '{"error":{"code":"SESSION_ENDED","message":"ended"}}' }));
  await page.reload();
  await page.waitForURL(/#\/masuk/);
  await page.unroute("**/auth/refresh");
  await signIn(page, address, password);
  await page.waitForURL(/#\/riwayat/);
  await page.getByRole("heading", { name: "Mutasi kuota" }).waitFor();

  // Signed out, the password forgotten: a code by e-mail, a new password,
  // and only the new one signs in.
  await page.getByRole("button", { name: "Keluar" }).click();
  await page.waitForURL(/#\/masuk/);
  await page.getByRole("link", { name: "Lupa kata sandi?" }).click();
  const sentBefore = (await codesFor(address)).length;
  await page.fill("#f-username", address);
  await page.getByRole("button", { name: "Kirim kode" }).click();
  await page.getByText("Kode dikirim").waitFor();
  await page.fill("#f-code", await codeFor(address, sentBefore));
  await page.fill("#f-new-password", "Sandi-baru-2027");
  await page.getByRole("button", { name: "Simpan kata sandi baru" }).click();
  await page.waitForURL(/#\/masuk/);
  await accessible(page, "signing in after a reset");
  await signIn(page, address, password);
  await page.getByRole("alert").getByText("kata sandi salah").waitFor();
  await signIn(page, address, "Sandi-baru-2027");
  await page.waitForSelector("#available");
  await context.close();
});
