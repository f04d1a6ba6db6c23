"""Running the app with uvicorn, for `ebbtide serve` and `ebbtide up`.

The socket is bound before uvicorn starts, so a port already in use is one clear error at start
instead of a log line from a server thread while the rest of `up` carries on without a web app.
"""

from __future__ import annotations

import errno
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
