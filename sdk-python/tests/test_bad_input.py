"""Bad input gives a clear TypeError, ValueError or KeysealError, never a
crash of the interpreter: wrong types, None, huge strings, bytes for str."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest

import keyseal
from conftest import KEYRING_B, NOW, REFERENCE_DEVICE

HUGE = "ks1." + "A" * 50_000_000


def validator(**kw: Any) -> keyseal.Validator:
    kw.setdefault("device", REFERENCE_DEVICE)
    kw.setdefault("clock", lambda: NOW)
    kw.setdefault("state", keyseal.MemoryStateStore())
    return keyseal.Validator(KEYRING_B, "acme-cad", **kw)


@pytest.mark.parametrize(
    "key, error",
    [
        (None, TypeError),
        (b"ks1.AAAA", TypeError),
        (123, TypeError),
        (["ks1."], TypeError),
        ("", keyseal.Malformed),
        ("   \n\t ", keyseal.Malformed),
        ("ks1.", keyseal.Malformed),
        ("ks2.AAAA", keyseal.UnsupportedVersion),
        ("ks1.\u00e9\u00e9\u00e9", keyseal.Malformed),
        ("ks1.\x00\x00", keyseal.Malformed),
        ("\ud800", UnicodeEncodeError),  # a lone surrogate is not text Rust can hold
        (HUGE, keyseal.Malformed),
        ("-----BEGIN KEYSEAL LICENSE-----\n" + "A" * 10_000_000, keyseal.Malformed),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else repr(v[:12]),
)
def test_validate_bad_keys(key: Any, error: type[BaseException]) -> None:
    with pytest.raises(error):
        validator().validate(key)
    assert issubclass(error, (TypeError, ValueError, keyseal.KeysealError))


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda: keyseal.Validator(None, "acme-cad"), TypeError),  # type: ignore[arg-type]
        (lambda: keyseal.Validator(KEYRING_B.encode(), "acme-cad"), TypeError),  # type: ignore[arg-type]
        (lambda: keyseal.Validator(KEYRING_B, None), TypeError),  # type: ignore[arg-type]
        (lambda: keyseal.Validator("key nonsense", "acme-cad"), keyseal.Malformed),
        (lambda: keyseal.Validator(HUGE, "acme-cad"), keyseal.Malformed),
        (lambda: keyseal.Validator(KEYRING_B, "not a product!"), keyseal.InvalidConfig),
        (lambda: keyseal.Validator(KEYRING_B, "x" * 100_000), keyseal.InvalidConfig),
        (lambda: validator(app_version="five"), keyseal.Malformed),
        (lambda: validator(app_version=5), TypeError),
        (lambda: validator(device=123), TypeError),
        (lambda: validator(device=b"ksfp1.x"), TypeError),
        (lambda: validator(device="ksfp1.not-base64!"), keyseal.Malformed),
        (lambda: validator(clock=5), TypeError),
        (lambda: validator(state=5), TypeError),
        (lambda: validator(mode="lenient"), ValueError),
        (lambda: validator(staleness="sometimes"), ValueError),
        (lambda: validator(staleness=True), TypeError),
        (lambda: validator(staleness=-1), ValueError),
        (lambda: validator(on_clock_suspect="panic"), ValueError),
        (lambda: validator(on_corrupt_state=None), TypeError),
        (lambda: validator(clock_tolerance=-1), OverflowError),
        (lambda: validator(leeway="1"), TypeError),
        (lambda: validator(precompute="yes"), TypeError),
        (lambda: validator(revocation_lists=["text"]), TypeError),
        (lambda: validator(revocation_lists=[b"\x01nope"]), keyseal.Malformed),
        (lambda: validator(unknown_option=1), TypeError),
    ],
)
def test_validator_bad_configuration(make: Callable[[], object], error: type[BaseException]) -> None:
    with pytest.raises(error):
        make()


def test_validator_methods_bad_arguments() -> None:
    v = validator()
    with pytest.raises(TypeError):
        v.load_revocation_list("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        v.validate_file(None)  # type: ignore[arg-type]
    with pytest.raises(keyseal.Unreadable):
        v.load_revocation_list_file("/nonexistent/list.bin")
    with pytest.raises(TypeError):
        v.validate_env(b"NAME")  # type: ignore[arg-type]
    with pytest.raises((keyseal.LicenseNotFound, ValueError)):
        v.validate_env("A" * 100_000)
    with pytest.raises(TypeError):
        v.validate()  # type: ignore[call-arg]


KEY = keyseal.SigningKey.from_seed(bytes(32))
BASE: dict[str, Any] = dict(product="acme-cad", customer="cus_1", plan="pro", issued_at=NOW)


@pytest.mark.parametrize(
    "change, error",
    [
        (dict(customer="jane@example.com"), keyseal.InvalidClaims),
        (dict(customer="c" * 65), keyseal.InvalidClaims),
        (dict(product=""), keyseal.InvalidClaims),
        (dict(product=None), TypeError),
        (dict(plan=b"pro"), TypeError),
        (dict(entitlements="export-pdf"), TypeError),
        (dict(entitlements=[1, 2]), TypeError),
        (dict(entitlements=[f"e{i}" for i in range(33)]), keyseal.InvalidClaims),
        (dict(entitlements=["has space"]), keyseal.InvalidClaims),
        (dict(extensions={"k": 1}), TypeError),
        (dict(extensions=[("k", "v")]), TypeError),
        (dict(extensions={"k": "\u00e9"}), keyseal.InvalidClaims),
        (dict(expires=datetime(2030, 1, 1)), ValueError),
        (dict(expires=-1), ValueError),
        (dict(expires=2**64), ValueError),
        (dict(expires=float("nan")), ValueError),
        (dict(expires="2030-01-01"), TypeError),
        (dict(expires=True), TypeError),
        (dict(not_before=NOW + 10, expires=NOW + 5), keyseal.InvalidClaims),
        (dict(grace=timedelta(seconds=-1)), ValueError),
        (dict(grace=timedelta(days=100_000)), ValueError),
        (dict(grace=1.5), TypeError),
        (dict(max_version="five"), keyseal.Malformed),
        (dict(license_id="zz"), keyseal.Malformed),
        (dict(license_id=7), TypeError),
        (dict(device="ksfp1.bad!"), keyseal.Malformed),
        (dict(device_match=2), ValueError),
        (dict(device=REFERENCE_DEVICE, device_match=0), keyseal.KeysealError),
        (dict(device=REFERENCE_DEVICE, device_match=2), keyseal.KeysealError),
        (dict(device=REFERENCE_DEVICE, device_match=300), ValueError),
        (dict(device=REFERENCE_DEVICE, device_match="tolerant"), TypeError),
        (dict(issued_at=datetime(2027, 1, 1)), ValueError),
    ],
)
def test_issue_bad_claims(change: dict[str, Any], error: type[BaseException]) -> None:
    with pytest.raises(error):
        keyseal.issue(KEY, **dict(BASE, **change))


def test_issue_needs_a_signing_key() -> None:
    with pytest.raises(TypeError):
        keyseal.issue(None, **BASE)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        keyseal.issue(KEY, "acme-cad", "c", "p")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "seed, error",
    [(b"short", ValueError), (bytes(33), ValueError), ("0" * 32, TypeError), (None, TypeError),
     (bytearray(32), TypeError)],
)
def test_signing_key_bad_seeds(seed: Any, error: type[BaseException]) -> None:
    with pytest.raises(error):
        keyseal.SigningKey.from_seed(seed)


def test_verify_bad_types() -> None:
    for args in [("a", b"", b""), (b"", None, b""), (b"", b"", 1)]:
        with pytest.raises(TypeError):
            keyseal.verify_ed25519_strict(*args)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        keyseal.verify_ed25519_strict(bytes(32), b"", bytes(64), precompute="no")  # type: ignore[arg-type]
    assert keyseal.verify_ed25519_strict(bytes(32), b"x" * 10_000_000, bytes(64)) is False


def test_aware_datetimes_in_any_zone_are_accepted() -> None:
    tz = timezone(timedelta(hours=-5))
    a = keyseal.issue(KEY, **dict(BASE, license_id="00" * 16, expires=datetime(2030, 1, 1, tzinfo=tz)))
    b = keyseal.issue(KEY, **dict(BASE, license_id="00" * 16, expires=datetime(2030, 1, 1, 5, tzinfo=timezone.utc)))
    assert a == b
