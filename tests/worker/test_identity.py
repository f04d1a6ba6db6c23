"""Provider-id discovery against local stand-ins for IMDSv2 and ECS task metadata v4.

moto implements neither endpoint, so small http.server stand-ins answer exactly those requests.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from worker_servers import free_port, imds_server

from ebbtide.worker.identity import discover_provider_id
from ebbtide.worker.spot import ImdsClient

TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/ebbtide/0f1e2d3c4b5a"


def test_launcher_env_wins() -> None:
    assert discover_provider_id({"EBBTIDE_PROVIDER_ID": "local:42"}, None) == "local:42"


def test_ec2_instance_id_from_imds() -> None:
    with imds_server() as imds:
        assert discover_provider_id({}, ImdsClient(imds.url)) == imds.instance_id


def test_no_source_means_none() -> None:
    assert discover_provider_id({}, None) is None


def test_ecs_task_arn_from_metadata_endpoint() -> None:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"TaskARN": TASK_ARN, "Cluster": "ebbtide"}).encode()
            self.send_response(200 if self.path == "/v4/abc/task" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"ECS_CONTAINER_METADATA_URI_V4": f"http://127.0.0.1:{port}/v4/abc"}
        assert discover_provider_id(env, None) == TASK_ARN
    finally:
        server.shutdown()
        server.server_close()
