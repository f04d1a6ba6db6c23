"""Example webhook receiver: ebbtide's events → seed 001's `jobs` and `media_assets` tables.

Seed 001's Supabase function inserts a `jobs` row (queued) and a `media_assets` row (uploaded),
then sends `{job_id, media_id, org_id}` to SQS. ebbtide's intake mapping (see docs/intake.md)
keeps those ids in each event's `intake` field; this receiver moves the rows along:

    jobs.state            queued → running → succeeded | failed
    media_assets.status   uploaded → transcoding → transcoded → complete | failed

It checks the HMAC signature, ignores an event id it has seen (ebbtide delivers at least once)
and never moves a row backwards. Run it next to your database:

    python seed001_receiver.py --db postgresql://… --secret "$EBBTIDE_WEBHOOK_SECRET" --port 8088

Only the standard library and psycopg 3.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

SCHEMA = Path(__file__).with_name("seed001_schema.sql")
JOB_STATES = {"queued": "queued", "running": "running", "succeeded": "succeeded", "failed": "failed",
              "dead": "failed"}  # fmt: skip
MEDIA_STATES = {"transcoding": "transcoding", "transcoded": "transcoded", "complete": "complete",
                "failed": "failed"}  # fmt: skip
ORDER = {s: i for i, s in enumerate(["uploaded", "queued", "running", "transcoding", "transcoded",
                                     "succeeded", "complete"])}  # fmt: skip


def verify(secret: str, header: str, body: bytes, tolerance: float = 300) -> bool:
    """`t=<unix>,v1=<hex HMAC-SHA256("<t>." + body)>`, within `tolerance` seconds."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    want = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - t) <= tolerance and hmac.compare_digest(want, parts.get("v1", ""))


def update_for(event: dict[str, Any]) -> tuple[str, str, str, str | None] | None:
    """(table, row id, new state, streaming url) this event asks for, or None (pure)."""
    intake = event.get("intake") or {}
    meta = intake.get("metadata") or {}
    kind, _, state = str(event.get("type", "")).partition(".")
    if kind == "job" and state in JOB_STATES and intake.get("external_id"):
        return "jobs", str(intake["external_id"]), JOB_STATES[state], None
    if kind == "media" and state in MEDIA_STATES and meta.get("media_id"):
        url = event.get("master_key") if state == "complete" else None
        return "media_assets", str(meta["media_id"]), MEDIA_STATES[state], url
    return None


def apply(conn: psycopg.Connection[Any], event: dict[str, Any]) -> bool:
    """Apply one event in one transaction; False if it was a duplicate."""
    with conn.transaction():
        seen = conn.execute(
            "INSERT INTO ebbtide_webhook_events (event_id, type) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (event["id"], event.get("type", "")),
        )
        if seen.rowcount == 0:
            return False
        change = update_for(event)
        if change is None:
            return True
        table, row_id, state, url = change
        column = "state" if table == "jobs" else "status"
        row = conn.execute(f"SELECT {column} FROM {table} WHERE id = %s FOR UPDATE", (row_id,)).fetchone()
        if row is None:
            return True  # not one of ours
        current = row[0]
        if state != "failed" and ORDER.get(state, 0) <= ORDER.get(current, 0):
            return True  # never backwards
        conn.execute(
            f"UPDATE {table} SET {column} = %s, updated_at = now()"
            + (", streaming_url = %s" if url else "") + " WHERE id = %s",
            (state, url, row_id) if url else (state, row_id),
        )
        if table == "jobs" and state == "failed":
            conn.execute("UPDATE jobs SET error = %s WHERE id = %s", (event.get("error"), row_id))
    return True


def make_server(db: str, secret: str, host: str = "127.0.0.1", port: int = 8088) -> ThreadingHTTPServer:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not verify(secret, self.headers.get("X-Ebbtide-Signature", ""), body):
                self.send_response(401)
                self.end_headers()
                return
            try:
                with psycopg.connect(db, autocommit=True) as conn:
                    apply(conn, json.loads(body))
            except Exception as e:  # ebbtide retries a non-2xx answer with backoff
                self.send_response(500)
                self.end_headers()
                self.wfile.write(str(e).encode()[:200])
                return
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8088)
    a = ap.parse_args()
    make_server(a.db, a.secret, a.host, a.port).serve_forever()


if __name__ == "__main__":
    main()
