"""The one guarded fetcher for URLs that strangers give us.

Every outgoing request for a linkback goes through ``GuardedFetcher.fetch``:

- http and https only, no user:password@, ports 80/443/8080 unless the address is allowlisted;
- the host is resolved once, every address is checked (loopback, private, link-local, CGNAT,
  multicast, reserved, unspecified; IPv4-mapped and NAT64 IPv6 looked through), and the
  connection goes to the address that was checked, so DNS cannot change the answer between
  check and connect (no rebinding window);
- redirects are followed by hand, at most ``max_redirects``, each hop checked again;
- connect and read timeouts, and a total deadline enforced by closing the socket;
- at most ``max_bytes`` read (after decompression, which we do ourselves, bounded);
- only HTML or XHTML (``html_only=False`` returns any other type's status and headers, no body).
"""
from __future__ import annotations

import ipaddress
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, HTTPError as Urllib3Error, NewConnectionError

HTML_TYPES = ("text/html", "application/xhtml+xml")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def transient_status(status: int | None) -> bool:
    """Whether an HTTP answer with ``status`` may go better later: 429 (slow down) or any 5xx."""
    return status is not None and (status == 429 or 500 <= status <= 599)


class FetchError(Exception):
    """The page could not be had; ``refused`` when our guard said no (nothing was sent).

    ``status`` is the HTTP status when the server answered with an error; ``transient`` says
    that trying again later may work (a timeout, a lost connection, a 5xx or 429 answer).
    """

    def __init__(self, message: str, *, refused: bool = False, status: int | None = None, transient: bool = False):
        super().__init__(message)
        self.message = message
        self.refused = refused
        self.status = status
        self.transient = transient or transient_status(status)


@dataclass
class FetchResult:
    url: str  # the final URL, after redirects
    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool = False
    redirects: list[str] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        for param in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                return value.strip().strip("\"'")
        return None


def parse_ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an address if it is one, in any spelling a resolver would accept.

    ``2130706433``, ``0x7f.1`` and ``0177.0.0.1`` are all 127.0.0.1 to ``inet_aton``.
    """
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def refusal_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why we never connect to ``address`` for a stranger, or None if it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if embedded is not None:
            return refusal_reason(embedded)
    checks = [
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "shared (CGNAT)"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not globally routable"),
    ]
    for hit, reason in checks:
        if hit:
            return f"{reason} address"
    return None


class _Deadline:
    """Closes the request's sockets when the total time is up, whatever they are doing."""

    def __init__(self, seconds: float):
        self.expires = time.monotonic() + seconds
        self.sockets: list[socket.socket] = []
        self.expired = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            if self.expired:
                sock.close()
                raise OSError("deadline passed")
            self.sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cancel(self) -> None:
        self._timer.cancel()


def _pinned(base):
    """A urllib3 connection class that connects to a checked address, not to a fresh DNS answer.

    ``host`` stays the name, so the Host header, TLS SNI and certificate checks use it.
    """

    class Pinned(base):
        def __init__(self, *args, pinned_ip: str, deadline: _Deadline, **kwargs):
            super().__init__(*args, **kwargs)
            self._pinned_ip = pinned_ip
            self._deadline = deadline

        def _new_conn(self) -> socket.socket:
            family = socket.AF_INET6 if ":" in self._pinned_ip else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                self._deadline.track(sock)
                sock.settimeout(self.timeout if isinstance(self.timeout, (int, float)) else None)
                sock.connect((self._pinned_ip, self.port))
            except TimeoutError as exc:
                sock.close()
                raise ConnectTimeoutError(self, f"connection to {self.host} timed out") from exc
            except OSError as exc:
                sock.close()
                raise NewConnectionError(self, f"cannot connect to {self.host}: {exc}") from exc
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock

    Pinned.__name__ = f"Pinned{base.__name__}"
    return Pinned


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _pinned(HTTPConnection)


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _pinned(HTTPSConnection)


class _PinnedAdapter(HTTPAdapter):
    """Sends one request over a connection to ``pinned_ip``; never through a proxy."""

    def __init__(self, pinned_ip: str, deadline: _Deadline):
        super().__init__(max_retries=0)
        self.pinned_ip, self.deadline = pinned_ip, deadline
        self.pools: list[HTTPConnectionPool] = []

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        extra = {"pinned_ip": self.pinned_ip, "deadline": self.deadline}
        if host_params["scheme"] == "https":
            pool = _PinnedHTTPSPool(host_params["host"], host_params["port"], maxsize=1, **pool_kwargs, **extra)
        else:
            pool = _PinnedHTTPPool(host_params["host"], host_params["port"], maxsize=1, **extra)
        self.pools.append(pool)
        return pool

    def close(self):
        for pool in self.pools:
            pool.close()
        super().close()


