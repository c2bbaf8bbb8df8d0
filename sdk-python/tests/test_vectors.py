"""Every case of testdata/vectors/ through the Python SDK, with the same
expected answers as sdk-rust/tests/vectors.rs (and core/tests/vectors.rs
for issue.json)."""

from __future__ import annotations

from typing import Any

import pytest

import keyseal
from conftest import as_shown, load_vectors, unix, utc

LICENSES = load_vectors("licenses.json")
LISTS = load_vectors("revocation_lists.json")
ISSUES = load_vectors("issue.json")
TRUST = load_vectors("trust.json")
LEASES = load_vectors("leases.json")
LEASE_FAULTS = {
    "malformed", "unsupported_version", "unknown_key", "bad_signature", "key_revoked",
    "key_not_valid", "other_license", "wrong_device", "not_yet_valid",
}


def license_json(lic: keyseal.License) -> dict[str, Any]:
    device: dict[str, Any] | None
    if lic.device_binding is None:
        device = None
    elif lic.device_binding == "exact":
        device = {"kind": "exact"}
    else:
        assert lic.device_match is not None
        required, components = lic.device_match
        device = {"kind": "tolerant", "required": required, "components": components}
    assert lic.status in ("active", "in_grace"), "an enforcing validator gives no other status"
    assert lic.in_grace == (lic.status == "in_grace")
    return {
        "valid": True,
        "status": lic.status,
        "grace_ends": unix(lic.grace_ends),
        "claims": {
            "license_id": lic.id,
            "product": lic.product,
            "customer": lic.customer,
            "plan": lic.plan,
            "issued_at": unix(lic.issued_at),
            "not_before": unix(lic.not_before),
            "expires_at": unix(lic.expires_at),
            "grace_secs": int(lic.grace.total_seconds()),
            "device": device,
            "entitlements": sorted(lic.entitlements),
            "max_version": lic.max_version,
            "extensions": lic.extensions,
        },
    }


def run_license_case(c: dict[str, Any], precompute: bool = True) -> dict[str, Any]:
    """sdk-rust's run_license_case: fixed clock at `now`, fresh state in
    memory, the case's device (or none), leeway, version and list."""
    try:
        validator = keyseal.Validator(
            c["keyring"],
            c["product"],
            app_version=c["app_version"],
            device=c["device"],
            clock=lambda: c["now"],
            state=keyseal.MemoryStateStore(),
            leeway=c["leeway"],
            precompute=precompute,
            revocation_lists=[bytes.fromhex(c["revocation_list_hex"])] if c["revocation_list_hex"] else [],
        )
        lic = validator.validate(c["key"])
    except keyseal.KeysealError as e:
        assert isinstance(e, keyseal.ERRORS[e.code]), "raised as the class of its code"
        assert e.customer_message and e.customer_message.endswith(".")
        return {"valid": False, "error": e.code}
    # A fixed clock at `now`, fresh state, fresh lists: nothing to warn about.
    assert lic.is_clean and lic.warnings == (), lic.warnings
    return license_json(lic)


def test_enough_cases() -> None:
    assert len(LICENSES) >= 30 and len(LISTS) >= 10 and len(ISSUES) >= 2
    assert len(LEASES) >= 20, f"too few lease cases: {len(LEASES)}"


@pytest.mark.parametrize("c", LICENSES, ids=[c["name"] for c in LICENSES])
@pytest.mark.parametrize("precompute", [True, False])
def test_license_vector(c: dict[str, Any], precompute: bool) -> None:
    assert run_license_case(c, precompute) == as_shown(c["expect"])


@pytest.mark.parametrize(
    "c",
    [c for c in LICENSES if "-----BEGIN" not in c["key"] and len(c["key"]) >= 120],
    ids=lambda c: c["name"],
)
def test_license_vector_survives_mail_client_line_breaks(c: dict[str, Any]) -> None:
    key = c["key"]
    wrapped = "\r\n  ".join(key[i : i + 60] for i in range(0, len(key), 60))
    assert run_license_case(dict(c, key=f"\n{wrapped}\n")) == as_shown(c["expect"])


def run_list_case(c: dict[str, Any]) -> dict[str, Any]:
    """sdk-rust's run_list_case: the state remembers `seen_rank` and `seen_sequence`, and a
    list stale at `now` is refused (strict staleness, RefuseAfter 0 days)."""
    state = keyseal.State(list_sequence=c["seen_sequence"], list_next_update=0, list_rank=c["seen_rank"])
    try:
        validator = keyseal.Validator(
            c["keyring"],
            "acme-cad",
            device=None,
            clock=lambda: c["now"],
            state=keyseal.MemoryStateStore(state.encode("acme-cad")),
            staleness=0,
            mode="enforce",
        )
        rl = validator.load_revocation_list(bytes.fromhex(c["list_hex"]))
    except keyseal.KeysealError as e:
        assert isinstance(e, keyseal.ERRORS[e.code])
        return {"valid": False, "error": e.code}
    in_force = validator.revocation_list
    assert in_force is not None and in_force.sequence == rl.sequence, "the loaded list is in force"
    return {
        "valid": True,
        "sequence": rl.sequence,
        "issued_at": unix(rl.issued_at),
        "next_update": unix(rl.next_update),
        "revoked_licenses": list(rl.revoked_licenses),
        "revoked_keys": list(rl.revoked_keys),
    }


