// Renders page 1 of a PDF the way a browser user sees it, to a PNG at
// 150 dpi, for the stamp oracles to read the QR code back:
//   node tests/render/render.mjs pdfjs    in.pdf out.png   (pdf.js, as Firefox and the portal draw it)
//   node tests/render/render.mjs chromium in.pdf out.png   (Chromium's own viewer, PDFium)
// Both run in Debian's Chromium driven by playwright-core from the portal's
// packages; nothing leaves the machine (pages are served by request routing).

import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

const [viewer, input, output] = process.argv.slice(2);
if (!["pdfjs", "chromium"].includes(viewer) || !input || !output) {
  console.error("usage: render.mjs pdfjs|chromium in.pdf out.png");
  process.exit(2);
}

const portal = new URL("../../portal/", import.meta.url);
const require = createRequire(new URL("package.json", portal));
const { chromium } = require("playwright-core");
const pdfjs = new URL("node_modules/pdfjs-dist/build/", portal);

const DPI = 150;
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  if (viewer === "chromium") {
    // The built-in viewer draws the page at 96 dpi at 100% (and a device
    // scale only enlarges that bitmap), so the page is opened zoomed to
    // 150 dpi. An A4 page fits the window at that zoom.
    const page = await browser.newPage({ viewport: { width: 1400, height: 2000 } });
    const zoom = Math.ceil((DPI / 96) * 100);
    await page.goto(`${pathToFileURL(resolve(input)).href}#zoom=${zoom}`);
    // The viewer is an extension in its own frame that draws in tiles,
    // low resolution first: the picture counts once it has not changed
    // for two seconds (after at least three; at most 30).
    let last = Buffer.alloc(0);
    let still = 0;
    for (let i = 0; i < 30 && !(i >= 3 && still >= 2); i++) {
      await page.waitForTimeout(1000);
      const shot = await page.screenshot();
      still = shot.equals(last) ? still + 1 : 0;
      last = shot;
    }
    writeFileSync(output, last);
  } else {
    const page = await browser.newPage();
    const files = {
      "/pdf.mjs": [readFileSync(new URL("pdf.mjs", pdfjs)), "text/javascript"],
      "/pdf.worker.mjs": [readFileSync(new URL("pdf.worker.mjs", pdfjs)), "text/javascript"],
      "/doc.pdf": [readFileSync(input), "application/pdf"],
      "/": ["<!doctype html><title>render</title>", "text/html"],
    };
    await page.route("http://render.invalid/**", (route) => {
      const file = files[new URL(route.request().url()).pathname];
      return file
        ? route.fulfill({ status: 200, contentType: file[1], body: file[0] })
        : route.fulfill({ status: 404, body: "" });
    });
    await page.goto("http://render.invalid/");
    const png = await page.evaluate(async (dpi) => {
      const lib = await import("/pdf.mjs");
      lib.GlobalWorkerOptions.workerSrc = "/pdf.worker.mjs";
      const doc = await lib.getDocument({ url: "/doc.pdf", isEvalSupported: false }).promise;
      const first = await doc.getPage(1);
      const viewport = first.getViewport({ scale: dpi / 72 });
      const canvas = document.createElement("canvas");
      canvas.width = Math.ceil(viewport.width);
      canvas.height = Math.ceil(viewport.height);
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      // ENABLE_FORMS is how Firefox's viewer draws: fields become HTML
      // inputs, every other annotation is drawn from its appearance.
      await first.render({
        canvasContext: ctx,
        viewport,
        annotationMode: lib.AnnotationMode.ENABLE_FORMS,
      }).promise;
      return canvas.toDataURL("image/png");
    }, DPI);
    writeFileSync(output, Buffer.from(png.split(",")[1], "base64"));
  }
} finally {
  await browser.close();
}
