// The portal: a few screens on a hash router, plain DOM, no framework.
import { t, errorText, language, setLanguage, rupiah, wib, megabytes } from "{{i18n.js}}";
import { api, auth, open, refresh, signOut, signedIn, newKey, upload, onSessionEnded, ApiError } from "{{api.js}}";

// pdf.js is fetched only when a document is chosen: the first screen stays light.
let pdfjsModule = null;
async function pdfjs() {
  if (!pdfjsModule) {
    pdfjsModule = await import("{{pdf.mjs}}");
    pdfjsModule.GlobalWorkerOptions.workerSrc = "{{pdf.worker.mjs}}";
  }
  return pdfjsModule;
}

const UNIT_PRICE = 10_000;
const MAX_BYTES = 10_000_000;
const MARK_POINTS = 100;
const MAX_DOCUMENTS = 10;
const view = document.getElementById("view");
const notice = document.getElementById("notice");
let pendingUsername = "";
// Who signed in in this tab (kept for the tab's life, so a reload or the
// way back from the payment page still knows whom to ask if the session ends).
const whoSignedIn = {
  get: () => sessionStorage.getItem("signed-in-as") ?? "",
  set: (name) => (name ? sessionStorage.setItem("signed-in-as", name) : sessionStorage.removeItem("signed-in-as")),
};
// Where to go once signed in: a screen that needed a session, never a public one.
const afterSignIn = {
  keep: (hash) => { if (!publicRoutes[hash]) sessionStorage.setItem("after-sign-in", hash); },
  take: () => { const hash = sessionStorage.getItem("after-sign-in") || "#/"; sessionStorage.removeItem("after-sign-in"); return hash; },
  forget: () => sessionStorage.removeItem("after-sign-in"),
};
// Things to undo when the screen changes (listeners on the window, pdf.js documents).
let leaving = [];

// h("p", {class: "x"}, "text", child): an element; text is never parsed as HTML.
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) if (c != null) el.append(c instanceof Node ? c : String(c));
  return el;
}

function show(...nodes) {
  for (const undo of leaving.splice(0)) undo();
  view.replaceChildren(...nodes);
  view.focus();
}

function say(text, ms = 6000) {
  notice.textContent = text;
  if (text) setTimeout(() => notice.textContent === text && (notice.textContent = ""), ms);
}

// A busy API: the first wait is a short notice, later ones the waiting room's
// (which attempt comes next, and when), shown until that attempt.
const retrying = ({ delay, next }) =>
  say(t(next > 2 ? "waiting" : "retrying", { s: delay, n: next }), delay * 1000 + 1000);
const problem = (e) => h("p", { class: "error", role: "alert" }, errorText(e instanceof ApiError ? e.code : "UNKNOWN"));

// Runs a form's action with its button disabled; errors are shown in the form.
function form(fields, label, action, ...after) {
  const out = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "submit" }, label);
  const el = h("form", {
    class: "card",
    onsubmit: async (event) => {
      event.preventDefault();
      button.disabled = true;
      out.replaceChildren();
      try {
        await action(new FormData(el));
      } catch (e) {
        out.replaceChildren(problem(e));
        if (e.code === "SESSION_ENDED") { afterSignIn.keep(here()); location.hash = "#/masuk"; }
      } finally {
        button.disabled = false;
      }
    },
  }, fields, button, out, after);
  return el;
}

const field = (name, label, type = "text", extra = {}) => [
  h("label", { for: `f-${name}` }, label),
  h("input", { id: `f-${name}`, name, type, required: true, ...extra }),
];

function nav() {
  const links = signedIn()
    ? [["#/", t("dashboard")], ["#/beli", t("buy")], ["#/bubuhkan", t("stamp")], ["#/riwayat", t("history")], ["#/verifikasi", t("verify")]]
    : [["#/masuk", t("signin")], ["#/daftar", t("signup")], ["#/verifikasi", t("verify")]];
  const items = links.map(([href, label]) => h("a", { href }, label));
  if (signedIn()) items.push(h("button", { type: "button", class: "link", onclick: async () => { whoSignedIn.set(""); afterSignIn.forget(); await signOut(); location.hash = "#/masuk"; } }, t("signout")));
  document.getElementById("nav").replaceChildren(...items);
  document.getElementById("lang").textContent = t("lang_switch");
}

