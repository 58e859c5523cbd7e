"""wrk on the read path: health, the story page and its turn lists on a 500-turn story.

    .venv/bin/python bench/read_path.py [--turns 500] [--seconds 30] [--root DIR] [--no-pg]

Starts the app as `make run` does (`gunicorn -c gunicorn.conf.py <the run target's app>`,
one worker) on SQLite, then as one scaled web worker (RELAY_RUN_MODE=scaled) on a fresh
PostgreSQL database, seeds one story of --turns turns (writers' paragraphs and the model's
answers, through the relay and job functions, no generation), and runs
`wrk -t1 -c8 --latency` on each URL: the health endpoint, the story page, the page's JSON
turn list, the REST turn list, and the page again sending the If-None-Match of its last
answer (the 304 a returning browser gets), in three interleaved slices of seconds/3 each.
Prints the median slice's requests/s, p50 and p99, and each URL's requests/s as a share
of health's. --root runs another
checkout (say a `git worktree` of the commit before a change) with this script.
Needs wrk (Debian: `apt-get install -y wrk`); the scaled run needs PostgreSQL at
BENCH_PG_ADMIN_URL and Redis at BENCH_REDIS_URL. Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
BIN = HERE / ".venv" / "bin"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
ROUNDS = 3  # slices of each URL, interleaved
WRK_HINT = "wrk is not installed: apt-get install -y wrk (Debian/Ubuntu) or brew install wrk"


def run_target(root: Path) -> str:
    """The app `make run` serves, read from the Makefile's run recipe (default wsgi:app)."""
    makefile = (root / "Makefile").read_text()
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.M)
    found = re.search(r"gunicorn\S*\s+-c\s+gunicorn\.conf\.py\s+(?:-\S+\s+)*(\S+)", recipe[1])
    return found[1] if found else "wsgi:app"


