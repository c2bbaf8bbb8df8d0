"""The Validator's environment as in Rust: clock (system, or a callable),
state (file by default, a path, MemoryStateStore, any load/save object),
device (this machine, a fingerprint, a callable, none), and the verdicts."""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

import pytest

import keyseal
from conftest import KEYRING_B, NOW, REFERENCE_DEVICE, utc

EXPIRES = 1_826_536_000  # the reference key's expiry


def make(clock: object = lambda: NOW, **kw: object) -> keyseal.Validator:
    kw.setdefault("device", REFERENCE_DEVICE)
    kw.setdefault("state", keyseal.MemoryStateStore())
    kw.setdefault("app_version", "5.2.0")
    return keyseal.Validator(KEYRING_B, "acme-cad", clock=clock, **kw)  # type: ignore[arg-type]


def test_reference_license_typed_attributes(reference_key: str) -> None:
    lic = make().validate(reference_key)
    assert lic.id == "0ab6ca098bd1bcee85084f1f98f0a025"
    assert (lic.product, lic.customer, lic.plan) == ("acme-cad", "cus_8f3a2b", "pro")
    assert lic.entitlements == frozenset({"cloud-sync", "export-pdf", "plugins"})
    assert isinstance(lic.entitlements, frozenset)
    assert lic.has("export-pdf") and not lic.has("admin")
    assert lic.issued_at == datetime(2026, 11, 18, 11, 6, 40, tzinfo=timezone.utc) == utc(1_795_000_000)
    assert lic.expires_at == utc(EXPIRES) and lic.expires_at.tzinfo is not None
    assert lic.not_before is None
    assert lic.grace == timedelta(0)
    assert (lic.status, lic.in_grace, lic.grace_ends) == ("active", False, None)
    assert lic.max_version == "5.x"
    assert lic.extensions == {} and lic.extension("seats") is None
    assert lic.device_binding == "exact" and lic.device_match is None
    assert len(lic.key_id) == 16
    assert lic.is_clean and lic.warnings == ()
    assert "cus_8f3a2b" in repr(lic)


@pytest.mark.parametrize(
    "reading",
    [NOW, float(NOW) + 0.9, datetime(2027, 1, 15, 8, tzinfo=timezone.utc),
     datetime(2027, 1, 15, 9, tzinfo=timezone(timedelta(hours=1)))],
)
def test_clock_callable_readings(reference_key: str, reading: object) -> None:
    assert make(clock=lambda: reading).validate(reference_key).status == "active"


def test_clock_errors_are_raised_not_swallowed(reference_key: str) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        make(clock=lambda: datetime(2027, 1, 1)).validate(reference_key)
    with pytest.raises(TypeError, match="clock"):
        make(clock=lambda: "now").validate(reference_key)
    with pytest.raises(ValueError):
        make(clock=lambda: -5).validate(reference_key)

    class Boom(Exception):
        pass

    def broken() -> int:
        raise Boom("no time")

    v = make(clock=lambda: NOW)
    v.validate(reference_key)
    with pytest.raises(Boom):
        make(clock=broken).validate(reference_key)
    # Works again once the clock does.
    assert v.validate(reference_key).status == "active"


def test_expired_and_not_yet_valid(reference_key: str) -> None:
    with pytest.raises(keyseal.Expired) as info:
        make(clock=lambda: EXPIRES + 1).validate(reference_key)
    e = info.value
    assert e.code == "expired" and isinstance(e, keyseal.KeysealError)
    assert e.expired_at == utc(EXPIRES)
    assert "expired on 2027-11-18" in e.customer_message


def test_advisory_mode_accepts_with_the_refusal_as_warning(reference_key: str) -> None:
    lic = make(clock=lambda: EXPIRES + 1, mode="advisory").validate(reference_key)
    assert lic.status == "expired"
    assert isinstance(lic.warnings[0], keyseal.Expired)
    assert not lic.is_clean


def test_clock_rollback_warns_then_refuses(reference_key: str) -> None:
    now = [NOW]
    store = keyseal.MemoryStateStore()
    v = make(clock=lambda: now[0], state=store)
    v.validate(reference_key)
    now[0] = NOW - 7_200
    lic = v.validate(reference_key)
    (w,) = lic.warnings
    assert isinstance(w, keyseal.ClockSuspect) and w.behind_by == 7_200
    assert "set back by about 2 hours" in w.customer_message
    strict = make(clock=lambda: now[0], state=store, on_clock_suspect="refuse")
    with pytest.raises(keyseal.ClockSuspect):
        strict.validate(reference_key)
    assert v.high_water_mark == utc(NOW)