@pytest.mark.parametrize("c", LISTS, ids=[c["name"] for c in LISTS])
def test_revocation_list_vector(c: dict[str, Any]) -> None:
    assert run_list_case(c) == c["expect"]


@pytest.mark.parametrize("c", ISSUES, ids=[c["name"] for c in ISSUES])
@pytest.mark.parametrize("times", ["datetime", "int"])
def test_issue_vector_byte_for_byte(c: dict[str, Any], times: str) -> None:
    key = keyseal.SigningKey.from_seed(bytes.fromhex(c["seed_hex"]))
    cl = c["claims"]
    assert cl["device"] is None, "issue() computes the binding from the fingerprint"

    def t(v: int | None) -> Any:
        return None if v is None else (utc(v) if times == "datetime" else v)

    text = keyseal.issue(
        key,
        product=cl["product"],
        customer=cl["customer"],
        plan=cl["plan"],
        license_id=cl["license_id"],
        issued_at=t(cl["issued_at"]),
        not_before=t(cl["not_before"]),
        expires=t(cl["expires_at"]),
        grace=cl["grace_secs"] or None,
        # Any order, duplicates allowed: the format's order is made in Rust.
        entitlements=list(reversed(cl["entitlements"])) + cl["entitlements"][:1],
        max_version=cl["max_version"],
        extensions=cl["extensions"],
        device=c["device"],
        device_match=c["device_rule"],
    )
    assert text == c["expect_key"]
    assert len(text) == c["expect_len"]


@pytest.mark.parametrize("sc", TRUST, ids=[sc["name"] for sc in TRUST])
def test_trust_scenario(sc: dict[str, Any]) -> None:
    """sdk-rust's trust_vectors_through_the_validator: the steps against one
    validator whose memory state survives a `restart`."""
    now = [0]
    store = keyseal.MemoryStateStore()

    def build() -> keyseal.Validator:
        return keyseal.Validator(
            sc["keyring"], sc["product"], device=None, clock=lambda: now[0], state=store, mode="enforce"
        )

    validator = build()
    for i, step in enumerate(sc["steps"]):
        if step["action"] == "restart":
            validator = build()
            continue
        now[0] = step["now"]
        got: dict[str, Any]
        try:
            if step["action"] == "load_list":
                rl = validator.load_revocation_list(step["list"].encode())
                got = {"ok": True, "sequence": rl.sequence}
            else:
                lic = validator.validate(step["key"])
                got = {"ok": True, "status": lic.status, "warnings": [w.code for w in lic.warnings]}
        except keyseal.KeysealError as e:
            got = {"ok": False, "error": e.code}
        assert got == step["expect"], f"step {i}"


def run_lease_case(c: dict[str, Any], precompute: bool) -> dict[str, Any]:
    """sdk-rust's lease_vectors_through_the_validator: the license as in
    licenses.json (no app version), then its lease on the case's device."""
    try:
        validator = keyseal.Validator(
            c["keyring"],
            c["product"],
            device=c["device"],
            clock=lambda: c["now"],
            state=keyseal.MemoryStateStore(),
            leeway=c["leeway"],
            precompute=precompute,
            revocation_lists=[bytes.fromhex(c["revocation_list_hex"])] if c["revocation_list_hex"] else [],
        )
        lic = validator.validate_with_lease(c["key"], c["lease"])
    except keyseal.KeysealError as e:
        assert isinstance(e, keyseal.ERRORS[e.code]), "raised as the class of its code"
        assert e.customer_message and e.customer_message.endswith(".")
        fault: str | None = None
        if isinstance(e, keyseal.LeaseInvalid):
            fault = e.fault
            assert fault in LEASE_FAULTS, fault
        else:
            assert not hasattr(e, "fault"), "only lease_invalid carries a fault"
        if isinstance(e, keyseal.LeaseExpired):
            assert e.expired_at is not None and unix(e.expired_at) is not None
        return {"valid": False, "error": e.code, "fault": fault}
    assert lic.is_clean and lic.warnings == (), lic.warnings
    lease = lic.lease
    assert lease is not None, "validated with a lease"
    assert isinstance(lease, keyseal.Lease) and len(lease.key_id) == 16
    assert lic.status in ("active", "in_grace")
    return {
        "valid": True,
        "license_id": lic.id,
        "status": lic.status,
        "lease": {
            "seat_id": lease.seat_id,
            "issued_at": unix(lease.issued_at),
            "renew_at": unix(lease.renew_at),
            "expires_at": unix(lease.expires_at),
            "check_in_due": lease.check_in_due,
        },
    }


@pytest.mark.parametrize("c", LEASES, ids=[c["name"] for c in LEASES])
@pytest.mark.parametrize("precompute", [True, False])
def test_lease_vector(c: dict[str, Any], precompute: bool) -> None:
    assert run_lease_case(c, precompute) == c["expect"]


def test_lease_is_none_without_a_lease() -> None:
    c = next(c for c in LEASES if c["expect"]["valid"])
    validator = keyseal.Validator(
        c["keyring"], c["product"], device=c["device"], clock=lambda: c["now"], state=keyseal.MemoryStateStore()
    )
    assert validator.validate(c["key"]).lease is None
    lease = validator.validate_with_lease(c["key"], c["lease"]).lease
    assert lease is not None and lease.seat_id in repr(lease)
