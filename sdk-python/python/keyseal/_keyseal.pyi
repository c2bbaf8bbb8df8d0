"""The private native module behind ``keyseal`` (pyo3 over the Rust SDK).

Import from ``keyseal``, not from here. Times are timezone-aware
``datetime`` objects in UTC; inputs accept aware datetimes in any zone or
unix seconds (``int``/``float``). Naive datetimes are refused (they would
silently mean local time). A time past what ``datetime`` holds (a license
expiring at 2**64 - 1) is shown as 9999-12-31T23:59:59 UTC; verdicts use
the exact value, but such a shown time given back as an input (``mint(expires=...)``)
means that second, not the original.
"""

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from os import PathLike
from typing import Final, Literal, Protocol, Union, final

__all__ = [
    "KeysealError",
    "Malformed",
    "UnsupportedVersion",
    "UnknownKey",
    "InvalidSignature",
    "KeyNotValid",
    "KeyRevoked",
    "NotYetValid",
    "Expired",
    "WrongProduct",
    "WrongDevice",
    "VersionNotCovered",
    "Revoked",
    "StaleRevocationList",
    "RolledBackRevocationList",
    "KeyringFull",
    "InvalidClaims",
    "LeaseInvalid",
    "LeaseExpired",
    "ClockSuspect",
    "RevocationListMissing",
    "StateCorrupt",
    "StateUnavailable",
    "LicenseNotFound",
    "Unreadable",
    "DeviceUnavailable",
    "InvalidConfig",
    "VaultError",
    "WrongPassphrase",
    "SeatError",
    "WebhookError",
    "ERRORS",
    "CODES",
    "__version__",
    "Validator",
    "License",
    "Lease",
    "RevocationList",
    "MemoryStateStore",
    "State",
    "SigningKey",
    "SeatClient",
    "Seat",
    "OfflineRequest",
    "Trial",
    "fingerprint",
    "issue",
    "verify_ed25519_strict",
    "verify_webhook",
]

__version__: Final[str]

CODES: Final[tuple[str, ...]]
"""Every stable code a validation can give: keyseal-core's, then the Rust SDK's (the same in every keyseal SDK)."""

ERRORS: Final[dict[str, type[KeysealError]]]
"""Code to exception class, for every code in ``CODES`` plus the vault's ``vault`` and ``wrong_passphrase``."""

_Time = Union[datetime, int, float]
_Path = Union[str, PathLike[str]]
_LeaseFault = Literal[
    "malformed",
    "unsupported_version",
    "unknown_key",
    "bad_signature",
    "key_revoked",
    "key_not_valid",
    "other_license",
    "wrong_device",
    "not_yet_valid",
]

_Transport = Callable[[str, str], tuple[int, str]]

class _StateStore(Protocol):
    def load(self) -> bytes | None: ...
    def save(self, data: bytes, /) -> None: ...

# Errors. One base class; one subclass per stable code (the same codes in
# every keyseal SDK). Raised for refusals, and carried unraised in
# ``License.warnings`` and ``KeysealError.warnings``.

class KeysealError(Exception):
    """The base class of every keyseal error. ``code`` is the stable code shared by every keyseal SDK, ``customer_message`` plain English for the customer, ``warnings`` the other problems found on the way; ``str(error)`` is for developers."""

    code: str
    """The stable, machine-readable code, for example ``expired``."""
    customer_message: str
    """What to tell the customer: plain English, what happened and what to do next."""
    warnings: tuple[KeysealError, ...]
    """Other problems found while validating (a suspect clock may explain an expiry)."""

class Malformed(KeysealError, ValueError):
    """The input is not well-formed keyseal text or bytes (a license key, keyring, fingerprint, version or list)."""

class UnsupportedVersion(KeysealError):
    """The key is of a format version this build does not know."""

class UnknownKey(KeysealError):
    """The key was signed by a key id the keyring does not hold."""

    key_id: str
    """The signing key's id (16 hex digits)."""