def test_state_in_a_python_object(reference_key: str) -> None:
    class Store:
        def __init__(self) -> None:
            self.data: Optional[bytes] = None
            self.saves = 0

        def load(self) -> Optional[bytes]:
            return self.data

        def save(self, data: bytes) -> None:
            assert isinstance(data, bytes)
            self.data = data
            self.saves += 1

    store = Store()
    make(state=store).validate(reference_key)
    assert store.saves >= 1 and store.data is not None
    state = keyseal.State.decode("acme-cad", store.data)
    assert state.seen == NOW and state.signed == 1_795_000_000
    assert state == keyseal.State(seen=NOW, signed=1_795_000_000)
    # Another validator reading the same store sees the mark.
    assert make(state=store, clock=lambda: NOW - 7_200).validate(reference_key).warnings[0].code == "clock_suspect"


def test_state_object_failures_are_warnings(reference_key: str) -> None:
    class Broken:
        def load(self) -> bytes:
            raise OSError("disk on fire")

        def save(self, data: bytes) -> None:
            raise OSError("disk on fire")

    lic = make(state=Broken()).validate(reference_key)
    assert [w.code for w in lic.warnings] == ["state_unavailable"]
    assert "disk on fire" in str(lic.warnings[0])

    class WrongType:
        def load(self) -> str:
            return "text"

        def save(self, data: bytes) -> None:
            pass

    lic = make(state=WrongType()).validate(reference_key)
    assert [w.code for w in lic.warnings] == ["state_unavailable"]


def test_corrupt_state_is_reported_and_reset(reference_key: str) -> None:
    good = keyseal.State(seen=NOW).encode("acme-cad")
    store = keyseal.MemoryStateStore(good.replace(b"seen 18", b"seen 17"))
    lic = make(state=store).validate(reference_key)
    assert isinstance(lic.warnings[0], keyseal.StateCorrupt)
    with pytest.raises(keyseal.StateCorrupt):
        make(state=keyseal.MemoryStateStore(b"nonsense"), on_corrupt_state="refuse").validate(reference_key)
    with pytest.raises(keyseal.StateCorrupt):
        keyseal.State.decode("acme-cad", b"nonsense")


