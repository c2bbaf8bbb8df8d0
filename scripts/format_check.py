#!/usr/bin/env python3
"""Independent verifier of keyseal licenses, written from docs/FORMAT.md alone.

It shares no code with the Rust implementation: it decodes every license in
testdata/vectors/licenses.json with the rules of FORMAT.md, checks signatures
with the `cryptography` package, and compares its verdict to the vectors.
It then plays every scenario of testdata/vectors/trust.json with FORMAT.md's
rules for who may sign a revocation list, which list wins, and how far a
signed time may move the clock (warnings are SDK behaviour and not compared),
checks every license and lease of testdata/vectors/leases.json with the
rules of "Lease" and "Seat allotment", and encodes and reads the codes of
testdata/vectors/activation_codes.json with the rules of "Activation codes",
and testdata/vectors/webhooks.json with those of "Webhook signature".
Exit status 0 when every case agrees.
"""
import base64
import copy
import hashlib
import json
import re
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ROOT = Path(__file__).resolve().parent.parent
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
NAME_CHARS = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")
L = 2**252 + 27742317777372353535851937790883648493


class Reject(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def b64url(text):
    if any(c not in ALPHABET for c in text) or len(text) % 4 == 1:
        raise Reject("malformed")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # Canonical: re-encoding must give the same text (no stray low bits).
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != text:
        raise Reject("malformed")
    return raw


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise Reject("malformed")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def varint(self, max_bytes):
        """A varint of the width `max_bytes` encodes (3: u16, 5: u32, 10: u64,
        19: u128); a value past that width is malformed."""
        value = 0
        for i in range(max_bytes):
            b = self.take(1)[0]
            value |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                if i > 0 and b == 0:
                    raise Reject("malformed")  # over-long
                if value >= 1 << {3: 16, 5: 32, 10: 64, 19: 128}[max_bytes]:
                    raise Reject("malformed")
                return value
        raise Reject("malformed")

    def string(self):
        return self.take(self.varint(5)).decode("ascii", errors="strict")

    def option(self, read):
        tag = self.take(1)[0]
        if tag > 1:
            raise Reject("malformed")
        return read() if tag else None


def name(s, limit):
    if not 1 <= len(s) <= limit or not set(s.encode()) <= NAME_CHARS:
        raise Reject("malformed")
    return s


def parse_claims(body):
    r = Reader(body)
    c = {"license_id": r.take(16).hex()}
    c["product"] = name(r.string(), 32)
    c["customer"] = name(r.string(), 64)
    c["plan"] = name(r.string(), 32)
    c["issued_at"] = r.varint(10)
    c["not_before"] = r.option(lambda: r.varint(10))
    c["expires_at"] = r.option(lambda: r.varint(10))
    c["grace_secs"] = r.varint(5)

    def device():
        kind = r.varint(5)
        if kind == 0:
            return {"kind": "exact", "hint": r.take(2)}
        if kind == 1:
            k = r.take(1)[0]
            n = r.varint(5)
            if not 1 <= k <= n <= 8:
                raise Reject("malformed")
            return {"kind": "tolerant", "required": k, "digests": [r.take(6) for _ in range(n)]}
        raise Reject("malformed")

    c["device"] = r.option(device)
    n = r.varint(5)
    if n > 32:
        raise Reject("malformed")
    ents = [name(r.string(), 32) for _ in range(n)]
    if any(a >= b for a, b in zip(ents, ents[1:])):
        raise Reject("malformed")
    c["entitlements"] = ents

    def cap():
        kind = r.varint(5)
        if kind > 2:
            raise Reject("malformed")
        return tuple(r.varint(3) for _ in range(kind + 1))

    c["max_version"] = r.option(cap)
    n = r.varint(5)
    if n > 8:
        raise Reject("malformed")
    ext = [(name(r.string(), 32), r.string()) for _ in range(n)]
    if any(a[0] >= b[0] for a, b in zip(ext, ext[1:])):
        raise Reject("malformed")
    c["extensions"] = dict(ext)
    if r.pos != len(body):
        raise Reject("malformed")
    if c["not_before"] is not None and c["expires_at"] is not None and c["not_before"] >= c["expires_at"]:
        raise Reject("malformed")
    return c


def key_id(pk):
    return hashlib.sha512(b"keyseal/key-id/v1\0" + pk).digest()[:8]


def keyring_time(v):
    """T: unix seconds in decimal, no sign, no leading zeros, below 2^64."""
    if not v.isascii() or not v.isdigit() or (len(v) > 1 and v[0] == "0") or int(v) >= 2**64:
        raise Reject("malformed")
    return int(v)


def public_key_text(text):
    if not text.startswith("kspub1."):
        raise Reject("malformed")
    return b64url(text[len("kspub1."):])


def narrow(keys, new):
    """Trusts `new`, or narrows the entry of the same key: the narrower
    window and scope of the two, in either order."""
    old = keys.get(key_id(new["pk"]))
    if old:
        ends = [u for u in (old["until"], new["until"]) if u is not None]
        new = dict(new, **{"from": max(old["from"], new["from"]), "until": min(ends) if ends else None})
        if old["products"] and new["products"]:
            new["products"] = [p for p in old["products"] if p in new["products"]] or ["\0none"]
        else:
            new["products"] = old["products"] or new["products"]
    keys[key_id(new["pk"])] = new


def parse_keyring(text):
    keys = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        words = line.split()
        if len(words) < 2 or words[0] != "key":
            raise Reject("malformed")
        pk = public_key_text(words[1])
        entry = {"pk": pk, "from": 0, "until": None, "products": None}
        for opt in words[2:]:
            k, eq, v = opt.partition("=")
            if not eq or k not in ("from", "until", "products"):
                raise Reject("malformed")
            if k == "products":
                names = v.split(",")
                if not 1 <= len(names) <= 4:
                    raise Reject("malformed")
                entry["products"] = [name(n, 32) for n in names]
            else:
                entry[k] = keyring_time(v)
        narrow(keys, entry)
    return keys


P25519 = 2**255 - 19
D25519 = -121665 * pow(121666, P25519 - 2, P25519) % P25519


def valid_public_key(pk):
    """FORMAT.md: a valid, non-weak point, in its one encoding (RFC 8032
    5.1.3 decoding: y < p, a square root, no x = 0 with the sign bit set;
    then not of small order: 8P is not the identity)."""
    y = int.from_bytes(pk, "little") & ((1 << 255) - 1)
    sign = pk[31] >> 7
    if y >= P25519:
        return False
    u, v = (y * y - 1) % P25519, (D25519 * y * y + 1) % P25519
    x2 = u * pow(v, P25519 - 2, P25519) % P25519
    x = pow(x2, (P25519 + 3) // 8, P25519)
    if (x * x - x2) % P25519:
        x = x * pow(2, (P25519 - 1) // 4, P25519) % P25519
    if (x * x - x2) % P25519:
        return False
    if x == 0 and sign:
        return False
    if x % 2 != sign:
        x = P25519 - x

    def add(a, b):
        (x1, y1), (x2_, y2) = a, b
        t = D25519 * x1 * x2_ * y1 * y2 % P25519
        return ((x1 * y2 + y1 * x2_) * pow(1 + t, P25519 - 2, P25519) % P25519,
                (y1 * y2 + x1 * x2_) * pow(1 - t, P25519 - 2, P25519) % P25519)

    q = (x, y)
    for _ in range(3):
        q = add(q, q)
    return q != (0, 1)


def signature_ok(pk, msg, sig):
    """Ed25519 with a canonical S (the `cryptography` package checks the rest)."""
    if int.from_bytes(sig[32:], "little") >= L:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
        return True
    except InvalidSignature:
        return False


def envelope(data):
    """FORMAT.md's order: empty, then the version byte, then the length."""
    if not data:
        raise Reject("malformed")
    if data[0] != 1:
        raise Reject("unsupported_version")
    if len(data) <= 73 or len(data) > 64 * 2**20:
        raise Reject("malformed")
    return data[1:9], data[9:-64], data[-64:]


def blocks(text):
    """The armored blocks of a file, in order: (label, bytes)."""
    out, label, body = [], None, []
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        if label is None and line.startswith("-----BEGIN KEYSEAL ") and line.endswith("-----"):
            label, body = line[len("-----BEGIN KEYSEAL "):-len("-----")], []
        elif label is not None and line == f"-----END KEYSEAL {label}-----":
            out.append((label, b"".join(b64url(x) for x in body)))
            label = None
        elif label is not None and line:
            body.append(line)
    return out


def in_window(key, t):
    return key["from"] <= t and (key["until"] is None or t <= key["until"])


def full_keyring(text):
    """Keys, roots and certificates (the `cert` lines checked against the
    roots above them)."""
    ring = {"keys": {}, "roots": {}}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        words = line.split()
        if len(words) < 2:
            raise Reject("malformed")
        kind, value = words[0], words[1]
        if kind in ("root", "cert") and len(words) > 2:
            raise Reject("malformed")
        if kind == "root":
            pk = public_key_text(value)
            ring["roots"][key_id(pk)] = pk
        elif kind == "cert":
            add_certificate(ring, b64url(value[len("kscert1."):]))
        elif kind == "key":
            for entry in parse_keyring(line).values():
                narrow(ring["keys"], entry)
        else:
            raise Reject("malformed")
        # At most 16 distinct issuing keys (listed or certified) and 4 roots.
        if len(ring["keys"]) > 16 or len(ring["roots"]) > 4:
            raise Reject("keyring_full")
    return ring


def add_certificate(ring, data):
    kid, body, sig = envelope(data)
    if kid not in ring["roots"]:
        raise Reject("unknown_key")
    if not signature_ok(ring["roots"][kid], b"keyseal/key-certificate/v1\0" + data[:-64], sig):
        raise Reject("bad_signature")
    r = Reader(body)
    pk, start = r.take(32), r.varint(10)
    until = r.option(lambda: r.varint(10))
    count = r.varint(5)
    if count > 4:
        raise Reject("malformed")
    products = [name(r.string(), 32) for _ in range(count)]
    if r.pos != len(body):
        raise Reject("malformed")
    narrow(ring["keys"], {"pk": pk, "from": start, "until": until, "products": products or None})


def add_file_certificate(ring, data):
    """A certificate found in a list or license file: one of a root the
    keyring does not pin is ignored."""
    try:
        add_certificate(ring, data)
    except Reject as r:
        if r.code != "unknown_key":
            raise


def verify_list(data, ring):
    """A revocation list, by rules 1 and 2 of "Who may sign a list"."""
    kid, body, sig = envelope(data)
    r = Reader(body)
    sequence, issued_at, next_update = r.varint(10), r.varint(10), r.varint(10)
    if next_update < issued_at or max(sequence, next_update) >= 2**64:
        raise Reject("malformed")
    ids = []
    for size, width in ((8, 10), (16, 19)):
        out, prev = set(), None
        for _ in range(r.varint(10)):
            d = r.varint(width)
            prev = d if prev is None else prev + d + 1
            if prev >= 2 ** (8 * size):
                raise Reject("malformed")
            out.add(prev.to_bytes(size, "big"))
        ids.append(out)
    if r.pos != len(body):
        raise Reject("malformed")
    key = ring["keys"].get(kid)
    if key is None:
        raise Reject("unknown_key")
    if not signature_ok(key["pk"], b"keyseal/revocation-list/v1\0" + data[:-64], sig):
        raise Reject("bad_signature")
    keys, licenses = ids
    if not in_window(key, issued_at) or any(
            k in ring["keys"] and ring["keys"][k]["from"] > key["from"] for k in keys):
        raise Reject("key_not_valid")
    return {"signer": kid, "order": (key["from"], sequence), "issued_at": issued_at,
            "keys": keys, "licenses": {x.hex() for x in licenses}}


MAX_SIGNED_LEAD = 86_400


def clean_key(text):
    """What FORMAT.md lets an app remove from a pasted key: leading and
    trailing ASCII whitespace, and every run of it that holds a line break."""
    ws = " \t\n\x0c\r"
    return re.sub(f"[{ws}]*[\r\n][{ws}]*", "", text.strip(ws))


def play(scenario):
    """Plays a trust.json scenario; returns the mismatches."""
    start = full_keyring(scenario["keyring"])
    ring, in_force, newest, mark, problems = copy.deepcopy(start), None, None, 0, []

    def install(trial, data, clock):
        """A list loaded by the rules of "Who may sign a list"."""
        nonlocal ring, in_force, newest, mark
        rl = verify_list(data, trial)
        seen = max([o for o in (newest, in_force and in_force["order"]) if o] or [(0, 0)])
        if rl["order"] < seen:
            raise Reject("rolled_back_revocation_list")
        if in_force and rl["signer"] in in_force["keys"] and rl["order"][0] <= in_force["order"][0]:
            raise Reject("key_revoked")
        ring, in_force, newest = trial, rl, rl["order"]
        if rl["issued_at"] <= clock + MAX_SIGNED_LEAD:
            mark = max(mark, rl["issued_at"])
        return rl

    for i, step in enumerate(scenario["steps"]):
        if step["action"] == "restart":  # the mark and the newest (rank, sequence) persist
            ring, in_force = copy.deepcopy(start), None
            continue
        clock = step["now"]
        try:
            if step["action"] == "load_list":
                trial, lists = copy.deepcopy(ring), []
                for label, data in blocks(step["list"]):
                    if label == "KEY CERTIFICATE":
                        add_file_certificate(trial, data)
                    elif label == "REVOCATION LIST":
                        lists.append(data)
                rl = install(trial, lists[0], clock)
                got = {"ok": True, "sequence": rl["order"][1]}
            else:
                trial, data = copy.deepcopy(ring), None
                if "-----BEGIN" in step["key"]:
                    # One LICENSE block; the file's certificates are used,
                    # and its lists loaded first (a rolled-back one ignored).
                    found = blocks(step["key"])
                    if [label for label, _ in found].count("LICENSE") != 1 or any(
                            label not in ("LICENSE", "KEY CERTIFICATE", "REVOCATION LIST") for label, _ in found):
                        raise Reject("malformed")
                    for label, b in found:
                        if label == "KEY CERTIFICATE":
                            add_file_certificate(trial, b)
                        elif label == "LICENSE":
                            data = b
                    for label, b in found:
                        if label == "REVOCATION LIST":
                            try:
                                install(copy.deepcopy(trial), b, clock)
                            except Reject as r:
                                if r.code != "rolled_back_revocation_list":
                                    raise
                else:
                    data = decode_key(clean_key(step["key"]))
                revoked = (in_force["keys"], in_force["licenses"]) if in_force else (set(), set())
                seen, refusal = {}, None
                try:
                    status, _, _ = check_license(
                        data, trial["keys"], {"product": scenario["product"]}, max(clock, mark), revoked, seen)
                except Reject as r:
                    refusal = r
                # A signed time counts if the signature verified, the key was
                # trusted for it, and it is at most a day past the clock.
                trusted = seen.get("signature") and not (
                    refusal and refusal.code in ("key_revoked", "key_not_valid"))
                if trusted and seen["issued_at"] <= clock + MAX_SIGNED_LEAD:
                    mark = max(mark, seen["issued_at"])
                if refusal:
                    raise refusal
                got = {"ok": True, "status": status}
        except Reject as r:
            got = {"ok": False, "error": r.code}
        mark = max(mark, clock)
        want = {k: v for k, v in step["expect"].items() if k != "warnings"}
        if got != want:
            problems.append(f"step {i}: got {got}, want {want}")
    return problems


def decode_key(text):
    if "-----BEGIN KEYSEAL LICENSE-----" in text:
        body = text.split("-----BEGIN KEYSEAL LICENSE-----\n")[1].split("-----END KEYSEAL LICENSE-----")[0]
        return b"".join(b64url(line) for line in body.split())
    if text.startswith("ks") and "." in text:
        digits = text[2:text.index(".")]
        if digits.isdigit() and digits != "1":
            raise Reject("unsupported_version")
    if not text.startswith("ks1."):
        raise Reject("malformed")
    # Decoded into at most the maximum: a longer text is malformed before
    # its version byte is read.
    if len(text) - 4 > (2185 * 4 + 2) // 3:
        raise Reject("malformed")
    return b64url(text[4:])


def fingerprint(text):
    if not text.startswith("ksfp1."):
        raise Reject("malformed")
    raw = b64url(text[len("ksfp1."):])
    if not raw or len(raw) % 16 or len(raw) > 8 * 16:
        raise Reject("malformed")
    return [raw[i:i + 16] for i in range(0, len(raw), 16)]


def app_version(text):
    """MAJOR[.MINOR[.PATCH]], then anything after `-` or `+` ignored; decimal
    numbers up to 65535 without leading zeros; missing ones are 0."""
    core = text.replace("+", "-").split("-")[0]
    parts = core.split(".")
    if not 1 <= len(parts) <= 3 or any(
            not p.isascii() or not p.isdigit() or (len(p) > 1 and p[0] == "0") or int(p) > 65535 for p in parts):
        raise Reject("malformed")
    return tuple(int(p) for p in parts) + (0,) * (3 - len(parts))


def covers(cap, version):
    return app_version(version)[:len(cap)] <= cap


def verify(case):
    ring = full_keyring(case["keyring"])
    revoked = (set(), set())
    if case["revocation_list_hex"]:
        # Verified first, by its own rules: its error is the verdict.
        listed = verify_list(bytes.fromhex(case["revocation_list_hex"]), ring)
        revoked = (listed["keys"], listed["licenses"])
    return check_license(decode_key(case["key"]), ring["keys"], case, case["now"], revoked, {})


def check_license(data, keys, case, now, revoked, seen):
    """The verification order of FORMAT.md; `seen["signature"]` is set once
    the signature verified. A license is checked at no earlier than its own
    issued-at."""
    if not data:
        raise Reject("malformed")
    if data[0] != 1:
        raise Reject("unsupported_version")
    if len(data) <= 73 or len(data) > 2185:
        raise Reject("malformed")
    kid, body, sig = data[1:9], data[9:-64], data[-64:]
    claims = parse_claims(body)
    if kid not in keys:
        raise Reject("unknown_key")
    key = keys[kid]
    device = [] if case.get("device") is None else fingerprint(case["device"])
    extra = b""
    lid = bytes.fromhex(claims["license_id"])
    if claims["device"] and claims["device"]["kind"] == "exact":
        if not device:
            raise Reject("wrong_device")
        d = hashlib.sha512(b"keyseal/device-binding/v1\0" + lid + bytes([len(device)]) + b"".join(device)).digest()
        if d[32:34] != claims["device"]["hint"]:
            raise Reject("wrong_device")
        extra = d[:32]
    if not signature_ok(key["pk"], b"keyseal/license/v1\0" + data[:-64] + extra, sig):
        raise Reject("bad_signature")
    seen["signature"] = True
    seen["issued_at"] = claims["issued_at"]
    now = max(now, claims["issued_at"])
    revoked_keys, revoked_licenses = revoked
    if kid in revoked_keys:
        raise Reject("key_revoked")
    if claims["issued_at"] < key["from"] or (key["until"] is not None and claims["issued_at"] > key["until"]):
        raise Reject("key_not_valid")
    if key["products"] and claims["product"] not in key["products"]:
        raise Reject("key_not_valid")
    if claims["product"] != case["product"]:
        raise Reject("wrong_product")
    if claims["device"] and claims["device"]["kind"] == "tolerant":
        left = list(claims["device"]["digests"])
        for c in device:
            d = hashlib.sha512(b"keyseal/device-component/v1\0" + lid + c).digest()[:6]
            if d in left:
                left.remove(d)
        if len(claims["device"]["digests"]) - len(left) < claims["device"]["required"]:
            raise Reject("wrong_device")
    if claims["license_id"] in revoked_licenses:
        raise Reject("revoked")
    leeway = case.get("leeway", 0)
    if claims["not_before"] is not None and now + leeway < claims["not_before"]:
        raise Reject("not_yet_valid")
    status, grace_ends = "active", None
    if claims["expires_at"] is not None:
        end = claims["expires_at"] + claims["grace_secs"]
        if now > end + leeway:
            raise Reject("expired")
        if claims["grace_secs"] > 0 and now > claims["expires_at"]:
            status, grace_ends = "in_grace", end
    if claims["max_version"] and case.get("app_version") and not covers(claims["max_version"], case["app_version"]):
        raise Reject("version_not_covered")
    return status, grace_ends, claims


def check_lease(text, keys, case, license_claims, now, revoked):
    """FORMAT.md's "Verifying a lease", after the license verified; returns
    (renew_at, expires_at, issued_at, seat id, check-in due)."""
    def fault(f):
        return Reject(("lease_invalid", f))

    if text.startswith("kslease") and "." in text:
        digits = text[len("kslease"):text.index(".")]
        if digits.isdigit() and digits != "1":
            raise fault("unsupported_version")
    if not text.startswith("kslease1."):
        raise fault("malformed")
    lease_text, _, allot_text = text[len("kslease1."):].partition(".")
    relayed = "." in text[len("kslease1."):]
    try:
        data = b64url(lease_text)
        allot = b64url(allot_text) if relayed else None
    except Reject:
        raise fault("malformed")
    if not data or data[0] != 1:
        raise fault("unsupported_version" if data else "malformed")
    if len(data) <= 73 or len(data) > 137:
        raise fault("malformed")
    if relayed:
        # "Seat allotment": an envelope of at most 146 bytes.
        if allot and allot[0] != 1:
            raise fault("unsupported_version")
        if len(allot) <= 73 or len(allot) > 146:
            raise fault("malformed")
        a_kid, a_body, a_sig = allot[1:9], allot[9:-64], allot[-64:]
        try:
            r = Reader(a_body)
            a_lid, relay_pk = r.take(16), r.take(32)
            seats, a_issued, a_expires = r.varint(5), r.varint(10), r.varint(10)
        except Reject:
            raise fault("malformed")
        if (r.pos != len(a_body) or seats >= 2**32 or seats == 0
                or max(a_issued, a_expires) >= 2**64 or a_issued > a_expires
                or not valid_public_key(relay_pk)):
            raise fault("malformed")
    kid, body, sig = data[1:9], data[9:-64], data[-64:]
    try:
        r = Reader(body)
        lid, seat, hint = r.take(16), r.take(16), r.take(2)
        issued, renew, expires = r.varint(10), r.varint(10), r.varint(10)
    except Reject:
        raise fault("malformed")
    if r.pos != len(body) or max(issued, renew, expires) >= 2**64 or not issued <= renew <= expires:
        raise fault("malformed")
    vendor_kid = a_kid if relayed else kid
    if vendor_kid not in keys:
        raise fault("unknown_key")
    key = keys[vendor_kid]
    if relayed and kid != key_id(relay_pk):
        raise fault("unknown_key")
    device = [] if case.get("device") is None else fingerprint(case["device"])
    if not device:
        raise fault("wrong_device")
    d = hashlib.sha512(b"keyseal/device-binding/v1\0" + lid + bytes([len(device)]) + b"".join(device)).digest()
    if d[32:34] != hint:
        raise fault("wrong_device")
    if relayed:
        if not signature_ok(key["pk"], b"keyseal/seat-allotment/v1\0" + allot[:-64], a_sig):
            raise fault("bad_signature")
        if not signature_ok(relay_pk, b"keyseal/lease/v1\0" + data[:-64] + d[:32], sig):
            raise fault("bad_signature")
    elif not signature_ok(key["pk"], b"keyseal/lease/v1\0" + data[:-64] + d[:32], sig):
        raise fault("bad_signature")
    if vendor_kid in revoked[0] or (relayed and kid in revoked[0]):
        raise fault("key_revoked")
    vendor_signed_at = a_issued if relayed else issued
    if not in_window(key, vendor_signed_at) or (key["products"] and license_claims["product"] not in key["products"]):
        raise fault("key_not_valid")
    if relayed and (issued < a_issued or expires > a_expires):
        raise fault("key_not_valid")
    if lid.hex() != license_claims["license_id"] or (relayed and a_lid != lid):
        raise fault("other_license")
    leeway = case.get("leeway", 0)
    if issued > now + max(leeway, 86400):
        raise fault("not_yet_valid")
    t = max(now, issued)
    if t > expires + leeway:
        raise Reject("lease_expired")
    return {"seat_id": seat.hex(), "issued_at": issued, "renew_at": renew,
            "expires_at": expires, "check_in_due": t > renew}


def lease_cases():
    cases = json.loads((ROOT / "testdata/vectors/leases.json").read_text())["cases"]
    failed = 0
    for case in cases:
        want = case["expect"]
        try:
            status, _, claims = verify(case)
            ring = full_keyring(case["keyring"])
            revoked = (set(), set())
            if case["revocation_list_hex"]:
                listed = verify_list(bytes.fromhex(case["revocation_list_hex"]), ring)
                revoked = (listed["keys"], listed["licenses"])
            lease = check_lease(case["lease"], ring["keys"], case, claims, case["now"], revoked)
            got = {"valid": True, "license_id": claims["license_id"], "status": status, "lease": lease}
        except Reject as r:
            code, f = r.code if isinstance(r.code, tuple) else (r.code, None)
            got = {"valid": False, "error": code, "fault": f}
        if got != want:
            failed += 1
            print(f"MISMATCH {case['name']}: {got}, want {want}")
    print(f"format_check: {len(cases) - failed} lease cases passed, {failed} failed")
    return failed == 0 and len(cases) >= 20


BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def code_checksum(payload):
    return hashlib.sha512(b"keyseal/activation-code/v1\0" + payload).digest()[:4]


def write_code(prefix, payload):
    """FORMAT.md "Activation codes": Crockford base32 of payload and checksum,
    upper case, groups of five joined by '-'."""
    bits = "".join(f"{b:08b}" for b in payload + code_checksum(payload))
    bits += "0" * (-len(bits) % 5)
    symbols = "".join(BASE32[int(bits[i:i + 5], 2)] for i in range(0, len(bits), 5))
    return prefix + "-".join(symbols[i:i + 5] for i in range(0, len(symbols), 5))


def read_code(text, prefix):
    text = text.strip()
    if text[:len(prefix)].upper() != prefix:
        raise Reject("malformed")
    bits = ""
    for c in text[len(prefix):]:
        if c == "-" or c in " \t\r\n\f\v":
            continue
        c = {"O": "0", "I": "1", "L": "1"}.get(c.upper(), c.upper())
        if c not in BASE32:
            raise Reject("malformed")
        bits += f"{BASE32.index(c):05b}"
    extra = len(bits) % 8
    if extra >= 5 or "1" in bits[len(bits) - extra:]:
        raise Reject("malformed")
    data = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits) - extra, 8))
    if len(data) < 4 or code_checksum(data[:-4]) != data[-4:]:
        raise Reject("malformed")
    return data[:-4]