class InvalidSignature(KeysealError):
    """The signature does not verify (code ``bad_signature``)."""

class KeyNotValid(KeysealError):
    """The signing key is known but was not allowed to sign this license (time window or product scope)."""

    key_id: str
    """The signing key's id."""

class KeyRevoked(KeysealError):
    """The signing key is on the revocation list."""

    key_id: str
    """The signing key's id."""

class NotYetValid(KeysealError):
    """The license is not valid yet."""

    not_before: datetime | None
    """When it starts (``None`` if past the year 9999)."""

class Expired(KeysealError):
    """The license expired, grace period included."""

    expired_at: datetime | None
    """When it expired (``None`` if past the year 9999)."""

class WrongProduct(KeysealError):
    """The license is for another product."""

class WrongDevice(KeysealError):
    """The license is bound to another device."""

class VersionNotCovered(KeysealError):
    """The license does not cover this version of the app."""

class Revoked(KeysealError):
    """The license is on the revocation list."""

class StaleRevocationList(KeysealError):
    """The revocation list is past its next-update time."""

    next_update: datetime | None
    """When the list said it would be replaced."""

class RolledBackRevocationList(KeysealError):
    """The revocation list is older than one already seen."""

    sequence: int
    """The sequence of the list offered."""
    seen: int
    """The highest sequence seen before."""

class KeyringFull(KeysealError):
    """The keyring holds as many keys or roots as it can."""

class InvalidClaims(KeysealError, ValueError):
    """Claims given to issue() break a limit of the format."""

class LeaseInvalid(KeysealError):
    """The license holds, but its lease does not hold for it on this device; ``fault`` says why (another device or license, a bad signature, an untrusted key...). Activate this device again."""

    fault: _LeaseFault
    """Why, as a stable code shared by every keyseal SDK: ``malformed``, ``unsupported_version``, ``unknown_key``, ``bad_signature``, ``key_revoked``, ``key_not_valid``, ``other_license``, ``wrong_device`` or ``not_yet_valid``."""

class LeaseExpired(KeysealError):
    """The license holds, but its lease ended: check in with the vendor's service, or activate again."""

    expired_at: datetime | None
    """When the lease ended (``None`` if past the year 9999)."""

class ClockSuspect(KeysealError):
    """The clock is behind the latest time seen by more than the tolerance."""

    behind_by: int
    """By how many seconds."""

class RevocationListMissing(KeysealError):
    """A revocation list was seen before, and none is loaded now."""

    sequence: int
    """The sequence of the newest list seen."""
    next_update: datetime | None
    """When that list said it would be replaced."""

class StateCorrupt(KeysealError):
    """The persisted state was edited or damaged (it is reset)."""

class StateUnavailable(KeysealError):
    """The persisted state cannot be read or written."""

class LicenseNotFound(KeysealError):
    """No license key in the file or environment variable named."""

class Unreadable(KeysealError):
    """A file exists but cannot be read, or is not text."""

class DeviceUnavailable(KeysealError):
    """The license is device-bound and this device has no id."""

class InvalidConfig(KeysealError, ValueError):
    """The validator was configured wrongly (a bug in the app, not the license)."""

class VaultError(KeysealError):
    """A signing key could not be loaded from the vault (missing, damaged or unreadable key file)."""

class WrongPassphrase(VaultError):
    """The passphrase does not open the signing key (or its file was altered)."""

# Seats: one class of its own. Its codes are the licensing service's answers,
# not verdicts on a key (``expired`` here is the service refusing a seat to
# an expired license, not ``Expired``), so none of them is in ``ERRORS``.

