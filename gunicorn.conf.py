"""gunicorn settings: threaded workers so SSE streams don't starve the app.

The model is loaded lazily inside each worker (never in the forking master).
Embedded mode (SQLite + in-process generation) must run exactly one worker;
the scaled mode (RELAY_RUN_MODE=scaled) can run many (WEB_CONCURRENCY).
"""

import os

bind = os.environ.get("BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "32"))
timeout = 120
graceful_timeout = 20
preload_app = False
accesslog = "-"
# gunicorn 27's control socket is one shared path per user: two servers on a host collide.
control_socket_disable = True


def worker_exit(server, worker):
    """Stop this worker's generation threads cleanly: an interrupted job goes back to queued."""
    app = getattr(worker.wsgi, "extensions", None) and worker.wsgi
    shutdown = app.extensions.get("relay.shutdown") if app else None
    if shutdown:
        shutdown()
