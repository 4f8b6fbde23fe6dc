"""A pingback flood on loopback: the hostile sources, and the senders that point the blog at them.

``SourceServer`` answers every path with an HTML page, either slowly (headers at once, then the
body trickled over ``seconds``: a source that ties up a verification slot without tripping the
read timeout) or big (a multi-megabyte page, as fast as the socket takes it).

``Flood`` keeps ``size`` pingbacks in flight against the blog in waves: ``size`` concurrent
``pingback.ping`` calls, each naming a page of its own on a source server; when the whole wave
is answered, the next one starts (at most one wave per ``period`` seconds), until stopped. Waves bound the rate (a refused ping is not
re-fired at once), so what is measured is the cost of pingbacks in flight, not an unbounded
request storm from this very machine.
"""
from __future__ import annotations

import collections
import http.client
import itertools
import threading
import time
import xmlrpc.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pages import html_page


class SourceServer:
    """A threaded HTTP server on 127.0.0.1 serving one page to every GET."""

    def __init__(self, page: bytes, *, trickle_seconds: float = 0.0, chunks: int = 10):
        self.page = page
        self.trickle = trickle_seconds
        self.chunks = chunks
        self.active = 0
        self.served = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                with owner._lock:
                    owner.active += 1
                try:
                    owner._answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the fetcher stops reading at its size cap, or gave up: expected
                finally:
                    with owner._lock:
                        owner.active -= 1
                        owner.served += 1

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 512
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(self.page)))
        handler.end_headers()
        if not self.trickle:
            handler.wfile.write(self.page)
            return
        step = -(-len(self.page) // self.chunks)
        for i in range(0, len(self.page), step):
            handler.wfile.write(self.page[i:i + step])
            handler.wfile.flush()
            time.sleep(self.trickle / self.chunks)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def start(self) -> SourceServer:
        self._thread.start()
        return self

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being answered (the blog's verifications are over)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.active == 0:
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def slow_source(target_url: str, seconds: float) -> SourceServer:
    return SourceServer(html_page(30_000, target_url, title="A slow page"), trickle_seconds=seconds).start()


def big_source(target_url: str, size: int) -> SourceServer:
    # The link sits near the end, past the fetcher's size cap: the whole capped megabyte is parsed.
    return SourceServer(html_page(size, target_url, title="A huge page", seed=5)).start()


def ping_once(port: int, source: str, target: str, timeout: float) -> str:
    """One pingback.ping over a fresh connection; returns an outcome label for the tally."""
    body = xmlrpc.client.dumps((source, target), "pingback.ping").encode("utf-8")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/xmlrpc", body=body, headers={"Content-Type": "text/xml"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            return f"HTTP {response.status}"
        try:
            (answer,), _method = xmlrpc.client.loads(data)
        except xmlrpc.client.Fault as fault:
            return f"fault {fault.faultCode}"
        return "ok, verifying" if "verification continues" in str(answer) else "ok, registered"
    except TimeoutError:
        return "client timeout"
    except OSError as exc:
        return f"error {type(exc).__name__}"
    finally:
        conn.close()


class Flood:
    """``size`` pingbacks in flight, wave after wave, until ``stop()``."""

    def __init__(self, blog_port: int, source: SourceServer, target_url: str, *, size: int = 200,
                 label: str = "flood", timeout: float = 60.0, period: float = 1.0):
        self.blog_port = blog_port
        self.source = source
        self.target = target_url
        self.size = size
        self.label = label
        self.timeout = timeout
        self.period = period
        self.tally: collections.Counter[str] = collections.Counter()
        self.waves = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._serial = itertools.count()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _one(self) -> None:
        source = self.source.url(f"{self.label}/{next(self._serial)}/")
        outcome = ping_once(self.blog_port, source, self.target, self.timeout)
        with self._lock:
            self.tally[outcome] += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            wave = [threading.Thread(target=self._one, daemon=True) for _ in range(self.size)]
            for t in wave:
                t.start()
            for t in wave:
                t.join()
            self.waves += 1
            # Refused pings come back at once: without a pause this would be a request storm.
            self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))

    def start(self) -> Flood:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the wave in flight; returns once it is answered."""
        self._stop.set()
        self._thread.join()

    @property
    def sent(self) -> int:
        return sum(self.tally.values())
