"""``/xmlrpc``: the Pingback 1.0 server, dispatched by the standard library, parsed by defusedxml."""
from __future__ import annotations

import inspect
import io
import xmlrpc.client
from xml.parsers.expat import ExpatError
from xmlrpc.server import SimpleXMLRPCDispatcher

import defusedxml.xmlrpc
from defusedxml import DefusedXmlException
from flask import Flask, Response, current_app, render_template, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wsgi import get_input_stream

from ..extensions import csrf, db
from ..linkback.errors import ALREADY_REGISTERED, INVALID_PARAMS, UPSTREAM_ERROR, LinkbackError
from ..outages import database_unreachable
from ..linkback.receive import Mention
from ..linkback.urls import url_problem
from . import BodyTooLarge, bp, read_capped_body

# xmlrpc.client.loads (used by the dispatcher) now refuses entity declarations and external
# entities, and bounds gzip decoding: billion laughs and XXE end as parse errors.
defusedxml.xmlrpc.monkey_patch()

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603


def pingback_ping(sourceURI, targetURI):
    """Tell this site that sourceURI links to targetURI, a post here. Returns a confirmation string."""
    if not isinstance(sourceURI, str) or not isinstance(targetURI, str):
        raise xmlrpc.client.Fault(INVALID_PARAMS, "pingback.ping takes two strings: sourceURI, targetURI")
    receiver = current_app.extensions["linkback_receiver"]
    mention = Mention(protocol="pingback", source=sourceURI.strip(), target=targetURI.strip(),
                      client_ip=request.remote_addr or "", user_agent=request.user_agent.string or "")
    try:
        outcome = receiver.receive(mention)
    except LinkbackError as error:
        raise _fault(error) from None
    if outcome.verified:
        return f"Pingback from {mention.source} to {mention.target} registered."
    return f"Pingback from {mention.source} to {mention.target} received; verification continues and it appears once verified."


def pingback_get_pingbacks(url):
    """The URLs of the pages that pinged the post at url (approved pingbacks)."""
    if not isinstance(url, str):
        raise xmlrpc.client.Fault(INVALID_PARAMS, "pingback.extensions.getPingbacks takes one string: url")
    if problem := url_problem(url, "url"):
        raise xmlrpc.client.Fault(INVALID_PARAMS, problem)
    try:
        return current_app.extensions["linkback_receiver"].store.pingbacks_of(url.strip())
    except LinkbackError as error:
        raise _fault(error) from None


def _fault(error: LinkbackError, config=None) -> xmlrpc.client.Fault:
    # A malformed parameter is the caller's mistake, not a finding about its source: never masked.
    config = current_app.config if config is None else config
    if config["PINGBACK_MASK_FAULTS"] and error.code not in (ALREADY_REGISTERED, INVALID_PARAMS):
        # WordPress since 3.5.1: nothing but 48 reaches the wire, so codes tell a prober nothing.
        return xmlrpc.client.Fault(0, "")
    return xmlrpc.client.Fault(error.code, error.message)


def _method_name_only(method: str, name) -> None:
    if not isinstance(name, str):
        raise xmlrpc.client.Fault(INVALID_PARAMS, f"{method} takes one string: a method name")


