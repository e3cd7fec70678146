"""Client rules that mutation testing (``make mutate``) found unpinned: duplicates, redaction, retries, recovery.

Over real HTTP, against the sandbox or a small misbehaving server on a free port.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from werkzeug.wrappers import Request, Response

from linq_nb._server import ServerThread
from linq_nb.client import API_PATH, LinqClient
from linq_nb.errors import DuplicateSubscriptionError, ValidationError
from tests.conftest import SENTINEL_SECRET, SENTINEL_TOKEN

HOOK = "https://example.com/hook"


# --------------------------------------------------------------------------- the duplicate guard


def test_the_duplicate_guard_ignores_the_case_of_the_host(client: LinqClient) -> None:
    first = client.create_subscription(HOOK, ["message.sent"])
    for same in ("https://EXAMPLE.com/hook", "HTTPS://Example.COM/hook"):
        with pytest.raises(DuplicateSubscriptionError) as info:
            client.create_subscription(same, ["message.sent", "message.read"])
        assert info.value.existing_ids == [first.id] and info.value.overlapping_events == ["message.sent"]
        assert client.find_duplicates(same, ["message.sent"]) == [(first, ("message.sent",))]


def test_the_duplicate_guard_keeps_the_case_of_the_path_and_the_query(client: LinqClient) -> None:
    client.create_subscription(HOOK + "?team=a", ["message.sent"])
    assert client.find_duplicates("https://example.com/HOOK?team=a", ["message.sent"]) == []
    assert client.find_duplicates("https://example.com/hook?team=A", ["message.sent"]) == []
    assert client.find_duplicates("https://example.com/hook?team=b", ["message.sent"]) == []
    assert len(client.find_duplicates("https://example.com/hook?team=a#frag", ["message.sent"])) == 1


# --------------------------------------------------------------------------- redaction


@pytest.fixture
def echo_url() -> Iterator[str]:
    """A server that repeats the token and body it was sent in its 422 answer (as a careless API might)."""

    @Request.application
    def app(request: Request) -> Response:
        token = request.headers.get("X-LINQ-INTEGRATION-TOKEN", "")
        detail = f"token {token} is not allowed to send {request.get_data(as_text=True)}"
        return Response(json.dumps({"errors": [{"status": 422, "detail": detail}]}), 422,
                        mimetype="application/json")

    server = ServerThread(app).start()
    yield server.url
    server.stop()


def test_an_error_that_repeats_the_token_or_secret_shows_placeholders_instead(echo_url: str) -> None:
    with LinqClient(token=SENTINEL_TOKEN, base_url=echo_url, max_retries=0) as c, \
            pytest.raises(ValidationError) as info:
        c.request("POST", API_PATH, json={"webhook_subscription": {"secret": SENTINEL_SECRET}})
    text = " ".join([info.value.message, *info.value.errors])
    assert "token <X-LINQ-INTEGRATION-TOKEN> is not allowed" in text
    assert '"secret": "<webhook-secret>"' in text
    assert SENTINEL_TOKEN not in text and SENTINEL_SECRET not in text


def test_an_error_that_repeats_the_token_of_a_get_shows_the_placeholder(echo_url: str) -> None:
    with LinqClient(token=SENTINEL_TOKEN, base_url=echo_url, max_retries=0) as c, \
            pytest.raises(ValidationError) as info:
        c.list_subscriptions()
    text = " ".join([info.value.message, *info.value.errors])
    assert "token <X-LINQ-INTEGRATION-TOKEN> is not allowed" in text and SENTINEL_TOKEN not in text
