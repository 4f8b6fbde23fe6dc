"""A fake remote website for tests: a real HTTP server on 127.0.0.1 at a free port.

    site = SourceSite()
    url = site.page("/post", "<html><body><a href='...'>...</a></body></html>")
    ...                                # fetch url with the code under test
    site.requests[-1].headers["User-Agent"]
    site.close()

Every response closes its connection (``Connection: close``). Routes match the request path
with its query first, then without it; unknown paths get 404. Nothing here ever connects
anywhere: the server only listens on 127.0.0.1.

Besides plain pages there are misbehaving ones, for testing a fetcher's limits: ``slow``
(drips a chunk at a time), ``huge`` (a body of any size generated on the fly), ``gzip_bomb``
(small on the wire, huge inflated) and ``handler`` for anything else. ``close()`` returns in
well under half a second, even while those are streaming.
"""
from __future__ import annotations

import select
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from requests.structures import CaseInsensitiveDict

__all__ = ["Request", "SourceSite", "wordpress_rdf"]


@dataclass(eq=False)
class Request:
    """One request the site received (recorded before it is answered)."""

    method: str
    path: str  # as sent, with the query
    headers: CaseInsensitiveDict
    body: bytes
    client: tuple = ()
    bytes_sent: int = 0  # body bytes written to the client so far
    disconnected: bool = False  # the client went away before the response was finished
    done: threading.Event = field(default_factory=threading.Event)  # set when the handler is finished

    @property
    def query(self) -> str:
        return urlsplit(self.path).query