class PingbackDispatcher(SimpleXMLRPCDispatcher):
    """The stdlib dispatcher, with XML-RPC's own fault codes for malformed calls.

    No ``system.multicall``: one request is one ping.
    """

    def __init__(self):
        super().__init__(allow_none=False, encoding="utf-8", use_builtin_types=False)
        self.register_function(pingback_ping, "pingback.ping")
        self.register_function(pingback_get_pingbacks, "pingback.extensions.getPingbacks")
        self.register_introspection_functions()

    def system_methodHelp(self, method_name):
        _method_name_only("system.methodHelp", method_name)
        return super().system_methodHelp(method_name)

    def system_methodSignature(self, method_name):
        _method_name_only("system.methodSignature", method_name)
        signatures = {
            "pingback.ping": [["string", "string", "string"]],
            "pingback.extensions.getPingbacks": [["array", "string"]],
            "system.listMethods": [["array"]],
            "system.methodHelp": [["string", "string"]],
            "system.methodSignature": [["array", "string"]],
        }
        return signatures.get(method_name, "signatures not supported")

    def answer(self, data: bytes) -> bytes:
        try:
            params, method = xmlrpc.client.loads(data, use_builtin_types=False)
        # LookupError: an encoding Python does not know (x-bogus) or that is not text (rot13, base64,
        # zlib); ValueError covers the ones expat cannot use (utf-7) and UnicodeError.
        except (ExpatError, DefusedXmlException, LookupError, ValueError, TypeError, IndexError,
                xmlrpc.client.ResponseError) as exc:
            return self._dump(xmlrpc.client.Fault(PARSE_ERROR, f"parse error: not a well-formed XML-RPC call ({type(exc).__name__})"))
        if method is None:
            return self._dump(xmlrpc.client.Fault(INVALID_REQUEST, "not an XML-RPC method call"))
        func = self.funcs.get(method)
        if func is None:
            return self._dump(xmlrpc.client.Fault(METHOD_NOT_FOUND, f"method {method!r} is not supported"))
        try:
            inspect.signature(func).bind(*params)
        except TypeError:
            return self._dump(xmlrpc.client.Fault(INVALID_PARAMS, f"wrong number of parameters for {method}"))
        try:
            result = func(*params)
        except xmlrpc.client.Fault as fault:
            return self._dump(fault)
        except SQLAlchemyError as error:
            db.session.rollback()
            if not database_unreachable(error):
                current_app.logger.exception("XML-RPC method %s failed", method)
                return self._dump(xmlrpc.client.Fault(INTERNAL_ERROR, "internal error"))
            current_app.extensions["database_outage"].down(error, "pingbacks are refused with fault 50 until it answers")
            return self._dump(_fault(LinkbackError(UPSTREAM_ERROR, "The blog cannot store pingbacks just now; try again later.")))
        except Exception:
            current_app.logger.exception("XML-RPC method %s failed", method)
            return self._dump(xmlrpc.client.Fault(INTERNAL_ERROR, "internal error"))
        return xmlrpc.client.dumps((result,), methodresponse=True, encoding="utf-8", allow_none=False).encode("utf-8")

    @staticmethod
    def _dump(fault: xmlrpc.client.Fault) -> bytes:
        return xmlrpc.client.dumps(fault, methodresponse=True, encoding="utf-8").encode("utf-8")


dispatcher = PingbackDispatcher()


# Decorators apply bottom-up: "/xmlrpc" is registered first, so url_for (the X-Pingback header,
# <link rel="pingback">) builds it; "/xmlrpc.php" stays for senders that assume WordPress.
@bp.route("/xmlrpc.php", methods=["GET", "POST"])
@bp.route("/xmlrpc", methods=["GET", "POST"])
@csrf.exempt
def xmlrpc_endpoint():
    if request.method == "GET":
        return render_template("xmlrpc.html"), 200
    if request.headers.get("Content-Encoding", "identity").lower() not in ("identity", ""):
        body = dispatcher._dump(xmlrpc.client.Fault(INVALID_REQUEST, "compressed requests are not accepted"))
    else:
        try:
            body = dispatcher.answer(read_capped_body())
        except BodyTooLarge as exc:
            body = dispatcher._dump(xmlrpc.client.Fault(INVALID_REQUEST, f"request larger than {exc.limit} bytes"))
    return Response(body, content_type="text/xml; charset=utf-8")


class EarlyRefusals:
    """WSGI middleware in front of the app: a ``pingback.ping`` that would be refused before any
    lookup (``Receiver.refused_at_once``: the queue it would wait in is full) is answered here,
    with the fault the view would give, for the cost of parsing its body. A flood's senders
    repeat themselves; each repeat skips the framework (a third of a refusal's cost). Anything
    else, or anything unusual, goes on to the view, body untouched."""

    PATHS = ("/xmlrpc", "/xmlrpc.php")

    def __init__(self, app: Flask, wsgi_app):
        self.app, self.wsgi_app = app, wsgi_app

    def __call__(self, environ, start_response):
        if (environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in self.PATHS
                or environ.get("HTTP_CONTENT_ENCODING", "identity").lower() not in ("identity", "")):
            return self.wsgi_app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if not 0 < length <= int(self.app.config["LINKBACK_BODY_LIMIT"]):
            return self.wsgi_app(environ, start_response)  # the view says what is wrong with it
        body = get_input_stream(environ).read(length)
        # The view reads the body as it came, should it get the request.
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        fault = self._refusal(body, environ.get("REMOTE_ADDR") or "")
        if fault is None:
            return self.wsgi_app(environ, start_response)
        answer = PingbackDispatcher._dump(fault)
        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(answer)))])
        return [answer]

    def _refusal(self, body: bytes, client_ip: str) -> xmlrpc.client.Fault | None:
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=False)
        except Exception:  # whatever it is, the view answers it in full
            return None
        if method != "pingback.ping" or len(params) != 2 or not all(isinstance(p, str) for p in params):
            return None
        mention = Mention(protocol="pingback", source=params[0].strip(), target=params[1].strip(),
                          client_ip=client_ip, user_agent="")
        error = self.app.extensions["linkback_receiver"].refused_at_once(mention)
        return _fault(error, self.app.config) if error is not None else None
