#!/usr/bin/env python3
"""Prepares server/bench/checkins.sh: a license of SEATS seats, every seat
activated (one device and installation key each), then REQUESTS check-in
bodies signed ahead of time, one file line each, in an order where two
requests for one seat are SEATS lines apart (so no two are in flight at
once on 64 connections) and each seat's `at` grows by one second from 100
seconds ago (a seat's signed times must grow, and the service takes them
within 300 s of its clock: the signing and the run must take less than
200 s, and a seat has at most about 400 check-ins). SEATS must be even:
wrk's two threads take every other line, so each thread has its own seats.

Usage: checkins_prepare.py BASE TOKEN SEATS REQUESTS OUT_FILE
"""
import base64
import hashlib
import http.client
import json
import os
import sys
import time
from urllib.parse import urlparse

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

base, token, seats, requests, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
u = urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port)


def call(path, body, auth=True):
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Bearer " + token
    conn.request("POST", path, json.dumps(body), headers)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{path}: {r.status} {data[:300]!r}")
    return json.loads(data)


def b64(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def component(raw):
    # docs/FORMAT.md: SHA-512(domain || u64be(len(product)) || product || u64be(len(kind)) || kind || raw)[0..16]
    product, kind = b"acme-cad", b"machine-id"
    h = hashlib.sha512(b"keyseal/fingerprint-component/v1\0" + len(product).to_bytes(8, "big") + product
                       + len(kind).to_bytes(8, "big") + kind + raw)
    return h.digest()[:16]


call("/v1/products", {"product": "acme-cad", "lease_secs": 600, "lease_grace_secs": 120})
cus = call("/v1/customers", {})["customer_id"]
key = call("/v1/licenses", {"product": "acme-cad", "customer_id": cus, "plan": "floating",
                            "expires": "30d", "max_devices": seats})["license_key"]
devices = []
for n in range(seats):
    fp = "ksfp1." + b64(component(n.to_bytes(4, "big")))
    sk = Ed25519PrivateKey.generate()
    pk = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    seat = call("/v1/public/leases", {"license_key": key, "fingerprint": fp, "public_key": "kspub1." + b64(pk)},
                auth=False)["seat_id"]
    devices.append((fp, seat, sk))
start = int(time.time()) - 100
with open(out, "w") as f:
    for i in range(requests):
        fp, seat, sk = devices[i % seats]
        at = start + i // seats
        msg = b"keyseal/lease-check-in/v1\0" + bytes.fromhex(seat) + at.to_bytes(8, "big")
        body = {"license_key": key, "fingerprint": fp, "seat_id": seat, "at": at, "signature": sk.sign(msg).hex()}
        f.write(json.dumps(body, separators=(",", ":")) + "\n")
print(f"{seats} seats activated, {requests} check-ins signed (at from {start})", file=sys.stderr)
