"""Webhooks end to end, checked from outside with the Standard Webhooks
reference library (`standardwebhooks` on PyPI), not with keyseal's code.

A receiver on loopback checks every delivery with the library, drops a
`webhook-id` it has processed already (as the specification asks of
receivers), and records what it processed. Against `keyseal serve`
(SQLite; or two replicas on one PostgreSQL database with --postgres URL):

- every event reaches the receiver exactly once, in the order of the changes,
  although the receiver answers 500 to one delivery and the service is killed
  with SIGKILL while another is in flight (it is sent again after the restart
  and dropped as seen);
- the attempts are visible through the API, and a replay sends an event
  again;
- the library refuses a tampered body, another secret, and a delivery replayed
  after its tolerance window;
- with two replicas, no event is sent twice; a replica started with
  `--no-delivery` sends nothing, and a delivering one sends what it wrote.

Usage: python webhooks_e2e.py KEYSEAL_BINARY [--postgres URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import base64

import standardwebhooks
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import webhooks as sw

PASS = "webhook-test-passphrase"


class Receiver:
    """A webhook receiver: verifies, deduplicates, records."""

    def __init__(self) -> None:
        self.hook: standardwebhooks.Webhook | None = None
        self.lock = threading.Lock()
        self.processed: list[tuple[str, dict[str, Any]]] = []
        self.seen: set[str] = set()
        self.duplicates: list[str] = []
        self.raw: list[tuple[bytes, dict[str, str]]] = []
        self.refused = 0
        # Plans by delivery number (distinct event ids, from 0): answer 500
        # this many times; hang (wait for `release`) on this one.
        self.fail: dict[int, int] = {}
        self.hang_on: int | None = None
        self.hanging = threading.Event()
        self.release = threading.Event()
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k: v for k, v in self.headers.items()}
                status = recv.handle(body, headers)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        assert self.hook is not None
        try:
            event = self.hook.verify(body, headers)
        except standardwebhooks.WebhookVerificationError:
            with self.lock:
                self.refused += 1
            return 400
        msg_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
        with self.lock:
            self.raw.append((body, headers))
            if msg_id in self.seen:
                self.duplicates.append(msg_id)
                return 200
            n = len(self.processed)
            if self.fail.get(n, 0) > 0:
                self.fail[n] -= 1
                return 500
            hang = self.hang_on == n
            if hang:
                self.hang_on = None
        if hang:
            # The service is killed while this request is open; the event
            # counts as processed here, as a receiver that committed its
            # work before the connection broke.
            self.hanging.set()
            self.release.wait(60)
        with self.lock:
            self.seen.add(msg_id)
            self.processed.append((msg_id, event))
        return 200

    def wait_for(self, n: int, timeout: float = 120) -> None:
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if len(self.processed) >= n:
                    return
            time.sleep(0.1)
        raise AssertionError(f"the receiver processed {len(self.processed)} events of {n}")


class Service:
    """`keyseal serve` on a vault (SQLite, or PostgreSQL with `database`)."""

    def __init__(self, binary: str, vault: str, database: str | None) -> None:
        self.binary, self.vault, self.database = binary, vault, database
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""
        # Its log (stderr), line by line, as it runs.
        self.log: list[str] = []

    def start(self, token_file: str | None = None, extra: tuple[str, ...] = ()) -> None:
        env = dict(os.environ, KEYSEAL_PASSPHRASE=PASS, KEYSEAL_KDF_PARAMS="m=256,t=1,p=1", KEYSEAL_LOG="warn")
        if self.database:
            env["KEYSEAL_DATABASE_URL"] = self.database
        args = [self.binary, "--vault", self.vault, "serve", "--listen", "127.0.0.1:0",
                "--webhooks-to-private-networks", "--webhook-timeout", "2s"]
        if token_file:
            args += ["--admin-token-file", token_file]
        args += extra
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            text = line.decode(errors="replace")
            if "listening on http://" in text:
                self.base = "http://" + text.split("listening on http://")[1].split()[0]
                break
        else:
            raise AssertionError("keyseal serve did not start")
        threading.Thread(target=lambda: [self.log.append(x.decode(errors="replace"))
                                         for x in self.proc.stderr], daemon=True).start()  # type: ignore[union-attr]

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def call(base: str, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def ok(base: str, token: str, method: str, path: str, body: Any = None, want: int = 200) -> Any:
    status, answer = call(base, token, method, path, body)
    assert status == want, (method, path, status, answer)
    return answer


def mint(base: str, token: str, customer: str) -> str:
    """Mints a year's license for `customer`; its id."""
    body = {"product": "acme-cad", "customer_id": customer, "plan": "pro", "expires": "365d"}
    return str(ok(base, token, "POST", "/v1/licenses", body, 201)["license_id"])


