"""A small app that needs Postgres, for the compose example (examples/postgres-app).

GET /         {"version": APP_VERSION, "db": <a row read from Postgres>}
GET /healthz  200 when a query on the database answers, else 503 (and the reason, logged)
GET /slow?seconds=N  a body streamed over N seconds (requests that span a swap)

Python's http.server (one thread per connection, HTTP/1.1 keep-alive) and Debian's psycopg2;
DATABASE_URL says where the database is.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg2

VERSION = os.environ.get("APP_VERSION", "unknown")
PORT = int(os.environ.get("APP_PORT", "8080"))
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@db:5432/app")
MAX_CONNECTIONS = 16
CHUNK = b"." * 64 + b"\n"


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} app[{VERSION}]: {message}", file=sys.stderr, flush=True)


class Database:
    """Up to MAX_CONNECTIONS connections to Postgres, kept open and reused; callers wait for a free one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def query(self, sql: str) -> Any:
        with self.slots:
            try:
                conn = self.idle.get_nowait()
            except queue.Empty:
                conn = psycopg2.connect(self.url, connect_timeout=3)
            try:
                with conn.cursor() as cursor:
                    cursor.execute(sql)
                    row = cursor.fetchone()
                conn.rollback()
            except Exception:
                conn.close()
                raise
            self.idle.put(conn)
            return row


DB = Database(DATABASE_URL)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "postgres-app"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK wait

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no per-request log (throughput); errors are logged where they happen

    def answer(self, status: int, body: dict[str, Any]) -> None:
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-App-Version", VERSION)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            try:
                DB.query("SELECT 1")
            except Exception as exc:
                reason = " ".join(str(exc).split())
                log(f"healthz: database unreachable ({DATABASE_URL.split('@')[-1]}): {reason}")
                self.answer(503, {"version": VERSION, "db": "unreachable", "error": reason})
                return
            self.answer(200, {"version": VERSION, "db": "ok"})
        elif url.path == "/":
            try:
                row = DB.query("SELECT message, now()::text FROM greetings WHERE id = 1")
            except Exception as exc:
                log(f"GET /: database error: {' '.join(str(exc).split())}")
                self.answer(503, {"version": VERSION, "error": "database unavailable"})
                return
            self.answer(200, {"version": VERSION, "db": {"message": row[0], "now": row[1]}})
        elif url.path == "/slow":
            seconds = min(60.0, float(parse_qs(url.query).get("seconds", ["5"])[0]))
            chunks = max(1, int(seconds * 10))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(chunks * len(CHUNK)))
            self.send_header("X-App-Version", VERSION)
            self.end_headers()
            for _ in range(chunks):
                self.wfile.write(CHUNK)
                self.wfile.flush()
                time.sleep(seconds / chunks)
        else:
            self.answer(404, {"version": VERSION, "error": "not found"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512


def main() -> None:
    log(f"listening on :{PORT}, database {DATABASE_URL.split('@')[-1]}")
    try:
        DB.query("SELECT 1")
        log("database: connected")
    except Exception as exc:
        log(f"database: cannot connect yet: {' '.join(str(exc).split())}")
    Server(("", PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