class SeatError(KeysealError):
    """A seat or trial request failed (``SeatClient``, ``OfflineRequest``, ``Seat.from_text``). ``code`` is the stable code (``seat_limit``, ``revoked``, ``expired``, ``not_yet_valid``, ``suspended``, ``invalid_license_key``, ``wrong_device``, ``seat_lapsed``, ``seat_released``, ``unknown_seat``, ``bad_proof``, ``rate_limited``, ``allotment_ended``, ``trial_used``, ``trials_disabled``, ``unknown_product``, ``service_error``, ``unreachable`` or ``bad_answer``), ``transient`` whether trying again later may succeed, ``status`` the HTTP status of a refusal (else ``None``). Not one of ``ERRORS``: these are the licensing service's answers, not verdicts on a key."""

    code: str
    """The stable code, the same as the Rust SDK's ``SeatError::code``: the service's refusal (``seat_limit``, ``revoked``, ``expired``, ``not_yet_valid``, ``suspended``, ``invalid_license_key``, ``wrong_device``, ``seat_lapsed``, ``seat_released``, ``unknown_seat``, ``bad_proof``, ``rate_limited``, an on-premises relay's ``allotment_ended``; for ``start_trial`` ``trial_used``, ``trials_disabled``, ``unknown_product``; ``service_error`` for anything else), ``unreachable`` (no answer: the transport raised, and its exception is ``__cause__``) or ``bad_answer`` (an answer, a response code or a saved text that is not understood; a typo in a response code)."""
    transient: bool
    """Whether trying again later may succeed: no answer, a full license, the rate limit, a server error (HTTP 5xx). A refusal that stands (revoked, wrong device...) is not."""
    status: int | None
    """The HTTP status of a refusal; ``None`` when there was no answer or it was not understood."""

class WebhookError(KeysealError):
    """A webhook delivery was refused (``verify_webhook``). ``code`` is the stable code, the same in every keyseal SDK: ``malformed`` (a header missing or not as the format says), ``unknown_key`` (signed by a key the keyring does not hold), ``key_not_valid`` (the key's window does not cover the delivery's time), ``bad_signature`` (it does not match the id, timestamp and body) or ``stale`` (the timestamp is more than 5 minutes from now). ``key_id`` is the signing key's id for ``unknown_key`` and ``key_not_valid`` (else ``None``). Not one of ``ERRORS``: these are verdicts on a delivery, not on a key."""

    code: str
    """``malformed``, ``unknown_key``, ``key_not_valid``, ``bad_signature`` or ``stale`` (the Rust SDK's ``WebhookError::code``)."""
    key_id: str | None
    """The id of the key the delivery names, for ``unknown_key`` and ``key_not_valid``; else ``None``."""

@final
class License:
    """A license whose signature verified, with its claims. Returned by ``Validator.validate``; never constructed directly."""

    @property
    def id(self) -> str:
        """The license id: 32 hex digits."""
    @property
    def product(self) -> str:
        """The product it is for."""
    @property
    def customer(self) -> str:
        """The vendor's opaque customer id."""
    @property
    def plan(self) -> str:
        """The plan, for example ``pro``."""
    @property
    def issued_at(self) -> datetime:
        """When it was issued (UTC)."""
    @property
    def not_before(self) -> datetime | None:
        """Not valid before this time (UTC), if set."""
    @property
    def expires_at(self) -> datetime | None:
        """Expiry (UTC); ``None`` is perpetual."""
    @property
    def grace(self) -> timedelta:
        """The grace period after expiry (zero: none)."""
    @property
    def status(self) -> Literal["active", "in_grace", "expired", "not_yet_valid"]:
        """``active`` or ``in_grace``; in advisory mode also ``expired`` or ``not_yet_valid``."""
    @property
    def in_grace(self) -> bool:
        """Whether the license is living on its grace period: valid, remind the customer to renew."""
    @property
    def grace_ends(self) -> datetime | None:
        """When the grace period ends (UTC), while in grace."""
    @property
    def entitlements(self) -> frozenset[str]:
        """The entitlements (feature names) it grants."""
    def has(self, name: str) -> bool:
        """Whether it grants entitlement ``name``."""
    @property
    def max_version(self) -> str | None:
        """The newest app version covered (``5.x``, ``5.2.x`` or ``5.2.3``), if limited."""
    @property
    def extensions(self) -> dict[str, str]:
        """The vendor extension fields (a new dict on each access)."""
    def extension(self, key: str) -> str | None:
        """The value of extension field ``key``."""
    @property
    def key_id(self) -> str:
        """The id of the key that signed it (16 hex digits)."""
    @property
    def device_binding(self) -> Literal["exact", "tolerant"] | None:
        """How it is bound to a device: ``exact``, ``tolerant`` (k of n components), or not at all."""
    @property
    def device_match(self) -> tuple[int, int] | None:
        """For a tolerant binding, ``(required, components)``."""
    @property
    def warnings(self) -> tuple[KeysealError, ...]:
        """Problems that did not refuse the license (a suspect clock, a stale list, a damaged state), unraised; in advisory mode the refusal leads."""
    @property
    def is_clean(self) -> bool:
        """Whether there is nothing to warn about."""
    @property
    def lease(self) -> Lease | None:
        """The lease it was validated with (``Validator.validate_with_lease``); ``None`` when validated without one."""