// ---- accounts

// The session ended in the middle of something (the refresh token expired or
// was revoked): sign in again over the screen, so what was typed, chosen or
// placed stays, and the action goes on with its own idempotency key.
onSessionEnded(() => new Promise((resolve) => {
  const name = whoSignedIn.get();
  if (!name) return resolve(false);
  const out = h("div", { "aria-live": "polite" });
  const dialog = h("dialog", { id: "signin-again", "aria-labelledby": "signin-again-title" });
  let pending = false;
  const done = (ok) => {
    dialog.close();
    dialog.remove();
    view.focus(); // the control that opened it may still be disabled
    resolve(ok);
  };
  const giveUp = () => { if (!pending) { whoSignedIn.set(""); done(false); } };
  const submit = h("button", { type: "submit" }, t("signin"));
  const cancel = h("button", { type: "button", class: "secondary", onclick: giveUp }, t("cancel"));
  const again = h("form", { onsubmit: async (event) => {
    event.preventDefault();
    if (pending) return;
    pending = submit.disabled = cancel.disabled = true;
    out.replaceChildren();
    try {
      await auth("sign-in", { username: name, password: new FormData(again).get("password") }, retrying);
      done(true);
    } catch (e) {
      out.replaceChildren(problem(e));
    } finally {
      pending = submit.disabled = cancel.disabled = false;
    }
  } },
  h("h2", { id: "signin-again-title" }, t("session_ended")),
  h("label", { for: "f-again-username" }, t("username")),
  h("input", { id: "f-again-username", type: "text", value: name, readonly: true, autocomplete: "username" }),
  h("label", { for: "f-again-password" }, t("password")),
  h("input", { id: "f-again-password", name: "password", type: "password", required: true, autocomplete: "current-password", autofocus: true }),
  submit, " ", cancel, out);
  dialog.append(again);
  dialog.addEventListener("cancel", (e) => { e.preventDefault(); giveUp(); });
  document.body.append(dialog);
  dialog.showModal();
}));

function signInView() {
  show(h("h1", {}, t("signin_title")),
    form([field("username", t("username"), "text", { autocomplete: "username", inputmode: "email" }),
          field("password", t("password"), "password", { autocomplete: "current-password" })],
      t("signin"), async (data) => {
        await auth("sign-in", { username: data.get("username"), password: data.get("password") }, retrying)
          .catch((e) => { if (e.code === "ACCOUNT_NOT_CONFIRMED") { pendingUsername = data.get("username"); location.hash = "#/konfirmasi"; } throw e; });
        whoSignedIn.set(data.get("username"));
        say(""); // "confirmed, please sign in" is done with
        location.hash = afterSignIn.take();
      }),
    h("p", {}, t("no_account"), " ", h("a", { href: "#/daftar" }, t("signup"))),
    h("p", {}, h("a", { href: "#/lupa" }, t("forgot"))));
}

function forgotView() {
  const reset = h("div");
  show(h("h1", {}, t("forgot")),
    form([field("username", t("username"), "text", { autocomplete: "username" })], t("send_code"), async (data) => {
      const username = data.get("username");
      const answer = await auth("forgot-password", { username }, retrying);
      say(t("code_sent", { to: answer.code_sent_to?.destination || username }));
      reset.replaceChildren(form([
        field("code", t("code"), "text", { inputmode: "numeric", autocomplete: "one-time-code", maxlength: 6 }),
        field("new-password", t("new_password"), "password", { autocomplete: "new-password", minlength: 8 }),
        h("p", { class: "muted" }, t("password_hint"))], t("reset"), async (more) => {
          await auth("reset-password", { username, code: more.get("code"), password: more.get("new-password") }, retrying);
          say(t("password_reset"));
          location.hash = "#/masuk";
        }));
    }), reset);
}