def activation_code_cases():
    cases = json.loads((ROOT / "testdata/vectors/activation_codes.json").read_text())["cases"]
    failed = 0
    for case in cases:
        try:
            if case["kind"] == "request":
                lic = b64url(case["license_key"][len("ks1."):])
                lid = bytes.fromhex(parse_claims(lic[9:-64])["license_id"])
                device = fingerprint(case["device"])
                d = hashlib.sha512(b"keyseal/device-binding/v1\0" + lid + bytes([len(device)]) + b"".join(device)).digest()
                proof = hashlib.sha512(b"keyseal/activation-request/v1\0" + lic).digest()[:8]
                pk = b64url(case["public_key"][len("kspub1."):])
                got = write_code("KSREQ1.", bytes([1]) + lid + proof + d[:34] + pk)
                want = case["expect_code"]
            elif case["kind"] == "decode_request":
                want = case["expect"]
                try:
                    b = read_code(case["code"], "KSREQ1.")
                    if len(b) != 91:
                        raise Reject("malformed")
                    if b[0] != 1:
                        raise Reject("unsupported_version")
                    got = {"valid": True, "license_id": b[1:17].hex(), "license_proof_hex": b[17:25].hex(),
                           "binding_hash_hex": b[25:57].hex(), "device_hint_hex": b[57:59].hex(),
                           "public_key": "kspub1." + base64.urlsafe_b64encode(b[59:91]).decode().rstrip("=")}
                except Reject as r:
                    got = {"valid": False, "error": r.code}
            else:
                want = case["expect"]
                try:
                    lease = read_code(case["code"], "KSRES1.")
                    got = {"valid": True, "lease": "kslease1." + base64.urlsafe_b64encode(lease).decode().rstrip("=")}
                except Reject as r:
                    got = {"valid": False, "error": r.code}
        except Reject as r:
            got, want = r.code, case.get("expect_code")
        if got != want:
            failed += 1
            print(f"MISMATCH {case['name']}: {got}, want {want}")
    print(f"format_check: {len(cases) - failed} activation code cases passed, {failed} failed")
    return failed == 0 and len(cases) >= 15