def test_state_file_path_and_default_location(
    reference_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sub" / "acme.state"
    v = make(state=path)
    v.validate(reference_key)
    v.save_state()
    assert keyseal.State.decode("acme-cad", path.read_bytes()).seen == NOW
    make(state=str(path)).validate(reference_key)
    # The default: a file under $XDG_STATE_HOME, as in Rust.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    v = keyseal.Validator(KEYRING_B, "acme-cad", device=REFERENCE_DEVICE, clock=lambda: NOW)
    v.validate(reference_key)
    v.save_state()
    assert (tmp_path / "xdg" / "keyseal" / "acme-cad.state").is_file()


def test_default_system_clock(tmp_path: Path) -> None:
    key = keyseal.SigningKey.from_seed(bytes(range(32)))
    now = datetime.now(timezone.utc)
    text = keyseal.issue(key, product="acme-cad", customer="c1", plan="pro",
                         issued_at=now - timedelta(days=1), expires=now + timedelta(days=1))
    v = keyseal.Validator(key.keyring_line(), "acme-cad", device=None, state=tmp_path / "s")
    assert v.validate(text).status == "active"
    text = keyseal.issue(key, product="acme-cad", customer="c1", plan="pro",
                         issued_at=now - timedelta(days=3), expires=now - timedelta(days=2))
    with pytest.raises(keyseal.Expired):
        v.validate(text)


def test_grace_period() -> None:
    key = keyseal.SigningKey.from_seed(bytes(32))
    text = keyseal.issue(key, product="acme-cad", customer="c1", plan="pro", issued_at=NOW - 100,
                         expires=NOW - 10, grace=timedelta(days=14))
    lic = keyseal.Validator(key.keyring_line(), "acme-cad", device=None, clock=lambda: NOW,
                            state=keyseal.MemoryStateStore()).validate(text)
    assert lic.in_grace and lic.status == "in_grace"
    assert lic.grace == timedelta(days=14)
    assert lic.grace_ends == utc(NOW - 10 + 14 * 86_400)


def test_device_binding(reference_key: str) -> None:
    with pytest.raises(keyseal.WrongDevice):
        make(device=None).validate(reference_key)
    with pytest.raises(keyseal.WrongDevice):
        make(device="ksfp1.AAAAAAAAAAAAAAAAAAAAAA").validate(reference_key)
    # The app's own id (a container's), hashed in Rust exactly as keyseal.fingerprint does.
    fp = keyseal.fingerprint("acme-cad", source=lambda: b"container-1234\n")
    assert fp.startswith("ksfp1.")
    assert keyseal.fingerprint("acme-cad", source=lambda: "container-1234") == fp
    assert keyseal.fingerprint("other-app", source=lambda: "container-1234") != fp
    key = keyseal.SigningKey.from_seed(bytes(32))
    text = keyseal.issue(key, product="acme-cad", customer="c1", plan="pro", issued_at=NOW,
                         device=fp, device_match=1)
    v = keyseal.Validator(key.keyring_line(), "acme-cad", device=lambda: b"container-1234",
                          clock=lambda: NOW, state=keyseal.MemoryStateStore())
    assert v.fingerprint() == fp
    lic = v.validate(text)
    assert lic.device_binding == "tolerant" and lic.device_match == (1, 1)
    with pytest.raises(keyseal.DeviceUnavailable):
        keyseal.fingerprint("acme-cad", source=lambda: None)


def test_this_machine_fingerprint() -> None:
    try:
        fp = keyseal.fingerprint("acme-cad")
    except keyseal.DeviceUnavailable as e:  # containers often have no machine id
        assert e.code == "device_unavailable"
    else:
        assert fp.startswith("ksfp1.") and fp == keyseal.fingerprint("acme-cad")
        v = keyseal.Validator(KEYRING_B, "acme-cad", state=keyseal.MemoryStateStore())
        assert v.fingerprint() == fp


def test_files_and_environment(reference_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v = make()
    f = tmp_path / "license.txt"
    f.write_text("\ufeff" + reference_key + "\n", encoding="utf-8")
    assert v.validate_file(f).customer == "cus_8f3a2b"
    assert v.validate_file(str(f)).customer == "cus_8f3a2b"
    with pytest.raises(keyseal.LicenseNotFound):
        v.validate_file(tmp_path / "missing.txt")
    monkeypatch.setenv("ACME_LICENSE", reference_key)
    assert v.validate_env("ACME_LICENSE").plan == "pro"
    monkeypatch.delenv("ACME_LICENSE")
    with pytest.raises(keyseal.LicenseNotFound) as info:
        v.validate_env("ACME_LICENSE")
    assert reference_key not in str(info.value)


def test_revocation_lists_load_and_refuse(reference_key: str, tmp_path: Path) -> None:
    from conftest import case

    listed = case("valid", "revocation_lists.json")
    data = bytes.fromhex(listed["list_hex"])
    v = make(clock=lambda: listed["now"])
    rl = v.load_revocation_list(data)
    assert rl.sequence == 10 and v.revocation_list is not None
    assert "sequence=10" in repr(rl)
    f = tmp_path / "list.bin"
    f.write_bytes(data)
    assert v.load_revocation_list_file(f).sequence == 10
    with pytest.raises(keyseal.Malformed):
        v.load_revocation_list(b"\x01garbage")


def test_validators_are_thread_safe_with_python_callbacks(reference_key: str) -> None:
    calls = []

    def clock() -> int:
        calls.append(1)
        return NOW

    class Store:
        lock = threading.Lock()
        data: Optional[bytes] = None

        def load(self) -> Optional[bytes]:
            return self.data

        def save(self, data: bytes) -> None:
            with self.lock:
                self.data = data

    v = make(clock=clock, state=Store())
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(200):
                assert v.validate(reference_key).customer == "cus_8f3a2b"
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert errors == [] and len(calls) >= 800


def test_validator_repr_and_properties() -> None:
    v = make(mode="advisory")
    assert v.product == "acme-cad" and v.mode == "advisory"
    assert "acme-cad" in repr(v)
    v.reset_clock_mark()


def test_env_isolation() -> None:
    assert os.environ.get("ACME_LICENSE") is None
