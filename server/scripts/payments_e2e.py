"""Selling end to end, from outside: Stripe events (fixtures written from
Stripe's API reference, signed with the official `stripe` library's scheme)
posted to `keyseal serve`, the key emailed to a local SMTP sink (aiosmtpd),
webhooks checked with the Standard Webhooks library.

- checkout -> customer and license -> email with the key and the license
  file -> refund -> revoked -> revocation list published;
- the same event twice mints once; another event about the same checkout
  mints nothing more;
- bad signatures, old timestamps and unknown prices are refused and mint
  nothing; an event refused for an unknown price is acted on once the price
  is mapped and Stripe sends it again;
- a subscription: checkout, a renewal's successor license (announced by a
  `license.renewed` webhook, emailed), the subscription's end revoking;
- for many variations of the Stripe-Signature header and body, keyseal
  accepts exactly what `stripe.Webhook.construct_event` accepts;
- keys emailed over STARTTLS and over TLS to sinks whose certificate a
  private CA signed (`--smtp-ca-file`), and nothing sent without that CA,
  to a name the certificate does not carry, or to a server without STARTTLS.

Usage: python payments_e2e.py KEYSEAL_BINARY
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import standardwebhooks
import stripe
from aiosmtpd.controller import Controller

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webhooks_e2e import Receiver, Service, call, ok  # noqa: E402

STRIPE_SECRET = "whsec_e2e_0123456789abcdefghijklmnopqrstuv"


class Sink:
    """A local SMTP server that keeps every message, and the TLS version it
    came over (None: in the clear). With `starttls`, it offers STARTTLS and
    takes no mail before it; with `smtps`, TLS from the first byte."""

    def __init__(self, starttls: ssl.SSLContext | None = None, smtps: ssl.SSLContext | None = None) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.tls: list[str | None] = []
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                tls = server.transport.get_extra_info("ssl_object")
                with sink.lock:
                    sink.messages.append(msg)  # type: ignore[arg-type]
                    sink.tls.append(tls.version() if tls else None)
                return "250 OK"

        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, ssl_context=smtps,
                                     tls_context=starttls, require_starttls=starttls is not None)
        self.controller.start()

    def wait_for(self, n: int, timeout: float = 60) -> list[email.message.EmailMessage]:
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.1)
        raise AssertionError(f"the SMTP sink got {len(self.messages)} emails of {n}")


_n = [0]


def event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> str:
    """A Stripe event as Stripe posts it (API reference: the Event object)."""
    _n[0] += 1
    return json.dumps({
        "id": event_id or f"evt_e2e_{_n[0]:04d}_{int(time.time() * 1000)}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": obj},
    })


def checkout(session: str, price: str, mode: str = "payment", subscription: str | None = None,
             customer: str | None = "cus_stripe_ada") -> dict[str, Any]:
    """A Checkout Session, completed and paid."""
    return {
        "id": session, "object": "checkout.session", "mode": mode, "status": "complete",
        "payment_status": "paid", "customer": customer, "currency": "eur", "amount_total": 9900,
        "customer_details": {"email": "ada@example.com", "name": "Ada Lovelace"},
        "payment_intent": f"pi_{session}" if mode == "payment" else None,
        "subscription": subscription, "metadata": {"keyseal_price": price},
    }


def post(base: str, org: str, payload: str, header: str | None) -> tuple[int, Any]:
    req = urllib.request.Request(f"{base}/v1/public/orgs/{org}/payments/stripe", data=payload.encode(), method="POST")
    req.add_header("content-type", "application/json")
    if header is not None:
        req.add_header("stripe-signature", header)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def signed(payload: str, secret: str = STRIPE_SECRET, timestamp: int | None = None) -> str:
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    return str(header)


def send(base: str, org: str, payload: str, want: int = 200) -> Any:
    header = signed(payload)
    # What keyseal takes, Stripe's own library takes.
    stripe.Webhook.construct_event(payload, header, STRIPE_SECRET)
    status, answer = post(base, org, payload, header)
    assert status == want, (status, answer)
    return answer


def licenses(base: str, token: str) -> list[dict[str, Any]]:
    return list(ok(base, token, "GET", "/v1/licenses?limit=500")["items"])


def differential(base: str, org: str) -> int:
    """keyseal accepts exactly what stripe.Webhook.construct_event accepts."""
    now = int(time.time())
    cases: list[tuple[str, bytes, str | None]] = []

    def body() -> str:
        return event("ping.e2e", {"id": "x", "object": "ping"})

    def mac(ts: str, b: str, secret: str = STRIPE_SECRET) -> str:
        return stripe.WebhookSignature._compute_signature(f"{ts}.{b}", secret)

    b = body(); cases.append(("valid", b.encode(), f"t={now},v1={mac(str(now), b)}"))
    b = body(); cases.append(("wrong secret", b.encode(), f"t={now},v1={mac(str(now), b, 'whsec_other')}"))
    b = body(); cases.append(("tampered", (b + " ").encode(), f"t={now},v1={mac(str(now), b)}"))
    b = body(); cases.append(("old", b.encode(), f"t={now - 301},v1={mac(str(now - 301), b)}"))
    b = body(); cases.append(("just in time", b.encode(), f"t={now - 250},v1={mac(str(now - 250), b)}"))
    b = body(); cases.append(("future", b.encode(), f"t={now + 3600},v1={mac(str(now + 3600), b)}"))
    b = body(); cases.append(("rolled", b.encode(), f"t={now},v1={'0' * 64},v1={mac(str(now), b)}"))
    b = body(); cases.append(("v0 only", b.encode(), f"t={now},v0={mac(str(now), b)}"))
    b = body(); cases.append(("upper hex", b.encode(), f"t={now},v1={mac(str(now), b).upper()}"))
    b = body(); cases.append(("no t", b.encode(), f"v1={mac(str(now), b)}"))
    b = body(); cases.append(("t no value", b.encode(), f"t,v1={mac(str(now), b)}"))
    b = body(); cases.append(("t junk", b.encode(), f"t=abc,v1={mac(str(now), b)}"))
    b = body(); cases.append(("t spaced", b.encode(), f"t= {now} ,v1={mac(str(now), b)}"))
    b = body(); cases.append(("t plus", b.encode(), f"t=+{now},v1={mac(str(now), b)}"))
    b = body(); cases.append(("t underscore", b.encode(), f"t={str(now)[:4]}_{str(now)[4:]},v1={mac(str(now), b)}"))
    b = body(); cases.append(("two t", b.encode(), f"t={now},t=5,v1={mac(str(now), b)}"))
    b = body(); cases.append(("v1 extra =", b.encode(), f"t={now},v1={mac(str(now), b)}=x"))
    b = body(); cases.append(("space before v1", b.encode(), f"t={now}, v1={mac(str(now), b)}"))
    b = body(); cases.append(("empty", b.encode(), ""))
    b = body(); cases.append(("missing", b.encode(), None))
    b = "[1, 2]"; cases.append(("a list", b.encode(), f"t={now},v1={mac(str(now), b)}"))
    b = '{"object": "v2.core.event", "id": "evt_v2", "type": "x"}'; cases.append(("v2 thin event", b.encode(), f"t={now},v1={mac(str(now), b)}"))
    raw = b'{"id": "evt_\xff"}'
    cases.append(("not utf-8", raw, f"t={now},v1={mac(str(now), raw.decode('latin-1'))}"))
    agreed = 0
    for name, payload, header in cases:
        try:
            stripe.Webhook.construct_event(payload, header, STRIPE_SECRET)
            lib = True
        except Exception:
            lib = False
        req = urllib.request.Request(f"{base}/v1/public/orgs/{org}/payments/stripe", data=payload, method="POST")
        req.add_header("content-type", "application/json")
        if header is not None:
            req.add_header("stripe-signature", header)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                ours = r.status == 200
        except urllib.error.HTTPError as e:
            assert e.code in (400, 422, 409), (name, e.code, e.read())
            ours = False
        assert lib == ours, f"{name}: stripe's library {'accepts' if lib else 'refuses'}, keyseal {'accepts' if ours else 'refuses'}"
        agreed += 1
    return agreed


def private_ca(work: str) -> tuple[str, Any]:
    """A CA of our own (its PEM file), and a function making a server
    context with a certificate it signed for one DNS name."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    hour, day = datetime.timedelta(hours=1), datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyseal e2e mail CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - hour).not_valid_after(now + day)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_file = os.path.join(work, "ca.pem")
    with open(ca_file, "wb") as f:
        f.write(ca.public_bytes(pem))

    def server(name: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - hour).not_valid_after(now + day)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        cert_file, key_file = os.path.join(work, f"{name}.pem"), os.path.join(work, f"{name}.key")
        with open(cert_file, "wb") as f:
            f.write(leaf.public_bytes(pem))
        with open(key_file, "wb") as f:
            f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        return ctx

    return ca_file, server


