"""A local HTTP double of Grafana's folder and dashboard API (Grafana cannot run here).

It keeps folders and dashboards in memory like Grafana does (ids and versions assigned on
save, 404 with a message for unknown uids, 401 for a wrong token) and records every request.
Only the endpoints ``stackwatch dashboards deploy`` uses exist; anything else is a 404, so an
unexpected request shows up in the recorded list and in the assertions.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: Any
    authorization: str


@dataclass
class GrafanaDouble:
    token: str
    port: int = 0
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    fail_dashboard_writes: int | None = None
    """When set, POST /api/dashboards/db answers with this status."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path.startswith("/api/folders/"):
            uid = path.removeprefix("/api/folders/")
            if uid in self.folders:
                return 200, self.folders[uid]
            return 404, {"message": "folder not found", "status": "not-found"}
        if method == "POST" and path == "/api/folders":
            folder = {"id": len(self.folders) + 1, "uid": body["uid"], "title": body["title"]}
            self.folders[body["uid"]] = folder | {"version": 1}
            return 200, self.folders[body["uid"]]
        if method == "PUT" and path.startswith("/api/folders/"):
            folder = self.folders[path.removeprefix("/api/folders/")]
            folder.update(title=body["title"], version=folder["version"] + 1)
            return 200, folder
        if method == "GET" and path.startswith("/api/dashboards/uid/"):
            uid = path.removeprefix("/api/dashboards/uid/")
            if uid in self.dashboards:
                return 200, self.dashboards[uid]
            return 404, {"message": "Dashboard not found"}
        if method == "POST" and path == "/api/dashboards/db":
            if self.fail_dashboard_writes is not None:
                return self.fail_dashboard_writes, {"message": "failed"}
            dashboard = dict(body["dashboard"])
            uid = dashboard["uid"]
            old = self.dashboards.get(uid)
            version = old["dashboard"]["version"] + 1 if old else 1
            dashboard.update(id=old["dashboard"]["id"] if old else len(self.dashboards) + 1)
            dashboard["version"] = version
            self.dashboards[uid] = {
                "dashboard": dashboard,
                "meta": {"folderUid": body["folderUid"], "version": version},
            }
            return 200, {"id": dashboard["id"], "uid": uid, "status": "success", "version": version}
        return 404, {"message": "Not found"}


def _handler(double: GrafanaDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            auth = self.headers.get("Authorization", "")
            double.requests.append(Request(self.command, self.path, body, auth))
            if auth != f"Bearer {double.token}":
                status, answer = 401, {"message": "invalid API key"}
            else:
                status, answer = double.handle(self.command, self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test asserts on the recorded requests instead."""

    return Handler


@contextmanager
def grafana_double(token: str) -> Iterator[GrafanaDouble]:
    double = GrafanaDouble(token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(double))
    double.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
