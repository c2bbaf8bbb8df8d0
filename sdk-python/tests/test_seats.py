"""Seats and trials: SeatClient over a fake transport (refusals as codes, a
dead transport), the default urllib transport against a local HTTP server, and
end to end against a real ``keyseal serve`` (seats, trials) and the air-gapped
``keyseal activate`` (both need the keyseal CLI binary; scripts/test.sh points
KEYSEAL_CLI at it)."""

from __future__ import annotations

import base64
import http.server
import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

import pytest

import keyseal

PRODUCT = "acme-cad"
PASSPHRASE = "throwaway-only"
KEY = "ks1.not-checked-by-the-fake"


def device(name: str) -> str:
    return keyseal.fingerprint(PRODUCT, source=lambda: name.encode())


class Fake:
    """A transport answering every request with one problem, recording the requests."""

    def __init__(self, status: int, answer: Any) -> None:
        self.status, self.answer = status, answer
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, url: str, body: str) -> tuple[int, str]:
        self.requests.append((url, json.loads(body)))
        text = self.answer if isinstance(self.answer, str) else json.dumps(self.answer)
        return self.status, text


def problem(slug: str, detail: str = "") -> dict[str, str]:
    return {"type": f"urn:keyseal:problem:{slug}", "title": slug, "detail": detail}


def refusal(status: int, answer: Any) -> keyseal.SeatError:
    with pytest.raises(keyseal.SeatError) as info:
        keyseal.SeatClient("https://x", Fake(status, answer)).activate(KEY, device("a"))
    return info.value


# --- a fake transport ---------------------------------------------------------


def test_a_full_license_is_seat_limit_and_transient() -> None:
    fake = Fake(409, problem("seat-limit", "all 3 seats of this license are held"))
    client = keyseal.SeatClient("https://licensing.example.com/", fake)
    me = device("a")
    with pytest.raises(keyseal.SeatError) as info:
        client.activate(f"  {KEY}\n", me)
    e = info.value
    assert isinstance(e, keyseal.KeysealError)
    assert (e.code, e.transient, e.status) == ("seat_limit", True, 409)
    assert "all 3 seats" in str(e)
    assert e.customer_message.startswith("Every seat of this license is in use")
    assert e.warnings == () and e.__cause__ is None
    # What went over the transport: one POST of the SDK's JSON, base URL trimmed.
    ((url, body),) = fake.requests
    assert url == "https://licensing.example.com/v1/public/leases"
    assert body["license_key"] == KEY and body["fingerprint"] == me
    assert body["public_key"].startswith("kspub1.")
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is keyseal.SeatError
    assert (again.code, again.transient, again.status) == ("seat_limit", True, 409)


@pytest.mark.parametrize(
    ("status", "slug", "code", "transient"),
    [
        (409, "license-revoked", "revoked", False),
        (409, "license-expired", "expired", False),
        (409, "license-not-yet-valid", "not_yet_valid", False),
        (409, "license-suspended", "suspended", False),
        (403, "invalid-license-key", "invalid_license_key", False),
        (409, "seat-lapsed", "seat_lapsed", False),
        (409, "seat-released", "seat_released", False),
        (404, "not-found", "unknown_seat", False),
        (403, "wrong-device", "wrong_device", False),
        (403, "bad-proof", "bad_proof", False),
        (429, "rate-limited", "rate_limited", True),
        (503, "allotment-ended", "allotment_ended", True),
        (400, "bad-request", "service_error", False),
        (503, "unavailable", "service_error", True),
    ],
)
def test_refusals_map_to_the_rust_sdks_codes(status: int, slug: str, code: str, transient: bool) -> None:
    e = refusal(status, problem(slug))
    assert (e.code, e.transient, e.status) == (code, transient, status)
    assert e.customer_message and e.customer_message != str(e)
    # Not the validation classes of the same name: a family of its own.
    assert not isinstance(e, tuple(keyseal.ERRORS.values()))