function signUpView() {
  show(h("h1", {}, t("signup_title")),
    form([field("username", t("username"), "text", { autocomplete: "username" }),
          field("password", t("password"), "password", { autocomplete: "new-password", minlength: 8 }),
          h("p", { class: "muted" }, t("password_hint"))],
      t("signup"), async (data) => {
        const answer = await auth("sign-up", { username: data.get("username"), password: data.get("password") }, retrying);
        pendingUsername = data.get("username");
        say(t("code_sent", { to: answer.code_sent_to?.destination || pendingUsername }));
        location.hash = "#/konfirmasi";
      }),
    h("p", {}, t("have_account"), " ", h("a", { href: "#/masuk" }, t("signin"))));
}

function confirmView() {
  show(h("h1", {}, t("confirm_title")),
    form([field("username", t("username"), "text", { value: pendingUsername, autocomplete: "username" }),
          field("code", t("code"), "text", { inputmode: "numeric", autocomplete: "one-time-code", maxlength: 6 })],
      t("confirm"), async (data) => {
        await auth("confirm", { username: data.get("username"), code: data.get("code") }, retrying);
        say(t("confirmed"));
        location.hash = "#/masuk";
      },
      h("button", { type: "button", class: "secondary", onclick: async () => {
        const answer = await auth("resend-code", { username: document.getElementById("f-username").value }, retrying).catch((e) => say(errorText(e.code)));
        if (answer) say(t("code_sent", { to: answer.code_sent_to?.destination }));
      } }, t("resend"))));
}

// ---- quota and orders

async function dashboardView() {
  show(h("p", {}, t("loading")));
  const [quota, orders, jobs] = await Promise.all([
    api("GET", "/v1/quota", { onRetry: retrying }),
    api("GET", "/v1/orders?limit=5", { onRetry: retrying }),
    api("GET", "/v1/stamps?limit=5", { onRetry: retrying }),
  ]);
  show(h("h1", {}, t("dashboard")),
    h("div", { class: "card stats" },
      h("div", {}, h("b", { id: "available" }, quota.available), t("available")),
      h("div", {}, h("b", {}, quota.reserved), t("reserved")),
      h("div", {}, h("b", {}, quota.spent), t("spent"))),
    h("p", {}, h("a", { class: "button", href: "#/beli" }, t("buy")), " ", h("a", { class: "button", href: "#/bubuhkan" }, t("stamp"))),
    ordersTable(orders.orders), jobsTable(jobs.jobs));
}

function ordersTable(orders, refundable = false) {
  if (!orders.length) return h("div", { class: "card" }, h("h2", {}, t("orders")), h("p", { class: "muted" }, t("none")));
  return h("div", { class: "card" }, h("h2", {}, t("orders")), h("table", {}, orders.map((o) =>
    h("tr", {},
      h("td", {}, h("a", { href: `#/pesanan/${o.order_id}` }, wib(o.created_at))),
      h("td", {}, `${o.quantity} × ${rupiah(o.unit_price ?? UNIT_PRICE)}`),
      h("td", {}, t(`status_${o.status}`)),
      h("td", {}, refundable && o.status === "paid" ? h("button", { type: "button", class: "secondary", onclick: (e) => refundOrder(o, e.target) }, t("refund")) : "")))));
}

function jobsTable(jobs) {
  if (!jobs.length) return h("div", { class: "card" }, h("h2", {}, t("jobs")), h("p", { class: "muted" }, t("none")));
  return h("div", { class: "card" }, h("h2", {}, t("jobs")), h("table", {}, jobs.map((j) =>
    h("tr", {}, h("td", {}, h("a", { class: "serial", href: `#/stamps/${j.job_id}` }, j.serial)), h("td", {}, wib(j.created_at)), h("td", {}, t(`job_${j.status}`))))));
}

async function refundOrder(order, button) {
  button.disabled = true;
  const key = newKey();
  try {
    const refund = await api("POST", `/v1/orders/${order.order_id}/refund`, { body: {}, key, onRetry: retrying });
    say(t("refunded", { n: refund.quantity }));
    historyView();
  } catch (e) {
    say(errorText(e.code));
    button.disabled = false;
  }
}

