"""Many live readers of one story on a gunicorn like `make run`'s, while a writer writes.

    .venv/bin/python bench/readers.py [--readers 100 500 1000] [--turns 6]

One server (embedded mode: SQLite, in-process generation with the shipped model, the
event-driven worker, SSE_MAX_STREAMS=1000) and, for each N: N readers of one story
opened from a separate process (asyncio, one socket each, from distinct addresses via
X-Forwarded-For with TRUSTED_PROXIES=1, so the per-address cap of 8 stays as shipped);
then a writer adds --turns paragraphs through the API, each answered by the model,
while a third client times GET /api/v1/health and the story page. Printed per N:
whether every reader got every turn event exactly once and in order and ended with the
whole streamed text, the most frames a reader got in one second while the model wrote,
and the latencies. At N = the cap, one more reader is opened: it must get the cap's
503 at once. Figures only; loopback; every wait is bounded.

The open-file limit: each reader is one socket on both sides. gunicorn.conf.py lifts the
server's soft limit to the hard one (here `ulimit -Hn`); this script lifts its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stream_caps import start  # noqa: E402
from tests.http_client import http_json  # noqa: E402

CAP = 1000


def _lift_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# -- the readers' process --------------------------------------------------------------


class Reader:
    def __init__(self) -> None:
        self.turns: list[int] = []
        self.deltas: dict[int, list[str]] = {}
        self.so_far: dict[int, str] = {}
        self.done: list[int] = []
        self.frames_per_second: dict[int, int] = {}
        self.opened = False

    def take(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "stream_open":
            self.opened = True
        elif kind == "turn_created":
            self.turns.append(event["turn"]["position"])
        elif kind == "generation_delta":
            self.deltas.setdefault(event["job_id"], []).append(event["delta"])
            self.so_far[event["job_id"]] = event["text_so_far"]
            second = int(time.monotonic())
            self.frames_per_second[second] = self.frames_per_second.get(second, 0) + 1
        elif kind == "generation_done":
            self.done.append(event["job"]["id"])


async def _read(port: int, story_id: int, n: int, reader: Reader, turns: int) -> None:
    stream, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    writer.write(
        f"GET /api/v1/stories/{story_id}/events HTTP/1.1\r\nHost: bench\r\n"
        f"X-Forwarded-For: 10.{n // 60000}.{n // 250 % 240}.{n % 250 + 1}\r\n\r\n".encode()
    )
    await writer.drain()
    head = await stream.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        writer.close()
        return
    buffer = b""
    while len(reader.done) < turns:
        chunk = await stream.read(65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            for line in frame.split(b"\n"):
                if line.startswith(b"data:"):
                    reader.take(json.loads(line[5:]))
    writer.close()


async def _readers_main(port: int, story_id: int, count: int, turns: int) -> dict[str, Any]:
    readers = [Reader() for _ in range(count)]
    tasks = []
    for n, reader in enumerate(readers):
        tasks.append(asyncio.create_task(_read(port, story_id, n, reader, turns)))
        if n % 50 == 49:
            await asyncio.sleep(0.05)  # a ramp, as tabs open: not one SYN flood
    deadline = time.monotonic() + 120
    while sum(r.opened for r in readers) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    print(json.dumps({"ready": sum(r.opened for r in readers)}), flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=600)
    return _summary(readers, turns)


def _summary(readers: list[Reader], turns: int) -> dict[str, Any]:
    expected = list(range(1, 2 * turns + 1))
    whole = [
        r
        for r in readers
        if r.turns == expected
        and len(r.done) == turns
        and all("".join(r.deltas[j]) == r.so_far[j] for j in r.done if j in r.deltas)
    ]
    if os.environ.get("READERS_DEBUG"):
        r = readers[0]
        print(json.dumps({"turns": r.turns, "done": r.done, "so_far": r.so_far,
                          "deltas": r.deltas}), file=sys.stderr)  # fmt: skip
    finals = {json.dumps(r.so_far, sort_keys=True) for r in whole}
    rates = [max(r.frames_per_second.values(), default=0) for r in readers]
    return {
        "readers": len(readers),
        "opened": sum(r.opened for r in readers),
        "complete": len(whole),
        "same_text": len(finals) == 1,
        "max_frames_per_second": max(rates, default=0),
    }


# -- the writer, the latency probe and the cap check -----------------------------------


def _probe(port: int, story_id: int, stop: threading.Event, into: dict[str, list[float]]):
    while not stop.is_set():
        for name, path in (("health", "/api/v1/health"), ("page", f"/stories/{story_id}")):
            started = time.perf_counter()
            try:
                status, _, _ = http_json(port, "GET", path, timeout=5)
                into[name].append(time.perf_counter() - started if status == 200 else 99.0)
            except OSError:
                into[name].append(99.0)  # no answer within 5 s
        time.sleep(0.05)


def _write(port: int, story_id: int, tokens: list[str], turns: int) -> None:
    position = 0
    for n in range(turns):
        token = tokens[n % len(tokens)]
        body = {"text": f"Mara counted the lamps on the quay, {n + 1} by {n + 1}.",
                "expected_position": position}  # fmt: skip
        status, answer, _ = http_json(
            port, "POST", f"/api/v1/stories/{story_id}/turns", body, token=token
        )
        assert status == 202, answer
        job = answer["job"]["id"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            _, state, _ = http_json(port, "GET", f"/api/v1/jobs/{job}", token=token)
            if state["status"] in ("done", "failed"):
                break
            time.sleep(0.5)
        position += 2


def _one_more(port: int, story_id: int) -> str:
    started = time.perf_counter()
    status, body, headers = http_json(port, "GET", f"/api/v1/stories/{story_id}/events")
    took = (time.perf_counter() - started) * 1000
    code = body["error"]["code"] if isinstance(body, dict) and "error" in body else "-"
    return f"{status} {code} Retry-After={headers.get('Retry-After')} in {took:.0f} ms"


def _quantiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    slow = sum(v >= 99 for v in values)
    return (f"p50 {statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
            f"({len(values)} requests, {slow} unanswered)")  # fmt: skip


def phase(port: int, story_id: int, tokens: list[str], count: int, turns: int) -> list[str]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", str(port), str(story_id), str(count), str(turns)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert child.stdout is not None
    ready = json.loads(child.stdout.readline() or '{"ready": 0}')["ready"]
    lines = [f"N={count}: {ready} readers held"]
    if count >= CAP:
        lines.append(
            f"  reader {count + 1} (beyond SSE_MAX_STREAMS={CAP}): {_one_more(port, story_id)}"
        )
    idle: dict[str, list[float]] = {"health": [], "page": []}
    stop = threading.Event()
    probe = threading.Thread(target=_probe, args=(port, story_id, stop, idle), daemon=True)
    probe.start()
    time.sleep(10)  # the readers held, nobody writing: only keep-alives
    stop.set()
    probe.join(10)
    lines.append(f"  held, nobody writing (10 s): health {_quantiles(idle['health'])}")
    times: dict[str, list[float]] = {"health": [], "page": []}
    stop = threading.Event()
    probe = threading.Thread(target=_probe, args=(port, story_id, stop, times), daemon=True)
    probe.start()
    started = time.monotonic()
    _write(port, story_id, tokens, turns)
    written = time.monotonic() - started
    result = json.loads(child.stdout.readline() or "{}")
    stop.set()
    probe.join(10)
    child.wait(60)
    lines.append(
        f"  {turns} turns + answers in {written:.0f} s; every event once, in order, whole text: "
        f"{result.get('complete')}/{count} readers (same text for all: {result.get('same_text')});"
        f" at most {result.get('max_frames_per_second')} frames/s to a reader"
    )
    lines.append(f"  while the model writes: health {_quantiles(times['health'])}")
    lines.append(f"  while the model writes: story page {_quantiles(times['page'])}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--child", nargs=4, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    files = _lift_open_files()
    if args.child:
        port, story_id, count, turns = args.child
        print(json.dumps(asyncio.run(_readers_main(port, story_id, count, turns))), flush=True)
        return
    print(f"open-file limit {files}; server: 1 gunicorn worker (event-driven), shipped model")
    with tempfile.TemporaryDirectory(prefix="readers-") as tmp:
        proc, port = start(Path(tmp), TRUSTED_PROXIES="1", SSE_MAX_STREAMS=str(CAP),
                           RELAY_START_RUNNER="1")  # fmt: skip
        try:
            story_id, tokens = _story(port, -1)
            _write(port, story_id, tokens, 1)  # loads the model: no phase pays for that
            for count in [0, *args.readers]:  # 0: the baseline, the writer alone
                story_id, tokens = _story(port, count)
                for line in phase(port, story_id, tokens, count, args.turns):
                    print(line, flush=True)
        finally:
            proc.terminate()
            proc.wait(60)


def _story(port: int, n: int) -> tuple[int, list[str]]:
    """A story and two writers' tokens (a writer never follows themself)."""
    tokens = []
    for who in ("a", "b"):
        account = {"username": f"readerbench{n + 1}{who}", "password": "bench-pass-1"}
        http_json(port, "POST", "/api/v1/auth/register", account)
        tokens.append(http_json(port, "POST", "/api/v1/auth/tokens", account)[1]["token"])
    body = {"title": f"Readers {n}", "language": "en",
            "opening": "The harbour town kept its lamps lit all winter."}  # fmt: skip
    _, created, _ = http_json(port, "POST", "/api/v1/stories", body, token=tokens[0])
    return created["id"], tokens


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