class SourceSite:
    """A fake remote website (see the module docstring)."""

    POLL = 0.05  # how often waiting handlers look at their client and at shutdown
    ACCEPT_POLL = 0.01  # how often the accept loop looks at shutdown: close() waits for its next look

    def __init__(self, host: str = "127.0.0.1"):
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []  # exceptions raised by handler functions
        self._routes: dict[str, callable] = {}
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._closing = threading.Event()
        self._closed = False
        self._server = _Server((host, 0), _Handler, site=self)
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": self.ACCEPT_POLL},
            name=f"SourceSite:{self.port}", daemon=True,
        )
        self._thread.start()

    def __enter__(self) -> SourceSite:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SourceSite {self.url}>"

    def url_for(self, path: str) -> str:
        return self.url + path

    # ------------------------------------------------------------------ routes

    def page(self, path: str, body: str | bytes, *, status: int = 200,
             content_type: str | None = "text/html; charset=utf-8", headers: dict | None = None,
             encoding: str = "utf-8") -> str:
        """A fixed response; ``content_type=None`` sends no Content-Type. Returns the full URL."""
        data = body.encode(encoding) if isinstance(body, str) else bytes(body)
        head = {"Content-Type": content_type} if content_type is not None else {}
        head.update(headers or {})

        def respond(handler: _Handler, request: Request) -> None:
            handler.respond(request, status, head, data)

        return self._route(path, respond)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        def respond(handler: _Handler, request: Request) -> None:
            handler.respond(request, status, {"Location": location, "Content-Type": "text/html"},
                            b'<a href="%s">moved</a>' % location.encode("utf-8", "replace"))

        return self._route(path, respond)

    def slow(self, path: str, *, body: bytes = b"<html><body>", chunk_delay: float = 0.5,
             chunks: int = 100, content_type: str = "text/html", chunk: bytes = b"<p>.</p>\n") -> str:
        """Headers and ``body`` at once, then ``chunk`` every ``chunk_delay`` s, ``chunks`` times.

        No Content-Length: the body ends when the connection closes. Stops as soon as the client
        disconnects or the site is closed.
        """

        def respond(handler: _Handler, request: Request) -> None:
            handler.start(request, 200, {"Content-Type": content_type})
            if body:
                handler.write(request, body)
            for _ in range(chunks):
                if not handler.pause(request, chunk_delay):
                    return
                handler.write(request, chunk)

        return self._route(path, respond)

    def huge(self, path: str, size: int, *, prefix: bytes = b"<html><body>",
             content_type: str = "text/html", content_length: bool = True) -> str:
        """A body of exactly ``size`` bytes (``prefix`` then filler), generated as it is sent.

        With ``content_length=False`` the body is close-delimited. Stops as soon as the client
        disconnects or the site is closed.
        """
        block = (b"<p>" + b"huge " * 12 + b"</p>\n") * 1024  # ~70 KB, reused

        def respond(handler: _Handler, request: Request) -> None:
            handler.start(request, 200, {"Content-Type": content_type,
                                         **({"Content-Length": str(size)} if content_length else {})})
            left = size
            first = prefix[:left]
            handler.write(request, first)
            left -= len(first)
            while left > 0:
                if self._closing.is_set() or handler.client_gone():
                    request.disconnected = request.disconnected or not self._closing.is_set()
                    return
                piece = block if left >= len(block) else block[:left]
                handler.write(request, piece)
                left -= len(piece)

        return self._route(path, respond)

    def gzip_bomb(self, path: str, expanded_size: int, *, content_type: str = "text/html") -> str:
        """``Content-Encoding: gzip``; a small body that inflates to ``expanded_size`` bytes of HTML."""
        data = gzip_bomb_bytes(expanded_size)

        def respond(handler: _Handler, request: Request) -> None:
            handler.respond(request, 200, {"Content-Type": content_type, "Content-Encoding": "gzip"}, data)

        return self._route(path, respond)

    def handler(self, path: str, fn) -> str:
        """``fn(request) -> (status, headers_dict, body_bytes)``; an exception in it answers 500
        and is kept in ``site.errors``."""

        def respond(handler: _Handler, request: Request) -> None:
            status, headers, body = fn(request)
            if isinstance(body, str):
                body = body.encode("utf-8")
            handler.respond(request, status, dict(headers or {}), body or b"")

        return self._route(path, respond)

    def _route(self, path: str, respond) -> str:
        if not path.startswith("/"):
            raise ValueError(f"paths start with /: {path!r}")
        self._routes[path] = respond
        return self.url + path

    def _find(self, path: str):
        return self._routes.get(path) or self._routes.get(urlsplit(path).path)

    # ------------------------------------------------------------------ shutdown

    def close(self) -> None:
        """Stop serving and end every connection in progress; fast (well under 0.5 s)."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._server.shutdown()  # the accept loop polls every ACCEPT_POLL seconds
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for conn in connections:
            _shutdown(conn)
        self._server.server_close()
        self._thread.join(1)
        end = time.monotonic() + 0.3
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)
            self._threads.add(threading.current_thread())
            closing = self._closing.is_set()
        if closing:
            _shutdown(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)
            self._threads.discard(threading.current_thread())


def _shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # SourceSite.close joins its handler threads itself, with a time limit
    allow_reuse_address = True

    def __init__(self, address, handler_class, *, site: SourceSite):
        self.site = site
        super().__init__(address, handler_class)

    def server_bind(self):
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup: not wanted here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # the client went away, or the site is closing
            return
        self.site.errors.append(exc)
        traceback.print_exc()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self):
        super().setup()
        self.server.site._track(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.site._untrack(self.connection)

    def log_message(self, format, *args):  # quiet
        pass

    def dispatch(self):
        site = self.server.site
        self.close_connection = True
        request = Request(self.command, self.path, CaseInsensitiveDict(self.headers.items()),
                          self.read_request_body(), client=self.client_address)
        site.requests.append(request)
        self._started = False
        try:
            route = site._find(self.path)
            if route is None:
                self.respond(request, 404, {"Content-Type": "text/plain"}, b"not found")
            else:
                route(self, request)
            self.wfile.flush()
        except OSError:
            request.disconnected = request.disconnected or not site._closing.is_set()
        except Exception as exc:
            site.errors.append(exc)
            traceback.print_exc()
            if not self._started:
                try:
                    self.respond(request, 500, {"Content-Type": "text/plain"}, b"handler error")
                except OSError:
                    pass
        finally:
            request.done.set()

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = dispatch

    def read_request_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # ------------------------------------------------------------ writing

    def start(self, request: Request, status: int, headers: dict) -> None:
        """Status line and headers; the connection closes after the body."""
        self._started = True
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, str(value))
        if not any(name.lower() == "connection" for name in headers):
            self.send_header("Connection", "close")
        self.end_headers()

    def write(self, request: Request, data: bytes) -> None:
        if self.command == "HEAD" or not data:
            return
        self.wfile.write(data)
        self.wfile.flush()
        request.bytes_sent += len(data)

    def respond(self, request: Request, status: int, headers: dict, body: bytes) -> None:
        if not any(name.lower() in ("content-length", "transfer-encoding") for name in headers):
            headers = {**headers, "Content-Length": str(len(body))}
        self.start(request, status, headers)
        self.write(request, body)

    # ------------------------------------------------------------ waiting

    def client_gone(self) -> bool:
        """Has the client closed its end (or the site shut the connection down)?"""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            data = self.connection.recv(4096, socket.MSG_PEEK)
            if data:  # the client sent more; we answer one request per connection, so drop it
                self.connection.recv(len(data))
                return False
            return True
        except (OSError, ValueError):
            return True

    def pause(self, request: Request, seconds: float) -> bool:
        """Wait ``seconds``; False as soon as the client disconnects or the site is closing."""
        site = self.server.site
        end = time.monotonic() + seconds
        while True:
            if site._closing.is_set():
                return False
            if self.client_gone():
                request.disconnected = True
                return False
            remaining = end - time.monotonic()
            if remaining <= 0:
                return True
            try:
                select.select([self.connection], [], [], min(remaining, SourceSite.POLL))
            except (OSError, ValueError):
                return False


_BOMBS: dict[tuple[int, bytes], bytes] = {}


def gzip_bomb_bytes(expanded_size: int, prefix: bytes = b"<html><body>") -> bytes:
    """A gzip file of ``prefix`` and spaces, ``expanded_size`` bytes in all; cached, built fast.

    Each 1 MiB of spaces is compressed once by a fresh compressor and ends with a full flush
    (byte-aligned, no references back), so the same bytes can be repeated: a valid deflate
    stream, the way pigz joins blocks.
    """
    key = (expanded_size, prefix)
    if key in _BOMBS:
        return _BOMBS[key]
    prefix = prefix[:expanded_size]
    block_size = 1 << 20
    count, tail = divmod(expanded_size - len(prefix), block_size)
    block = b" " * block_size

    def segment(data: bytes, mode: int) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(mode)

    crc = zlib.crc32(prefix)
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(block[:tail], crc)
    data = b"".join([
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff",  # gzip header: deflate, no name, no mtime
        segment(prefix, zlib.Z_FULL_FLUSH),
        segment(block, zlib.Z_FULL_FLUSH) * count,
        segment(block[:tail], zlib.Z_FINISH),
        struct.pack("<II", crc & 0xFFFFFFFF, expanded_size & 0xFFFFFFFF),
    ])
    _BOMBS[key] = data
    return data


def wordpress_rdf(permalink: str, ping: str, title: str = "A post") -> str:
    """What WordPress's trackback_rdf() prints in a post."""
    return f"""<!--
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
			xmlns:dc="http://purl.org/dc/elements/1.1/"
			xmlns:trackback="http://madskills.com/public/xml/rss/module/trackback/">
		<rdf:Description rdf:about="{permalink}"
    dc:identifier="{permalink}"
    dc:title="{title}"
    trackback:ping="{ping}" />
	</rdf:RDF>
-->"""