def failures(svc: Service, text: str, n: int, timeout: float = 30) -> set[str]:
    """Waits until the service logged failures saying `text` for `n`
    emails; their ids."""
    end = time.time() + timeout
    while time.time() < end:
        ids = {line.split("email_id=")[1].split()[0] for line in list(svc.log)
               if "an email failed" in line and text in line}
        if len(ids) >= n:
            return ids
        time.sleep(0.1)
    raise AssertionError(f"no {n} emails failed saying {text!r} in the log:\n{''.join(svc.log)}")


def tls_emails(binary: str) -> str:
    """Keys emailed over STARTTLS and over TLS from the first byte, to SMTP
    servers whose certificate a private CA signed (`--smtp-ca-file`); and
    nothing sent where TLS cannot be had: a CA not trusted, a host name the
    certificate does not name, a server that offers no STARTTLS."""
    # The sinks' own reports of the handshakes refused on purpose.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as work:
        ca, server = private_ca(work)
        local = server("localhost")
        starttls, smtps, plain = Sink(starttls=local), Sink(smtps=local), Sink()
        elsewhere = Sink(smtps=server("mail.acme.example"))
        svc = Service(binary, os.path.join(work, "vault"), None)
        token_file = os.path.join(work, "admin-token")
        svc.start(token_file)
        token = open(token_file).read().strip()
        try:
            org = ok(svc.base, token, "GET", "/v1/tokens")["items"][0]["org_id"]
            ok(svc.base, token, "POST", "/v1/products", {"product": "acme-cad"}, 201)
            ok(svc.base, token, "POST", "/v1/payments/stripe", {"signing_secret": STRIPE_SECRET})
            ok(svc.base, token, "POST", "/v1/payments/prices", {
                "price_id": "price_tls", "product": "acme-cad", "plan": "pro", "duration_secs": 86400})

            def smtp(host: str, port: int, security: str) -> None:
                ok(svc.base, token, "POST", "/v1/email/settings", {
                    "host": host, "port": port, "security": security, "from": "Acme <licenses@acme.example>"})

            def buy(session: str) -> None:
                answer = send(svc.base, org, event("checkout.session.completed", checkout(session, "price_tls")))
                assert answer["outcome"] == "minted", answer

            # The private CA is not trusted without the flag: nothing sent.
            smtp("localhost", starttls.port, "starttls")
            buy("cs_tls_1")
            failures(svc, "TLS with the SMTP server failed: its certificate's issuer is not trusted", 1)
            assert starttls.messages == []
            # With it, a new email goes out over STARTTLS, and the first
            # one too when it is tried again (5 s after its failure).
            svc.stop()
            svc.start(None, ("--smtp-ca-file", ca))
            buy("cs_tls_1b")
            starttls.wait_for(2, 30)
            assert all(t in ("TLSv1.2", "TLSv1.3") for t in starttls.tls), starttls.tls
            # TLS from the first byte.
            smtp("localhost", smtps.port, "tls")
            buy("cs_tls_2")
            smtps.wait_for(1, 30)
            assert smtps.tls[0] in ("TLSv1.2", "TLSv1.3"), smtps.tls
            # A certificate the CA signed for another name: refused.
            smtp("localhost", elsewhere.port, "tls")
            buy("cs_tls_3")
            wrong = failures(svc, "TLS with the SMTP server failed: its certificate is not for localhost", 1)
            # STARTTLS is required: a server that does not offer it gets
            # nothing in the clear (the last email either, tried again here).
            smtp("localhost", plain.port, "starttls")
            buy("cs_tls_4")
            cleartext = failures(svc, "the SMTP exchange failed: STARTTLS is not supported on this server", 2, 30)
            assert wrong <= cleartext, (wrong, cleartext)
            time.sleep(0.5)
            assert plain.messages == [] and elsewhere.messages == []
            assert len(smtps.messages) == 1 and len(starttls.messages) == 2
            # A file with no certificate, or none at all, is refused at start.
            for given, says in (("localhost.key", b"holds no PEM certificate"), ("nothing.pem", b"cannot read")):
                bad = subprocess.run([binary, "--vault", os.path.join(work, "vault2"), "serve", "--listen",
                                      "127.0.0.1:0", "--smtp-ca-file", os.path.join(work, given)],
                                     env=dict(os.environ, KEYSEAL_PASSPHRASE="x" * 20), capture_output=True, timeout=60)
                assert bad.returncode == 5 and says in bad.stderr, bad
        finally:
            svc.stop()
            for s in (starttls, smtps, plain, elsewhere):
                s.controller.stop()
    return (f"email over TLS: STARTTLS ({starttls.tls[0]}) and TLS from the first byte ({smtps.tls[0]}) to SMTP servers "
            "a private CA signed (--smtp-ca-file); nothing sent to an untrusted CA, a certificate for another name, "
            "or a server without STARTTLS")


