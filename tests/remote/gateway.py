"""nginx (Debian's package) as a rate-limiting gateway in front of llama-server, the way
operators put one before a model server: completions beyond its rate get a real 429 or
503 with Retry-After from nginx's limit_req, everything else passes straight through."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.scaled.stack import free_port, start_server

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONFIG = """
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    log_format gateway '$msec $request_method $uri $status';
    access_log {root}/access.log gateway;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    limit_req_zone $server_port zone=completions:1m rate={rate};
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_buffering off;
        location = /v1/completions {{
            limit_req zone=completions;
            limit_req_status {status};
            error_page {status} = @limited;
            proxy_pass {upstream};
        }}
        location @limited {{
            add_header Retry-After {retry_after} always;
            default_type application/json;
            return {status} '{{"error": {{"message": "rate limited", "code": {status}}}}}';
        }}
        location / {{ proxy_pass {upstream}; }}
    }}
}}
"""


class Gateway:
    """nginx on a free loopback port: `rate` completions (nginx's syntax, e.g. "20r/m")
    reach `upstream`, the rest get `status` with Retry-After: `retry_after` seconds."""

    def __init__(self, root: Path, upstream: str, rate: str, status: int, retry_after: int):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        fields = {"root": root, "port": self.port, "upstream": upstream, "rate": rate,
                  "status": status, "retry_after": retry_after}  # fmt: skip
        (root / "nginx.conf").write_text(CONFIG.format(**fields))
        self.process: subprocess.Popen | None = None

    def start(self) -> Gateway:
        command = [NGINX, "-p", str(self.root), "-e", str(self.root / "error.log"),
                   "-c", str(self.root / "nginx.conf")]  # fmt: skip
        self.process = start_server(command, f"{self.url}/health", 30)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def completions(self) -> list[tuple[float, int]]:
        """(time, status) of every /v1/completions request nginx logged, in order."""
        rows = []
        for line in (self.root / "access.log").read_text().splitlines():
            when, _method, uri, status = line.split()
            if uri == "/v1/completions":
                rows.append((float(when), int(status)))
        return rows
