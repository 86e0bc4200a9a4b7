// The API, same-origin. The access token lives only in this module's memory;
// the refresh token is in an HttpOnly cookie that only /auth/ sees. Busy
// answers (429, 503) and lost connections are retried (a waiting room: after
// the server's Retry-After, else a jittered backoff, for up to 10 minutes),
// with the same Idempotency-Key, so nothing is done twice.

let accessToken = null;
let refreshing = null;

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message || code);
    this.status = status;
    this.code = code;
    // Seconds the server asked us to wait (Retry-After), if it said.
    this.retryAfter = retryAfter;
  }
}

export const signedIn = () => accessToken !== null;

export function newKey() {
  return crypto.randomUUID();
}

async function send(method, path, body, headers) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, "NETWORK");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const after = Number.parseInt(response.headers.get("retry-after") ?? "", 10);
    throw new ApiError(response.status, data?.error?.code ?? data?.code ?? "UNKNOWN", data?.error?.message ?? data?.message,
      Number.isFinite(after) && after >= 0 ? Math.min(after, 120) : null);
  }
  return data;
}

// Worth the same request again: a lost connection, a shed or failed
// gateway answer, or our "the same key is still being worked on".
const busy = (e) => [0, 429, 502, 503, 504].includes(e.status) || (e.status === 409 && e.code === "IDEMPOTENCY_IN_PROGRESS");

// The waiting room: a busy answer is retried after the server's Retry-After,
// or (the platform's throttle says nothing) after a jittered backoff of 1, 2,
// 4 ... 30 s, for up to 10 minutes; `onRetry` hears each wait so the page can
// say so. The same request each time, so a write keeps its Idempotency-Key.
const WAIT_LIMIT_MS = 10 * 60 * 1000;
async function withRetry(attempt, onRetry) {
  const since = Date.now();
  for (let backoff = 1, tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof ApiError) || !busy(e)) throw e;
      // The server's word when it gave one; else our own backoff, which only
      // grows on the waits it chose.
      const told = e.retryAfter !== null;
      const delay = told ? e.retryAfter : Math.max(1, Math.round(backoff * (0.5 + Math.random())));
      if (Date.now() - since + delay * 1000 > WAIT_LIMIT_MS) throw e;
      onRetry?.({ delay, next: tries + 1 });
      await new Promise((r) => setTimeout(r, delay * 1000));
      if (!told) backoff = Math.min(backoff * 2, 30);
    }
  }
}

export async function auth(action, body, onRetry) {
  const data = await withRetry(() => send("POST", `/auth/${action}`, body ?? {}), onRetry);
  if (data?.access_token) accessToken = data.access_token;
  return data;
}

// A new access token from the session cookie; false if the session ended.
export async function refresh() {
  refreshing ??= send("POST", "/auth/refresh", {})
    .then((data) => { accessToken = data.access_token; return true; })
    .catch((e) => { if (e.status === 401) { accessToken = null; return false; } throw e; })
    .finally(() => { refreshing = null; });
  return refreshing;
}

// The app's way to ask the user to sign in again when the session ends in
// the middle of an action: resolves true once they have, false if they would
// rather not. One question at a time, however many calls were waiting.
let askToSignIn = null;
let asking = null;
export const onSessionEnded = (ask) => { askToSignIn = ask; };

async function tokenOrSignIn() {
  if (await refresh()) return;
  asking ??= (askToSignIn?.() ?? Promise.resolve(false)).finally(() => { asking = null; });
  if (!(await asking)) throw new ApiError(401, "SESSION_ENDED");
}

export async function signOut() {
  try { await send("POST", "/auth/sign-out", {}); } finally { accessToken = null; }
}

// A call to the API as the signed-in user. `key` makes a write idempotent:
// the same key is sent on every retry of one user action, also after the
// user signed in again because the session ended half-way.
export async function api(method, path, { body, key, onRetry } = {}) {
  const call = () => {
    const headers = { authorization: `Bearer ${accessToken}` };
    if (key) headers["idempotency-key"] = key;
    return send(method, path, body, headers);
  };
  return withRetry(async () => {
    if (!accessToken) await tokenOrSignIn();
    try {
      return await call();
    } catch (e) {
      if (e.status !== 401) throw e;
      await tokenOrSignIn();
      return call();
    }
  }, onRetry);
}

// A public call (verification), no session.
export const open = (method, path, body, onRetry) => withRetry(() => send(method, path, body, {}), onRetry);

// Uploads a file to a presigned URL, reporting progress (0..1).
export function upload(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.setRequestHeader("content-type", "application/pdf");
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => (xhr.status < 300 ? resolve() : reject(new ApiError(xhr.status, "UNKNOWN")));
    xhr.onerror = () => reject(new ApiError(0, "NETWORK"));
    xhr.send(file);
  });
}