function buyView() {
  const total = h("p", { id: "total", "aria-live": "polite" }, t("total", { total: rupiah(UNIT_PRICE) }));
  const key = newKey(); // one purchase: every retry of it sends this key
  show(h("h1", {}, t("buy")),
    form([field("quantity", t("quantity"), "number", { min: 1, max: 1000, value: 1, inputmode: "numeric",
            oninput: (e) => total.replaceChildren(t("total", { total: rupiah(UNIT_PRICE * Math.max(0, Math.floor(+e.target.value || 0))) })) }),
          h("p", { class: "muted" }, t("price_each", { price: rupiah(UNIT_PRICE) })), total],
      t("pay"), async (data) => {
        const order = await api("POST", "/v1/orders", { body: { quantity: Number(data.get("quantity")) }, key, onRetry: retrying });
        sessionStorage.setItem("last-order", order.order_id);
        if (here() !== "#/beli") return; // the user went elsewhere while it was placed
        if (order.payment?.redirect_url) location.assign(order.payment.redirect_url);
        else location.hash = `#/pesanan/${order.order_id}`;
      }));
}

async function orderView(id) {
  const status = h("p", { id: "order-status", role: "status" }, t("order_pending"));
  const actions = h("div");
  // Back from the payment page, which says how the payment went: while the
  // notification is on its way the order is still pending here.
  // (A card capture under fraud review answers 201, not 200: not paid yet.)
  const back = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const said = back.get("transaction_status");
  const paidThere = said === "settlement" || (said === "capture" && back.get("status_code") === "200");
  if (paidThere) status.replaceChildren(t("order_crediting"));
  const receipt = h("div");
  show(h("h1", {}, t("orders")), h("div", { class: "card" }, status, actions), receipt);
  await follow(`#/pesanan/${id}`, `/v1/orders/${id}`, 1000, 10_000, (order) => {
    if (order.status === "paid") {
      status.replaceChildren(t("order_paid", { n: order.quantity }));
      actions.replaceChildren(h("a", { class: "button", href: "#/bubuhkan" }, t("stamp")), " ",
        h("button", { type: "button", class: "secondary", onclick: () => print() }, t("print_receipt")));
      receipt.replaceChildren(receiptCard(order));
      return true;
    }
    if (order.status !== "pending") { status.replaceChildren(t("order_closed", { status: t(`status_${order.status}`) })); return true; }
    if (order.payment?.redirect_url && !actions.firstChild) actions.replaceChildren(h("a", { class: "button", href: order.payment.redirect_url }, t("open_payment")));
    return false;
  });
}

// A paid order's receipt: what was bought, for how much, when it was paid.
function receiptCard(order) {
  const row = (label, value, id) => h("tr", {}, h("th", { scope: "row" }, label), h("td", id ? { id } : {}, value));
  return h("div", { class: "card receipt", id: "receipt" }, h("h2", {}, t("receipt")), h("table", {},
    row(t("order_number"), order.order_id),
    order.payment_reference !== order.order_id ? row(t("payment_reference"), order.payment_reference) : null,
    row(t("quantity"), `${order.quantity} × ${rupiah(order.unit_price)}`),
    row(t("total_paid"), rupiah(order.total), "receipt-total"),
    row(t("paid_at"), order.paid_at ? wib(order.paid_at) : "–"),
    order.refunded_quantity ? row(t("refunded_quantity"), `${order.refunded_quantity} (${rupiah(order.refunded_quantity * order.unit_price)})`) : null));
}

// Reads `path` while the screen `screen` is shown, until `seen` says the
// thing reached its end: when the API says to read again (a job's
// `poll_after_seconds`, from the queue and its drain), else waiting longer
// each time (from `first` to `most` ms).
async function follow(screen, path, first, most, seen) {
  for (let delay = first; here() === screen; delay = Math.min(delay * 1.5, most)) {
    const now = await api("GET", path, { onRetry: retrying });
    if (seen(now)) return;
    await new Promise((r) => setTimeout(r, now?.poll_after_seconds ? now.poll_after_seconds * 1000 : delay));
  }
}

