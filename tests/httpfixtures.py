"""A tiny HTTP file server on 127.0.0.1 for download tests (no internet needed).

It serves in-memory bytes by path, honours `Range: bytes=N-` with 206 (or 416 past the
end), records every request, and has switches to misbehave like real servers do:
ignore Range (answer 200), cut the connection after N bytes (once), or answer 404.
Use the `http_server` pytest fixture: `http_server.files["/a.bin"] = b"..."`,
`http_server.url("/a.bin")`.
"""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FileServer:
    """State and switches of one local server; start() runs it in a daemon thread."""

    def __init__(self):
        self.files = {}          # path -> bytes
        self.ignore_range = False
        self.cut_after = {}      # path -> bytes to send before dropping the connection (once)
        self.not_found = set()   # paths answered with 404 even when present
        self.requests = []       # (path, Range header or None) of every GET
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None

    def start(self):
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def port(self):
        return self._httpd.server_address[1]

    def url(self, path):
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def requests_for(self, path):
        """The Range headers (None when absent) of the GETs made for `path`."""
        with self._lock:
            return [rng for p, rng in self.requests if p == path]

    def _record(self, path, range_header):
        with self._lock:
            self.requests.append((path, range_header))


def _range_start(header):
    """N from 'bytes=N-' (or 'bytes=N-M'); None when absent or not of that form."""
    if not header or not header.startswith("bytes="):
        return None
    first = header[len("bytes="):].split(",")[0].split("-")[0].strip()
    return int(first) if first.isdigit() else None


def _handler_for(server):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request a connection: a cut is a real EOF

        def log_message(self, format, *args):  # keep test output quiet
            pass

        def do_GET(self):
            path = self.path.split("?")[0]
            range_header = self.headers.get("Range")
            server._record(path, range_header)
            if path in server.not_found or path not in server.files:
                self.send_error(404, "Not Found")
                return
            body = server.files[path]
            start = None if server.ignore_range else _range_start(range_header)
            if start is not None and start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if start is not None:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                payload = body[start:]
            else:
                self.send_response(200)
                payload = body
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            cut = server.cut_after.pop(path, None)
            if cut is not None and cut < len(payload):
                self.wfile.write(payload[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def http_server():
    """A running FileServer, shut down after the test."""
    server = FileServer().start()
    try:
        yield server
    finally:
        server.close()