def test_an_answer_that_is_not_json_is_bad_answer() -> None:
    e = refusal(502, "<html>bad gateway</html>")
    assert (e.code, e.transient, e.status) == ("bad_answer", False, None)
    assert "HTTP 502" in str(e)
    e = refusal(201, {"seat_id": "zz", "lease": "kslease1.x"})
    assert e.code == "bad_answer"


def test_a_transport_that_raises_is_unreachable_with_its_exception_as_cause() -> None:
    def down(url: str, body: str) -> tuple[int, str]:
        raise ConnectionRefusedError(111, "Connection refused")

    client = keyseal.SeatClient("https://x", down)
    with pytest.raises(keyseal.SeatError) as info:
        client.activate(KEY, device("a"))
    e = info.value
    assert (e.code, e.transient, e.status) == ("unreachable", True, None)
    assert isinstance(e.__cause__, ConnectionRefusedError)
    assert "ConnectionRefusedError" in str(e) and "Connection refused" in str(e)
    assert e.customer_message.startswith("The licensing service could not be reached")
    # The next request starts clean (nothing stashed from the last one).
    with pytest.raises(keyseal.SeatError) as again:
        keyseal.SeatClient("https://x", Fake(409, problem("seat-limit"))).activate(KEY, device("a"))
    assert again.value.code == "seat_limit" and again.value.__cause__ is None


def test_an_interrupt_and_a_wrong_answer_type_are_raised_as_they_are() -> None:
    def interrupted(url: str, body: str) -> tuple[int, str]:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        keyseal.SeatClient("https://x", interrupted).activate(KEY, device("a"))
    wrong: Any = lambda url, body: {"status": 201}
    with pytest.raises(TypeError, match=r"\(status: int, body: str\)"):
        keyseal.SeatClient("https://x", wrong).activate(KEY, device("a"))
    with pytest.raises(TypeError, match="callable"):
        keyseal.SeatClient("https://x", "urllib")  # type: ignore[arg-type]


def test_bad_inputs() -> None:
    client = keyseal.SeatClient("https://x", Fake(500, {}))
    with pytest.raises(keyseal.Malformed):
        client.activate(KEY, "ksfp1.not a fingerprint")
    with pytest.raises(keyseal.SeatError) as info:
        keyseal.Seat.from_text("ksseat1.00\nkslease1.x")
    assert (info.value.code, info.value.transient) == ("bad_answer", False)
    with pytest.raises(keyseal.SeatError) as info:
        keyseal.OfflineRequest("ks1.AAAA", device("a"))
    assert info.value.code == "bad_answer" and "license key" in str(info.value)
    with pytest.raises(keyseal.SeatError):
        keyseal.OfflineRequest.from_text("ksseatreq1.00\nKSREQ1.0")
    assert repr(client) == 'SeatClient("https://x")'


# --- trials, over a fake transport ---------------------------------------------

ORG = "org_8e7d6c5b4a392817"
TRIAL_ANSWER = {
    "license_id": "0193a4b2c5d6e7f8091a2b3c4d5e6f70",
    "license_key": "ks1.trial-key-not-checked-by-the-fake",
    "product": PRODUCT,
    "plan": "trial",
    "entitlements": ["export-pdf", "plugins"],
    "started_at": 1_800_000_000,
    "expires_at": 1_800_000_000 + 14 * 86_400,
}