async function historyView() {
  const [orders, jobs, ledger] = await Promise.all([
    api("GET", "/v1/orders", { onRetry: retrying }),
    api("GET", "/v1/stamps", { onRetry: retrying }),
    api("GET", "/v1/ledger", { onRetry: retrying }),
  ]);
  show(h("h1", {}, t("history")), ordersTable(orders.orders, true), jobsTable(jobs.jobs), ledgerTable(ledger.entries));
}

function ledgerTable(entries) {
  return h("div", { class: "card" }, h("h2", {}, t("ledger")), entries.length
    ? h("table", {}, entries.map((e) => h("tr", {}, h("td", {}, wib(e.created_at)), h("td", {}, t(`move_${e.kind}`), e.reason ? h("small", { class: "muted reason" }, e.reason) : null), h("td", {}, e.quantity))))
    : h("p", { class: "muted" }, t("none")));
}

// ---- stamping

function stampView() {
  const area = h("div");
  const input = h("input", { id: "f-file", type: "file", multiple: true, accept: "application/pdf,.pdf", onchange: () => choose([...input.files], area) });
  show(h("h1", {}, t("stamp")), h("div", { class: "card" },
    h("label", { for: "f-file" }, t("choose_pdf", { max: megabytes(MAX_BYTES) })), input,
    h("p", { class: "muted" }, t("several", { n: MAX_DOCUMENTS }))), area);
}

// The chosen files, each checked, rendered and given its own placement and
// idempotency key; one button stamps them all, once every one is shown. A
// document already accepted is not sent again when the button is pressed
// after a failure, nor uploaded again.
async function choose(files, area) {
  area.scope?.abort(); // the previous choice's pages and listeners
  const scope = (area.scope = new AbortController());
  leaving.push(() => scope.abort());
  area.replaceChildren();
  if (!files.length) return;
  if (files.length > MAX_DOCUMENTS) return area.replaceChildren(h("p", { class: "error", role: "alert" }, t("too_many", { n: MAX_DOCUMENTS })));
  const documents = [];
  for (const [i, file] of files.entries()) {
    const refused = await refusal(file);
    if (refused) return area.replaceChildren(h("p", { class: "error", role: "alert" }, files.length > 1 ? `${file.name}: ${refused}` : refused));
    documents.push({ file, n: i + 1, key: newKey(), job: null, ticket: null, sent: null, judged: false, renders: 0 });
  }
  const progress = h("progress", { max: 1, value: 0, hidden: true });
  const out = h("div", { "aria-live": "polite" });
  const go = h("button", { type: "button", id: "stamp-here", disabled: true, onclick: async () => {
    go.disabled = true;
    out.replaceChildren();
    try {
      for (const d of documents) if (!d.job) await send(d, documents.length, progress, out);
      location.hash = `#/stamps/${documents.map((d) => d.job).join(",")}`;
    } catch {
      go.disabled = false;
    }
  } }, documents.length > 1 ? t("stamp_all", { n: documents.length }) : t("stamp_now"));
  area.replaceChildren(...documents.map((d) => (d.card = h("div", { class: "card" }))), h("div", { class: "card" }, go, progress, out));
  for (const d of documents) await layOut(d, documents.length > 1, scope.signal);
  // A file pdf.js cannot read is told on its card; the others wait for a new choice.
  if (!scope.signal.aborted && documents.every((d) => d.placement)) go.disabled = false;
}

// Why a file cannot be stamped, told before anything is sent; null if it can.
async function refusal(file) {
  if (file.size > MAX_BYTES) return t("too_large", { max: megabytes(MAX_BYTES) });
  const head = new Uint8Array(await file.slice(0, 5).arrayBuffer());
  if (String.fromCharCode(...head) !== "%PDF-") return t("not_pdf");
  return null;
}

