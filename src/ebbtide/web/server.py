"""Running the app with uvicorn, for `ebbtide serve` and `ebbtide up`.

The socket is bound before uvicorn starts, so a port already in use is one clear error at start
instead of a log line from a server thread while the rest of `up` carries on without a web app.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from typing import Any

from ebbtide.errors import EbbtideError


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise EbbtideError(
                f"port {port} on {host} is already in use",
                hint="stop the other program, or choose another port with web.port "
                "(EBBTIDE_WEB__PORT) or --port",
            ) from None
        raise EbbtideError(f"cannot listen on {host}:{port}: {e.strerror}", hint="check web.host") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(app: Any, sock: socket.socket, log_level: str = "warning") -> Any:
    import uvicorn

    host, port = sock.getsockname()[:2]
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False))


def serve(app: Any, sock: socket.socket, log_level: str = "info") -> None:
    """Serve until interrupted (blocking)."""
    make_server(app, sock, log_level).run(sockets=[sock])


def serve_in_thread(app: Any, sock: socket.socket) -> Any:
    """Serve on a daemon thread; set `.should_exit` on the returned server to stop it."""
    server = make_server(app, sock)
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="web", daemon=True).start()
    return server


MAX_DEFAULT_WORKERS = 8


def worker_count(asked: int | None, cores: int | None = None) -> int:
    """Server processes: as asked, else one per core (at most 8: the app is I/O bound past that)."""
    if asked:
        return asked
    return max(1, min(MAX_DEFAULT_WORKERS, cores if cores is not None else (os.cpu_count() or 1)))


def serve_processes(
    sock: socket.socket,
    workers: int,
    config_path: str | None,
    host: str,
    port: int,
    parts: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve with `workers` uvicorn processes sharing the already-bound socket (blocking).

    Each process builds the app from the same config through `ebbtide.web.asgi`, so the settings
    reach it through the environment: the config path, and host/port as env overrides.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from ebbtide.web.asgi import PARTS_ENV

    env = {"EBBTIDE_WEB__HOST": host, "EBBTIDE_WEB__PORT": str(port)}
    if config_path:
        env["EBBTIDE_CONFIG"] = str(config_path)
    if parts:
        env[PARTS_ENV] = parts
    os.environ.update(env)
    config = uvicorn.Config(
        "ebbtide.web.asgi:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )
    Multiprocess(config, sockets=[sock]).run()