def machine(name: str, nic: str = "") -> str:
    """A fingerprint of three components (machine id, disk, network card), as an OS gives."""
    raw = b"".join(
        base64.urlsafe_b64decode(device(part)[len("ksfp1."):] + "==")
        for part in (f"{name}-machine-id", f"{name}-disk", nic or f"{name}-nic")
    )
    return "ksfp1." + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_start_trial_sends_the_rust_sdks_request_and_reads_the_trial() -> None:
    fake = Fake(201, TRIAL_ANSWER)
    me = machine("a")
    trial = keyseal.SeatClient("https://licensing.example.com/", fake).start_trial(f" {ORG}\n", " acme-cad ", me)
    ((url, body),) = fake.requests
    assert url == "https://licensing.example.com/v1/public/trials"
    assert body == {"org_id": ORG, "product": PRODUCT, "fingerprint": me}
    assert isinstance(trial, keyseal.Trial)
    assert (trial.license_key, trial.license_id, trial.plan) == (
        TRIAL_ANSWER["license_key"], TRIAL_ANSWER["license_id"], "trial")
    assert trial.entitlements == frozenset({"export-pdf", "plugins"})
    assert trial.started_at.tzinfo is not None
    assert int(trial.started_at.timestamp()) == TRIAL_ANSWER["started_at"]
    assert trial.expires_at - trial.started_at == timedelta(days=14)
    # The key stays out of what is printed.
    assert repr(trial) == (
        'Trial(license_id="0193a4b2c5d6e7f8091a2b3c4d5e6f70", plan="trial", '
        'expires_at="2027-01-29T08:00:00+00:00")'
    )
    # The same trial given again (HTTP 200) is equal; another is not.
    again = keyseal.SeatClient("https://x", Fake(200, TRIAL_ANSWER)).start_trial(ORG, PRODUCT, me)
    assert again == trial and again is not trial
    other = keyseal.SeatClient("https://x", Fake(201, dict(TRIAL_ANSWER, expires_at=1_800_000_001))).start_trial(
        ORG, PRODUCT, me)
    assert other != trial and trial != TRIAL_ANSWER
    # A trial without entitlements has none.
    bare = dict(TRIAL_ANSWER, entitlements=[])
    assert keyseal.SeatClient("https://x", Fake(201, bare)).start_trial(ORG, PRODUCT, me).entitlements == frozenset()


#: sdk-rust's ``SeatError::customer_message`` for the trials' codes.
TRIAL_MESSAGES = {
    "trial_used": "This device has had its trial of this product. Buy a license to go on using it.",
    "trials_disabled": "This product has no trial. Buy a license to use it.",
    "unknown_product": "The licensing service does not know this product.",
    "rate_limited": "The licensing service is busy. Try again in a moment.",
    "service_error": "The licensing service had a problem. Try again later.",
}


@pytest.mark.parametrize(
    ("status", "slug", "code", "transient"),
    [
        (409, "trial-used", "trial_used", False),
        (409, "trials-disabled", "trials_disabled", False),
        (404, "not-found", "unknown_product", False),  # no such organisation or product
        (429, "rate-limited", "rate_limited", True),
        (409, "no-active-key", "service_error", False),
        (422, "invalid-value", "service_error", False),
        (503, "unavailable", "service_error", True),
    ],
)
def test_trial_refusals_map_to_the_rust_sdks_codes(status: int, slug: str, code: str, transient: bool) -> None:
    client = keyseal.SeatClient("https://x", Fake(status, problem(slug, f"the words for {slug}")))
    with pytest.raises(keyseal.SeatError) as info:
        client.start_trial(ORG, PRODUCT, machine("a"))
    e = info.value
    assert (e.code, e.transient, e.status) == (code, transient, status)
    assert str(e) == f"the licensing service refused ({code}): the words for {slug}"
    assert e.customer_message == TRIAL_MESSAGES[code]


def test_trial_answers_not_understood_bad_inputs_and_no_answer() -> None:
    for status, answer in [(201, "<html>"), (201, dict(TRIAL_ANSWER, expires_at="soon")),
                           (200, {k: v for k, v in TRIAL_ANSWER.items() if k != "license_key"})]:
        with pytest.raises(keyseal.SeatError) as info:
            keyseal.SeatClient("https://x", Fake(status, answer)).start_trial(ORG, PRODUCT, machine("a"))
        assert (info.value.code, info.value.transient, info.value.status) == ("bad_answer", False, None)
    fake = Fake(201, TRIAL_ANSWER)
    with pytest.raises(keyseal.Malformed):
        keyseal.SeatClient("https://x", fake).start_trial(ORG, PRODUCT, "ksfp1.not a fingerprint")
    assert fake.requests == []

    def down(url: str, body: str) -> tuple[int, str]:
        raise TimeoutError("timed out")

    with pytest.raises(keyseal.SeatError) as info:
        keyseal.SeatClient("https://x", down).start_trial(ORG, PRODUCT, machine("a"))
    assert (info.value.code, info.value.transient) == ("unreachable", True)
    assert isinstance(info.value.__cause__, TimeoutError)


