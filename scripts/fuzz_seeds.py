#!/usr/bin/env python3
"""Writes fuzz seed corpora from testdata/vectors/ (usage: fuzz_seeds.py OUT_DIR)."""
import hashlib
import json
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
out = Path(sys.argv[1])
vec = root / "testdata" / "vectors"


def seed(target, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    data = data.encode() if isinstance(data, str) else data
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def b64(text):
    import base64
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


for case in json.loads((vec / "licenses.json").read_text())["cases"]:
    key = case["key"]
    if "BEGIN" in key:
        seed("armor", key)
        continue
    seed("license_text", key)
    seed("keyring_text", case["keyring"])
    if key.startswith("ks1."):
        try:
            raw = b64(key[4:])
        except Exception:
            continue
        seed("license_binary", raw)
        if len(raw) > 73:
            seed("claims_signed", raw[9:-64])
for case in json.loads((vec / "revocation_lists.json").read_text())["cases"]:
    raw = bytes.fromhex(case["list_hex"])
    seed("revocation_list", raw)
    if len(raw) > 73:
        seed("revocation_list", raw[9:-64])
seed("sdk_state", "keyseal-state 1\nproduct acme-cad\nseen 1800000000\nsigned 1799996400\nlist 10 1800086400\n")
seed("sdk_state", "keyseal-state 1\nproduct acme-cad\nseen 0\nsigned 0\nlist none\n")
seed("sdk_state", "keyseal-state 2\nproduct acme-cad\nseen 1800000000\nsigned 1799996400\nlist 1794000000 10 1800086400\n")
seed("issuer_inputs", "product,customer,plan,expires,entitlements\nacme-cad,cus_1,pro,2027-01-01,export-pdf;plugins\n")
seed("issuer_inputs", '{"product":"acme-cad","customer":"cus_1","plan":"pro","expires":"365d","entitlements":["a","b"]}\n')
for f in sorted((root / "cli" / "tests").rglob("*.csv")) + sorted((root / "cli" / "tests").rglob("*.jsonl")):
    seed("issuer_inputs", f.read_bytes())
for body in [
    '{"product":"acme-cad","customer_id":"cus_1","plan":"pro","expires":"365d","entitlements":["export-pdf"],"max_devices":2}',
    '{"product":"acme-cad","customer_id":"cus_1","plan":"pro","expires":"2027-01-01","grace":"14d","max_version":"5.x","ext":{"seats":"5"}}',
    '{"product":"acme-cad","name":"ACME CAD"}',
    '{"name":"Jane","email":"jane@example.com"}',
    '{"reason":"refund"}',
    '{"fingerprint":"ksfp1.AAAAAAAAAAAAAAAAAAAAAA","device_match":1}',
]:
    seed("server_requests", body)
# Differential verification: mode byte 0 (the bytes as key and signature),
# then key, signature, message, from the third-party Ed25519 suites.
ed = root / "testdata" / "ed25519"
for group in json.loads((ed / "wycheproof_ed25519_test.json").read_text())["testGroups"]:
    pk = bytes.fromhex(group["publicKey"]["pk"])
    for t in group["tests"]:
        sig = bytes.fromhex(t["sig"])
        if len(sig) == 64:
            seed("precomputed_verify", b"\x00" + pk + sig + bytes.fromhex(t["msg"]))
for t in json.loads((ed / "speccheck_cases.json").read_text()):
    seed("precomputed_verify", b"\x00" + bytes.fromhex(t["pub_key"]) + bytes.fromhex(t["signature"]) + bytes.fromhex(t["message"]))
print(f"fuzz seeds written to {out}")
for case in json.loads((vec / "leases.json").read_text())["cases"]:
    seed("lease", case["lease"])
    if case["lease"].startswith("kslease1."):
        try:
            seed("lease", b64(case["lease"][len("kslease1."):]))
        except Exception:
            continue
# Activation codes: a request and a response shape (any text is tried; the
# checksum makes random ones fail early, so seed well-formed prefixes).
seed("activation_code", "KSREQ1.")
seed("activation_code", "KSRES1.00000-00000")
# Stripe events and webhook signatures: the first line is the header, the
# rest the body (see fuzz/fuzz_targets/webhooks_payments.rs).
stripe_event = json.dumps({
    "id": "evt_1", "object": "event", "type": "checkout.session.completed",
    "data": {"object": {"id": "cs_1", "object": "checkout.session", "payment_status": "paid",
                        "customer": "cus_1", "customer_details": {"email": "a@example.com"},
                        "payment_intent": "pi_1", "metadata": {"keyseal_price": "price_1"}}},
})
seed("webhooks_payments", "t=1800000000,v1=" + "0" * 64 + "\n" + stripe_event)
seed("webhooks_payments", "t=1800000000,v1=00,v0=11,t=5\n" + json.dumps({
    "id": "evt_2", "object": "event", "type": "invoice.paid",
    "data": {"object": {"id": "in_1", "billing_reason": "subscription_cycle", "subscription": "sub_1",
                        "lines": {"data": [{"price": {"id": "price_1"}, "period": {"end": 1800086400}}]}}},
}))
seed("webhooks_payments", "evt_1|1800000000|v1," + "00" * 8 + "," + "00" * 64 + "\n{\"type\":\"license.created\"}")
