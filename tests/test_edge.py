"""The outermost WSGI layer: Strict-Transport-Security on every response, whichever layer answers,
and requests for hosts that are not SITE_URL's logged once per host and named on the dashboard."""
from __future__ import annotations

import logging
import xmlrpc.client

import pytest
from flask import request_started

from blogapp.edge import foreign_hosts
from blogapp.linkback.errors import LinkbackError
from helpers import make_post

HTTPS_WITH_HSTS = {"SITE_URL": "https://blog.test", "HSTS_SECONDS": 600}


def flask_requests(app) -> list:
    """The requests Flask itself handled (a layer before it that answers is not counted)."""
    seen = []
    request_started.connect(lambda sender, **extra: seen.append(1), app, weak=False)
    return seen


@pytest.mark.parametrize("config_overrides", [HTTPS_WITH_HSTS])
def test_hsts_is_on_every_response_whichever_layer_answers(app, client, ctx, monkeypatch):
    handled = flask_requests(app)
    hsts = "max-age=600"
    # Flask's own answers, a 404 included.
    assert client.get("/admin/login", base_url="https://blog.test").headers["Strict-Transport-Security"] == hsts
    assert client.get("/no/such/page/", base_url="https://blog.test").headers["Strict-Transport-Security"] == hsts

    # The page cache's fast path, before Flask (for a reader with no cookie of ours).
    make_post(title="Cached")
    reader = app.test_client()
    assert reader.get("/", base_url="https://blog.test").headers["X-Cache"] == "miss"
    before = len(handled)
    hit = reader.get("/", base_url="https://blog.test")
    assert hit.headers["X-Cache"] == "hit" and len(handled) == before  # Flask never saw it
    assert hit.headers.get_all("Strict-Transport-Security") == [hsts]

    # The XML-RPC front door's refusal of a flood's repeat sender, before Flask too.
    receiver = app.extensions["linkback_receiver"]
    monkeypatch.setattr(receiver, "refused_at_once", lambda mention: LinkbackError(49, "Too many pings, wait."))
    body = xmlrpc.client.dumps(("http://127.0.0.1/a", "https://blog.test/x/"), "pingback.ping").encode()
    before = len(handled)
    refused = client.post("/xmlrpc", data=body, content_type="text/xml", base_url="https://blog.test")
    assert len(handled) == before and b"<name>faultCode</name>" in refused.data
    assert refused.headers["Strict-Transport-Security"] == hsts


@pytest.mark.parametrize("config_overrides", [{"SITE_URL": "http://blog.test", "HSTS_SECONDS": 600},
                                              {"SITE_URL": "https://blog.test", "HSTS_SECONDS": 0}])
def test_no_hsts_over_http_or_when_off(client, config_overrides):
    assert "Strict-Transport-Security" not in client.get("/admin/login", base_url="http://blog.test").headers


# The test client logs in at localhost (its cookie's host): an alias here, so the dashboard is seen.
@pytest.mark.parametrize("config_overrides", [{"SITE_ALIASES": ["https://old.blog.test", "http://localhost"],
                                               "SITE_WWW_EQUIVALENT": True}])
def test_a_host_not_ours_is_logged_once_and_shown_on_the_dashboard(app, admin_client, caplog):
    caplog.set_level(logging.WARNING, logger="blogapp.edge")
    # Ours: SITE_URL's host (any case, a default port, http or https), an alias, the www. twin.
    for base in ("http://blog.test", "https://BLOG.test:443", "http://old.blog.test", "http://www.blog.test"):
        admin_client.get("/admin/", base_url=base)
    assert caplog.records == [] and foreign_hosts(app) == []

    for _ in range(3):
        admin_client.get("/", base_url="http://203.0.113.7:8000")
    [record] = caplog.records
    assert "203.0.113.7:8000" in record.getMessage() and "blog.test" in record.getMessage()

    page = admin_client.get("/admin/").get_data(as_text=True)
    assert "Requests arrived for 203.0.113.7:8000" in page and "SITE_URL's host is blog.test" in page


@pytest.mark.parametrize("config_overrides", [{"SITE_URL": "http://localhost"}])
def test_a_dashboard_without_strangers_warns_of_nothing(admin_client):
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert "<h1>Dashboard</h1>" in page
    assert "Requests arrived for" not in page
