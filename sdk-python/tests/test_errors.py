"""The exception hierarchy: one base class, one subclass per stable code,
every code of keyseal-core and sdk-rust mapped (from one table in Rust)."""

from __future__ import annotations

import pickle

import pytest

import keyseal

# keyseal-core's Error::CODES then sdk-rust's Problem::SDK_CODES, as the
# Rust SDK's README lists them: every SDK gives these same codes.
CORE_CODES = [
    "malformed", "unsupported_version", "unknown_key", "bad_signature", "key_not_valid",
    "key_revoked", "not_yet_valid", "expired", "wrong_product", "wrong_device",
    "version_not_covered", "revoked", "stale_revocation_list", "rolled_back_revocation_list",
    "keyring_full", "invalid_claims",
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
    "invalid_config": "InvalidConfig",
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
