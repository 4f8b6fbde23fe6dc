"""A network fence for tests of code that fetches strangers' URLs.

``Net().install(monkeypatch)`` patches the socket layer: every connection attempt is recorded;
one to a non-loopback address is refused before anything is sent (or routed to a test site on
127.0.0.1, for tests that pretend a public address); every name lookup is answered from
``net.names`` (``localhost`` by default) and numeric hosts, never by a real resolver.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
from collections import Counter

__all__ = ["Net"]


class Net:
    """Records, refuses or routes every outgoing connection; answers every DNS question."""

    def __init__(self):
        self.attempts: list[tuple[str, int]] = []  # every connection attempt, loopback included
        self.allow_loopback = True
        self.routes: dict[tuple[str, int], tuple[str, int]] = {}  # pretend address -> 127.0.0.1:port
        self.names: dict[str, object] = {}  # name -> [addresses] or fn(nth lookup) -> [addresses]
        self.lookups: Counter[str] = Counter()
        self._local = threading.local()

    def strict(self) -> Net:
        """Refuse loopback too: for tests that must not connect anywhere at all."""
        self.allow_loopback = False
        return self

    def non_loopback(self) -> list[tuple[str, int]]:
        """The attempts that were not to loopback (refused, or routed to a test site)."""
        return [a for a in self.attempts if not _is_loopback(a[0])]

    def route(self, address: tuple[str, int], site) -> None:
        """Connections to ``address`` go to ``site`` (on 127.0.0.1) instead."""
        self.routes[address] = ("127.0.0.1", site.port)

    def target(self, address) -> tuple:
        """Where a connection to ``address`` may really go; raises if nowhere."""
        host, port = address[0], address[1]
        if getattr(self._local, "quiet", False):
            return address
        self.attempts.append((host, port))
        if (host, port) in self.routes:
            return self.routes[(host, port)]
        if self.allow_loopback and _is_loopback(host):
            return address
        raise OSError(f"blocked by test: connection to {host}:{port}")

    # the patched socket functions

    def install(self, monkeypatch) -> None:
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_create_connection = socket.create_connection
        real_getaddrinfo = socket.getaddrinfo
        net = self

        def connect(sock, address):
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                return real_connect(sock, address)
            return real_connect(sock, net.target(address))

        def connect_ex(sock, address):
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                return real_connect_ex(sock, address)
            return real_connect_ex(sock, net.target(address))

        def create_connection(address, *args, **kwargs):
            target = net.target(address)
            net._local.quiet = True  # its own sock.connect is the same attempt
            try:
                return real_create_connection(target, *args, **kwargs)
            finally:
                net._local.quiet = False

        def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
            name = host.decode() if isinstance(host, bytes) else host
            if name is not None:
                net.lookups[name] += 1
            answer = net.names.get(name)
            if name == "localhost" and answer is None:
                answer = ["127.0.0.1", "::1"]
            if callable(answer):
                answer = answer(net.lookups[name])
            if answer is not None:
                return [_addrinfo(ip, port, type) for ip in answer]
            try:  # numeric hosts only: never a DNS query
                return real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
            except socket.gaierror:
                raise socket.gaierror(socket.EAI_NONAME, f"{name}: unknown to the test resolver") from None

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        monkeypatch.setattr(socket, "create_connection", create_connection)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _addrinfo(ip: str, port, type_: int):
    port = int(port or 0)
    if ":" in ip:
        return (socket.AF_INET6, type_ or socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
    return (socket.AF_INET, type_ or socket.SOCK_STREAM, 6, "", (ip, port))