@final
class Lease:
    """This device's hold on one seat of a license, signed by the vendor's service at activation and at every check-in. Found on ``License.lease``; never constructed directly."""

    @property
    def seat_id(self) -> str:
        """The seat this device holds (32 hex digits); check-ins and releases name it."""
    @property
    def key_id(self) -> str:
        """The id of the key that signed the lease (16 hex digits)."""
    @property
    def issued_at(self) -> datetime:
        """When the service signed it (UTC)."""
    @property
    def renew_at(self) -> datetime:
        """When the app should check in (UTC)."""
    @property
    def expires_at(self) -> datetime:
        """When the lease ends (UTC): check in before it, or the license is refused with ``LeaseExpired`` on this device."""
    @property
    def check_in_due(self) -> bool:
        """Whether the renew time has passed: the lease still holds (its check-in grace), and the app should check in now."""

@final
class RevocationList:
    """A verified revocation list."""

    @property
    def sequence(self) -> int:
        """Its sequence number; an older list is refused."""
    @property
    def issued_at(self) -> datetime:
        """When it was issued (UTC)."""
    @property
    def next_update(self) -> datetime:
        """When it says it will be replaced (UTC)."""
    @property
    def revoked_licenses(self) -> tuple[str, ...]:
        """The revoked license ids, sorted."""
    @property
    def revoked_keys(self) -> tuple[str, ...]:
        """The revoked signing key ids, sorted."""
    @property
    def signer(self) -> str:
        """The id of the key that signed it."""

@final
class MemoryStateStore:
    """State kept in memory (the Rust SDK's own store: no Python call per validation)."""

    def __new__(cls, data: bytes | None = None) -> MemoryStateStore:
        """A store holding ``data`` (``None``: nothing saved yet)."""
    def load(self) -> bytes | None:
        """The bytes last saved, or ``None``."""
    def save(self, data: bytes) -> None:
        """Replaces the stored bytes."""

