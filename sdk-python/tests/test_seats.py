"""Seats: SeatClient over a fake transport (refusals as codes, a dead
transport), the default urllib transport against a local HTTP server, and end
to end against a real ``keyseal serve`` and the air-gapped ``keyseal activate``
(both need the keyseal CLI binary; scripts/test.sh points KEYSEAL_CLI at it)."""

from __future__ import annotations

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
