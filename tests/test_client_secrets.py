"""The token and webhook secrets never show: every method, error, repr, preview and log line is searched.

Runs everything the client can do with conftest's SENTINEL_TOKEN and SENTINEL_SECRET, collects
every text a person could see (repr, str, _repr_html_, exception attributes and tracebacks,
previews, warnings, log records at DEBUG from every logger, stdout/stderr) and asserts that
neither sentinel, nor a recognisable piece of one, appears anywhere.
"""

from __future__ import annotations

import json
import logging
import socket
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from linq_nb._server import ServerThread
from linq_nb.client import API_PATH, LinqClient, connect
from linq_nb.errors import (
    AuthenticationError,
    ConfigurationError,
    DuplicateSubscriptionError,
    LinqConnectionError,
    LinqError,
    LinqTimeoutError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from linq_nb.sandbox import Sandbox
from tests.conftest import SENTINEL_SECRET, SENTINEL_TOKEN

HOOK = "http://127.0.0.1:9/hook"
FORBIDDEN = (SENTINEL_TOKEN, SENTINEL_SECRET, "5d1e7a", "9c2f4b", "never_show_me")


class Haystack:
    """Everything a person could see, as text."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.errors: list[LinqError] = []

    def add(self, *objects: object) -> None:
        for obj in objects:
            self.parts += [repr(obj), str(obj)]
            html = getattr(obj, "_repr_html_", None)
            if callable(html):
                self.parts.append(html())
            if not isinstance(obj, (str, int, float, type(None))) and hasattr(obj, "__dict__"):
                self.parts.append(repr(vars(obj)))

    def error(self, call: Callable[[], Any], cls: type[LinqError]) -> LinqError:
        with pytest.raises(cls) as info:
            call()
        err = info.value
        self.errors.append(err)
        self.add(err, err.args, err.errors, err.hint)
        self.parts.append("".join(traceback.format_exception(type(err), err, err.__traceback__)))
        return err

    def text(self) -> str:
        return "\n".join(self.parts)


@pytest.fixture
def echo_server() -> Iterator[str]:
    """A misbehaving server that echoes the request's headers and body back in its error answer."""

    @Request.application
    def app(request: Request) -> Response:
        echoed = {"message": f"you sent {dict(request.headers)!r} and {request.get_data(as_text=True)}"}
        return Response(json.dumps(echoed), 400, mimetype="application/json")

    server = ServerThread(app).start()
    yield server.url
    server.stop()


def test_sentinels_appear_nowhere(client: LinqClient, sandbox: Sandbox, echo_server: str,
                                  caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, urllib3's, requests'
    hay = Haystack()
    client.recovery_delays = (0.0, 0.1)
    hay.add(client, client._session.auth, client._session, client._session.headers)

    # Every method, with the secret wherever one can be given.
    sub = client.create_subscription(HOOK, ["message.sent"], secret=SENTINEL_SECRET)
    hay.add(sub, client.get_subscription(sub.id), client.list_subscriptions(),
            client.update_subscription(sub.id, secret=SENTINEL_SECRET, active=False),
            client.update_subscription(sub.id, events=["message.sent", "message.read"]),
            client.find_duplicates(HOOK, ["message.sent"]),
            client.request("GET", API_PATH),
            client.sandbox_route("POST", "events", {"event_type": "message.sent"}),
            client.sandbox_route("GET", "deliveries"))
    for preview in (client.preview_create(HOOK, ["message.sent"], secret=SENTINEL_SECRET),
                    client.preview_update(sub.id, secret=SENTINEL_SECRET), client.preview_delete(sub.id)):
        hay.add(preview, preview.curl, preview.json, preview.body, preview.headers)

    # Every error class, each carrying the secret in its request where it can.
    hay.error(lambda: client.create_subscription(HOOK, ["message.sent"], secret=SENTINEL_SECRET),
              DuplicateSubscriptionError)
    hay.error(lambda: client.create_subscription(HOOK, ["nope"], secret=SENTINEL_SECRET), ValidationError)
    hay.error(lambda: client.create_subscription(HOOK, ["message.sent"], secret=[SENTINEL_SECRET]),  # type: ignore[arg-type]
              ValidationError)
    hay.error(lambda: client.update_subscription(sub.id, events="x", secret=SENTINEL_SECRET),
              ValidationError)
    hay.error(lambda: client.create_subscription("http://example.com/h", ["message.read"], secret=SENTINEL_SECRET),
              ValidationError)  # the server's 422
    hay.error(lambda: client.get_subscription(987654), NotFoundError)
    sandbox.fail_next(1, None)
    sandbox.fail_next(1, 503)  # the POST fails before storing; recovery finds nothing
    hay.error(lambda: client.create_subscription(HOOK + "/5xx", ["message.sent"], secret=SENTINEL_SECRET),
              ServerError)
    sandbox.fail_next(1, None)
    sandbox.fail_next(1, 500, after=True)  # stored, answer lost: recovered
    hay.add(client.create_subscription(HOOK + "/lost", ["message.sent"], secret=SENTINEL_SECRET))
    slow = LinqClient(token=SENTINEL_TOKEN, base_url=sandbox.url, timeout=0.2, max_retries=0)
    slow.recovery_delays = ()
    sandbox.fail_next(1, None)
    sandbox.fail_next(1, status=None, delay=0.5)
    hay.error(lambda: slow.create_subscription(HOOK + "/slow", ["message.sent"], secret=SENTINEL_SECRET),
              LinqTimeoutError)
    sandbox.set_rate_limit(1, 60)
    client.list_subscriptions()
    hay.error(client.list_subscriptions, RateLimitError)
    hay.error(lambda: client.create_subscription(HOOK + "/rl", ["message.sent"], secret=SENTINEL_SECRET),
              RateLimitError)
    sandbox.set_rate_limit(None)
    client.delete_subscription(sub.id)

    with Sandbox(tokens=["someone-else"]) as other:
        stranger = LinqClient(token=SENTINEL_TOKEN, base_url=other.url)
        hay.error(stranger.list_subscriptions, AuthenticationError)
        hay.error(lambda: stranger.create_subscription(HOOK, ["message.sent"], secret=SENTINEL_SECRET),
                  AuthenticationError)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    down = LinqClient(token=SENTINEL_TOKEN, base_url=dead, max_retries=1, backoff_factor=0)
    hay.error(down.list_subscriptions, LinqConnectionError)
    hay.error(lambda: down.create_subscription(HOOK, ["message.sent"], secret=SENTINEL_SECRET), LinqConnectionError)

    echo = LinqClient(token=SENTINEL_TOKEN, base_url=echo_server, max_retries=0)
    hay.error(lambda: echo.request("POST", API_PATH, json={"webhook_subscription": {"secret": SENTINEL_SECRET}}),
              ValidationError)

    live = LinqClient(token=SENTINEL_TOKEN)
    hay.add(live)
    hay.error(lambda: live.sandbox_route("GET", "deliveries"), ConfigurationError)
    hay.add(live.preview_create("https://example.com/h", ["message.sent"], secret=SENTINEL_SECRET))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stops at the warning; without it conftest's network guard refuses
        with pytest.raises(UserWarning) as warned:
            live.create_subscription("http://example.com/h", ["message.sent"], secret=SENTINEL_SECRET)
    hay.add(warned.value)
    hay.error(lambda: LinqClient(token=SENTINEL_TOKEN + " pasted twice"), ConfigurationError)
    hay.error(lambda: LinqClient(token=SENTINEL_TOKEN + "\x07"), ConfigurationError)
    closed = LinqClient(token=SENTINEL_TOKEN, base_url=sandbox.url)
    closed.close()
    hay.error(closed.list_subscriptions, ConfigurationError)

    monkeypatch.setenv("LINQ_INTEGRATION_TOKEN", SENTINEL_TOKEN)
    monkeypatch.setenv("LINQ_API_BASE_URL", sandbox.url)
    hay.add(connect())

    out = capsys.readouterr()
    hay.parts += [caplog.text, out.out, out.err]
    hay.parts += [str(r.args) for r in caplog.records]
    text = hay.text()

    # The search only means something if it searched real output.
    assert {type(e) for e in hay.errors} >= {ValidationError, DuplicateSubscriptionError, NotFoundError,
                                              AuthenticationError, RateLimitError, ServerError,
                                              LinqConnectionError, LinqTimeoutError, ConfigurationError}
    assert "<X-LINQ-INTEGRATION-TOKEN>" in text and "<webhook-secret>" in text
    assert "GET /api/partner/v2/webhook_subscriptions" in caplog.text  # DEBUG records were captured
    assert "you sent" in text  # the echoing server's answer was read, with both sentinels masked
    for forbidden in FORBIDDEN:
        assert forbidden not in text, f"{forbidden!r} leaked"
