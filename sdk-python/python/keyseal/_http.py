"""The default transport of ``SeatClient``: the standard library's ``urllib.request``.

A transport is any callable ``(url, body) -> (status, body)`` that POSTs
``body`` (JSON text) to ``url``. An HTTP error status is an answer, returned;
no answer (DNS, connection, TLS, timeout) raises, and the ``SeatClient``
raises ``SeatError`` with code ``unreachable`` from that exception.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import IO
from urllib.parse import urlsplit

from ._keyseal import __version__

TIMEOUT_SECS = 30.0
"""For each blocking step: connecting, and each read."""

MAX_ANSWER = 1 << 20
"""The longest answer read (1 MiB), as the Rust SDK's own transport."""


def post_json(url: str, body: str) -> tuple[int, str]:
    """POSTs ``body`` (``Content-Type: application/json``) to ``url``; the answer's status and text."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"the licensing service's URL must be http:// or https://, not {url!r}")
    request = urllib.request.Request(
        url,
        data=body.encode("utf-8"),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"keyseal-python/{__version__}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECS) as response:
            status: int = response.status
            return status, _read(response)
    except urllib.error.HTTPError as e:  # 4xx and 5xx: an answer
        try:
            return e.code, _read(e) if e.fp is not None else ""
        finally:
            e.close()


def _read(answer: IO[bytes]) -> str:
    data = answer.read(MAX_ANSWER + 1)
    if len(data) > MAX_ANSWER:
        raise OSError(f"the licensing service's answer is over {MAX_ANSWER} bytes")
    return data.decode("utf-8", errors="replace")