@final
class State:
    """What a validator persists: its high-water mark, the latest vendor-signed time, the newest revocation list seen."""

    def __new__(
        cls,
        *,
        seen: int = 0,
        signed: int = 0,
        list_sequence: int | None = None,
        list_next_update: int = 0,
        list_rank: int = 0,
    ) -> State:
        """A state (times in unix seconds)."""
    def encode(self, product: str) -> bytes:
        """The text form for ``product``, checksum included (what a state store holds)."""
    @staticmethod
    def decode(product: str, data: bytes) -> State:
        """Parses and checks the text form; raises ``StateCorrupt``."""
    @property
    def seen(self) -> int:
        """The high-water mark (unix seconds)."""
    @property
    def signed(self) -> int:
        """The latest vendor-signed time (unix seconds)."""
    @property
    def list_sequence(self) -> int | None:
        """The sequence of the newest revocation list seen, if any."""
    @property
    def list_next_update(self) -> int:
        """Its next-update time (unix seconds; 0 if none)."""
    @property
    def list_rank(self) -> int:
        """Its signer's rank, the start of the signer's window (unix seconds; 0 if none): a list of a lower-ranked signer is refused."""
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class Validator:
    """Validates license keys offline. Build one per app and keep it: it is thread-safe, and a warm validator does no I/O on almost every call."""

    def __new__(
        cls,
        keyring: str,
        product: str,
        *,
        app_version: str | None = None,
        device: str | Callable[[], bytes | str | None] | None = ...,  # "os"
        clock: Callable[[], _Time] | None = None,
        state: _Path | MemoryStateStore | _StateStore | None = None,
        revocation_lists: Iterable[bytes] = ...,  # none
        staleness: Literal["ignore", "warn"] | int = ...,  # "warn"
        mode: Literal["enforce", "advisory"] = "enforce",
        clock_tolerance: int = 3600,
        on_clock_suspect: Literal["warn", "refuse"] = "warn",
        on_corrupt_state: Literal["warn", "refuse"] = "warn",
        leeway: int = 0,
        precompute: bool = True,
    ) -> Validator:
        """A validator trusting ``keyring`` (the text ``keyseal`` exports) for licenses of ``product``.

        - ``app_version``: checked against the license's version cap (``"5.2.0"``).
        - ``device``: ``"os"`` (this machine's OS ids, read when a device-bound license is first validated);
          a ``ksfp1.`` fingerprint; a callable returning the app's own id (bytes or str; a container's, say);
          or ``None`` (device-bound licenses are refused).
        - ``clock``: a callable returning unix seconds or an aware datetime; default the system clock.
        - ``state``: where the clock-rollback state lives: default a file in the per-user state directory
          (``~/.local/state/keyseal/<product>.state`` on Linux), a path, a ``MemoryStateStore``, or any
          object with ``load() -> bytes | None`` and ``save(data)``.
        - ``revocation_lists``: lists to load now (binary or armored).
        - ``staleness``: ``"ignore"``, ``"warn"``, or a number of days past the list's next-update time after
          which a stale (or missing) list refuses.
        - ``mode``: ``"advisory"`` accepts verified licenses despite later problems, reporting them.
        - ``clock_tolerance``: seconds the clock may be behind the mark before it is suspect.
        - ``on_clock_suspect`` / ``on_corrupt_state``: warn, or refuse.
        - ``leeway``: seconds of clock difference tolerated on a license's start and expiry.
        - ``precompute``: build verification tables for the keyring's keys now (215 KiB each plus 215 KiB
          once; about 0.7 ms for a one-key keyring), so every validation takes about half as long, with the
          same answers; ``False`` for a validator that checks one key and is dropped.

        Raises ``Malformed`` (keyring, version, fingerprint, list), ``InvalidConfig``, a list's refusal,
        ``TypeError``/``ValueError`` for arguments of the wrong type or value.
        """
    def validate(self, key: str) -> License:
        """Validates a license key (``ks1.``; line breaks and spaces mail clients add are tolerated) or an armored license file's text. Raises the ``KeysealError`` subclass of the refusal."""
    def validate_with_lease(self, key: str, lease: str) -> License:
        """Validates a license key (as ``validate``) with the lease (``kslease1.``) the vendor's service signed for this device's seat; ``License.lease`` then says when to check in and when the lease ends.

        A license that fails raises its own refusal, as ``validate``. A license that holds with a lease that does not
        raises ``LeaseExpired`` (check in, or activate again) or ``LeaseInvalid`` (``fault`` says why). The lease's
        signer must be an issuing key of the keyring; the device is the validator's ``device`` (a lease is always
        bound to one, so with ``device=None`` every lease is ``LeaseInvalid`` with fault ``wrong_device``). In
        advisory mode a lease whose signature verified but that fails a later check is a warning instead
        (first in ``License.warnings``), and ``License.lease`` is ``None``.
        """
    def validate_file(self, path: _Path) -> License:
        """Validates the key or license file at ``path``; a missing or empty file is ``LicenseNotFound``."""
    def validate_env(self, name: str) -> License:
        """Validates the key in environment variable ``name``; unset or empty is ``LicenseNotFound``."""
    def load_revocation_list(self, data: bytes) -> RevocationList:
        """Verifies a revocation list (binary or armored) and puts it in force; refuses older (``RolledBackRevocationList``) or forged lists."""
    def load_revocation_list_file(self, path: _Path) -> RevocationList:
        """``load_revocation_list`` from a file."""
    def fingerprint(self) -> str:
        """This device's fingerprint (``ksfp1.``) as the validator uses it: the code a customer sends the vendor. Raises ``DeviceUnavailable``."""
    def save_state(self) -> None:
        """Writes the state now (apps may call it on exit)."""
    def reset_clock_mark(self) -> None:
        """Drops the high-water mark to the latest vendor-signed time, for a support action after the clock was once set far ahead."""
    @property
    def product(self) -> str:
        """The product this validator expects."""
    @property
    def mode(self) -> Literal["enforce", "advisory"]:
        """The mode."""
    @property
    def high_water_mark(self) -> datetime | None:
        """The latest time the validator has seen (UTC)."""
    @property
    def revocation_list(self) -> RevocationList | None:
        """The revocation list in force, if any."""