def webhook_cases():
    """testdata/vectors/webhooks.json with the rules of "Webhook signature"."""
    cases = json.loads((ROOT / "testdata/vectors/webhooks.json").read_text())["cases"]
    failed = 0
    for case in cases:
        want = case["expect"]
        try:
            got = {"valid": True, "key_id": check_webhook(case)}
        except Reject as r:
            got = {"valid": False, "error": r.code}
        if got != want:
            failed += 1
            print(f"MISMATCH {case['name']}: {got}, want {want}")
    print(f"format_check: {len(cases) - failed} webhook signature cases passed, {failed} failed")
    return failed == 0 and len(cases) >= 20


def check_webhook(case):
    ts, msg_id = case["timestamp"], case["id"]
    if not msg_id or not case["signature"] or not ts or not ts.isascii() or not ts.isdigit() or len(ts) > 20:
        raise Reject("malformed")
    if abs(int(ts) - case["now"]) > 300:
        raise Reject("stale")
    keys = parse_keyring(case["keyring"])
    message = b"keyseal/webhook/v1\0" + f"{msg_id}.{ts}.".encode() + case["body"].encode()
    refusal = "malformed"
    for value in (v for v in case["signature"].split(" ") if v):
        parts = value.split(",")
        if len(parts) != 3 or parts[0] != "v1" or len(parts[1]) != 16 or len(parts[2]) != 128:
            continue
        try:
            kid, sig = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
        except ValueError:
            continue
        key = keys.get(kid)
        if key is None:
            refusal = "unknown_key"
            continue
        if not in_window(key, int(ts)):
            refusal = "key_not_valid"
            continue
        if signature_ok(key["pk"], message, sig):
            return kid.hex()
        refusal = "bad_signature"
    raise Reject(refusal)