@dataclass
class FetchPolicy:
    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    deadline: float = 10.0
    max_bytes: int = 1_000_000
    max_redirects: int = 5
    allowed_ports: tuple[int, ...] = (80, 443, 8080)
    allowlist: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    user_agent: str = "blogapp"

    @classmethod
    def from_settings(cls, *, allowlist=(), allowed_ports=(80, 443, 8080), **kw) -> FetchPolicy:
        return cls(allowlist=parse_allowlist(allowlist), allowed_ports=tuple(int(p) for p in allowed_ports), **kw)


def parse_allowlist(value) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks of an allowlist as an operator writes it: a list of CIDRs, or one text of
    them separated by commas or spaces (``"127.0.0.2/32, 10.1.0.0/16"``; an environment variable
    that is not JSON arrives as text). Raises ``ValueError`` naming the entry it cannot read: an
    allowlist read wrongly would open or close the guard silently."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    elif not isinstance(value, (list, tuple, set, frozenset)):
        raise ValueError(f"{value!r} is not a CIDR or a list of them")
    networks = []
    for entry in value:
        if not isinstance(entry, str):
            raise ValueError(f"{entry!r} is not a CIDR")
        for cidr in entry.replace(",", " ").split():
            try:
                networks.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IP network in CIDR form") from None
    return tuple(networks)