@final
class SeatClient:
    """Asks the vendor's licensing service (``keyseal serve``) for this device's seat of a license: activate, check in before the lease ends, release; or, with no license, for the product's trial. Only these calls use the network; validation never does. Thread-safe; requests run with the GIL released."""

    def __new__(cls, base_url: str, transport: _Transport | None = None) -> SeatClient:
        """A client of the service at ``base_url`` (``https://licensing.example.com``, without ``/v1``).

        ``transport`` POSTs a JSON body: a callable ``(url, body) -> (status, body)`` that returns every HTTP answer,
        error statuses included, and raises when there is no answer (the exception becomes the ``__cause__`` of a
        ``SeatError`` with code ``unreachable``; a ``KeyboardInterrupt`` is raised as it is). ``None``: the standard
        library's ``urllib.request`` (30 s timeouts, the environment's proxy settings, the system's CA certificates).
        """
    def start_trial(self, org_id: str, product: str, fingerprint: str) -> Trial:
        """Asks for the trial of ``product`` for this device (its ``ksfp1.`` fingerprint, as the ``Validator`` uses it): a trial license bound to it, from the organisation ``org_id`` (the ``org_...`` id in its keyring URL; public, no secret). The device's first ask gets a new trial; asking again while it runs gets the same one (a lost answer can be asked for again). Validate ``trial.license_key`` like any key, on this device. Raises ``SeatError``: ``trial_used`` (this device had its trial, even after a reinstall or a changed component), ``trials_disabled`` (the product gives none), ``unknown_product`` (no such organisation or product), ``rate_limited``; ``Malformed`` for a fingerprint that is not one."""
    def activate(self, license_key: str, fingerprint: str) -> Seat:
        """Takes a seat of the license for this device (its ``ksfp1.`` fingerprint, as the ``Validator`` uses it), with a key pair made here for this installation; the same device asking again gets its seat back. Save the seat (``Seat.to_text``) and validate ``seat.lease`` with the key (``Validator.validate_with_lease``). Raises ``SeatError`` (``seat_limit`` when every seat is held), ``Malformed`` for a fingerprint that is not one."""
    def check_in(self, license_key: str, fingerprint: str, seat: Seat) -> None:
        """Renews the seat's lease, signed with the installation's key; ``seat`` then holds the new lease (save it again). Call it once ``renew_at`` (``Lease.check_in_due``) has passed. Raises ``SeatError``."""
    def release(self, license_key: str, seat: Seat) -> None:
        """Frees the seat for another device (uninstalling); then delete the saved seat. Answered the same when repeated. Raises ``SeatError``."""

