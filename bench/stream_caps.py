"""Open live streams against a gunicorn like `make run`'s, then time /api/v1/health.

    .venv/bin/python bench/stream_caps.py [--streams 40]

Runs twice in one go: with the default stream caps (streams hold no thread since the
event-driven worker, so the process cap is the open-file limit's), and with the process
cap set to 24 (SSE_MAX_STREAMS=24, the old thread-bound default) to see its 503. Prints
how many streams got 200 / 429 / 503 and the health endpoint's latency while they are
open (a request that gets no answer within 5 s counts as a timeout). Loopback only.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.http_client import http_json  # noqa: E402
from tests.scaled.stack import free_port, wait_for  # noqa: E402

BIN = ROOT / ".venv" / "bin"


def start(workdir: Path, **extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        FLASK_APP="wsgi.py",
        DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
        RATELIMIT_ENABLED="0",
        SECRET_KEY="bench-stream-caps",
        HF_HUB_OFFLINE="1",
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
    )
    env.setdefault("RELAY_START_RUNNER", "0")
    env.update(extra)
    subprocess.run([str(BIN / "flask"), "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    log = open(workdir / "web.log", "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--no-control-socket", "wsgi:server"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for(lambda: _health(port) is not None, 120, "gunicorn")
    return proc, port


def _health(port: int, timeout: float = 5.0) -> float | None:
    started = time.perf_counter()
    try:
        status, _, _ = http_json(port, "GET", "/api/v1/health", timeout=timeout)
    except OSError:
        return None
    return time.perf_counter() - started if status == 200 else None


def story(port: int) -> int:
    account = {"username": "bencher", "password": "bench-pass-1"}
    http_json(port, "POST", "/api/v1/auth/register", account)
    _, token, _ = http_json(port, "POST", "/api/v1/auth/tokens", account)
    body = {"title": "Readers", "language": "en", "opening": "It began."}
    _, created, _ = http_json(port, "POST", "/api/v1/stories", body, token=token["token"])
    return created["id"]


def open_stream(port: int, story_id: int, n: int) -> tuple[socket.socket, int]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    request = (f"GET /api/v1/stories/{story_id}/events HTTP/1.1\r\nHost: x\r\n"
               f"X-Forwarded-For: 10.0.{n // 250}.{n % 250}\r\n\r\n")  # fmt: skip
    sock.sendall(request.encode())
    try:
        status = int(sock.recv(64).split(b" ", 2)[1])
    except (OSError, IndexError, ValueError):
        status = 0  # no answer: a hang
    return sock, status


def run(streams: int, **extra: str) -> str:
    with tempfile.TemporaryDirectory(prefix="stream-caps-") as tmp:
        proc, port = start(Path(tmp), TRUSTED_PROXIES="1", **extra)
        try:
            story_id = story(port)
            opened = [open_stream(port, story_id, n) for n in range(streams)]
            counts: dict[int, int] = {}
            for _, status in opened:
                counts[status] = counts.get(status, 0) + 1
            times = [_health(port) for _ in range(20)]
            answered = sorted(t for t in times if t is not None)
            for sock, _ in opened:
                sock.close()
        finally:
            proc.terminate()
            proc.wait(30)
    line = f"statuses {dict(sorted(counts.items()))}; health answered {len(answered)}/20"
    if answered:
        p99 = answered[min(len(answered) - 1, int(0.99 * len(answered)))]
        line += f", p50 {statistics.median(answered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=40)
    args = parser.parse_args()
    print(f"{args.streams} streams from distinct addresses, 1 event-driven gunicorn worker")
    print("  default caps:        ", run(args.streams), flush=True)
    print("  SSE_MAX_STREAMS=24:  ", run(args.streams, SSE_MAX_STREAMS="24"), flush=True)


if __name__ == "__main__":
    main()
