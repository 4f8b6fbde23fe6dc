"""Why a linkback was refused, with the Pingback 1.0 fault codes."""
from __future__ import annotations

GENERIC = 0
SOURCE_NOT_FOUND = 0x0010  # 16: the source does not exist or cannot be fetched
NO_LINK = 0x0011  # 17: the source does not link to the target
TARGET_NOT_FOUND = 0x0020  # 32: the target definitely does not exist
TARGET_INVALID = 0x0021  # 33: the target exists but cannot receive pings
ALREADY_REGISTERED = 0x0030  # 48
ACCESS_DENIED = 0x0031  # 49: rate limited, blocked, or too busy
UPSTREAM_ERROR = 0x0032  # 50: we could not store it
# XML-RPC's "invalid method parameters": a source or target URI with a NUL or over 2,000
# characters (``urls.url_problem``). Trackback and Webmention answer it with their own errors.
INVALID_PARAMS = -32602


class LinkbackError(Exception):
    """A refusal: ``code`` is the pingback fault code, ``message`` says why, for people."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"LinkbackError({self.code}, {self.message!r})"


class SourceGone(LinkbackError):
    """The source is gone (404, 410, a page saying 410) or no longer links to the target: unlike
    other refusals, it takes a Webmention stored from that source away with it."""


class TryLater(Exception):
    """The source failed for a moment (a timeout, a lost connection, a 5xx or 429 answer) and
    another attempt will follow: the verification is not over."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message, self.status = message, status
