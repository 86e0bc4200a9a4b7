#!/usr/bin/env python3
"""A Midtrans simulator for the local stage (loopback only, standard library only).

It speaks the documented shapes of the parts of Midtrans meterai uses:

  POST /snap/v1/transactions            Snap: create a transaction -> {token, redirect_url}
  GET  /snap/v4/redirection/{token}     the hosted payment page: method picker, Pay / Cancel
  GET  /v2/{order_id}/status            the status API (HTTP Basic, server key as user)
  HTTP notification                     POSTed to the API's /v1/payments/notifications,
                                        signed sha512(order_id + status_code + gross_amount + key)

and can be told, for tests, to misbehave:

  POST /_sim/notifications  {"order_id"?, "mode": "send"|"drop"|"duplicate"|"reorder"|"delay",
                             "copies": 20, "delay_ms": 3000}   (for one order, or the default)
  POST /_sim/down           {"order_id"?, "down": true}   the status API answers 503 for that
                            order (or every gateway endpoint, without an order id)
  POST /_sim/pay            {"order_id", "method"?, "status"?}   what the page's Pay does
  POST /_sim/status         {"order_id", "transaction_status"?, "gross_amount"?, "currency"?}
                            change what the status API answers (no notification)
  GET  /_sim/sent           every notification sent, in order

Run: python3 simulators/midtrans.py --port 4590 --server-key KEY --stack-env .build/meterai-local.env
The notification URL is read from the stack's env file (METERAI_API_URL) when a notification is
sent, so the simulator can start before the stack is deployed.
"""

import argparse
import base64
import datetime
import hashlib
import html
import http.client
import json
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

METHODS = [
    ("qris", "QRIS (semua e-wallet dan m-banking)"),
    ("bca_va", "BCA Virtual Account"),
    ("bni_va", "BNI Virtual Account"),
    ("bri_va", "BRI Virtual Account"),
    ("permata_va", "Permata Virtual Account"),
    ("echannel", "Mandiri Bill Payment"),
    ("indomaret", "Indomaret"),
    ("alfamart", "Alfamart"),
]
STATUS_CODES = {
    "settlement": "200", "capture": "200", "refund": "200", "partial_refund": "200",
    "chargeback": "200", "pending": "201", "expire": "407",
}

lock = threading.Lock()
transactions = {}  # order_id -> dict
tokens = {}  # token -> order_id
sent = []
behaviour = {"mode": "send", "copies": 1, "delay_ms": 0}
behaviours = {}  # order_id -> behaviour of its notifications
state = {"down": False}
down_orders = set()
config = {}


def now_text():
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 7 * 3600))


def signature(order_id, status_code, gross_amount):
    raw = (order_id + status_code + gross_amount + config["server_key"]).encode()
    return hashlib.sha512(raw).hexdigest()


def status_body(tx):
    code = STATUS_CODES.get(tx["transaction_status"], "202")
    return {
        "status_code": code,
        "status_message": "Success, transaction is found",
        "transaction_id": tx["transaction_id"],
        "order_id": tx["order_id"],
        "gross_amount": tx["gross_amount"],
        "currency": tx.get("currency", "IDR"),
        "payment_type": tx["payment_type"],
        "transaction_time": tx["transaction_time"],
        "transaction_status": tx["transaction_status"],
        "fraud_status": tx.get("fraud_status", "accept"),
    }


def notification_of(tx, transaction_status):
    body = dict(status_body(tx))
    body["transaction_status"] = transaction_status
    body["status_code"] = STATUS_CODES.get(transaction_status, "202")
    body["signature_key"] = signature(tx["order_id"], body["status_code"], body["gross_amount"])
    return body


def api_target():
    url = None
    with open(config["stack_env"]) as f:
        for line in f:
            if line.startswith("METERAI_API_URL="):
                url = line.split("=", 1)[1].strip()
    return urllib.parse.urlsplit(url)


def post_notification(body):
    target = api_target()
    connection = http.client.HTTPConnection("127.0.0.1", target.port or 80, timeout=15)
    payload = json.dumps(body)
    try:
        connection.request("POST", "/v1/payments/notifications", payload,
                           {"Host": target.netloc, "Content-Type": "application/json"})
        answer = connection.getresponse()
        result = (answer.status, answer.read().decode(errors="replace")[:300])
    except OSError as e:
        result = (0, str(e))
    finally:
        connection.close()
    with lock:
        sent.append({"order_id": body["order_id"], "transaction_status": body["transaction_status"],
                     "answer_status": result[0], "answer": result[1]})