def library_refusals(recv: Receiver, secret: str) -> None:
    """The reference library refuses a tampered body, another secret, and a
    delivery replayed after its tolerance window (5 minutes)."""
    body, headers = recv.raw[0]
    hook = standardwebhooks.Webhook(secret)
    hook.verify(body, headers)
    tampered = body.replace(b'"type"', b'"tipe"')
    for bad_body, bad_hook in [
        (tampered, hook),
        (body, standardwebhooks.Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ==")),
    ]:
        try:
            bad_hook.verify(bad_body, headers)
        except standardwebhooks.WebhookVerificationError:
            pass
        else:
            raise AssertionError("the library accepted a tampered or foreign delivery")

    class Later(dt.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> "Later":  # type: ignore[override]
            return dt.datetime.now(tz) + dt.timedelta(minutes=6)  # type: ignore[return-value]

    real = sw.datetime
    sw.datetime = Later  # type: ignore[misc]
    try:
        hook.verify(body, headers)
    except standardwebhooks.WebhookVerificationError as e:
        assert "too old" in str(e), e
    else:
        raise AssertionError("the library accepted a delivery replayed after its window")
    finally:
        sw.datetime = real  # type: ignore[misc]


def keyring_signatures(recv: Receiver, keyring: dict[str, Any]) -> None:
    """Every delivery's `keyseal-signature` verifies with the organisation's
    public keyring (docs/FORMAT.md, "Webhook signature"), checked here with
    the `cryptography` package; a changed body does not."""
    keys = {}
    for k in keyring["keys"]:
        raw = k["public_key"].removeprefix("kspub1.")
        keys[k["key_id"]] = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    assert recv.raw, "no deliveries recorded"
    for body, headers in recv.raw:
        h = {k.lower(): v for k, v in headers.items()}
        version, key_id, sig = h["keyseal-signature"].split(",")
        assert version == "v1" and key_id in keys, h["keyseal-signature"]
        msg = b"keyseal/webhook/v1\0" + f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode()
        keys[key_id].verify(bytes.fromhex(sig), msg + body)
        try:
            keys[key_id].verify(bytes.fromhex(sig), msg + body + b" ")
        except InvalidSignature:
            pass
        else:
            raise AssertionError("a changed body verified")


def expect_order(recv: Receiver, expected: list[tuple[str, str]]) -> None:
    got = [(e["type"], e["data"].get("license_id")) for _, e in recv.processed]
    assert got == expected, f"events out of order or missing:\n got {got}\nwant {expected}"
    ids = [m for m, _ in recv.processed]
    assert len(set(ids)) == len(ids), "an event was processed twice"


def run_single(binary: str, work: str) -> None:
    """SQLite: failures, a SIGKILL mid-delivery, attempts, a replay."""
    recv = Receiver()
    svc = Service(binary, os.path.join(work, "vault"), None)
    token_file = os.path.join(work, "admin-token")
    svc.start(token_file)
    token = open(token_file).read().strip()
    try:
        base = svc.base
        ok(base, token, "POST", "/v1/products", {"product": "acme-cad"}, 201)
        ep = ok(base, token, "POST", "/v1/webhooks", {
            "url": recv.url, "description": "e2e",
            "events": ["license.created", "license.revoked", "license.suspended", "license.resumed"],
        }, 201)
        eid = ep["endpoint_id"]
        secret = ok(base, token, "GET", f"/v1/webhooks/{eid}/secret")["secret"]
        recv.hook = standardwebhooks.Webhook(secret)
        recv.fail = {2: 1}
        recv.hang_on = 5
        cus = ok(base, token, "POST", "/v1/customers", {}, 201)["customer_id"]
        lic = [mint(base, token, cus) for _ in range(4)]
        ok(base, token, "POST", f"/v1/licenses/{lic[0]}/revoke", {"reason": "refund"})
        ok(base, token, "POST", f"/v1/licenses/{lic[1]}/suspend")
        assert recv.hanging.wait(60), "the sixth delivery never arrived"
        svc.kill()
        recv.release.set()
        svc.start()
        base = svc.base
        ok(base, token, "POST", f"/v1/licenses/{lic[1]}/resume")
        lic.append(mint(base, token, cus))
        expected = [("license.created", x) for x in lic[:4]] + [
            ("license.revoked", lic[0]), ("license.suspended", lic[1]),
            ("license.resumed", lic[1]), ("license.created", lic[4]),
        ]
        recv.wait_for(len(expected))
        expect_order(recv, expected)
        # The delivery cut by the kill was sent again, and dropped as seen;
        # so were those sent before it in its batch, whose record the kill
        # also cut (at most one batch): never one after it.
        cut = recv.processed[5][0]
        deadline = time.time() + 5
        while cut not in recv.duplicates and time.time() < deadline:
            time.sleep(0.1)
        assert cut in recv.duplicates, recv.duplicates
        before_cut = {m for m, _ in recv.processed[:6]}
        assert set(recv.duplicates) <= before_cut and len(recv.duplicates) == len(set(recv.duplicates)), recv.duplicates
        assert recv.refused == 0
        # Attempts through the API: the third event took two.
        page = ok(base, token, "GET", f"/v1/webhooks/{eid}/deliveries?limit=100")
        items = sorted(page["items"], key=lambda d: d["delivery_id"])
        assert [d["status"] for d in items] == ["delivered"] * len(expected), items
        third = ok(base, token, "GET", f"/v1/webhooks/{eid}/deliveries/{items[2]['delivery_id']}")
        log = third["attempt_log"]
        assert [a["status"] for a in log] == [500, 200], log
        assert third["attempts"] == 2
        # A replay sends the first event again (the receiver drops it as seen).
        first = recv.processed[0][0]
        seen_before = recv.duplicates.count(first)
        assert ok(base, token, "POST", f"/v1/webhooks/{eid}/replay", {"event_id": first}, 202) == {"queued": 1}
        deadline = time.time() + 10
        while recv.duplicates.count(first) == seen_before and time.time() < deadline:
            time.sleep(0.1)
        assert recv.duplicates.count(first) == seen_before + 1, "the replayed event did not arrive"
        library_refusals(recv, secret)
        status, keyring = call(base, token, "GET", "/v1/public/keyring")
        assert status == 200
        keyring_signatures(recv, keyring)
        print(f"sqlite: {len(expected)} events once each, in order; a 500 retried, a SIGKILL mid-delivery resent (with the rest of its batch) and dropped as seen, a replay; the library refused a tampered, foreign and late delivery; every keyseal-signature verified with the public keyring")
    finally:
        svc.stop()
        recv.server.shutdown()


def run_replicas(binary: str, work: str, database: str) -> None:
    """PostgreSQL: two replicas deliver one endpoint's events, none twice."""
    recv = Receiver()
    a = Service(binary, os.path.join(work, "vault-a"), database)
    token_file = os.path.join(work, "admin-token-pg")
    a.start(token_file)
    token = open(token_file).read().strip()
    b = Service(binary, os.path.join(work, "vault-b"), database)
    b.start()
    c = Service(binary, os.path.join(work, "vault-c"), database)
    try:
        ok(a.base, token, "POST", "/v1/products", {"product": "acme-cad"}, 201)
        ep = ok(b.base, token, "POST", "/v1/webhooks", {"url": recv.url, "events": ["license.created", "license.revoked"]}, 201)
        secret = ok(a.base, token, "GET", f"/v1/webhooks/{ep['endpoint_id']}/secret")["secret"]
        recv.hook = standardwebhooks.Webhook(secret)
        recv.fail = {3: 1}
        cus = ok(a.base, token, "POST", "/v1/customers", {}, 201)["customer_id"]
        expected: list[tuple[str, str]] = []
        threads = []
        results: list[tuple[int, str]] = []
        lock = threading.Lock()

        def mint_one(n: int) -> None:
            base = (a.base, b.base)[n % 2]
            lid = mint(base, token, cus)
            with lock:
                results.append((n, lid))

        for n in range(20):
            t = threading.Thread(target=mint_one, args=(n,))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        recv.wait_for(20, 120)
        for _, lid in sorted(results):
            ok((a.base, b.base)[len(expected) % 2], token, "POST", f"/v1/licenses/{lid}/revoke", {"reason": "test"})
            expected.append(("license.revoked", lid))
        recv.wait_for(40, 120)
        time.sleep(1)
        got = recv.processed
        created = {e["data"]["license_id"] for _, e in got[:20] if e["type"] == "license.created"}
        assert created == {lid for _, lid in results}, "a license.created is missing"
        assert [(e["type"], e["data"]["license_id"]) for _, e in got[20:]] == expected
        assert recv.duplicates == [], f"sent twice across replicas: {recv.duplicates}"
        # A replica started with --no-delivery writes the outbox and sends
        # nothing; a delivering replica sends what it wrote, in order.
        a.stop()
        b.stop()
        c.start(extra=("--no-delivery",))
        late = [mint(c.base, token, cus) for _ in range(3)]
        time.sleep(2)
        assert len(recv.processed) == 40, "a --no-delivery replica sent a webhook"
        page = ok(c.base, token, "GET", f"/v1/webhooks/{ep['endpoint_id']}/deliveries?status=pending")
        assert len(page["items"]) == 3, page
        a.start()
        recv.wait_for(43, 120)
        assert [(e["type"], e["data"]["license_id"]) for _, e in recv.processed[40:]] == [
            ("license.created", x) for x in late
        ]
        assert recv.duplicates == [], f"sent twice: {recv.duplicates}"
        print("postgres, two replicas: 40 events once each, in order, a 500 retried, none sent twice; "
              "a --no-delivery replica sent none of its 3, a delivering one sent them in order")
    finally:
        a.stop()
        b.stop()
        c.stop()
        recv.server.shutdown()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--postgres")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        if args.postgres:
            run_replicas(args.binary, work, args.postgres)
        else:
            run_single(args.binary, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
