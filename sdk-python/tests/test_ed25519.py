"""The third-party Ed25519 suites of testdata/ed25519/ through
keyseal.verify_ed25519_strict (keyseal-core's PublicKey::from_bytes, then
strict verification through precomputed tables and plainly, which must
agree), with the expected answers of testdata/ed25519/README.md, as
core/tests/ed25519_conformance.rs runs them."""

from __future__ import annotations

import keyseal
from conftest import load_ed25519


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """keyseal's verdict by both paths, which must agree."""
    tables = keyseal.verify_ed25519_strict(public_key, message, signature)
    plain = keyseal.verify_ed25519_strict(public_key, message, signature, precompute=False)
    assert tables == plain, f"the paths disagree: key {public_key.hex()}, signature {signature.hex()}"
    return tables


def verdict(accepted: bool) -> str:
    return "accepted" if accepted else "rejected"


def test_wycheproof() -> None:
    data = load_ed25519("wycheproof_ed25519_test.json")
    assert data["numberOfTests"] == 151, "the vector file changed: review the expectations"
    ran, wrong = 0, []
    for group in data["testGroups"]:
        pk = bytes.fromhex(group["publicKey"]["pk"])
        for t in group["tests"]:
            expected = {"valid": True, "invalid": False}[t["result"]]
            got = verify(pk, bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]))
            if got != expected:
                wrong.append(f"tcId {t['tcId']} ({t['comment']}): {verdict(got)}, expected {verdict(expected)}")
            ran += 1
    assert wrong == []
    assert ran == 151


def test_speccheck() -> None:
    cases = load_ed25519("speccheck_cases.json")
    got = [
        verify(
            bytes.fromhex(c["pub_key"]), bytes.fromhex(c["message"]), bytes.fromhex(c["signature"])
        )
        for c in cases
    ]
    # "Taming the many EdDSAs": under strict verification only case 3 verifies.
    assert got == [i == 3 for i in range(12)]


def test_cctv() -> None:
    tolerated = {"low_order_component_A", "low_order_component_R"}
    cases = load_ed25519("cctv_ed25519vectors.json")
    wrong = []
    for c in cases:
        flags = set(c["flags"] or [])
        expected = flags <= tolerated
        got = verify(
            bytes.fromhex(c["key"]), c["msg"].encode("ascii"), bytes.fromhex(c["sig"])
        )
        if got != expected:
            wrong.append(f"case {c['number']} (flags {sorted(flags)}): {verdict(got)}, expected {verdict(expected)}")
    assert wrong == []
    assert len(cases) == 914


def test_rfc8032() -> None:
    tests = load_ed25519("rfc8032_7.1_ed25519.json")["tests"]
    assert len(tests) == 5
    for t in tests:
        pk, msg, sig = (bytes.fromhex(t[k]) for k in ("public_key", "message", "signature"))
        if "message_len" in t:
            assert len(msg) == t["message_len"]
        assert verify(pk, msg, sig), t["name"]
        key = keyseal.SigningKey.from_seed(bytes.fromhex(t["secret_key"]))
        assert key.public_key_bytes == pk, t["name"]
        assert key.sign(msg) == sig, f"{t['name']}: signing does not reproduce the signature"


def test_wrong_lengths_are_rejections_not_errors() -> None:
    t = load_ed25519("rfc8032_7.1_ed25519.json")["tests"][0]
    pk, msg, sig = (bytes.fromhex(t[k]) for k in ("public_key", "message", "signature"))
    assert verify(pk, msg, sig)
    assert not verify(pk[:31], msg, sig)
    assert not verify(pk + b"\0", msg, sig)
    assert not verify(pk, msg, sig[:63])
    assert not verify(b"", b"", b"")