async function layOut(d, several, signal) {
  let pdf;
  try { pdf = await (await pdfjs()).getDocument({ data: new Uint8Array(await d.file.arrayBuffer()), isEvalSupported: false }).promise; }
  catch { return d.card.replaceChildren(h("p", { class: "error", role: "alert" }, `${d.file.name}: ${errorText("MALFORMED_PDF")}`)); }
  signal.addEventListener("abort", () => pdf.destroy());
  d.pageSelect = h("select", { id: `f-page-${d.n}` }, Array.from({ length: pdf.numPages }, (_, i) => h("option", { value: i + 1 }, `${t("page")} ${i + 1}`)));
  const stage = h("div");
  d.out = h("div", { "aria-live": "polite" });
  let shown = null; // the page on screen now: its listeners go when another is shown
  const render = async () => {
    const mine = ++d.renders;
    const next = new AbortController();
    const placed = await renderPage(pdf, Number(d.pageSelect.value), stage, d.n, AbortSignal.any([signal, next.signal]), () => mine === d.renders);
    if (!placed) return next.abort(); // a later choice of page won
    shown?.abort();
    shown = next;
    d.placement = placed;
  };
  d.pageSelect.addEventListener("change", render);
  d.card.replaceChildren(several ? h("h2", {}, d.file.name) : "", h("label", { for: `f-page-${d.n}` }, t("page")), d.pageSelect,
    h("p", { class: "muted" }, t("place_hint")), stage, d.out);
  await render();
}

// A refusal that judged the request (not a busy, lost or unsigned-in one):
// pressing again is a new request, with a new idempotency key.
const judged = (e) => e.status >= 400 && e.status < 500 && ![401, 408, 429].includes(e.status) && e.code !== "IDEMPOTENCY_IN_PROGRESS";

// One document: a ticket and the upload straight to storage (once), then
// the stamp request. The same request after a lost answer carries the same
// key; a changed one (another page or place) or one after a refusal, a new key.
async function send(d, count, progress, out) {
  d.out.replaceChildren();
  try {
    const { x, y } = d.placement.points();
    if (!d.ticket?.uploaded) {
      d.ticket = await api("POST", "/v1/documents", { body: { filename: d.file.name, size: d.file.size }, onRetry: retrying });
      progress.hidden = false;
      progress.value = 0;
      out.replaceChildren(count > 1 ? t("uploading_n", { n: d.n, of: count }) : t("uploading"));
      await upload(d.ticket.upload_url, d.file, (p) => (progress.value = p));
      d.ticket.uploaded = true;
    }
    const body = { document_id: d.ticket.document_id, page: Number(d.pageSelect.value), x, y };
    if (d.sent !== null && (d.judged || d.sent !== JSON.stringify(body))) d.key = newKey();
    d.sent = JSON.stringify(body);
    d.judged = false;
    const job = await api("POST", "/v1/stamps", { body, key: d.key, onRetry: retrying });
    d.job = job.job_id;
  } catch (e) {
    d.judged = e instanceof ApiError && judged(e);
    d.out.replaceChildren(problem(e));
    out.replaceChildren(problem(e));
    throw e;
  }
}