class GuardedFetcher:
    def __init__(self, policy: FetchPolicy):
        self.policy = policy

    # ---------------------------------------------------------------- the guard

    def _allowlisted(self, address) -> bool:
        return any(address in network for network in self.policy.allowlist if address.version == network.version)

    def check_url(self, url: str) -> tuple[str, int, str]:
        """Resolve and check ``url``; return (host, port, the address to connect to).

        Raises ``FetchError(refused=True)`` for anything we will not connect to.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise FetchError(f"not a valid URL: {url}", refused=True) from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchError(f"only http and https URLs are fetched, not {scheme or 'this'}", refused=True)
        if parts.username is not None or parts.password is not None:
            raise FetchError("URLs with a user name or password are not fetched", refused=True)
        host = parts.hostname
        if not host:
            raise FetchError("the URL has no host", refused=True)
        port = port or (443 if scheme == "https" else 80)

        literal = parse_ip_literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError, OSError):
                raise FetchError(f"the host {host} does not resolve") from None
            addresses = []
            for info in infos:
                address = ipaddress.ip_address(info[4][0].split("%")[0])
                if address not in addresses:
                    addresses.append(address)
            if not addresses:
                raise FetchError(f"the host {host} does not resolve")
        # Every address must pass: a name that also points inside is refused outright.
        for address in addresses:
            if self._allowlisted(address):
                continue
            reason = refusal_reason(address)
            if reason:
                raise FetchError(f"{host} resolves to a {reason}; not fetched", refused=True)
            if port not in self.policy.allowed_ports:
                raise FetchError(f"port {port} is not fetched (only {', '.join(map(str, self.policy.allowed_ports))})", refused=True)
        return host, port, str(addresses[0])

    # ---------------------------------------------------------------- fetching

    def fetch(self, url: str, *, headers: dict[str, str] | None = None, html_only: bool = True,
              types: tuple[str, ...] = HTML_TYPES) -> FetchResult:
        """GET ``url`` within the policy. Raises ``FetchError``.

        The body is read when the response's type is one of ``types`` (HTML or XHTML unless
        told otherwise). Any other type raises, unless ``html_only=False``: then it is returned
        with its status and headers and an empty body (the body is never read).
        """
        return self._guarded(lambda deadline: self._fetch(url, headers or {}, deadline, html_only, types))

    def post(self, url: str, data: bytes, *, content_type: str, accept: str = "*/*",
             headers: dict[str, str] | None = None) -> FetchResult:
        """POST ``data`` to ``url`` within the same policy (a linkback we send). Raises ``FetchError``.

        Any status is returned (the caller reads a 4xx answer's message), with the body of any
        content type up to ``max_bytes``. 307 and 308 are followed with the same body, each hop
        checked again; other redirects are returned as they are (a POST must not turn into a GET).
        """
        extra = {"Content-Type": content_type, "Accept": accept, **(headers or {})}
        return self._guarded(lambda deadline: self._post(url, data, extra, deadline))

    def _guarded(self, work) -> FetchResult:
        deadline = _Deadline(self.policy.deadline)
        try:
            return work(deadline)
        except FetchError:
            raise
        except (requests.RequestException, Urllib3Error) as exc:  # the body is read from urllib3 directly
            if deadline.expired:
                raise FetchError(f"the page took longer than {self.policy.deadline:g} s", transient=True) from None
            raise FetchError(f"the page could not be fetched: {_short(exc)}", transient=True) from None
        except OSError as exc:
            if deadline.expired:
                raise FetchError(f"the page took longer than {self.policy.deadline:g} s", transient=True) from None
            raise FetchError(f"the page could not be fetched: {exc}", transient=True) from None
        finally:
            deadline.cancel()

    def _post(self, url: str, data: bytes, headers: dict[str, str], deadline: _Deadline) -> FetchResult:
        def finish(result: FetchResult, response: requests.Response) -> FetchResult:
            result.body, result.truncated = self._read_body(response, deadline)
            return result

        # Only 307 and 308 keep the method and body; any other redirect is the answer itself.
        return self._follow(url, lambda hop, address: self._request(hop, address, headers, deadline, method="POST",
                                                                     data=data), (307, 308), finish)

    def _fetch(self, url: str, headers: dict[str, str], deadline: _Deadline, html_only: bool = True,
               types: tuple[str, ...] = HTML_TYPES) -> FetchResult:
        def finish(result: FetchResult, response: requests.Response) -> FetchResult:
            if result.status >= 400:
                raise FetchError(f"the page answered HTTP {result.status}", status=result.status)
            if result.content_type not in types:
                if not html_only:
                    return result  # headers only: the body stays unread
                raise FetchError(f"the page is not HTML ({result.content_type or 'no content type'})")
            result.body, result.truncated = self._read_body(response, deadline)
            return result

        return self._follow(url, lambda hop, address: self._request(hop, address, headers, deadline),
                            (301, 302, 303, 307, 308), finish)

    def _follow(self, url: str, send, redirect_statuses: tuple[int, ...], finish) -> FetchResult:
        """``send(url, address)`` to each hop, every hop checked by the guard, at most
        ``max_redirects`` of them; ``finish(result, response)`` reads the last answer."""
        redirects: list[str] = []
        while True:
            _host, _port, address = self.check_url(url)
            response = send(url, address)
            try:
                if response.status_code in redirect_statuses and "location" in response.headers:
                    if len(redirects) >= self.policy.max_redirects:
                        raise FetchError(f"more than {self.policy.max_redirects} redirects")
                    redirects.append(url)
                    url = urljoin(url, response.headers["location"])
                    continue
                return finish(FetchResult(url=url, status=response.status_code,
                                          headers={k.lower(): v for k, v in response.headers.items()},
                                          body=b"", redirects=redirects), response)
            finally:
                response.close()

    def _request(self, url, address, headers, deadline: _Deadline, *, method: str = "GET",
                 data: bytes | None = None) -> requests.Response:
        session = requests.Session()
        session.trust_env = False  # no proxies from the environment: they would undo the pinning
        adapter = _PinnedAdapter(address, deadline)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        remaining = max(deadline.remaining(), 0.01)
        try:
            return session.request(
                method,
                url,
                data=data,
                headers={"User-Agent": self.policy.user_agent, "Accept": "text/html, application/xhtml+xml;q=0.9",
                         "Accept-Encoding": "gzip, deflate", **headers},
                allow_redirects=False,
                stream=True,
                timeout=(min(self.policy.connect_timeout, remaining), min(self.policy.read_timeout, remaining)),
            )
        finally:
            session.close()

    def _read_body(self, response: requests.Response, deadline: _Deadline) -> tuple[bytes, bool]:
        limit = self.policy.max_bytes
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            inflater = zlib.decompressobj()
        elif encoding in ("", "identity"):
            inflater = None
        else:
            raise FetchError(f"unsupported content encoding {encoding}")
        body = bytearray()
        for chunk in response.raw.stream(16384, decode_content=False):
            if deadline.expired:
                raise FetchError(f"the page took longer than {self.policy.deadline:g} s", transient=True)
            if inflater is not None:
                # max_length bounds what one compressed chunk may expand to: no decompression bombs.
                try:
                    chunk = inflater.decompress(chunk, limit - len(body) + 1)
                except zlib.error:
                    raise FetchError(f"the page's {encoding} body is corrupt") from None
            body += chunk
            if len(body) > limit:
                return bytes(body[:limit]), True
        if deadline.expired:  # the deadline shut the socket: that reads as the end of the body
            raise FetchError(f"the page took longer than {self.policy.deadline:g} s", transient=True)
        return bytes(body), False


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"
