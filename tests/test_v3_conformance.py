"""Every v3 answer the sandbox gives, on every route, success and error, against Linq's OpenAPI 3.1 spec.

The schema of each answer is the spec's for that path, method and status (``$ref``s resolved within the
spec by ``jsonschema``, JSON Schema 2020-12, formats checked); an error status the spec does not list
for a route (409, 405, 413, 429, and 400/404 where it omits them) is held to its ``ErrorResponse``, the
one error shape. Where the February 2026 spec is older than linq-python 0.65.0, the SDK wins and the
overlay says so: the event-name enum is the SDK's 75, and ``doc_url`` the SDK's literal.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest
import requests
import yaml
from linq.types.webhook_event_list_response import WebhookEventListResponse
from linq.types.webhook_event_type import WebhookEventType

from linq_nb.sandbox import Sandbox
from linq_nb.wire import v3
from tests.conftest import SENTINEL_TOKEN

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "specs" / "linq-api-v3.openapi.yaml"
if not SPEC_PATH.exists():  # a clone outside the workplace: beside the repository
    SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "specs" / "linq-api-v3.openapi.yaml"
pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason=f"no OpenAPI spec at {SPEC_PATH}")


def _spec() -> dict[str, Any]:
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    # Overlay: the SDK is newer than the spec (shared/docs/linq-v3-api.md).
    schemas["WebhookEventType"]["enum"] = list(get_args(WebhookEventType))
    schemas["WebhookEventsResult"]["properties"]["doc_url"]["const"] = get_args(
        WebhookEventListResponse.model_fields["doc_url"].annotation)[0]
    return spec  # type: ignore[no-any-return]


SPEC = _spec() if SPEC_PATH.exists() else {}
CHECKED: set[tuple[str, str, int]] = set()


def _schema_for(template: str, method: str, status: int) -> dict[str, Any] | None:
    """The response schema of ``method template`` for ``status``, or ErrorResponse for an unlisted error."""
    operation = SPEC["paths"][template].get(method.lower())
    entry = None if operation is None else operation["responses"].get(str(status))  # no such method: a 405
    if entry is None:
        assert status >= 400, f"{method} {template} answered {status}, which the spec does not list"
        return {"$ref": "#/components/schemas/ErrorResponse"}
    if "$ref" in entry:
        entry = SPEC["components"]["responses"][entry["$ref"].rsplit("/", 1)[1]]
    content = entry.get("content")
    return None if content is None else content["application/json"]["schema"]  # type: ignore[no-any-return]


def check(resp: requests.Response, template: str, status: int) -> Any:
    """Assert the status, then validate the body against the spec; returns the parsed body."""
    method = resp.request.method or "GET"
    assert resp.status_code == status, (method, template, resp.status_code, resp.text[:300])
    schema = _schema_for(template, method, status)
    if schema is None:
        assert resp.content == b"", f"{method} {template} {status} has a body the spec does not describe"
        CHECKED.add((template, method, status))
        return None
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    root = {**schema, "components": SPEC["components"]}
    jsonschema.Draft202012Validator(root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
                                    ).validate(body)
    if status >= 400:
        assert body["error"]["status"] == status and body["success"] is False and body["trace_id"]
    CHECKED.add((template, method, status))
    return body


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(tokens=[SENTINEL_TOKEN], retry_delays="none") as sandbox:
        yield sandbox


def test_the_validator_is_not_a_rubber_stamp() -> None:
    """A planted bad answer fails: the checks below can fail."""
    root = {"$ref": "#/components/schemas/WebhookSubscriptionResponse", "components": SPEC["components"]}
    validator = jsonschema.Draft202012Validator(root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    good = {"id": "b2c3d4e5-f6a7-8901-bcde-f23456789012", "target_url": "https://example.com/h",
            "subscribed_events": ["message.sent"], "is_active": True, "created_at": "2026-01-15T10:30:00Z",
            "updated_at": "2026-01-15T10:30:00Z"}
    validator.validate(good)
    for broken in ({**good, "is_active": "yes"}, {**good, "subscribed_events": ["not.an.event"]},
                   {**good, "created_at": "yesterday"}, {**good, "target_url": "not a url"},
                   {k: v for k, v in good.items() if k != "target_url"}):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)
    error_root = {"$ref": "#/components/schemas/ErrorResponse", "components": SPEC["components"]}
    with pytest.raises(jsonschema.ValidationError):  # a code that is no Linq error code
        jsonschema.Draft202012Validator(error_root).validate(
            {"error": {"status": 400, "code": 9999, "message": "x"}, "success": False})


def test_every_route_success_and_error_against_the_spec(sb: Sandbox) -> None:
    base = sb.url + "/api/partner"
    auth = v3.auth_headers(SENTINEL_TOKEN)
    bad_auth = v3.auth_headers("tok_wrong")
    coll, member, events = "/v3/webhook-subscriptions", "/v3/webhook-subscriptions/{subscriptionId}", \
        "/v3/webhook-events"
    s = requests.Session()

    def url(template: str, sub_id: str = "") -> str:
        return base + template.replace("{subscriptionId}", sub_id)

    body = {"target_url": "https://example.com/linq", "subscribed_events": ["message.sent", "poll.vote.added"],
            "phone_numbers": ["+12025551234"], "routing_key_header": "X-Route-Key"}
    created = check(s.post(url(coll), json=body, headers=auth), coll, 201)
    sid = created["id"]
    check(s.get(url(coll), headers=auth), coll, 200)
    check(s.get(url(member, sid), headers=auth), member, 200)
    check(s.put(url(member, sid), json={"is_active": False, "phone_numbers": None}, headers=auth), member, 200)
    check(s.get(url(events), headers=auth), events, 200)

    # 401 on every route: no header, a wrong token, v2's header
    for template, method in ((coll, "GET"), (coll, "POST"), (member, "GET"), (member, "PUT"), (member, "DELETE"),
                             (events, "GET")):
        for headers in ({}, bad_auth, {"X-LINQ-INTEGRATION-TOKEN": SENTINEL_TOKEN}):
            check(s.request(method, url(template, sid), json=body, headers=headers), template, 401)

    # 400: validation, not JSON, not an object, an unknown field; nothing is stored
    for bad in ({"target_url": "http://example.com/x", "subscribed_events": ["message.sent"]},
                {"subscribed_events": ["message.sent"]}, {"target_url": "https://example.com/y",
                                                          "subscribed_events": []}, ["a list"],
                {"target_url": "https://example.com/z", "subscribed_events": ["message.sent"],
                 "phone_numbers": ["12025551234"]}):
        check(s.post(url(coll), json=bad, headers=auth), coll, 400)
    check(s.post(url(coll), data=b"{not json", headers={**auth, "Content-Type": "application/json"}), coll, 400)
    check(s.put(url(member, sid), json={"is_active": "no"}, headers=auth), member, 400)
    check(s.put(url(member, sid), json={"webhook_url": "https://example.com/v2-name"}, headers=auth), member, 400)
    assert len(s.get(url(coll), headers=auth).json()["subscriptions"]) == 1

    # 404: an unknown UUID, something that is no UUID, and an unknown path under /v3
    for sub_id in (str(uuid.uuid4()), "42"):
        check(s.get(url(member, sub_id), headers=auth), member, 404)
        check(s.put(url(member, sub_id), json={"is_active": True}, headers=auth), member, 404)
        check(s.delete(url(member, sub_id), headers=auth), member, 404)
    check(s.get(base + "/v3/webhook-subscriptions/x/y", headers=auth), member, 404)

    # 409: the target_url is this subscription's already; 405: a method the route lacks
    check(s.post(url(coll), json=body, headers=auth), coll, 409)
    check(s.patch(url(member, sid), json={}, headers=auth), member, 405)
    check(s.delete(url(coll), headers=auth), coll, 405)

    # 413: a body over the sandbox's limit
    huge = {"target_url": "https://example.com/" + "a" * 1_100_000, "subscribed_events": ["message.sent"]}
    check(s.post(url(coll), json=huge, headers=auth), coll, 413)

    # 429, 500 and 503 as the sandbox's faults make them
    for status in (429, 500, 503):
        requests.post(sb.url + "/_sandbox/faults", json={"fail_next": 1, "status": status}, headers=auth, timeout=5)
        check(s.get(url(coll), headers=auth), coll, status)

    check(s.delete(url(member, sid), headers=auth), member, 204)
    check(s.get(url(member, sid), headers=auth), member, 404)

    wanted = {(coll, "GET", 200), (coll, "POST", 201), (member, "GET", 200), (member, "PUT", 200),
              (member, "DELETE", 204), (events, "GET", 200)}
    assert wanted <= CHECKED
    for template, method, _ in wanted:  # each route had an error checked too
        assert any(t == template and m == method and st >= 400 for t, m, st in CHECKED), (template, method)


def test_a_server_fault_is_in_v3_shape_too(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug of ours (a 500 with a request id) answers in v3's shape on a v3 route."""
    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("planted")

    monkeypatch.setattr(sb.app.store, "subscriptions", boom)
    resp = requests.get(sb.url + "/api/partner/v3/webhook-subscriptions", headers=v3.auth_headers(SENTINEL_TOKEN),
                        timeout=5)
    body = check(resp, "/v3/webhook-subscriptions", 500)
    assert body["error"]["code"] == 3006 and body["trace_id"] == resp.headers["X-Request-ID"]
    assert copy.deepcopy(body)["request_id"] == resp.headers["X-Request-ID"]
