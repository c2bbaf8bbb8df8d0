"""Validation speed of the keyseal wheel against PyJWT (EdDSA) and pyseto
(PASETO v4.public) on the same claims, and against the Rust SDK itself.

    python bench/bench.py            full run (about a minute; a quiet machine)
    python bench/bench.py --smoke    seconds: checks every contender runs and
                                     gives the right verdict (CI); figures are noise

The reference key is issue.json's reference case (its seed, claims and
device; the key text is checked byte for byte), validated by a warm
``keyseal.Validator`` trusting that key: app version 5.2.0, the fixed
device, state in memory, and a clock fixed at 1800000000 (a Python
callable, so the figure includes calling back into Python for the time).
When the system clock is inside the license's validity the default
system-clock configuration is measured too.

The peers verify the same claims as JSON (license id, product as audience,
customer, plan, issue and expiry times, a salted device hash, entitlements,
max version), signed by the same Ed25519 key: PyJWT's ``jwt.decode`` with
EdDSA (signature, expiry and audience checked) and pyseto's ``decode`` of a
v4.public token with a JSON deserializer (signature, expiry and audience).

The Rust SDK's figure comes from ``examples/rust_validate.rs`` (the same
validator configuration with a ``ManualClock``), built with ``cargo build
--release`` and run once per round; ``--no-rust`` skips it, ``--smoke``
skips it unless ``--rust`` is given.

Every contender is timed in rounds, interleaved (a round of each in turn,
the Rust example included), and the best round's mean is reported. Times
are the thread's CPU time (``time.thread_time``; the Rust example reads the
same clock), so other processes on a shared machine do not inflate them;
on a quiet machine they equal wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import keyseal

HERE = Path(__file__).resolve().parent
TESTDATA = Path(os.environ.get("KEYSEAL_TESTDATA", HERE.parents[1] / "testdata"))
NOW = 1_800_000_000


def reference() -> tuple[dict[str, Any], keyseal.SigningKey, str]:
    doc = json.loads((TESTDATA / "vectors" / "issue.json").read_text(encoding="utf-8"))
    case = next(c for c in doc["cases"] if c["name"] == "reference_exact_device")
    key = keyseal.SigningKey.from_seed(bytes.fromhex(case["seed_hex"]))
    cl = case["claims"]
    text = keyseal.issue(
        key,
        product=cl["product"],
        customer=cl["customer"],
        plan=cl["plan"],
        license_id=cl["license_id"],
        issued_at=cl["issued_at"],
        expires=cl["expires_at"],
        entitlements=cl["entitlements"],
        max_version=cl["max_version"],
        device=case["device"],
        device_match="exact",
    )
    assert text == case["expect_key"], "issue.json's reference key must reproduce byte for byte"
    return case, key, text


def json_claims(cl: dict[str, Any]) -> dict[str, Any]:
    """The same claims as a JWT or PASETO would carry them."""
    return {
        "jti": cl["license_id"],
        "aud": cl["product"],
        "sub": cl["customer"],
        "plan": cl["plan"],
        "iat": cl["issued_at"],
        "exp": cl["expires_at"],
        # A salted device hash, as a peer format would carry the binding.
        "device": "q3YpAlbNMJAQ1Hy3IZMtKEnf9GYgLQpZEutqrhAh9bE",
        "entitlements": cl["entitlements"],
        "max_version": cl["max_version"],
    }


def contenders(smoke: bool) -> tuple[list[tuple[str, Callable[[], object]]], list[str]]:
    case, key, text = reference()
    cl = case["claims"]
    notes: list[str] = []
    fixed = keyseal.Validator(
        key.keyring_line(), cl["product"], app_version="5.2.0", device=case["device"],
        clock=lambda: NOW, state=keyseal.MemoryStateStore(),
    )
    lic = fixed.validate(text)
    assert lic.customer == cl["customer"] and lic.has("export-pdf") and lic.is_clean
    out: list[tuple[str, Callable[[], object]]] = [
        ("keyseal wheel: Validator.validate (clock callable)", lambda: fixed.validate(text)),
    ]
    now = time.time()
    in_validity = cl["issued_at"] <= now < cl["expires_at"]
    if in_validity:
        system = keyseal.Validator(
            key.keyring_line(), cl["product"], app_version="5.2.0", device=case["device"],
            state=keyseal.MemoryStateStore(),
        )
        assert system.validate(text).customer == cl["customer"]
        out.append(("keyseal wheel: Validator.validate (system clock)", lambda: system.validate(text)))
    else:
        notes.append("system clock outside the reference license's validity: system-clock row skipped")

    seed = bytes.fromhex(case["seed_hex"])
    claims = json_claims(cl)
    try:
        import jwt
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        priv = Ed25519PrivateKey.from_private_bytes(seed)
        pub = priv.public_key()
        token = jwt.encode(claims, priv, algorithm="EdDSA")
        options: Any = {"require": ["exp", "iat", "aud"], "verify_exp": in_validity}
        if not in_validity:
            notes.append("PyJWT: expiry check off (the system clock is past the reference expiry)")
        decoded = jwt.decode(token, pub, algorithms=["EdDSA"], audience=cl["product"], options=options)
        assert decoded["sub"] == cl["customer"]
        out.append((
            f"PyJWT {jwt.__version__}: jwt.decode EdDSA",
            lambda: jwt.decode(token, pub, algorithms=["EdDSA"], audience=cl["product"], options=options),
        ))
    except ImportError as e:
        notes.append(f"PyJWT not installed ({e}): skipped")

    try:
        import pyseto
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from pyseto import Key

        priv = Ed25519PrivateKey.from_private_bytes(seed)
        priv_pem = priv.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        pub_pem = priv.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        sk = Key.new(version=4, purpose="public", key=priv_pem)
        pk = Key.new(version=4, purpose="public", key=pub_pem)
        # PASETO's registered times are ISO 8601 strings.
        pclaims = dict(claims)
        for k in ("iat", "exp"):
            pclaims[k] = datetime.fromtimestamp(claims[k], timezone.utc).isoformat()
        ptoken = pyseto.encode(sk, pclaims, serializer=json)
        paseto = pyseto.Paseto.new()
        payload: Any = paseto.decode(pk, ptoken, deserializer=json, aud=cl["product"]).payload
        assert payload["sub"] == cl["customer"]
        version = getattr(pyseto, "__version__", "")
        out.append((
            f"pyseto {version}: v4.public decode".replace("  ", " "),
            lambda: paseto.decode(pk, ptoken, deserializer=json, aud=cl["product"]),
        ))
    except ImportError as e:
        notes.append(f"pyseto not installed ({e}): skipped")
    return out, notes


def rust_binary() -> str | None:
    """Builds examples/rust_validate.rs (release) and returns its path."""
    cargo = shutil.which("cargo")
    if cargo is None:
        return None
    cmd = [cargo, "build", "--quiet", "--release", "--manifest-path", str(HERE.parent / "Cargo.toml"),
           "--example", "rust_validate", "--message-format=json"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        raise SystemExit("building the Rust timing example failed")
    for line in done.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "rust_validate":
            exe: str | None = msg.get("executable")
            return exe
    return None


def rust_round(exe: str, iters: int) -> float:
    done = subprocess.run([exe, "1", str(iters)], capture_output=True, text=True, check=True)
    for line in done.stdout.splitlines():
        if line.startswith("rust_sdk_validate_us "):
            return float(line.split()[1])
    raise SystemExit(f"unexpected output of {exe}: {done.stdout!r}")


def measure(
    rows: list[tuple[str, Callable[[], object]]], rounds: int, iters: int, rust: str | None
) -> tuple[list[float], float | None]:
    """Best round's mean per contender; rounds interleave every contender
    (and one run of the Rust example), so load on the machine hits all alike."""
    for _, f in rows:  # warm up
        for _ in range(max(10, iters // 10)):
            f()
    best = [float("inf")] * len(rows)
    rust_best = float("inf")
    for _ in range(rounds):
        for i, (_, f) in enumerate(rows):
            start = time.thread_time()
            for _ in range(iters):
                f()
            best[i] = min(best[i], (time.thread_time() - start) * 1e6 / iters)
        if rust is not None:
            rust_best = min(rust_best, rust_round(rust, iters))
    return best, (rust_best if rust is not None else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="a few iterations: check it runs (CI)")
    ap.add_argument("--rust", action="store_true", help="also time the Rust SDK in smoke mode")
    ap.add_argument("--no-rust", action="store_true", help="skip the Rust SDK's figure")
    args = ap.parse_args()
    rounds, iters = (2, 50) if args.smoke else (15, 3000)
    rows, notes = contenders(args.smoke)
    exe = rust_binary() if not args.no_rust and (args.rust or not args.smoke) else None
    figures, rust = measure(rows, rounds, iters, exe)
    table = list(zip([name for name, _ in rows], figures))
    if rust is not None:
        table.append(("Rust SDK: Validator::validate (examples/rust_validate.rs)", rust))

    keyseal_us = figures[0]
    width = max(len(n) for n, _ in table)
    if args.smoke:
        print("(smoke mode: figures are not meaningful)")
    print(f"{'contender'.ljust(width)}  {'us/validation':>13}  {'vs keyseal wheel':>16}  (thread CPU time)")
    print(f"{'-' * width}  {'-' * 13}  {'-' * 16}")
    for name, us in table:
        print(f"{name.ljust(width)}  {us:13.2f}  {us / keyseal_us:15.2f}x")
    for n in notes:
        print(f"note: {n}")
    jwt_us = next((us for n, us in table if n.startswith("PyJWT")), None)
    if args.smoke:
        return 0
    if jwt_us is not None:
        ok = jwt_us >= 3 * keyseal_us
        print(f"target keyseal >= 3x faster than PyJWT: {jwt_us / keyseal_us:.2f}x {'met' if ok else 'NOT met'}")
    if rust is not None:
        ok = keyseal_us <= rust + 3
        print(f"target keyseal <= Rust SDK + 3 us: {keyseal_us - rust:+.2f} us {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