// Renders one page at the screen's width, with the stamp box on it at its
// true size. The box's lower-left corner, in points from the displayed
// page's lower-left corner, is what the API takes.
async function renderPage(pdf, number, stage, n, signal, current) {
  const page = await pdf.getPage(number);
  const natural = page.getViewport({ scale: 1 }); // rotation and crop box applied
  const width = Math.min(stage.parentElement?.clientWidth || 600, 680) - 34;
  const scale = width / natural.width;
  const viewport = page.getViewport({ scale });
  const canvas = h("canvas", { width: Math.floor(viewport.width), height: Math.floor(viewport.height), role: "img", "aria-label": `${t("page")} ${number}` });
  await page.render({ canvasContext: canvas.getContext("2d"), viewport }).promise;
  if (!current()) return null;
  const size = MARK_POINTS * scale;
  const mark = h("div", { class: "mark", id: `mark-${n}`, tabindex: 0, role: "button", "aria-label": `e-Meterai. ${t("place_hint")}` }, "e-Meterai");
  mark.style.width = mark.style.height = `${size}px`;
  const wrap = h("div", { class: "page-wrap", id: `page-${n}` }, canvas, mark);
  stage.replaceChildren(wrap);
  const bounds = () => canvas.getBoundingClientRect();
  // Top-left of the box in CSS pixels of the canvas as shown; kept on the page.
  let left = (viewport.width - size) / 2, top = viewport.height - size - 40 * scale;
  const ratio = () => bounds().width / viewport.width; // shown px per rendered px
  const place = (l, tp) => {
    left = Math.max(0, Math.min(l, viewport.width - size));
    top = Math.max(0, Math.min(tp, viewport.height - size));
    const r = ratio();
    Object.assign(mark.style, { left: `${left * r}px`, top: `${top * r}px`, width: `${size * r}px`, height: `${size * r}px` });
  };
  const at = (event) => { const b = bounds(), r = ratio(); return [(event.clientX - b.left) / r, (event.clientY - b.top) / r]; };
  let dragging = false;
  wrap.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    dragging = true;
    const [x, y] = at(e);
    place(x - size / 2, y - size / 2);
    try { wrap.setPointerCapture(e.pointerId); } catch { /* a synthetic pointer cannot be captured */ }
  });
  wrap.addEventListener("pointermove", (e) => { if (dragging) { const [x, y] = at(e); place(x - size / 2, y - size / 2); } });
  wrap.addEventListener("pointerup", () => (dragging = false));
  mark.addEventListener("keydown", (e) => {
    const step = e.shiftKey ? 20 : 5;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) { e.preventDefault(); place(left + moves[e.key][0], top + moves[e.key][1]); }
  });
  addEventListener("resize", () => place(left, top), { signal });
  place(left, top);
  return {
    points: () => ({
      x: Math.round((left / scale) * 100) / 100,
      y: Math.round(((viewport.height - top - size) / scale) * 100) / 100,
    }),
  };
}

// One job, or several stamped in one go ("job_a,job_b"), followed together;
// a job that cannot be read says so on its own row.
async function jobView(ids) {
  const jobs = ids.split(",").slice(0, MAX_DOCUMENTS);
  const several = jobs.length > 1;
  const rows = jobs.map((id, i) => {
    const n = several ? `-${i + 1}` : "";
    return { id, status: h("p", { id: `job-status${n}`, role: "status" }, t("loading")), actions: h("div"), n };
  });
  show(h("h1", {}, t("stamp")), ...rows.map((r, i) => h("div", { class: "card" }, several ? h("h2", {}, `${t("document")} ${i + 1}`) : "", r.status, r.actions)));
  const screen = `#/stamps/${ids}`;
  // Only a change is written, so a screen reader hears news, not every poll.
  const tell = (r, text, error = false) => {
    if (r.status.textContent === text) return;
    r.status.replaceChildren(error ? h("span", { class: "error" }, text) : text);
  };
  await Promise.allSettled(rows.map((r) => follow(screen, `/v1/stamps/${r.id}`, 500, 5000, (job) => {
    if (job.status === "done") {
      tell(r, t("done", { serial: job.serial }));
      r.actions.replaceChildren(h("a", { class: "button", id: `download${r.n}`, href: job.download_url }, t("download")));
      return true;
    }
    if (job.status === "failed") {
      tell(r, t("failed", { why: errorText(job.error?.code) }), true);
      return true;
    }
    // The time the accept promised, so the applicant knows how long at worst.
    const by = job.done_by ? ` ${t("done_by", { when: wib(job.done_by) })}` : "";
    tell(r, (job.status === "queued" ? t("queued", { n: job.queue_position ?? "…" }) : t("processing")) + by);
    return false;
  }).catch((e) => {
    if (e.code === "SESSION_ENDED") throw e;
    tell(r, errorText(e instanceof ApiError ? e.code : "UNKNOWN"), true);
  })));
  if (!signedIn()) throw new ApiError(401, "SESSION_ENDED");
}

// ---- verification (public)

