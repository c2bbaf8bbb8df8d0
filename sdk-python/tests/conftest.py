"""Shared helpers. The tests import ``keyseal`` from the installed wheel:
scripts/test.sh runs pytest from outside the source tree, and
test_installed.py checks that the package really came from site-packages."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
TESTDATA = Path(os.environ.get("KEYSEAL_TESTDATA", HERE.parents[1] / "testdata"))

# The test keyring of the shared vectors (key B current) and the reference key.
NOW = 1_800_000_000
KEYRING_B = "key kspub1.kxKnSbdByxwctUQwckwpVwVJ8l88fRnMui68OX4UOB8 from=1794000000\n"
REFERENCE_DEVICE = "ksfp1.eko3XfFUUhImBLP3uaoWsw"


def load_vectors(name: str) -> list[dict[str, Any]]:
    with open(TESTDATA / "vectors" / name, encoding="utf-8") as f:
        cases: list[dict[str, Any]] = json.load(f)["cases"]
    return cases


def load_ed25519(name: str) -> Any:
    with open(TESTDATA / "ed25519" / name, encoding="utf-8") as f:
        return json.load(f)


# The last whole second a datetime holds (9999-12-31T23:59:59Z); keyseal
# shows a later time as this one (its verdicts use the exact value).
DATETIME_END = 253_402_300_799


def as_shown(expect: dict[str, Any]) -> dict[str, Any]:
    """A vector's expectation with its times past DATETIME_END as the SDK
    shows them (DATETIME_END)."""
    out = dict(expect)
    if out.get("grace_ends") is not None and out["grace_ends"] > DATETIME_END:
        out["grace_ends"] = DATETIME_END
    if "claims" in out:
        claims = dict(out["claims"])
        for k in ("issued_at", "not_before", "expires_at"):
            if claims.get(k) is not None and claims[k] > DATETIME_END:
                claims[k] = DATETIME_END
        out["claims"] = claims
    return out


def unix(dt: datetime | None) -> int | None:
    if dt is None:
        return None
    assert dt.tzinfo is not None, "datetimes from keyseal are timezone-aware"
    assert dt.utcoffset() is not None and dt.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    return int(dt.timestamp())


def utc(secs: int) -> datetime:
    return datetime.fromtimestamp(secs, timezone.utc)


def case(name: str, file: str = "licenses.json") -> dict[str, Any]:
    for c in load_vectors(file):
        if c["name"] == name:
            return c
    raise KeyError(name)


@pytest.fixture
def reference_key() -> str:
    key: str = case("valid_reference")["key"]
    return key