@final
class Seat:
    """This device's seat: its id, its current lease, and the private key of the installation that took it (check-ins and the release are signed with it). Returned by ``SeatClient.activate``, ``OfflineRequest.install`` and ``Seat.from_text``. One thread at a time: while ``check_in`` or ``release`` runs, another thread using the same seat gets ``RuntimeError``."""

    @property
    def seat_id(self) -> str:
        """The seat's id (32 hex digits)."""
    @property
    def lease(self) -> str:
        """The current lease (``kslease1.``), to validate with the license key: ``Validator.validate_with_lease(key, seat.lease)``."""
    @property
    def renew_at(self) -> datetime:
        """When to check in (UTC), as the lease says (unverified until validated)."""
    @property
    def expires_at(self) -> datetime:
        """When the lease ends (UTC), as the lease says (unverified until validated)."""
    def to_text(self) -> str:
        """The seat as text to save (``ksseat1.``, two lines). **A secret**: it holds the installation's private key, so keep it with the app's own data, readable by the app's user only, and never log it."""
    @staticmethod
    def from_text(text: str) -> Seat:
        """A seat saved with ``to_text``. Raises ``SeatError`` with code ``bad_answer`` for text that is not one."""

@final
class Trial:
    """A trial license for this device, as the service minted it (``SeatClient.start_trial``): validate ``license_key`` like any key; it is bound to this device and ends at ``expires_at``. Equal to another ``Trial`` with the same fields (the same trial, given again). Its ``repr`` leaves the key out."""

    @property
    def license_key(self) -> str:
        """The trial license's key (``ks1.``): keep it with the app's data, and validate it with ``Validator.validate``."""
    @property
    def license_id(self) -> str:
        """Its id (32 hex digits), the validated license's ``id``."""
    @property
    def plan(self) -> str:
        """Its plan (the product's trial policy says which; ``trial`` by default)."""
    @property
    def entitlements(self) -> frozenset[str]:
        """Its entitlements, as ``License.entitlements`` gives them."""
    @property
    def started_at(self) -> datetime:
        """When the trial started (UTC)."""
    @property
    def expires_at(self) -> datetime:
        """When it ends (UTC): the license's expiry."""
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class OfflineRequest:
    """An air-gapped activation: the request code this device shows (text or a QR code) for the vendor to answer with ``keyseal activate --request CODE``, and the installation key kept until the response code arrives. Save it with ``to_text`` if the app may be restarted meanwhile."""

    def __new__(cls, license_key: str, fingerprint: str) -> OfflineRequest:
        """The request of this device (its ``ksfp1.`` fingerprint) for the license of ``license_key``, with a new installation key. Raises ``SeatError`` with code ``bad_answer`` for a license key that is not one, ``Malformed`` for a fingerprint that is not one."""
    @property
    def code(self) -> str:
        """The request code (``KSREQ1.``, under 200 characters, upper case: a QR code's alphanumeric mode)."""
    def install(self, response_code: str) -> Seat:
        """Installs the vendor's response code (``KSRES1.``): the seat, with its lease (validate it with ``Validator.validate_with_lease``). Case, dashes and spaces do not matter; a typo raises ``SeatError`` with code ``bad_answer`` (the checksum), and the request stays usable."""
    def to_text(self) -> str:
        """The pending request as text to save (``ksseatreq1.``). **A secret**, like ``Seat.to_text``."""
    @staticmethod
    def from_text(text: str) -> OfflineRequest:
        """A pending request saved with ``to_text``. Raises ``SeatError`` with code ``bad_answer`` for text that is not one."""