function verifyView(serial = "") {
  const result = h("div", { id: "verify-result", "aria-live": "polite" });
  // A file's answer lists its stamps; a serial's answer is one stamp.
  const showResult = (answer) => {
    const stamps = answer.stamps ?? (answer.stamped === false ? [] : [answer]);
    const good = (s) => s.status === "valid" && (s.integrity ?? "exact") === "exact" && (s.signature?.status ?? "valid") === "valid";
    const changed = stamps.some((s) => s.integrity === "modified" || (s.signature && s.signature.later_changes !== "none"));
    const ok = stamps.length > 0 && stamps.every(good);
    result.replaceChildren(h("div", { class: "card" },
      h("p", { class: ok ? "" : "error", id: "verdict" }, ok ? t("valid") : changed ? t("changed") : t("not_ours")),
      stamps.map((s) => h("p", { class: "muted" }, `${t("serial")}: ${s.serial ?? serial}` + (s.record?.stamped_at ? ` · ${wib(s.record.stamped_at)}` : "")))));
  };
  const file = h("input", { id: "f-verify-file", type: "file", accept: "application/pdf,.pdf", onchange: async () => {
    const chosen = file.files[0];
    if (!chosen) return;
    try {
      const response = await fetch("/v1/verify", { method: "POST", headers: { "content-type": "application/pdf" }, body: chosen });
      const answer = await response.json();
      if (!response.ok) throw new ApiError(response.status, answer?.error?.code ?? "UNKNOWN");
      showResult(answer);
    } catch (e) { result.replaceChildren(problem(e)); }
  } });
  const check = verifyForm(result);
  check.querySelector("#f-serial").value = serial;
  show(h("h1", {}, t("verify_title")),
    h("div", { class: "card" }, h("label", { for: "f-verify-file" }, t("verify_file")), file),
    check, result);
  // From the QR code: the serial is in the address; check it at once.
  if (serial) check.requestSubmit();
}

function verifyForm(result) {
  return form([field("serial", t("serial"), "text", { maxlength: 22, autocapitalize: "characters" })], t("check"), async (data) => {
      const s = String(data.get("serial")).trim().toUpperCase();
      const record = await open("GET", `/v1/verify/${encodeURIComponent(s)}`, undefined, retrying);
      result.replaceChildren(h("div", { class: "card" },
        h("p", { id: "verdict", class: record.valid ? "" : "error" }, record.valid
          ? t("serial_known", { when: wib(record.stamped_at), page: record.page })
          : t("not_ours")),
        h("p", { class: "muted" }, t("serial_hint"))));
    });
}

// ---- router

// The screen's path. The payment page appends "?order_id=…&transaction_status=…"
// to the address it sends the buyer back to: the path is before it.
const here = () => (location.hash || "#/").split("?")[0];

const publicRoutes = { "#/masuk": signInView, "#/daftar": signUpView, "#/konfirmasi": confirmView, "#/lupa": forgotView };

async function route() {
  const hash = here();
  if (!signedIn() && !publicRoutes[hash] && !hash.startsWith("#/verifikasi")) await refresh().catch(() => false);
  nav();
  try {
    if (hash.startsWith("#/verifikasi")) return verifyView(decodeURIComponent(hash.split("/")[2] ?? ""));
    if (publicRoutes[hash]) return publicRoutes[hash]();
    if (!signedIn()) { afterSignIn.keep(hash); location.hash = "#/masuk"; return; }
    const [, first, second] = hash.split("/");
    if (first === "beli") return buyView();
    if (first === "bubuhkan") return stampView();
    if (first === "riwayat") return historyView();
    if (first === "pesanan" && second) return await orderView(second);
    if (first === "stamps" && second) return await jobView(second);
    return await dashboardView();
  } catch (e) {
    if (e.code === "SESSION_ENDED") { say(t("session_ended")); afterSignIn.keep(hash); location.hash = "#/masuk"; return; }
    show(problem(e));
  }
}

document.getElementById("lang").addEventListener("click", () => { setLanguage(language() === "id" ? "en" : "id"); route(); });
addEventListener("hashchange", route);
setLanguage(language());
route();
