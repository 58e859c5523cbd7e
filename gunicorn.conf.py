"""gunicorn settings: event-driven workers (app/live/server.py) so that live streams never
hold a request thread; pages and the API run on WEB_THREADS threads per worker.

The model is loaded lazily inside each worker (never in the forking master).
Embedded mode (SQLite + in-process generation) must run exactly one worker;
the scaled mode (RELAY_RUN_MODE=scaled) can run many (WEB_CONCURRENCY).
"""

import os

bind = os.environ.get("BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
wsgi_app = "wsgi:server"
worker_class = "app.live.server.RelayWorker"
timeout = 120
graceful_timeout = 20
preload_app = False
accesslog = "-"
# gunicorn 27's control socket is one shared path per user: two servers on a host collide.
control_socket_disable = True


def on_starting(server):
    """One open file per live stream: lift the soft limit to the hard one (workers inherit
    it). A deployment raises the hard limit itself (systemd LimitNOFILE, ulimit -Hn)."""
    from app.live.server import raise_open_file_limit

    server.log.info("open-file limit: %s", raise_open_file_limit())


def worker_exit(server, worker):
    """Stop this worker's generation threads cleanly: an interrupted job goes back to queued."""
    app = getattr(worker.wsgi, "flask_app", worker.wsgi)
    app = app if hasattr(app, "extensions") else None
    shutdown = app.extensions.get("relay.shutdown") if app else None
    if shutdown:
        shutdown()
