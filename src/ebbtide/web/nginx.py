"""The nginx configuration that fronts `ebbtide serve` and serves local-store files itself.

Two ways to take the bytes off the app, usable apart or together:

- the hand-off: with `web.accel_redirect` set, the app checks each `/files/…` request (signature,
  expiry, owner) and answers with an `X-Accel-Redirect` header; nginx then sends the bytes from
  its `internal` location with sendfile, Range and HEAD handled natively;
- the edge cache (`cache_dir`): nginx keeps signed media responses as the app's Cache-Control
  allows (`public, max-age` = the signed URL's remaining life), keyed by the whole URL, so each
  object is fetched from the app once per signing window and then served at nginx's speed. The
  same holds for a CDN in front of the app.

Pure text generation, tested by running the real nginx on it.
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
    cache_dir: Path | None = None,
) -> str:
    """http-level blocks (or a whole nginx.conf with `standalone`) for ebbtide behind nginx."""
    root = str(Path(store_root).resolve()).rstrip("/") + "/"
    proxy = """proxy_pass http://ebbtide_app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        # Uploads stream straight through; the app enforces web.max_upload.
        client_max_body_size 0;
        proxy_request_buffering off;"""
    cache_zone = cache_files = ""
    if cache_dir is not None:
        cache_zone = (
            f"proxy_cache_path {Path(cache_dir).resolve()} levels=1:2 keys_zone=ebbtide_media:10m "
            "max_size=10g inactive=2h use_temp_path=off;\n"
        )
        cache_files = f"""
    # Signed media, cached for as long as the app's Cache-Control allows (never past the URL's
    # expiry); the signature is the cache key, so a bad or expired one still reaches the app.
    location /files/ {{
        {proxy}
        proxy_cache ebbtide_media;
        proxy_cache_key $scheme$http_host$request_uri;
        proxy_cache_lock on;
        add_header X-Cache-Status $upstream_cache_status always;
    }}
"""
    server = f"""
{cache_zone}upstream ebbtide_app {{
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
{cache_files}
    location / {{
        {proxy}
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