def main():
    cases = json.loads((ROOT / "testdata/vectors/licenses.json").read_text())["cases"]
    checked = failed = 0
    for case in cases:
        want = case["expect"]
        try:
            status, grace_ends, claims = verify(case)
            ok = want["valid"] and want["status"] == status and want["grace_ends"] == grace_ends
            wc = want["claims"] if want["valid"] else {}
            for k in ("license_id", "product", "customer", "plan", "issued_at", "not_before",
                      "expires_at", "grace_secs", "entitlements", "extensions"):
                ok = ok and wc.get(k) == claims[k]
            verdict = "valid" if ok else f"valid but differs from {want}"
        except Reject as r:
            ok = not want["valid"] and want["error"] == r.code
            verdict = r.code
        checked += 1
        if not ok:
            failed += 1
            print(f"MISMATCH {case['name']}: {verdict}, want {want.get('error', 'valid')}")
    print(f"format_check: {checked - failed} passed, {failed} failed")
    scenarios = json.loads((ROOT / "testdata/vectors/trust.json").read_text())["cases"]
    broken = 0
    for sc in scenarios:
        for p in play(sc):
            broken += 1
            print(f"MISMATCH {sc['name']} {p}")
    print(f"format_check: {len(scenarios)} trust scenarios, {broken} mismatched steps")
    leases_ok = lease_cases()
    codes_ok = activation_code_cases()
    webhooks_ok = webhook_cases()
    return 1 if failed or checked < 25 or broken or len(scenarios) < 10 or not leases_ok or not codes_ok or not webhooks_ok else 0


if __name__ == "__main__":
    sys.exit(main())