# --- the default transport: urllib --------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, Optional[str], dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.command, self.path, self.headers["Content-Type"], json.loads(body)))
        answer = json.dumps(problem("rate-limited", "slow down")).encode()
        self.send_response(429)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


def test_the_default_transport_posts_json_and_an_error_status_is_an_answer() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # While the request waits, the GIL is free: the server thread answers.
        client = keyseal.SeatClient(f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(keyseal.SeatError) as info:
            client.activate(KEY, device("a"))
    finally:
        server.shutdown()
        server.server_close()
    e = info.value
    assert (e.code, e.transient, e.status, e.__cause__) == ("rate_limited", True, 429, None)
    ((method, path, content_type, body),) = _Handler.seen
    assert (method, path, content_type) == ("POST", "/v1/public/leases", "application/json")
    assert body["license_key"] == KEY


def test_the_default_transport_without_a_server_is_unreachable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(keyseal.SeatError) as info:
        keyseal.SeatClient(f"http://127.0.0.1:{port}").activate(KEY, device("a"))
    assert (info.value.code, info.value.transient) == ("unreachable", True)
    assert isinstance(info.value.__cause__, urllib.error.URLError)
    with pytest.raises(keyseal.SeatError) as info:
        keyseal.SeatClient("file:///etc").activate(KEY, device("a"))
    assert info.value.code == "unreachable" and isinstance(info.value.__cause__, ValueError)


# --- end to end: keyseal serve, and keyseal activate ----------------------------


@pytest.fixture
def cli() -> str:
    """The keyseal CLI, found as test_mint.py finds it."""
    cli = os.environ.get("KEYSEAL_CLI") or shutil.which("keyseal")
    if not cli or not Path(cli).is_file():
        pytest.skip("no keyseal CLI binary (set KEYSEAL_CLI) to make a vault with")
    return cli


def vault_env(vault: Path) -> dict[str, str]:
    return dict(os.environ, KEYSEAL_PASSPHRASE=PASSPHRASE, KEYSEAL_KDF_PARAMS="m=256,t=1,p=1",
                KEYSEAL_VAULT=str(vault))


class Service:
    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: Optional[dict[str, Any]] = None) -> Any:
        request = urllib.request.Request(
            self.base + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.load(r)


@pytest.fixture
def service(cli: str, tmp_path: Path) -> Iterator[Service]:
    """A throwaway `keyseal serve` on a free loopback port (as server/scripts/throwaway.sh)."""
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(
            [cli, "serve", "--listen", "127.0.0.1:0", "--public-requests-per-second", "0"],
            env=vault_env(tmp_path / "vault"), stdout=o, stderr=e, stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            m = re.search(r"listening on http://(\S+)", err.read_text())
            if m or time.monotonic() > deadline or proc.poll() is not None:
                break
            time.sleep(0.1)
        addr = m.group(1) if m else None
        tokens = [line for line in out.read_text().splitlines() if line.startswith("ksk_")]
        assert addr and len(tokens) == 1, err.read_text()
        yield Service(f"http://{addr}", tokens[0])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_seat_end_to_end_against_keyseal_serve(service: Service) -> None:
    service.call("POST", "/v1/products", {"product": PRODUCT})
    customer = service.call("POST", "/v1/customers", {})["customer_id"]
    key = service.call("POST", "/v1/licenses", {
        "product": PRODUCT, "customer_id": customer, "plan": "pro", "expires": "365d", "max_devices": 1,
    })["license_key"]
    keyring = service.call("GET", "/v1/public/keyring")["keyring"]
    me, other = device("first"), device("second")

    def validator(fp: str) -> keyseal.Validator:
        return keyseal.Validator(keyring, PRODUCT, device=fp, state=keyseal.MemoryStateStore())

    client = keyseal.SeatClient(service.base + "/")  # the default transport
    seat = client.activate(key, me)
    assert re.fullmatch(r"[0-9a-f]{32}", seat.seat_id) and seat.lease.startswith("kslease1.")
    lic = validator(me).validate_with_lease(key, seat.lease)
    assert lic.lease is not None
    assert (lic.lease.seat_id, lic.lease.renew_at, lic.lease.expires_at) == (
        seat.seat_id, seat.renew_at, seat.expires_at)
    assert seat.renew_at.tzinfo is not None and seat.renew_at < seat.expires_at
    with pytest.raises(keyseal.LeaseInvalid) as invalid:  # bound to this device
        validator(other).validate_with_lease(key, seat.lease)
    assert invalid.value.fault == "wrong_device"

    # Saved and read back (a secret: not in the repr).
    text = seat.to_text()
    assert text.startswith("ksseat1.") and text.split("\n")[0][8:] not in repr(seat)
    restored = keyseal.Seat.from_text(text)
    assert (restored.seat_id, restored.lease, restored.renew_at, restored.expires_at) == (
        seat.seat_id, seat.lease, seat.renew_at, seat.expires_at)
    seat = restored

    # Two check-ins in a row; the seat then holds the newest lease.
    renew_at = seat.renew_at
    client.check_in(key, me, seat)
    client.check_in(key, me, seat)
    assert seat.renew_at >= renew_at
    renewed = validator(me).validate_with_lease(key, seat.lease)
    assert renewed.lease is not None and renewed.lease.seat_id == seat.seat_id

    # The seat is the check-in's while it runs: touching it meanwhile fails, it does not hang.
    def meddling(url: str, body: str) -> tuple[int, str]:
        return 200, seat.lease

    with pytest.raises(keyseal.SeatError) as busy:
        keyseal.SeatClient(service.base, meddling).check_in(key, me, seat)
    assert busy.value.code == "unreachable" and isinstance(busy.value.__cause__, RuntimeError)

    # One seat: another device is refused until this one releases it.
    with pytest.raises(keyseal.SeatError) as full:
        client.activate(key, other)
    assert (full.value.code, full.value.transient, full.value.status) == ("seat_limit", True, 409)
    client.release(key, seat)
    theirs = client.activate(key, other)
    assert validator(other).validate_with_lease(key, theirs.lease).lease is not None
    with pytest.raises(keyseal.SeatError) as wrong:
        client.check_in(key, me, theirs)
    assert (wrong.value.code, wrong.value.transient, wrong.value.status) == ("wrong_device", False, 403)


def test_a_trial_end_to_end_against_keyseal_serve(service: Service) -> None:
    service.call("POST", "/v1/products", {"product": PRODUCT})
    org_id: str = service.call("GET", "/v1/tokens")["items"][0]["org_id"]
    keyring = service.call("GET", f"/v1/public/orgs/{org_id}/keyring")["keyring"]
    client = keyseal.SeatClient(service.base)  # the default transport
    me = machine("a")

    def validator(fp: str) -> keyseal.Validator:
        return keyseal.Validator(keyring, PRODUCT, device=fp, state=keyseal.MemoryStateStore())

    def refused(org: str, product: str, fp: str) -> keyseal.SeatError:
        with pytest.raises(keyseal.SeatError) as info:
            client.start_trial(org, product, fp)
        return info.value

    # No trial policy yet: the product gives none.
    off = refused(org_id, PRODUCT, me)
    assert (off.code, off.transient, off.status) == ("trials_disabled", False, 409)
    policy = {"enabled": True, "length_secs": 7 * 86_400, "entitlements": ["export-pdf"]}
    service.call("POST", f"/v1/products/{PRODUCT}/trial-policy", policy)

    trial = client.start_trial(org_id, PRODUCT, me)
    assert trial.expires_at - trial.started_at == timedelta(days=7)
    assert (trial.plan, trial.entitlements) == ("trial", frozenset({"export-pdf"}))
    assert trial.license_key.startswith("ks1.") and trial.license_key[4:] not in repr(trial)
    lic = validator(me).validate(trial.license_key)
    assert (lic.id, lic.plan, lic.expires_at, lic.entitlements) == (
        trial.license_id, trial.plan, trial.expires_at, trial.entitlements)
    assert lic.device_binding == "exact"
    with pytest.raises(keyseal.WrongDevice):
        validator(machine("b")).validate(trial.license_key)

    # A lost answer: the very same device gets the very same trial again.
    assert client.start_trial(org_id, PRODUCT, me) == trial
    # One component changed (a new network card): the same device, its trial used.
    used = refused(org_id, PRODUCT, machine("a", nic="new-network-card"))
    assert (used.code, used.transient, used.status) == ("trial_used", False, 409)
    assert used.customer_message == TRIAL_MESSAGES["trial_used"]
    assert "started at" in str(used)
    # Another device gets its own.
    theirs = client.start_trial(org_id, PRODUCT, machine("b"))
    assert theirs.license_id != trial.license_id
    assert validator(machine("b")).validate(theirs.license_key).id == theirs.license_id
    # A product or an organisation the service does not know.
    for org, product in [(org_id, "acme-viewer"), ("org_0000000000000000", PRODUCT)]:
        unknown = refused(org, product, me)
        assert (unknown.code, unknown.transient, unknown.status) == ("unknown_product", False, 404)


def test_an_air_gapped_seat_end_to_end_with_keyseal_activate(cli: str, tmp_path: Path) -> None:
    env = vault_env(tmp_path / "vault")

    def run(*args: str) -> str:
        return subprocess.run([cli, *args], check=True, env=env, capture_output=True,
                              timeout=120, text=True).stdout

    run("init", "--product", PRODUCT)
    key = json.loads(run("issue", "--product", PRODUCT, "--customer", "cus_1", "--plan", "pro",
                         "--expires", "365d", "--json"))["license_key"]
    keyring = run("keys", "export")
    me = device("offline")

    request = keyseal.OfflineRequest(key, me)
    assert request.code.startswith("KSREQ1.") and len(request.code) < 200
    assert request.code == request.code.upper() and request.code in repr(request)
    # The app may restart while the vendor answers.
    saved = request.to_text()
    assert saved.startswith("ksseatreq1.") and saved.split("\n")[0][11:] not in repr(request)
    request = keyseal.OfflineRequest.from_text(saved)

    answer = json.loads(run("activate", "--request", request.code, "--json"))
    response: str = answer["response"]
    assert response.startswith("KSRES1.")

    # A one-character typo is caught by the checksum; the request stays usable.
    i = len("KSRES1.") + 10
    typo = response[:i] + ("B" if response[i] == "A" else "A") + response[i + 1:]
    with pytest.raises(keyseal.SeatError) as info:
        request.install(typo)
    assert (info.value.code, info.value.transient, info.value.status) == ("bad_answer", False, None)

    seat = request.install(response.lower())  # case does not matter
    assert (seat.seat_id, seat.lease) == (answer["seat_id"], answer["lease"])
    assert int(seat.expires_at.timestamp()) == answer["expires_at"]
    v = keyseal.Validator(keyring, PRODUCT, device=me, state=keyseal.MemoryStateStore())
    lic = v.validate_with_lease(key, seat.lease)
    assert lic.lease is not None and lic.lease.seat_id == seat.seat_id
    assert keyseal.Seat.from_text(seat.to_text()).lease == seat.lease
