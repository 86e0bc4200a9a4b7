// Every error code the API can answer, and every failure a stamp job can
// end with, has words in both languages; both languages have the same keys.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { errors, messages } from "../src/i18n.js";

const root = new URL("../../", import.meta.url).pathname;

test("every API error code has a message in Bahasa Indonesia and English", () => {
  const source = readFileSync(`${root}functions/lib/core/src/error.rs`, "utf8");
  const codes = [...source.matchAll(/pub const [A-Z_]+: &str = "([A-Z_]+)";/g)].map((m) => m[1]);
  assert.ok(codes.length > 40, `found ${codes.length} codes`);
  for (const code of codes) {
    assert.ok(errors.id[code], `${code} in Bahasa Indonesia`);
    assert.ok(errors.en[code], `${code} in English`);
  }
});

test("every way a stamp job can fail has a message", () => {
  const codes = new Set();
  for (const file of ["functions/lib/pdf/src/stamp/pdf.rs", "functions/lib/app/src/stamping.rs", "functions/lib/core/src/jobs.rs"]) {
    for (const m of readFileSync(`${root}${file}`, "utf8").matchAll(/"([A-Z]+(?:_[A-Z]+)+)"/g)) codes.add(m[1]);
  }
  assert.ok(codes.size > 5, [...codes].join(" "));
  for (const code of codes) assert.ok(errors.id[code] && errors.en[code], code);
});

test("both languages say the same things", () => {
  assert.deepEqual(Object.keys(messages.en).sort(), Object.keys(messages.id).sort());
  assert.deepEqual(Object.keys(errors.en).sort(), Object.keys(errors.id).sort());
});

test("every message the screens ask for exists", () => {
  const app = readFileSync(`${root}portal/src/app.js`, "utf8");
  const keys = new Set([...app.matchAll(/\bt\("([a-z_]+)"/g)].map((m) => m[1]));
  assert.ok(keys.size > 40, `found ${keys.size} keys`);
  for (const key of keys) assert.ok(messages.id[key], key);
});
