"""The nginx configuration that fronts `ebbtide serve` and serves local-store files itself.

With `web.accel_redirect` set, the app checks each `/files/…` request (signature, expiry, owner)
and answers with an `X-Accel-Redirect` header; nginx then sends the bytes from its `internal`
location with sendfile, Range and HEAD handled natively. Pure text generation, tested by running
the real nginx on it.
"""

from __future__ import annotations

from pathlib import Path


def nginx_conf(
    store_root: Path,
    upstream: str,
    listen: str = "8080",
    internal_prefix: str = "/_ebbtide_files/",
    standalone: bool = False,
    pid_dir: Path | None = None,
    user: str | None = None,
) -> str:
    """A `server {}` block (or a whole nginx.conf with `standalone`) for ebbtide behind nginx."""
    root = str(Path(store_root).resolve()).rstrip("/") + "/"
    server = f"""
upstream ebbtide_app {{
    server {upstream};
    keepalive 64;
}}

server {{
    listen {listen};

    # Files the app has authorised (signature, expiry, owner) via X-Accel-Redirect.
    location {internal_prefix} {{
        internal;
        alias {root};
        sendfile on;
        tcp_nopush on;
        # Content-Type and Cache-Control come from the app's response.
        types {{ }}
        default_type "";
    }}

    location / {{
        proxy_pass http://ebbtide_app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        # Uploads stream straight through; the app enforces web.max_upload.
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
    }}
}}
"""
    if not standalone:
        return server.lstrip("\n")
    state = Path(pid_dir or "/tmp").resolve()
    user_line = f"user {user};\n" if user else ""
    return f"""{user_line}worker_processes 1;
pid {state}/nginx.pid;
error_log {state}/error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {state}/body;
    proxy_temp_path {state}/proxy;
    fastcgi_temp_path {state}/fastcgi;
    uwsgi_temp_path {state}/uwsgi;
    scgi_temp_path {state}/scgi;
{server}
}}
"""
