"""The exception hierarchy: one base class, one subclass per stable code,
every code of keyseal-core and sdk-rust mapped (from one table in Rust)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import keyseal
from conftest import case

# keyseal-core's Error::CODES then sdk-rust's Problem::SDK_CODES, as the
# Rust SDK's README lists them: every SDK gives these same codes.
CORE_CODES = [
    "malformed", "unsupported_version", "unknown_key", "bad_signature", "key_not_valid",
    "key_revoked", "not_yet_valid", "expired", "wrong_product", "wrong_device",
    "version_not_covered", "revoked", "stale_revocation_list", "rolled_back_revocation_list",
    "keyring_full", "invalid_claims", "lease_invalid", "lease_expired",
]
SDK_CODES = [
    "clock_suspect", "revocation_list_missing", "state_corrupt", "state_unavailable",
    "license_not_found", "unreadable", "device_unavailable", "invalid_config",
]
NAMES = {
    "malformed": "Malformed", "unsupported_version": "UnsupportedVersion",
    "unknown_key": "UnknownKey", "bad_signature": "InvalidSignature",
    "key_not_valid": "KeyNotValid", "key_revoked": "KeyRevoked", "not_yet_valid": "NotYetValid",
    "expired": "Expired", "wrong_product": "WrongProduct", "wrong_device": "WrongDevice",
    "version_not_covered": "VersionNotCovered", "revoked": "Revoked",
    "stale_revocation_list": "StaleRevocationList",
    "rolled_back_revocation_list": "RolledBackRevocationList", "keyring_full": "KeyringFull",
    "invalid_claims": "InvalidClaims", "clock_suspect": "ClockSuspect",
    "revocation_list_missing": "RevocationListMissing", "state_corrupt": "StateCorrupt",
    "state_unavailable": "StateUnavailable", "license_not_found": "LicenseNotFound",
    "unreadable": "Unreadable", "device_unavailable": "DeviceUnavailable",
    "invalid_config": "InvalidConfig", "lease_invalid": "LeaseInvalid",
    "lease_expired": "LeaseExpired",
}


def test_every_code_maps_to_its_own_class() -> None:
    assert list(keyseal.CODES) == CORE_CODES + SDK_CODES
    classes = set()
    for code in keyseal.CODES:
        cls = keyseal.ERRORS[code]
        assert cls.__name__ == NAMES[code]
        assert getattr(keyseal, NAMES[code]) is cls
        assert issubclass(cls, keyseal.KeysealError) and cls is not keyseal.KeysealError
        assert cls.code == code
        assert cls.__module__ == "keyseal" and cls.__doc__
        classes.add(cls)
    assert len(classes) == len(keyseal.CODES)
    # The vault's two, for minting only.
    assert set(keyseal.ERRORS) == set(keyseal.CODES) | {"vault", "wrong_passphrase"}
    assert issubclass(keyseal.WrongPassphrase, keyseal.VaultError)
    assert issubclass(keyseal.VaultError, keyseal.KeysealError)


def test_value_errors_are_the_bad_value_ones() -> None:
    value_errors = {c for c, cls in keyseal.ERRORS.items() if issubclass(cls, ValueError)}
    assert value_errors == {"malformed", "invalid_claims", "invalid_config"}
    assert issubclass(keyseal.KeysealError, Exception)
    assert not issubclass(keyseal.KeysealError, ValueError)


def test_a_refusal_carries_code_messages_and_details() -> None:
    validator = keyseal.Validator(
        "key kspub1.kxKnSbdByxwctUQwckwpVwVJ8l88fRnMui68OX4UOB8", "acme-cad",
        device=None, clock=lambda: 1_800_000_000, state=keyseal.MemoryStateStore(),
    )
    with pytest.raises(keyseal.Malformed) as info:
        validator.validate("ks1.not-a-key")
    e = info.value
    assert isinstance(e, ValueError)
    assert e.code == "malformed"
    assert str(e).startswith("malformed input")
    assert e.customer_message.startswith("This license key is incomplete")
    assert e.warnings == ()


def test_exceptions_pickle() -> None:
    with pytest.raises(keyseal.KeysealError) as info:
        keyseal.Validator("nonsense", "acme-cad")
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is keyseal.Malformed
    assert again.code == "malformed" and again.customer_message == info.value.customer_message


def lease_validator(c: dict[str, Any], **kw: Any) -> keyseal.Validator:
    return keyseal.Validator(
        c["keyring"], c["product"], device=c["device"], clock=lambda: c["now"],
        state=keyseal.MemoryStateStore(), **kw,
    )


def test_lease_refusals_carry_the_fault_and_the_end() -> None:
    c = case("lease_wrong_device", "leases.json")
    with pytest.raises(keyseal.LeaseInvalid) as info:
        lease_validator(c).validate_with_lease(c["key"], c["lease"])
    e = info.value
    assert e.code == "lease_invalid" and e.fault == "wrong_device"
    assert e.customer_message.startswith("Your license is fine")
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is keyseal.LeaseInvalid and again.fault == "wrong_device"

    c = case("lease_expired", "leases.json")
    with pytest.raises(keyseal.LeaseExpired) as expired:
        lease_validator(c).validate_with_lease(c["key"], c["lease"])
    assert expired.value.expired_at is not None
    assert int(expired.value.expired_at.timestamp()) == c["now"] - 1
    assert not hasattr(expired.value, "fault")


def test_advisory_mode_reports_a_lease_for_another_license_as_a_warning() -> None:
    c = case("lease_for_another_license", "leases.json")
    lic = lease_validator(c, mode="advisory").validate_with_lease(c["key"], c["lease"])
    assert lic.lease is None
    (w,) = lic.warnings
    assert isinstance(w, keyseal.LeaseInvalid) and w.fault == "other_license"
