"""``keyseal.verify_webhook``: every case of testdata/vectors/webhooks.json
with the answers sdk-rust/tests/webhooks.rs expects, and the Python edges
(the clock, a datetime ``now``, argument types, a bad keyring)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import pytest

import keyseal
from conftest import load_vectors

CASES = load_vectors("webhooks.json")


def check(case: dict[str, Any], now: Any) -> dict[str, Any]:
    try:
        key_id = keyseal.verify_webhook(
            case["keyring"], case["id"], case["timestamp"], case["signature"],
            case["body"].encode(), now=now,
        )
    except keyseal.WebhookError as e:
        return {"valid": False, "error": e.code}
    return {"valid": True, "key_id": key_id}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_shared_vectors(case: dict[str, Any]) -> None:
    assert check(case, case["now"]) == case["expect"]
    # The same with now as an aware datetime.
    assert check(case, datetime.fromtimestamp(case["now"], timezone.utc)) == case["expect"]


def test_every_refusal_is_covered() -> None:
    codes = {c["expect"].get("error") for c in CASES} - {None}
    assert codes == {"malformed", "unknown_key", "key_not_valid", "bad_signature", "stale"}


def test_the_error_names_the_key_and_is_a_keyseal_error() -> None:
    case = next(c for c in CASES if c["expect"].get("error") == "unknown_key")
    with pytest.raises(keyseal.WebhookError) as info:
        keyseal.verify_webhook(case["keyring"], case["id"], case["timestamp"], case["signature"],
                               case["body"].encode(), now=case["now"])
    e = info.value
    assert isinstance(e, keyseal.KeysealError)
    assert e.code == "unknown_key"
    assert e.key_id is not None and e.key_id in case["signature"]
    assert keyseal.WebhookError not in keyseal.ERRORS.values()
    stale = next(c for c in CASES if c["expect"].get("error") == "stale")
    with pytest.raises(keyseal.WebhookError) as info:
        keyseal.verify_webhook(stale["keyring"], stale["id"], stale["timestamp"], stale["signature"],
                               stale["body"].encode(), now=stale["now"])
    assert info.value.key_id is None
    assert "too far from now" in str(info.value)


def test_a_delivery_signed_now() -> None:
    """Signed as docs/FORMAT.md says (the domain, then id.timestamp.body)
    by a fresh key, checked at the system clock's now."""
    key = keyseal.SigningKey.generate()
    ts = str(int(time.time()))
    body = b'{"type":"license.created","data":{"license_id":"0123"}}'
    sig = key.sign(b"keyseal/webhook/v1\0evt_1." + ts.encode() + b"." + body).hex()
    header = f"v1,{key.key_id},{sig}"
    assert keyseal.verify_webhook(key.keyring_line(), "evt_1", ts, header, body) == key.key_id
    with pytest.raises(keyseal.WebhookError) as info:
        keyseal.verify_webhook(key.keyring_line(), "evt_1", ts, header, body + b" ")
    assert info.value.code == "bad_signature"


def test_now_defaults_to_the_system_clock() -> None:
    case = next(c for c in CASES if c["name"] == "valid")
    signed_at = int(case["timestamp"])
    if abs(time.time() - signed_at) <= 300:
        pytest.skip("the system clock is within the vector's tolerance window")
    with pytest.raises(keyseal.WebhookError) as info:
        keyseal.verify_webhook(case["keyring"], case["id"], case["timestamp"], case["signature"],
                               case["body"].encode())
    assert info.value.code == "stale"


def test_bad_arguments() -> None:
    case = next(c for c in CASES if c["name"] == "valid")
    args = (case["keyring"], case["id"], case["timestamp"], case["signature"])
    with pytest.raises(keyseal.Malformed):
        keyseal.verify_webhook("not a keyring", *args[1:], case["body"].encode(), now=case["now"])
    with pytest.raises(TypeError):
        keyseal.verify_webhook(*args, case["body"], now=case["now"])
    with pytest.raises(TypeError):
        keyseal.verify_webhook(*args, case["body"].encode(), now="soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        keyseal.verify_webhook(*args, case["body"].encode(), now=-1)
