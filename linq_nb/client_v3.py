"""``LinqClientV3``: the Linq Partner API v3 webhook-subscription client, on the v2 client's machinery.

>>> from linq_nb import connect
>>> client = connect(api="v3")            # or LINQ_API_VERSION=v3; live if LINQ_INTEGRATION_TOKEN is set
>>> sub = client.create_subscription("https://example.com/hook", ["message.received"])
>>> sub.signing_secret                    # shown once, by create only: store it now (masked in every repr)
>>> client.update_subscription(sub, is_active=False).is_active
False
>>> print(client.preview_delete(sub).curl)   # Authorization: Bearer <token>
>>> client.delete_subscription(sub)

Everything that is not v3's own comes from :class:`linq_nb.client._ApiClient`, the same code as
v2's client: one ``requests.Session``, the one choke point :meth:`request` (auth, timeout, error
mapping, a token that never shows), urllib3 ``Retry`` for GET/PUT/DELETE honouring
``Retry-After``, a create that is never resent (after a lost answer the subscription is looked
for, not created twice), previews as curl, sandbox routes. What is v3's comes from
:mod:`linq_nb.wire.v3`: the paths, the ``Authorization: Bearer`` header, UUID ids, flat bodies and
their validation, the event catalogue. The differences a user meets:

- ``create_subscription(target_url, subscribed_events, phone_numbers=..., routing_key_header=...)``
  returns the subscription with its ``signing_secret``; no other call ever shows it.
- ``update_subscription`` sends only the fields given (v3's PUT takes any of them); no GET first.
- The duplicate guard is v3's rule: a ``target_url`` may be used once per account. A create with a
  URL already in use is refused before sending, naming the subscription that has it (and a 409
  from the server becomes the same :class:`DuplicateSubscriptionError`).
- No delivery counters: v3's object has no ``delivery_attempts`` or ``last_delivered_at``.
- :meth:`event_types` lists v3's event names (``GET /v3/webhook-events``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any, ClassVar

from .client import (
    _UNSET,
    RequestPreview,
    _ApiClient,
    _events_list,
    _keyword_hints,
    _normalize_webhook_url,
    _validation_error,
)
from .errors import DuplicateSubscriptionError, LinqConnectionError, LinqError, ServerError, ValidationError
from .models import WebhookSubscriptionV3
from .wire import v3 as wire_v3

__all__ = ["LinqClientV3", "SubscriptionRefV3"]

#: What the methods accept as a v3 subscription id: the UUID string or the WebhookSubscriptionV3 itself.
SubscriptionRefV3 = str | WebhookSubscriptionV3

#: Fields of a create or update that take the value None to mean "leave out" (create) / "clear" (update).
_OPTIONAL = ("phone_numbers", "routing_key_header", "routing_id_header")


def _subscription_id(value: object) -> str:
    """A v3 id (canonical UUID) from a string or a :class:`WebhookSubscriptionV3`; else ValidationError."""
    if isinstance(value, WebhookSubscriptionV3):
        return value.id
    if isinstance(value, str):
        parsed = wire_v3.parse_id(value.strip())
        if parsed is not None:
            return str(parsed)
    v2 = isinstance(value, int) and not isinstance(value, bool)
    raise ValidationError(
        f"subscription id must be a UUID string, got {value!r}"[:200]
        + (" (an integer is a v2 id; v3's are UUIDs)" if v2 else ""),
        hint="Use the id shown by list_subscriptions(), such as b2c3d4e5-f6a7-8901-bcde-f23456789012.",
    )


class LinqClientV3(_ApiClient):
    """Client for Linq Partner API v3 webhook subscriptions (live API or a sandbox).

    Takes the same arguments as :class:`linq_nb.client.LinqClient` (``token``, ``base_url``,
    ``timeout``, ``max_retries``, ``backoff_factor``, ``max_retry_after``) and the same token:
    v3 only sends it as ``Authorization: Bearer <token>``. ``base_url`` is the host
    (``https://api.linqapp.com``); the SDK's form ending in ``/api/partner`` is accepted too.

    >>> with LinqClientV3(token="...", base_url="http://127.0.0.1:8765") as client:
    ...     client.api, client.mode, len(client.list_subscriptions())
    ('v3', 'sandbox', 0)
    """

    wire: ClassVar[ModuleType] = wire_v3
    token_placeholder: ClassVar[str] = "<token>"
    _url_field: ClassVar[str] = "target_url"
    #: v3 makes the signing secret itself, creates active subscriptions only, and never allows a second one
    #: with the same target_url: a create takes none of those (see :attr:`_ApiClient.FORM_FIELDS`).
    FORM_FIELDS: ClassVar[Mapping[str, Mapping[str, str]]] = {
        "create": {},
        "update": {"url": "target_url", "events": "subscribed_events", "active": "is_active"},
    }

    # ------------------------------------------------------------------ subscriptions

    def list_subscriptions(self) -> list[WebhookSubscriptionV3]:
        """Every v3 webhook subscription of this token (v3 does not paginate).

        >>> [s.target_url for s in client.list_subscriptions()]
        ['https://example.com/hook']
        """
        path = wire_v3.COLLECTION_PATH
        data = self.request("GET", path)
        items = data.get("subscriptions") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self._shape_error("GET", path, "subscriptions")
        return [self._parse(item, "GET", path) for item in items]

    def get_subscription(self, id: SubscriptionRefV3) -> WebhookSubscriptionV3:
        """One subscription by its UUID (a :class:`NotFoundError` if this token has no such id)."""
        path = wire_v3.member_path(_subscription_id(id))
        return self._one("GET", path, self.request("GET", path))

    @_keyword_hints
    def create_subscription(self, target_url: str, subscribed_events: Iterable[str], *,
                            phone_numbers: Iterable[str] | None = None, routing_key_header: str | None = None,
                            routing_id_header: str | None = None) -> WebhookSubscriptionV3:
        """Create a subscription and return it, with its ``signing_secret`` (shown this once only).

        Refuses (:class:`DuplicateSubscriptionError`) when a subscription already has this
        ``target_url``: v3 allows each once per account; add events to that one instead. The
        request is never resent. If its answer is lost and the subscription it made shows up,
        the error says so and carries it (``.subscription``): its ``signing_secret`` was in the
        lost answer and no call can show it again, so delete it and create it anew.

        >>> sub = client.create_subscription("https://example.com/hook", ["message.received"],
        ...                                  phone_numbers=["+14155551234"])
        >>> sub.signing_secret.startswith("whsec_")
        True

        Raises:
            ValidationError: a bad value (before anything is sent) or a 400/422 from the API.
            DuplicateSubscriptionError: see above.
        """
        fields = self._fields("create_subscription", target_url=target_url, subscribed_events=subscribed_events,
                              phone_numbers=phone_numbers, routing_key_header=routing_key_header,
                              routing_id_header=routing_id_header, create=True)
        with self._create_lock:
            before = self.list_subscriptions()
            self._refuse_duplicates(before, fields["target_url"], fields["subscribed_events"])
            ids = {s.id for s in before}
            want = _normalize_webhook_url(fields["target_url"])
            try:
                return self._post_once(
                    wire_v3.COLLECTION_PATH, wire_v3.request_body(fields),
                    lambda started: self._find_created(
                        ids, started, lambda s: _normalize_webhook_url(s.target_url) == want,
                        order=lambda s: (s.created_at is None, s.created_at, s.id)))
            except ValidationError as exc:
                raise self._conflict(exc, fields["target_url"]) from None

    @_keyword_hints
    def update_subscription(self, id: SubscriptionRefV3, *, target_url: str = _UNSET,
                            subscribed_events: Iterable[str] = _UNSET, is_active: bool = _UNSET,
                            phone_numbers: Iterable[str] | None = _UNSET, routing_key_header: str | None = _UNSET,
                            routing_id_header: str | None = _UNSET) -> WebhookSubscriptionV3:
        """Change the fields given; the others keep their values (v3's PUT takes any of them).

        ``phone_numbers=None`` (or ``[]``) clears the filter: every number's events again. A
        routing header ``None`` clears it. The signing secret cannot be changed.

        >>> client.update_subscription(sub, is_active=False).is_active
        False
        """
        path, body = self._update_request(id, target_url=target_url, subscribed_events=subscribed_events,
                                          is_active=is_active, phone_numbers=phone_numbers,
                                          routing_key_header=routing_key_header, routing_id_header=routing_id_header)
        try:
            return self._one("PUT", path, self.request("PUT", path, json=body))
        except ValidationError as exc:
            raise self._conflict(exc, body.get("target_url")) from None

    def delete_subscription(self, id: SubscriptionRefV3) -> None:
        """Delete a subscription (:class:`NotFoundError` if this token has no such id)."""
        # A 404 answering a retry means the first attempt deleted it and only its answer was lost.
        self.request("DELETE", wire_v3.member_path(_subscription_id(id)), ok_if_retried=(404,))

    @_keyword_hints
    def find_duplicates(self, target_url: str, subscribed_events: Iterable[str] = ()) -> list[
            tuple[WebhookSubscriptionV3, tuple[str, ...]]]:
        """The subscription that already has ``target_url`` (v3: at most one), with the events it shares.

        Returns ``[(subscription, overlapping_events), ...]``; empty when creating would be allowed.
        """
        return self._duplicates_in(self.list_subscriptions(), target_url, subscribed_events)

    def event_types(self) -> list[str]:
        """The event names v3 knows (``GET /v3/webhook-events``), in the API's order.

        >>> "message.received" in client.event_types()
        True
        """
        path = str(wire_v3.EVENTS_PATH)
        data = self.request("GET", path)
        events = data.get("events") if isinstance(data, dict) else None
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise self._shape_error("GET", path, "events")
        return list(events)

    # ------------------------------------------------------------------ previews

    @_keyword_hints
    def preview_create(self, target_url: str, subscribed_events: Iterable[str], *,
                       phone_numbers: Iterable[str] | None = None, routing_key_header: str | None = None,
                       routing_id_header: str | None = None) -> RequestPreview:
        """The create request as it would be sent (validated; nothing is sent).

        >>> print(client.preview_create("https://example.com/hook", ["message.received"]).curl)
        """
        fields = self._fields("create_subscription", target_url=target_url, subscribed_events=subscribed_events,
                              phone_numbers=phone_numbers, routing_key_header=routing_key_header,
                              routing_id_header=routing_id_header, create=True, warn=False)
        return self._preview("POST", wire_v3.COLLECTION_PATH, wire_v3.request_body(fields))

    @_keyword_hints
    def preview_update(self, id: SubscriptionRefV3, *, target_url: str = _UNSET,
                       subscribed_events: Iterable[str] = _UNSET, is_active: bool = _UNSET,
                       phone_numbers: Iterable[str] | None = _UNSET, routing_key_header: str | None = _UNSET,
                       routing_id_header: str | None = _UNSET) -> RequestPreview:
        """The update request as it would be sent: only the fields given (nothing is sent)."""
        path, body = self._update_request(id, target_url=target_url, subscribed_events=subscribed_events,
                                          is_active=is_active, phone_numbers=phone_numbers,
                                          routing_key_header=routing_key_header, routing_id_header=routing_id_header,
                                          warn=False)
        return self._preview("PUT", path, body)

    def preview_delete(self, id: SubscriptionRefV3) -> RequestPreview:
        """The delete request as it would be sent (nothing is sent)."""
        return self._preview("DELETE", wire_v3.member_path(_subscription_id(id)), None)

    # ------------------------------------------------------------------ internals

    def _fields(self, action: str, *, create: bool, warn: bool = True, **given: Any) -> dict[str, Any]:
        """The body's fields (``_UNSET`` left out; on create, None optional fields left out), validated."""
        fields: dict[str, Any] = {}
        problems: list[str] = []
        for name, value in given.items():
            if value is _UNSET or (create and value is None and name in _OPTIONAL):
                continue
            if name == "subscribed_events":
                if isinstance(value, str):  # a classic slip: "message.received" for ["message.received"]
                    problems.append(f"subscribed_events must be a list of event names such as [{value!r}], "
                                    "not a single string"[:200])
                    value = [value]
                value = _events_list(value, wire_v3.EVENT_TYPES)
            elif name == "phone_numbers" and isinstance(value, (tuple, set, frozenset)):
                value = list(value)
            fields[name] = value
        check = wire_v3.create_problems if create else wire_v3.update_problems
        problems = problems + check(fields, https_only_unless_loopback=True)
        if not create and not fields:
            problems.append("nothing to change: give at least one of target_url, subscribed_events, is_active, "
                            "phone_numbers, routing_key_header, routing_id_header")
        if problems:
            raise _validation_error(action, problems)
        if warn and "target_url" in fields:
            self._warn_about_url(str(fields["target_url"]))
        return fields

    def _update_request(self, id: object, *, warn: bool = True, **given: Any) -> tuple[str, dict[str, Any]]:
        fields = self._fields("update_subscription", create=False, warn=warn, **given)
        return wire_v3.member_path(_subscription_id(id)), wire_v3.request_body(fields)

    def _refuse_duplicates(self, existing: list[WebhookSubscriptionV3], target_url: str,
                           events: Iterable[str]) -> None:
        dups = self._duplicates_in(existing, target_url, events)
        if dups:
            raise self._duplicate_error(target_url, dups)

    @staticmethod
    def _duplicate_error(target_url: str, dups: list[tuple[WebhookSubscriptionV3, tuple[str, ...]]]
                         ) -> DuplicateSubscriptionError:
        sub, common = dups[0]
        return DuplicateSubscriptionError(
            f"{target_url} is already the target_url of subscription {sub.id}"
            f"{'' if sub.is_active else ' (inactive)'}: v3 allows each target_url once per account",
            existing_ids=[s.id for s, _ in dups], overlapping_events=list(common),
            hint=f"Add the events to that subscription instead: client.update_subscription({sub.id!r}, "
                 "subscribed_events=[...]) (or delete it first).",
        )

    @staticmethod
    def _duplicates_in(subs: Iterable[WebhookSubscriptionV3], target_url: str,
                       events: Iterable[str]) -> list[tuple[WebhookSubscriptionV3, tuple[str, ...]]]:
        target = _normalize_webhook_url(str(target_url))
        wanted = set(events)
        return [(s, tuple(e for e in s.subscribed_events if e in wanted)) for s in subs
                if _normalize_webhook_url(s.target_url) == target]

    def _conflict(self, exc: ValidationError, target_url: object) -> LinqError:
        """A 409 (the target_url is taken) as the DuplicateSubscriptionError naming the holder; else ``exc``."""
        if exc.status != 409 or not isinstance(target_url, str):
            return exc
        try:
            dups = self._duplicates_in(self.list_subscriptions(), target_url, ())
        except LinqError:
            dups = []
        if not dups:
            return exc
        error = self._duplicate_error(target_url, dups)
        error.status, error.error_code, error.method, error.path, error.trace_id = (
            exc.status, exc.error_code, exc.method, exc.path, exc.trace_id)
        return error

    def _created(self, data: Any, path: str) -> WebhookSubscriptionV3:
        sub = self._one("POST", path, data)
        if sub.signing_secret is None:
            raise self._shape_error("POST", path, "signing_secret")
        return sub

    def _recovered(self, found: Any, exc: LinqError) -> Any:
        """A lost create's subscription exists, but its signing_secret was in the lost answer: say so."""
        cls = LinqConnectionError if isinstance(exc, LinqConnectionError) else ServerError
        error: LinqError = cls(
            f"the create went through (subscription {found.id}) but its answer, the only one that shows the "
            "signing_secret, was lost; the request was not resent",
            method=exc.method, path=exc.path, status=exc.status,
            hint=f"Delete it (client.delete_subscription({found.id!r})) and create it again to get a secret.",
        )
        error.subscription = dataclasses.replace(found, signing_secret=None)  # type: ignore[attr-defined]
        raise error from None

    def _parse(self, obj: Any, method: str, path: str) -> WebhookSubscriptionV3:
        try:
            return WebhookSubscriptionV3.from_api(obj)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self._shape_error(method, path, "subscription object") from None

    def _one(self, method: str, path: str, data: Any) -> WebhookSubscriptionV3:
        if not isinstance(data, Mapping) or "id" not in data:
            raise self._shape_error(method, path, "subscription object")
        return self._parse(data, method, path)
