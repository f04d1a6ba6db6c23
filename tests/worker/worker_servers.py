"""Small local HTTP servers that speak the EC2 IMDSv2 spot protocol and the ECS agent's
task-protection endpoint. moto implements neither, so these are the only stand-ins in the worker
tests; each answers exactly the requests the real services answer, on a free port."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    """As tests/conftest.py's free_port; copied because a test folder cannot import the root conftest."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeImds:
    """IMDSv2: PUT /latest/api/token, then GET spot/instance-action with the token (404 = none)."""

    def __init__(self) -> None:
        self.notice: dict[str, str] | None = None
        self.tokens_issued = 0
        self.polls = 0
        self.unauthorised = 0
        self.instance_id = "i-0123456789abcdef0"
        self.url = ""


class FakeEcsAgent:
    """ECS agent: PUT /task-protection/v1/state records each requested protection state."""

    def __init__(self) -> None:
        self.states: list[dict[str, Any]] = []
        self.url = ""

    @property
    def enabled(self) -> bool | None:
        return bool(self.states[-1]["ProtectionEnabled"]) if self.states else None


def _imds_handler(imds: FakeImds) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def _send(self, code: int, body: bytes = b"") -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self) -> None:
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if self.path != "/latest/api/token" or not ttl:
                self._send(400)
                return
            imds.tokens_issued += 1
            self._send(200, f"token-{imds.tokens_issued}".encode())

        def do_GET(self) -> None:
            token = self.headers.get("X-aws-ec2-metadata-token", "")
            if not token.startswith("token-"):
                imds.unauthorised += 1
                self._send(401)
                return
            if self.path == "/latest/meta-data/instance-id":
                self._send(200, imds.instance_id.encode())
                return
            if self.path != "/latest/meta-data/spot/instance-action":
                self._send(404)
                return
            imds.polls += 1
            if imds.notice is None:
                self._send(404, b"Not Found")
            else:
                self._send(200, json.dumps(imds.notice).encode())

    return H


def _ecs_handler(agent: FakeEcsAgent) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_PUT(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
            if self.path != "/task-protection/v1/state" or "ProtectionEnabled" not in body:
                self.send_response(400)
                self.end_headers()
                return
            agent.states.append(body)
            out = json.dumps({"protection": {"ProtectionEnabled": body["ProtectionEnabled"]}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    return H


@contextmanager
def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def imds_server() -> Iterator[FakeImds]:
    imds = FakeImds()
    with _serve(_imds_handler(imds)) as url:
        imds.url = url
        yield imds


@contextmanager
def ecs_agent_server() -> Iterator[FakeEcsAgent]:
    agent = FakeEcsAgent()
    with _serve(_ecs_handler(agent)) as url:
        agent.url = url
        yield agent