def main() -> int:
    binary = sys.argv[1]
    sink = Sink()
    recv = Receiver()
    with tempfile.TemporaryDirectory() as work:
        svc = Service(binary, os.path.join(work, "vault"), None)
        token_file = os.path.join(work, "admin-token")
        svc.start(token_file)
        token = open(token_file).read().strip()
        base = svc.base
        try:
            org = ok(base, token, "GET", "/v1/tokens")["items"][0]["org_id"]
            ok(base, token, "POST", "/v1/products", {"product": "acme-cad"}, 201)
            ep = ok(base, token, "POST", "/v1/webhooks", {"url": recv.url, "events": [
                "license.created", "license.revoked", "license.renewed", "revocation_list.published"]}, 201)
            recv.hook = standardwebhooks.Webhook(ok(base, token, "GET", f"/v1/webhooks/{ep['endpoint_id']}/secret")["secret"])
            # Not set up yet: refused, nothing minted.
            payload = event("checkout.session.completed", checkout("cs_early", "price_basic"))
            status, answer = post(base, org, payload, signed(payload))
            assert status == 409 and answer["type"].endswith("payments-not-configured"), answer
            ok(base, token, "POST", "/v1/payments/stripe", {"signing_secret": STRIPE_SECRET})
            ok(base, token, "POST", "/v1/email/settings", {
                "host": "127.0.0.1", "port": sink.port, "security": "none", "from": "Acme <licenses@acme.example>"})
            ok(base, token, "POST", "/v1/payments/prices", {
                "price_id": "price_basic", "product": "acme-cad", "plan": "pro", "entitlements": ["export"],
                "duration_secs": 365 * 86400, "seats": 2})

            # Bad signature, old timestamp, unknown price: refused, nothing minted.
            payload = event("checkout.session.completed", checkout("cs_bad", "price_basic"))
            assert post(base, org, payload, signed(payload, "whsec_not_the_secret"))[0] == 400
            old = signed(payload, timestamp=int(time.time()) - 600)
            assert post(base, org, payload, old)[0] == 400
            unknown = event("checkout.session.completed", checkout("cs_later", "price_later"))
            answer = send(base, org, unknown, 422)
            assert answer["type"].endswith("unknown-price"), answer
            assert licenses(base, token) == []

            # Checkout -> customer and license -> email.
            payload = event("checkout.session.completed", checkout("cs_1", "price_basic"))
            first = send(base, org, payload)
            assert first["outcome"] == "minted", first
            lid = first["license_id"]
            lic = ok(base, token, "GET", f"/v1/licenses/{lid}")
            assert lic["product"] == "acme-cad" and lic["plan"] == "pro" and lic["max_devices"] == 2
            assert lic["customer_id"].startswith("cus_") and "ada" not in lic["license_key"].lower()
            cus = ok(base, token, "GET", f"/v1/customers/{lic['customer_id']}")
            assert cus["email"] == "ada@example.com", cus
            # The same event again, and another event about the same checkout: once.
            again = send(base, org, payload)
            assert again.get("duplicate") is True and again["license_id"] == lid, again
            also = send(base, org, event("checkout.session.async_payment_succeeded", checkout("cs_1", "price_basic")))
            assert also["license_id"] == lid, also
            assert [x["license_id"] for x in licenses(base, token)] == [lid]
            mails = sink.wait_for(1)
            msg = mails[0]
            assert msg["To"] == "ada@example.com" and "acme-cad" in msg["Subject"], (msg["To"], msg["Subject"])
            text = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
            assert lic["license_key"] in text
            files = [p for p in msg.iter_attachments()]
            assert len(files) == 1 and files[0].get_filename() == "acme-cad.license"
            content = files[0].get_content()
            if isinstance(content, bytes):
                content = content.decode()
            assert "-----BEGIN KEYSEAL LICENSE-----" in content, content

            # Refund -> revoked -> list published.
            etag_before = urllib.request.urlopen(f"{base}/v1/public/orgs/{org}/revocations").headers["etag"]
            refund = send(base, org, event("charge.refunded", {
                "id": "ch_1", "object": "charge", "payment_intent": "pi_cs_1", "refunded": True,
                "amount": 9900, "amount_refunded": 9900}))
            assert refund["outcome"] == "revoked", refund
            assert ok(base, token, "GET", f"/v1/licenses/{lid}")["status"] == "revoked"
            etag_after = urllib.request.urlopen(f"{base}/v1/public/orgs/{org}/revocations").headers["etag"]
            assert etag_after != etag_before, "no new revocation list"
            # A partial refund changes nothing.
            partial = send(base, org, event("charge.refunded", {
                "id": "ch_2", "object": "charge", "payment_intent": "pi_cs_1", "refunded": False}))
            assert partial["outcome"] == "ignored"

            # The unknown price, mapped now; Stripe sends the event again.
            ok(base, token, "POST", "/v1/payments/prices", {
                "price_id": "price_later", "product": "acme-cad", "plan": "basic", "duration_secs": 86400, "email": False})
            later = send(base, org, unknown)
            assert later["outcome"] == "minted", later

            # A subscription: checkout, renewal, end.
            ok(base, token, "POST", "/v1/payments/prices", {
                "price_id": "price_monthly", "product": "acme-cad", "plan": "monthly",
                "duration_secs": 31 * 86400, "on_cancel": "revoke"})
            sub = send(base, org, event("checkout.session.completed",
                                        checkout("cs_sub", "price_monthly", "subscription", "sub_1", "cus_stripe_bob")))
            sub_lid = sub["license_id"]
            period_end = int(time.time()) + 62 * 86400
            invoice = {
                "id": "in_2", "object": "invoice", "billing_reason": "subscription_cycle", "subscription": "sub_1",
                "status": "paid", "payment_intent": "pi_in_2",
                "lines": {"object": "list", "data": [{"id": "il_1", "object": "line_item", "price": {"id": "price_monthly", "object": "price"},
                                                      "period": {"start": int(time.time()), "end": period_end}}]},
            }
            early = event("invoice.paid", dict(invoice, subscription="sub_unknown", id="in_x"))
            assert send(base, org, early, 409)["type"].endswith("subscription-unknown")
            renewed = send(base, org, event("invoice.paid", invoice))
            assert renewed["outcome"] == "renewed" and renewed["license_id"] != sub_lid, renewed
            successor = ok(base, token, "GET", f"/v1/licenses/{renewed['license_id']}")
            assert successor["expires_at"] >= period_end and successor["customer_id"] == ok(base, token, "GET", f"/v1/licenses/{sub_lid}")["customer_id"]
            mails = sink.wait_for(3)
            bodies = [m.get_body(preferencelist=("plain",)).get_content() for m in mails]  # type: ignore[union-attr]
            assert any(successor["license_key"] in b for b in bodies), "the renewal's key was not emailed"
            # The same invoice again (another event type, another event id):
            # no second successor, no second email.
            assert send(base, org, event("invoice.payment_succeeded", invoice))["outcome"] == "ignored"
            again = send(base, org, event("invoice.paid", invoice))
            assert again["outcome"] == "ignored" and again["license_id"] == renewed["license_id"], again
            # The subscription's first invoice: its payment paid for the
            # checkout's license, so refunding it revokes that license.
            first_invoice = dict(invoice, id="in_1", billing_reason="subscription_create", payment_intent="pi_sub_first")
            assert send(base, org, event("invoice.paid", first_invoice))["outcome"] == "linked"
            refunded = send(base, org, event("charge.refunded", {
                "id": "ch_sub", "object": "charge", "payment_intent": "pi_sub_first", "refunded": True}))
            assert refunded["outcome"] == "revoked" and refunded["license_id"] == sub_lid, refunded
            ended = send(base, org, event("customer.subscription.deleted", {"id": "sub_1", "object": "subscription", "status": "canceled"}))
            assert ended["outcome"] == "revoked", ended
            assert ok(base, token, "GET", f"/v1/licenses/{renewed['license_id']}")["status"] == "revoked"
            # A buyer's name the service would not keep as given (a ZWNJ):
            # the purchase still mints.
            persian = checkout("cs_fa", "price_later", customer="cus_stripe_fa")
            persian["customer_details"]["name"] = "\u0639\u0644\u06cc\u200c\u0631\u0636\u0627"
            assert send(base, org, event("checkout.session.completed", persian))["outcome"] == "minted"

            # The webhooks announced all of it, in order.
            recv.wait_for(10, 60)
            types = [(e["type"], e["data"].get("license_id")) for _, e in recv.processed]
            assert ("license.created", lid) in types and ("license.revoked", lid) in types
            assert ("license.renewed", renewed["license_id"]) in types
            assert types.index(("license.revoked", lid)) < types.index(("license.created", renewed["license_id"]))
            assert any(t == "revocation_list.published" for t, _ in types)
            # Recorded, with their outcomes.
            outcomes = {e["event_id"]: e["outcome"] for e in ok(base, token, "GET", "/v1/payments/events")["items"]}
            assert sorted(set(outcomes.values())) == ["ignored", "linked", "minted", "refused", "renewed", "revoked"], outcomes

            # Three emails in all: the checkout's, the subscription's, the
            # renewal's (none for a duplicate, or for a price without email).
            time.sleep(1.5)
            assert len(sink.messages) == 3, [m["Subject"] for m in sink.messages]
            agreed = differential(base, org)
            print(f"payments: checkout -> license -> email (key and file) -> refund -> revoked -> list published; "
                  f"duplicates minted once; bad signature, old timestamp, unknown price refused; a subscription renewed and ended; "
                  f"keyseal and stripe.Webhook.construct_event agreed on {agreed} signature cases")
        finally:
            svc.stop()
            recv.server.shutdown()
            sink.controller.stop()
    print(tls_emails(binary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