def notify(tx, transaction_status):
    """Sends the notification(s) of a status change, as the current mode says."""
    rules = behaviours.get(tx["order_id"], behaviour)
    mode, copies, delay = rules["mode"], int(rules["copies"]), rules["delay_ms"]
    if mode == "drop":
        with lock:
            sent.append({"order_id": tx["order_id"], "transaction_status": transaction_status,
                         "answer_status": None, "answer": "dropped"})
        return
    bodies = [notification_of(tx, transaction_status)]
    if mode == "duplicate":
        bodies = bodies * max(copies, 1)
    elif mode == "reorder":
        # The new status first, then stale "pending" ones after it, all at once.
        bodies = bodies + [notification_of(tx, "pending")] * max(copies - 1, 1)

    def run():
        if mode == "delay":
            time.sleep(delay / 1000)
        threads = [threading.Thread(target=post_notification, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    if mode == "delay":
        threading.Thread(target=run, daemon=True).start()
    else:
        run()


def expiry_of(expiry):
    """When a Snap transaction's page closes (epoch seconds): `expiry`'s
    start_time ("yyyy-MM-dd HH:mm:ss Z", default now) plus its duration
    (default 24 hours), as Snap documents it."""
    if expiry is None:
        return time.time() + 24 * 3600
    units = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
    try:
        unit = units[expiry.get("unit", "minute")]
        duration = int(expiry["duration"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ValueError("unit and duration are required")
    start = time.time()
    if "start_time" in expiry:
        start = datetime.datetime.strptime(expiry["start_time"], "%Y-%m-%d %H:%M:%S %z").timestamp()
    return start + unit * duration


def finish_of(request):
    """The merchant's finish URL (`callbacks.finish`), if it is an http(s) URL."""
    finish = (request.get("callbacks") or {}).get("finish") if isinstance(request.get("callbacks"), dict) else None
    return finish if isinstance(finish, str) and finish.startswith(("http://", "https://")) else None


def back_link(tx):
    """Snap sends the buyer to the finish URL with the order's outcome appended."""
    if not tx.get("finish"):
        return ""
    query = urllib.parse.urlencode({
        "order_id": tx["order_id"], "status_code": STATUS_CODES.get(tx["transaction_status"], "202"),
        "transaction_status": tx["transaction_status"]})
    return f'<p><a id="finish" href="{html.escape(tx["finish"])}?{html.escape(query)}">Kembali ke toko</a></p>'


def pay(order_id, method="qris", transaction_status="settlement"):
    with lock:
        tx = transactions.get(order_id)
        if tx is None:
            return None
        tx["payment_type"] = {"qris": "qris", "indomaret": "cstore", "alfamart": "cstore",
                              "echannel": "echannel"}.get(method, "bank_transfer")
        tx["transaction_status"] = transaction_status
        tx["transaction_id"] = tx["transaction_id"] or str(uuid.uuid4())
        tx["transaction_time"] = now_text()
        tx["method"] = method
    notify(tx, transaction_status)
    return tx


PAGE = """<!doctype html>
<html lang="id"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Pembayaran {order_id}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:1rem auto;padding:0 1rem}}
fieldset{{border:1px solid #ccc;border-radius:.5rem}}label{{display:block;padding:.5rem 0}}
button{{font-size:1rem;padding:.75rem 1.25rem;margin:.5rem .5rem 0 0}}</style></head>
<body><h1>Bayar pesanan</h1>
<p>Pesanan <strong>{order_id}</strong><br>Total <strong id="amount">Rp{amount}</strong></p>
<p><small>Simulator Midtrans untuk pengembangan lokal (bukan pembayaran sungguhan).</small></p>
<form method="post" action="/snap/v4/redirection/{token}/pay">
<fieldset><legend>Metode pembayaran</legend>{methods}</fieldset>
<button type="submit" name="action" value="pay">Bayar</button>
<button type="submit" name="action" value="cancel" formaction="/snap/v4/redirection/{token}/cancel">Batal</button>
</form></body></html>"""

DONE = """<!doctype html><html lang="id"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1 id="result">{title}</h1><p>Pesanan {order_id}: {status}</p>{back}</body></html>"""


class Handler(BaseHTTPRequestHandler):
    server_version = "midtrans-simulator"

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, 1 << 20))

    def authorized(self):
        expected = "Basic " + base64.b64encode((config["server_key"] + ":").encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.answer(401, {"status_code": "401", "status_message": "Access denied, please check client or server key"})
            return False
        return True

    def gateway_down(self):
        if state["down"]:
            self.answer(503, {"status_code": "503", "status_message": "Service unavailable"})
            return True
        return False

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_sim/sent":
            with lock:
                return self.answer(200, list(sent))
        if path == "/_sim/health":
            return self.answer(200, {"ok": True})
        if self.gateway_down():
            return None
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "v2" and parts[2] == "status":
            if not self.authorized():
                return None
            if urllib.parse.unquote(parts[1]) in down_orders:
                return self.answer(503, {"status_code": "503", "status_message": "Service unavailable"})
            with lock:
                tx = transactions.get(urllib.parse.unquote(parts[1]))
                if tx is None or tx["transaction_status"] is None:
                    return self.answer(404, {"status_code": "404", "status_message": "Transaction doesn't exist."})
                return self.answer(200, status_body(tx))
        if len(parts) == 4 and parts[:3] == ["snap", "v4", "redirection"]:
            with lock:
                order_id = tokens.get(parts[3])
                tx = transactions.get(order_id)
            if tx is None:
                return self.answer(404, "<h1>Transaksi tidak ditemukan</h1>", "text/html; charset=utf-8")
            if tx["transaction_status"] is None and time.time() > tx["expires_at"]:
                return self.answer(410, "<h1>Waktu pembayaran habis</h1>", "text/html; charset=utf-8")
            methods = "".join(
                f'<label><input type="radio" name="method" value="{m}"{" checked" if i == 0 else ""}> {html.escape(n)}</label>'
                for i, (m, n) in enumerate(METHODS))
            amount = f"{int(float(tx['gross_amount'])):,}".replace(",", ".")
            return self.answer(200, PAGE.format(order_id=html.escape(tx["order_id"]), amount=amount,
                                                token=parts[3], methods=methods), "text/html; charset=utf-8")
        return self.answer(404, {"status_code": "404", "status_message": "not found"})

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        raw = self.body()
        if path.startswith("/_sim/"):
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self.answer(400, {"error": "JSON body"})
            if path == "/_sim/notifications":
                rules = dict(behaviour)
                rules.update({k: body[k] for k in ("mode", "copies", "delay_ms") if k in body})
                if "order_id" in body:
                    behaviours[body["order_id"]] = rules
                else:
                    behaviour.update(rules)
                return self.answer(200, rules)
            if path == "/_sim/down":
                if "order_id" in body:
                    (down_orders.add if body.get("down") else down_orders.discard)(body["order_id"])
                else:
                    state["down"] = bool(body.get("down"))
                return self.answer(200, {"down": bool(body.get("down"))})
            if path == "/_sim/pay":
                before = len(sent)
                tx = pay(body["order_id"], body.get("method", "qris"), body.get("status", "settlement"))
                with lock:
                    answers = [n for n in sent[before:] if n["order_id"] == body["order_id"]]
                return self.answer(200 if tx else 404, {"transaction": tx, "notifications": answers})
            if path == "/_sim/status":
                with lock:
                    tx = transactions.get(body["order_id"])
                    if tx is None:
                        return self.answer(404, {"error": "unknown order"})
                    for k in ("transaction_status", "gross_amount", "currency", "fraud_status"):
                        if k in body:
                            tx[k] = body[k]
                    tx["transaction_id"] = tx["transaction_id"] or str(uuid.uuid4())
                    tx["payment_type"] = tx["payment_type"] or "qris"
                    tx["transaction_time"] = tx["transaction_time"] or now_text()
                    return self.answer(200, tx)
            return self.answer(404, {"error": "no such control"})
        if self.gateway_down():
            return None
        if path == "/snap/v1/transactions":
            if not self.authorized():
                return None
            try:
                details = json.loads(raw)["transaction_details"]
                order_id, amount = str(details["order_id"]), int(details["gross_amount"])
            except (ValueError, KeyError, TypeError):
                return self.answer(400, {"error_messages": ["transaction_details is required"]})
            try:
                expires_at = expiry_of(json.loads(raw).get("expiry"))
            except ValueError as e:
                return self.answer(400, {"error_messages": [f"expiry: {e}"]})
            with lock:
                if order_id in transactions:
                    return self.answer(400, {"error_messages": ["transaction_details.order_id sudah digunakan"]})
                token = str(uuid.uuid4())
                tokens[token] = order_id
                transactions[order_id] = {
                    "order_id": order_id, "gross_amount": f"{amount}.00", "currency": "IDR",
                    "transaction_status": None, "transaction_id": None, "payment_type": None,
                    "transaction_time": None, "token": token, "expires_at": expires_at,
                    "finish": finish_of(json.loads(raw)),
                }
            base = f"http://{self.headers.get('Host') or '127.0.0.1'}"
            return self.answer(201, {"token": token, "redirect_url": f"{base}/snap/v4/redirection/{token}"})
        parts = path.strip("/").split("/")
        if len(parts) == 5 and parts[:3] == ["snap", "v4", "redirection"] and parts[4] in ("pay", "cancel"):
            with lock:
                order_id = tokens.get(parts[3])
            if order_id is None:
                return self.answer(404, "<h1>Transaksi tidak ditemukan</h1>", "text/html; charset=utf-8")
            with lock:
                tx = transactions[order_id]
                expired = tx["transaction_status"] is None and time.time() > tx["expires_at"]
            if expired:
                return self.answer(410, "<h1>Waktu pembayaran habis</h1>", "text/html; charset=utf-8")
            form = urllib.parse.parse_qs(raw.decode(errors="replace"))
            method = (form.get("method") or ["qris"])[0]
            status = "settlement" if parts[4] == "pay" else "cancel"
            tx = pay(order_id, method, status)
            title = "Pembayaran berhasil" if status == "settlement" else "Pembayaran dibatalkan"
            return self.answer(200, DONE.format(title=title, order_id=html.escape(order_id), status=tx["transaction_status"], back=back_link(tx)),
                               "text/html; charset=utf-8")
        return self.answer(404, {"status_code": "404", "status_message": "not found"})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=4590)
    parser.add_argument("--server-key", required=True)
    parser.add_argument("--stack-env", required=True)
    args = parser.parse_args()
    config.update(server_key=args.server_key, stack_env=args.stack_env)
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
