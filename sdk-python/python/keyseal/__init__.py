"""Validate keyseal license keys offline, and mint them.

keyseal license keys are Ed25519-signed and checked locally: no server, no
network. This package is a thin, typed facade over the native module
``keyseal._keyseal`` (the Rust SDK through pyo3): every verdict, code and
message is the Rust SDK's own, and the same as every other keyseal SDK's.

Validate::

    import keyseal

    validator = keyseal.Validator(KEYRING, "acme-cad", app_version="5.2.0")
    try:
        license = validator.validate(key)
    except keyseal.Expired as e:
        print(e.customer_message)
    except keyseal.KeysealError as e:   # every refusal; e.code is stable
        print(e.code, e.customer_message)
    else:
        if "export-pdf" in license.entitlements:
            ...

With a lease (a seat the vendor's service granted this device)::

    try:
        license = validator.validate_with_lease(key, lease_text)
    except keyseal.LeaseExpired:
        ...  # check in with the service, or activate again
    except keyseal.LeaseInvalid as e:
        print(e.fault)  # "wrong_device", "other_license", ...
    else:
        if license.lease is not None and license.lease.check_in_due:
            ...  # check in now

Hold a seat (the vendor's ``keyseal serve``; only these calls use the network)::

    client = keyseal.SeatClient("https://licensing.example.com")
    fp = validator.fingerprint()
    seat = keyseal.Seat.from_text(saved) if saved else client.activate(key, fp)
    save(seat.to_text())                      # a secret: the installation's key
    license = validator.validate_with_lease(key, seat.lease)
    client.check_in(key, fp, seat)            # when the lease says; seat is updated
    client.release(key, seat)                 # uninstalling

No license yet: ``client.start_trial(ORG_ID, "acme-cad", fp)`` gives a ``Trial``
whose ``license_key`` validates on this device until ``expires_at`` (once per
device: ``SeatError`` ``trial_used`` after that).

Air-gapped: ``keyseal.OfflineRequest(key, fp).code`` for the vendor's
``keyseal activate --request CODE``; ``.install(response_code)`` gives the seat.

Mint (a backend with the vendor's signing key)::

    # keyseal keys export-sealed --out signing.key
    key = keyseal.SigningKey.from_key_file("signing.key", passphrase)
    text = keyseal.issue(key, product="acme-cad", customer="cus_8f3a2b", plan="pro",
                         expires=datetime(2027, 11, 18, tzinfo=timezone.utc),
                         entitlements={"export-pdf", "cloud-sync"})

Errors: ``KeysealError`` is the one base class; each stable code has its
own subclass (``ERRORS`` maps code to class). ``Malformed``,
``InvalidClaims`` and ``InvalidConfig`` are also ``ValueError``: the value
passed in is bad. Wrong argument types raise ``TypeError``. Seat requests
raise ``SeatError`` (a ``KeysealError``; its codes are the service's, not in
``ERRORS``), with ``transient`` and ``status``.

Webhooks from the vendor's ``keyseal serve``, checked with the public
keyring (no shared secret)::

    key_id = keyseal.verify_webhook(
        KEYRING, request.headers["webhook-id"], request.headers["webhook-timestamp"],
        request.headers["keyseal-signature"], request.body,   # the raw bytes
    )                          # or keyseal.WebhookError, e.code "stale", ...
    # then drop a webhook-id seen before: a delivery may come twice
"""

from __future__ import annotations

from typing import Optional, Protocol

from ._keyseal import (
    CODES,
    ERRORS,
    ClockSuspect,
    DeviceUnavailable,
    Expired,
    InvalidClaims,
    InvalidConfig,
    InvalidSignature,
    KeyNotValid,
    KeyRevoked,
    KeyringFull,
    KeysealError,
    Lease,
    LeaseExpired,
    LeaseInvalid,
    License,
    LicenseNotFound,
    Malformed,
    MemoryStateStore,
    NotYetValid,
    OfflineRequest,
    RevocationList,
    RevocationListMissing,
    Revoked,
    RolledBackRevocationList,
    Seat,
    SeatClient,
    SeatError,
    SigningKey,
    StaleRevocationList,
    State,
    StateCorrupt,
    StateUnavailable,
    Trial,
    UnknownKey,
    Unreadable,
    UnsupportedVersion,
    Validator,
    VaultError,
    VersionNotCovered,
    WebhookError,
    WrongDevice,
    WrongPassphrase,
    WrongProduct,
    __version__,
    fingerprint,
    issue,
    verify_ed25519_strict,
    verify_webhook,
)


class StateStore(Protocol):
    """Where a ``Validator`` keeps its clock-rollback state (``state=``).

    Any object with these two methods works: a keychain entry, a database
    row, a file on a network share. Write atomically: a crash mid-save must
    leave the old state readable. An exception from either method is
    reported as a ``StateUnavailable`` warning, never a refusal.
    """

    def load(self) -> Optional[bytes]:
        """The bytes last saved, or ``None`` if nothing was saved yet."""
        ...

    def save(self, data: bytes) -> None:
        """Replaces the stored bytes."""
        ...


__all__ = [
    "CODES",
    "ERRORS",
    "ClockSuspect",
    "DeviceUnavailable",
    "Expired",
    "InvalidClaims",
    "InvalidConfig",
    "InvalidSignature",
    "KeyNotValid",
    "KeyRevoked",
    "KeyringFull",
    "KeysealError",
    "Lease",
    "LeaseExpired",
    "LeaseInvalid",
    "License",
    "LicenseNotFound",
    "Malformed",
    "MemoryStateStore",
    "NotYetValid",
    "OfflineRequest",
    "RevocationList",
    "RevocationListMissing",
    "Revoked",
    "RolledBackRevocationList",
    "Seat",
    "SeatClient",
    "SeatError",
    "SigningKey",
    "StaleRevocationList",
    "State",
    "StateCorrupt",
    "StateStore",
    "StateUnavailable",
    "Trial",
    "UnknownKey",
    "Unreadable",
    "UnsupportedVersion",
    "Validator",
    "VaultError",
    "VersionNotCovered",
    "WebhookError",
    "WrongDevice",
    "WrongPassphrase",
    "WrongProduct",
    "__version__",
    "fingerprint",
    "issue",
    "verify_ed25519_strict",
    "verify_webhook",
]