def seed(root: Path, turns: int) -> None:
    """In the bench's environment: one story of `turns` turns; prints its id."""
    sys.path.insert(0, str(root))
    from app import create_app
    from app.accounts.service import register_user
    from app.extensions import db
    from app.stories import reads, relay
    from app.stories.jobs import claim_job, complete_job

    app = create_app()
    with app.app_context():
        writers = [register_user(f"writer{n}", "bench-pass-1") for n in range(3)]
        db.session.commit()
        story = relay.create_story(writers[0], {"title": "Many Turns", "language": "en",
                                                "opening": "The harbour was quiet."})  # fmt: skip
        for n in range(turns // 2):
            text = f"Paragraph {n}: the keeper wrote another letter to the sea, and waited."
            relay.append_human_turn(story.id, writers[n % 3], text, 2 * n)
            job = reads.pending_job(reads.get_story(story.id))
            claim_job(job.id, "bench")
            complete_job(job.id, f"Answer {n}: the waves came back with salt and foam.")
        print(story.id)
    app.extensions["relay.shutdown"]()


def wrk(port: int, path: str, seconds: int, headers: dict[str, str]) -> dict[str, float]:
    args = ["wrk", "-t1", "-c8", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(args + [f"http://127.0.0.1:{port}{path}"], capture_output=True,
                         text=True, check=True, timeout=seconds + 30).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": _ms(lat["50"]), "p99": _ms(lat["99"]),
            "bad": int(errors[1]) if errors else 0}  # fmt: skip


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _get(port: int, path: str) -> tuple[int, dict[str, str]]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def _wait_healthy(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        try:
            if _get(port, "/api/v1/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit("gunicorn did not answer /api/v1/health within 120 s")


def bench(root: Path, env: dict[str, str], turns: int, seconds: int, workdir: Path) -> list[str]:
    from tests.scaled.stack import free_port

    subprocess.run([str(BIN / "flask"), "db", "upgrade"], cwd=root, env=env, check=True,
                   capture_output=True)  # fmt: skip
    seed_env = {k: v for k, v in env.items() if k not in ("RELAY_RUN_MODE", "REDIS_URL")}
    story_id = int(subprocess.run(
        [str(BIN / "python"), __file__, "--seed", str(turns), "--root", str(root)],
        cwd=root, env=seed_env, check=True, capture_output=True, text=True,
    ).stdout.split()[-1])  # fmt: skip
    port = free_port()
    log = workdir / "web.log"
    args = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", run_target(root)]
    with open(log, "ab") as handle:
        proc = subprocess.Popen(args, cwd=root, env={**env, "BIND": f"127.0.0.1:{port}"},
                                stdout=handle, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        _wait_healthy(port, proc, log)
        page = f"/stories/{story_id}"
        urls = [("health", "/api/v1/health", {}), ("story page", page, {}),
                ("turns.json", f"{page}/turns.json", {}),
                ("API turn list", f"/api/v1/stories/{story_id}/turns", {})]  # fmt: skip
        etag = _get(port, page)[1].get("etag")
        if etag:
            urls.append(("page, If-None-Match", page, {"If-None-Match": etag}))
        for _, path, _ in urls:
            _get(port, path)  # warm
        # Interleaved slices, median of each: load from elsewhere on the machine then
        # weighs on every URL alike instead of on whichever ran while it lasted.
        runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in urls}
        for _ in range(ROUNDS):
            for name, path, headers in urls:
                runs[name].append(wrk(port, path, max(1, seconds // ROUNDS), headers))
        results = {name: _median(found) for name, found in runs.items()}
    except (OSError, subprocess.CalledProcessError):
        sys.exit(f"the server stopped answering; its log ends:\n{log.read_text()[-3000:]}")
    finally:
        proc.terminate()
        proc.wait(30)
    health = results["health"]["rps"]
    lines = []
    for name, r in results.items():
        share = f"{r['rps'] / health:6.1%} of health" if name != "health" else ""
        bad = f"  ({r['bad']} non-2xx/3xx)" if r["bad"] else ""
        lines.append(f"  {name:<21} {r['rps']:8.1f} req/s  p50 {r['p50']:7.2f} ms  "
                     f"p99 {r['p99']:7.2f} ms  {share}{bad}")  # fmt: skip
    return lines


def base_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(FLASK_APP="wsgi.py", RATELIMIT_ENABLED="0", SECRET_KEY="bench-read-path",
               HF_HUB_OFFLINE="1", WEB_CONCURRENCY="1", RELAY_START_RUNNER="0",
               DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}")  # fmt: skip
    return env


def scaled_env(workdir: Path, database: str) -> dict[str, str]:
    env = base_env(workdir)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    env.update(RELAY_RUN_MODE="scaled", REDIS_URL=REDIS_URL, DATABASE_URL=f"{base}/{database}")
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=30, help="per URL, in 3 slices")
    parser.add_argument("--root", type=Path, default=HERE, help="checkout to serve")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed is not None:
        return seed(args.root.resolve(), args.seed)
    if shutil.which("wrk") is None:
        sys.exit(WRK_HINT)
    sys.path.insert(0, str(HERE))
    root = args.root.resolve()
    commit = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %s"],
                            capture_output=True, text=True).stdout.strip()[:72]  # fmt: skip
    print(f"{root} at {commit}; {args.turns}-turn story; wrk -t1 -c8, {ROUNDS} interleaved "
          f"slices of {max(1, args.seconds // ROUNDS)}s per URL; "
          f"{os.cpu_count()} cores; target {run_target(root)}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="read-path-") as tmp:
        print("SQLite, make run (embedded, 1 worker):", flush=True)
        for line in bench(root, base_env(Path(tmp)), args.turns, args.seconds, Path(tmp)):
            print(line, flush=True)
    if args.no_pg:
        return
    import psycopg

    database = f"relay_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        with tempfile.TemporaryDirectory(prefix="read-path-") as tmp:
            print("PostgreSQL, one scaled web worker (RELAY_RUN_MODE=scaled):", flush=True)
            env = scaled_env(Path(tmp), database)
            for line in bench(root, env, args.turns, args.seconds, Path(tmp)):
                print(line, flush=True)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
