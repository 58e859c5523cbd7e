"""A tiny JSON-over-HTTP client for tests that talk to real servers on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
from typing import Any

from werkzeug.datastructures import Headers


def http_json(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    timeout: float = 30,
) -> tuple[int, Any, Headers]:
    """One request: (status, decoded JSON body or None, headers: case-insensitive, as
    HTTP has them; the event-driven server sends them in lower case)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        decoded = json.loads(data) if data else None
    except ValueError:
        decoded = data.decode(errors="replace")
    return response.status, decoded, Headers(response.getheaders())