@final
class SigningKey:
    """An Ed25519 signing key for minting licenses. Its secret never leaves as plain bytes and is never printed."""

    @staticmethod
    def from_seed(seed: bytes) -> SigningKey:
        """The key of a 32-byte secret seed (RFC 8032)."""
    @staticmethod
    def generate() -> SigningKey:
        """A fresh key from the operating system's random generator."""
    @staticmethod
    def from_key_file(path: _Path, passphrase: str) -> SigningKey:
        """Opens a sealed key file (Argon2id + XChaCha20-Poly1305, as keyseal-issuer seals keys): one
        written by ``keyseal keys export-sealed --out FILE``, or ``VAULT/keys/<key id>.key`` of a vault
        from before keys moved into the ledger. The wheel reads no ledger: a vault directory raises
        ``VaultError`` naming the export command. Raises ``WrongPassphrase``, ``VaultError``, or
        ``OSError`` for a file that cannot be read."""
    @staticmethod
    def from_vault(path: _Path, passphrase: str) -> SigningKey:
        """``from_key_file``, under its earlier name."""
    @property
    def public_key(self) -> str:
        """The public key as a keyring names it (``kspub1.``)."""
    @property
    def public_key_bytes(self) -> bytes:
        """The public key's 32 bytes."""
    @property
    def key_id(self) -> str:
        """The key id (16 hex digits)."""
    def keyring_line(self) -> str:
        """A keyring line trusting this key (``key kspub1.…``), for tests and single-key apps."""
    def sign(self, message: bytes) -> bytes:
        """A plain Ed25519 signature of ``message`` (64 bytes)."""

def issue(
    key: SigningKey,
    *,
    product: str,
    customer: str,
    plan: str,
    expires: _Time | None = None,
    entitlements: Iterable[str] | None = None,
    device: str | None = None,
    device_match: Literal["exact"] | int | None = None,
    not_before: _Time | None = None,
    grace: timedelta | int | None = None,
    max_version: str | None = None,
    extensions: Mapping[str, str] | None = None,
    license_id: str | None = None,
    issued_at: _Time | None = None,
) -> str:
    """Signs a license and returns its key text (``ks1.``).

    ``expires=None`` is perpetual. ``entitlements`` in any order (sorted and deduplicated for the format).
    ``device`` is a ``ksfp1.`` fingerprint; ``device_match`` ``"exact"`` (the default with a device) or k,
    the number of its components that must match. ``license_id`` (32 hex digits) defaults to a random id,
    ``issued_at`` to now. Issuing is deterministic for a given key, claims and license id.
    Raises ``InvalidClaims`` or ``Malformed`` for claims the format refuses.
    """

def fingerprint(product: str, *, source: Callable[[], bytes | str | None] | None = None) -> str:
    """This machine's device fingerprint for ``product`` (``ksfp1.``), from the OS machine ids; or from ``source``, a callable returning the app's own id. Raises ``DeviceUnavailable``."""

def verify_ed25519_strict(public_key: bytes, message: bytes, signature: bytes, *, precompute: bool = True) -> bool:
    """Strict Ed25519 verification as a ``Validator`` verifies: keyseal-core's ``PublicKey.from_bytes`` (refusing invalid, non-canonical and weak keys), then verification through the key's precomputed tables, built on every call (about 0.7 ms; for checking signatures and test vectors, not a fast path), or with ``precompute=False`` the plain strict verify a validator uses for keys it has no tables for. Both give the same answers. Wrong lengths give ``False``."""

def verify_webhook(keyring: str, webhook_id: str, timestamp: str, signature: str, body: bytes, *, now: _Time | None = None) -> str:
    """Checks a webhook delivery from the keyseal issuing service with the organisation's public keyring (its ``keyseal-signature`` header; no shared secret): the ``webhook-id``, ``webhook-timestamp`` and ``keyseal-signature`` headers as text and the raw body as bytes, at ``now`` (an aware datetime or unix seconds; the system clock by default). Returns the id of the key that signed. Raises ``WebhookError`` (``code``: ``malformed``, ``unknown_key``, ``key_not_valid``, ``bad_signature``, ``stale``), or ``Malformed`` if ``keyring`` is not a keyring. A delivery may come twice: drop a ``webhook-id`` seen before."""
