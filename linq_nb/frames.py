"""pandas views of subscriptions, deliveries and their health over time. No HTTP of its own.

- :func:`subscriptions_frame`: one row per subscription, from ``WebhookSubscription`` objects
  or the API's raw JSON dicts (the fast path: a 100,000-row list response in well under a second).
  v3 subscriptions (``WebhookSubscriptionV3`` or v3's JSON) give v3's columns
  (:data:`V3_SUBSCRIPTION_COLUMNS`): an ``api_version`` column and **no counter columns**, because
  v3's object has no ``delivery_attempts`` or ``last_delivered_at``. Delivery health for v3 comes
  from attempt logs instead: :func:`deliveries_frame` of the sandbox's, or ``Receiver.frame()``.
- :func:`style_subscriptions`: the same frame as a pandas ``Styler`` with inactive and
  never-delivered rows marked, for a notebook table.
- :func:`deliveries_frame`: the sandbox's per-attempt delivery log.
- :class:`Monitor`: snapshots of ``client.list_subscriptions()`` taken in the background.
- :func:`health`: per subscription, from those snapshots, "healthy", "failing",
  "never delivered", "idle" or "inactive", with the numbers behind the verdict.
- :func:`plot_attempts`, :func:`plot_since_last_delivery`: the same as pictures (matplotlib,
  imported only when a plot is drawn).

Dtypes are the same on pandas 2 and 3: timestamps are ``datetime64[ns, UTC]``
(:data:`DATETIME_DTYPE`; pandas 3 would otherwise infer a unit per input, usually
microseconds), integers are the nullable ``Int64``, and text columns use pandas'
default string dtype (``str`` on pandas 3, ``object`` on pandas 2).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from .models import SubscriptionList, WebhookSubscription, WebhookSubscriptionV3, parse_datetime

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from pandas.io.formats.style import Styler

__all__ = [
    "DATETIME_DTYPE",
    "SUBSCRIPTION_COLUMNS",
    "V3_SUBSCRIPTION_COLUMNS",
    "DELIVERY_COLUMNS",
    "HEALTH_COLUMNS",
    "HEALTH_STATUSES",
    "subscriptions_frame",
    "subscription_marks",
    "style_subscriptions",
    "deliveries_frame",
    "snapshots_frame",
    "health",
    "Monitor",
    "plot_attempts",
    "plot_since_last_delivery",
]

#: The dtype of every timestamp column, whatever pandas would infer.
DATETIME_DTYPE = "datetime64[ns, UTC]"
_TIMEDELTA_DTYPE = "timedelta64[ns]"

#: Columns of :func:`subscriptions_frame`, in order.
SUBSCRIPTION_COLUMNS: tuple[str, ...] = (
    "id",
    "webhook_url",
    "version",
    "events",
    "active",
    "secret_configured",
    "delivery_attempts",
    "last_delivered_at",
    "created_at",
    "updated_at",
)
_INT_COLUMNS = ("id", "version", "delivery_attempts")
_BOOL_COLUMNS = ("active", "secret_configured")
_TIME_COLUMNS = ("last_delivered_at", "created_at", "updated_at")
# What a missing key means, the same as WebhookSubscription.from_api (a missing id becomes <NA>).
_DEFAULTS: dict[str, Any] = {
    "id": None,
    "webhook_url": "",
    "version": 2,
    "events": (),
    "active": True,
    "secret_configured": False,
    "delivery_attempts": 0,
    "last_delivered_at": None,
    "created_at": None,
    "updated_at": None,
}

#: Columns of :func:`subscriptions_frame` for v3 subscriptions, in order: v3's field names, the API version,
#: and no delivery counters (v3's subscription object has none).
V3_SUBSCRIPTION_COLUMNS: tuple[str, ...] = (
    "id",
    "api_version",
    "target_url",
    "subscribed_events",
    "is_active",
    "phone_numbers",
    "routing_key_header",
    "routing_id_header",
    "created_at",
    "updated_at",
)

#: Columns of :func:`deliveries_frame`, in order (the keys of the sandbox's delivery log).
DELIVERY_COLUMNS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "subscription_id",
    "attempt",
    "status_code",
    "error",
    "ok",
    "started_at",
    "duration_ms",
)

#: The verdicts :func:`health` gives.
HEALTH_STATUSES: tuple[str, ...] = ("healthy", "failing", "never delivered", "idle", "inactive")

#: Columns of :func:`health`, in order.
HEALTH_COLUMNS: tuple[str, ...] = (
    "id",
    "webhook_url",
    "status",
    "reason",
    "active",
    "attempts_first",
    "attempts_last",
    "new_attempts",
    "attempts_since_delivery",
    "last_delivered_at",
    "since_last_delivery",
    "first_seen",
    "last_seen",
    "snapshots",
)

SubscriptionLike = WebhookSubscription | Mapping[str, Any]
Snapshot = tuple[datetime, list[WebhookSubscription]]


# --------------------------------------------------------------------------- column builders


def _int_array(values: list[Any]) -> pd.arrays.IntegerArray:
    """A nullable Int64 array; fast when every value is an int, None/NaN become <NA>."""
    try:
        data = np.array(values, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        return pd.array(values, dtype="Int64")
    return pd.arrays.IntegerArray(data, np.zeros(len(data), dtype=bool))


def _id_array(values: list[Any]) -> Any:
    """Subscription ids: ``Int64`` when they are v2's integers, text when any is v3's UUID."""
    if any(isinstance(v, str) for v in values):
        return _str_series([None if v is None else str(v) for v in values])
    return _int_array(values)


def _str_series(values: list[Any]) -> pd.Series:
    """pandas' default string dtype (``str`` on pandas 3, ``object`` on pandas 2); None stays missing."""
    return pd.Series(values, dtype=str)


def _object_series(values: list[Any]) -> pd.Series:
    return pd.Series(values, dtype=object)


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else list(value)


def _datetime_index(values: list[Any], column: str) -> pd.DatetimeIndex:
    """UTC ``datetime64[ns]`` from ISO 8601 strings, datetimes or None (-> NaT).

    ``format="ISO8601"`` is pandas' fast path and takes every ISO form (``Z`` or an offset,
    any number of fraction digits, ``T`` or a space); anything else goes through
    ``format="mixed"`` (dateutil, slower) before giving up with the column's name. No cache:
    API timestamps are nearly all distinct, and pandas' cache costs more than it saves then.
    """
    try:
        idx = pd.to_datetime(values, utc=True, format="ISO8601", cache=False)
    except (TypeError, ValueError):
        try:
            idx = pd.to_datetime(values, utc=True, format="mixed")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column {column!r} holds a value that is not a date-time: {exc}") from exc
    return idx.as_unit("ns")


# --------------------------------------------------------------------------- subscriptions


def _unwrap_subscriptions(subs: Any) -> list[Any]:
    """The list of subscription items in whatever the caller passed."""
    if isinstance(subs, SubscriptionList):  # list_subscriptions()'s result: its JSON, no objects built
        return list(subs.records)
    if isinstance(subs, (WebhookSubscription, WebhookSubscriptionV3)):
        return [subs]
    if isinstance(subs, Mapping):
        if "webhook_subscriptions" in subs:  # the list endpoint's whole body
            return list(subs["webhook_subscriptions"])
        if "subscriptions" in subs:  # v3's list body
            return list(subs["subscriptions"])
        if "webhook_subscription" in subs:  # a create/get/update body
            return [subs["webhook_subscription"]]
        if "id" in subs:  # one raw subscription object
            return [subs]
        raise TypeError(
            "subscriptions_frame() needs subscriptions: WebhookSubscription objects or the API's JSON objects, "
            f"not a mapping with keys {sorted(map(str, subs))[:5]}"
        )
    if isinstance(subs, (str, bytes)):
        raise TypeError("subscriptions_frame() needs subscriptions, not a string; parse the JSON first")
    return list(subs)


def _as_row(item: Any) -> Mapping[str, Any]:
    if isinstance(item, WebhookSubscription):
        return item.__dict__  # same names as the API's keys
    if isinstance(item, Mapping):
        return item
    raise TypeError(
        f"subscriptions_frame() got a {type(item).__name__}; expected WebhookSubscription objects "
        "or the API's JSON objects (dicts)"
    )


def _subscription_columns(items: list[Any]) -> dict[str, list[Any]]:
    """Column-wise lists. Fast path: plain dicts with every key; otherwise normalise row by row."""
    try:
        return {name: [row[name] for row in items] for name in SUBSCRIPTION_COLUMNS}
    except (KeyError, TypeError, IndexError):
        pass
    rows = [_as_row(item) for item in items]
    return {name: [row.get(name, default) for row in rows] for name, default in _DEFAULTS.items()}


def _is_v3(item: Any) -> bool:
    return isinstance(item, WebhookSubscriptionV3) or (isinstance(item, Mapping) and "target_url" in item)


def _v3_subscriptions_frame(items: list[Any]) -> pd.DataFrame:
    """v3's columns (:data:`V3_SUBSCRIPTION_COLUMNS`), from WebhookSubscriptionV3 objects or v3's JSON objects."""
    rows: list[Mapping[str, Any]] = []
    for item in items:
        if isinstance(item, WebhookSubscriptionV3):
            rows.append(item.__dict__)
        elif isinstance(item, Mapping) and "webhook_url" not in item:
            rows.append(item)
        else:
            raise TypeError("subscriptions_frame() got v2 and v3 subscriptions together; make one frame per "
                            "version (their columns differ: v3 has no delivery counters)")
    return pd.DataFrame({
        "id": _str_series([r.get("id") for r in rows]),
        "api_version": _str_series(["v3"] * len(rows)),
        "target_url": _str_series([r.get("target_url", "") for r in rows]),
        "subscribed_events": _object_series([_as_list(r.get("subscribed_events")) for r in rows]),
        "is_active": np.array([bool(r.get("is_active", True)) for r in rows], dtype=bool),
        "phone_numbers": _object_series([_as_list(r["phone_numbers"]) if r.get("phone_numbers") else None
                                         for r in rows]),
        "routing_key_header": _str_series([r.get("routing_key_header") for r in rows]),
        "routing_id_header": _str_series([r.get("routing_id_header") for r in rows]),
        "created_at": _datetime_index([r.get("created_at") for r in rows], "created_at"),
        "updated_at": _datetime_index([r.get("updated_at") for r in rows], "updated_at"),
    }, columns=list(V3_SUBSCRIPTION_COLUMNS))


def subscriptions_frame(subs: Iterable[SubscriptionLike] | Mapping[str, Any], *,
                        api: str | None = None) -> pd.DataFrame:
    """One row per subscription, with fixed columns and dtypes.

    v3 subscriptions (``WebhookSubscriptionV3`` objects, v3's JSON objects or its list body
    ``{"subscriptions": [...]}``), or ``api="v3"`` for an empty list, give v3's own columns,
    :data:`V3_SUBSCRIPTION_COLUMNS`: ``id`` (str, a UUID), ``api_version`` ("v3"), ``target_url``,
    ``subscribed_events`` and ``phone_numbers`` (lists; None when unfiltered), ``is_active``,
    the routing headers, ``created_at``/``updated_at``, and **no counter columns**: v3 has no
    ``delivery_attempts`` or ``last_delivered_at``. What follows is v2's frame.

    ``subs`` may hold ``WebhookSubscription`` objects, the API's raw JSON objects, or both;
    the list endpoint's whole body (``{"webhook_subscriptions": [...]}``) is accepted too.
    Raw dicts are the fast path (column-wise, one vectorised parse per timestamp column).

    ============================  ==========================================================
    column                        dtype
    ============================  ==========================================================
    ``id``                        ``Int64``
    ``webhook_url``               pandas' string dtype (``str``; ``object`` on pandas 2)
    ``version``                   ``Int64``
    ``events``                    ``object``, each cell a ``list`` of event names
    ``active``                    ``bool``
    ``secret_configured``         ``bool``
    ``delivery_attempts``         ``Int64``
    ``last_delivered_at``         ``datetime64[ns, UTC]``, NaT until a delivery succeeds
    ``created_at``, ``updated_at``  ``datetime64[ns, UTC]``
    ============================  ==========================================================

    A raw dict's ``events`` list goes into the frame as it is, not copied (as with
    ``DataFrame.from_records``; copying 100,000 small lists would double the time): copy a
    cell before changing it in place. A model's events tuple becomes a new list.

    An empty input gives an empty frame with the same columns and dtypes. Missing keys in a
    dict take the same defaults as ``WebhookSubscription.from_api``; a timestamp that is not
    ISO 8601 is parsed leniently, and one that is not a date at all raises ``ValueError``.
    """
    items = _unwrap_subscriptions(subs)
    if api == "v3" or (items and api is None and _is_v3(items[0])):
        return _v3_subscriptions_frame(items)
    cols = _subscription_columns(items)
    data: dict[str, Any] = {}
    for name in SUBSCRIPTION_COLUMNS:
        values = cols[name]
        if name in _INT_COLUMNS:
            data[name] = _int_array(values)
        elif name in _BOOL_COLUMNS:
            data[name] = np.array(values, dtype=bool)
        elif name in _TIME_COLUMNS:
            data[name] = _datetime_index(values, name)
        elif name == "events":
            data[name] = _object_series([v if type(v) is list else _as_list(v) for v in values])
        else:
            data[name] = _str_series(values)
    return pd.DataFrame(data)


def subscription_marks(df: pd.DataFrame) -> pd.Series:
    """Per row of a :func:`subscriptions_frame`: ``"inactive"``, ``"never delivered"`` or ``""``.

    An inactive subscription is marked inactive whether or not it ever delivered. A v3 frame has no
    counters, so nothing in it is marked "never delivered" (its attempt logs tell).
    """
    inactive = ~df["active" if "active" in df.columns else "is_active"].astype(bool).to_numpy()
    never = (df["last_delivered_at"].isna().to_numpy() if "last_delivered_at" in df.columns
             else np.zeros(len(df), dtype=bool))
    marks = np.where(inactive, "inactive", np.where(never, "never delivered", ""))
    return pd.Series(marks, index=df.index, name="mark", dtype=str)


_MARK_CSS = {
    "inactive": "color: #7f8c8d; background-color: rgba(127, 140, 141, 0.15)",
    "never delivered": "background-color: rgba(241, 196, 15, 0.22)",
}


def style_subscriptions(df: pd.DataFrame) -> Styler:
    """A :func:`subscriptions_frame` as a ``Styler``: inactive rows greyed, never-delivered rows yellow.

    Events are shown comma-separated and missing timestamps as "never"/"—". The colours are
    translucent so that they read in light and dark notebook themes. Needs Jinja2, as every
    pandas ``Styler`` does; :func:`subscription_marks` gives the same marks without it.
    """
    row_css = np.array([_MARK_CSS.get(mark, "") for mark in subscription_marks(df)], dtype=object)

    def frame_css(data: pd.DataFrame) -> pd.DataFrame:
        cells = np.repeat(row_css[:, None], data.shape[1], axis=1)
        return pd.DataFrame(cells, index=data.index, columns=data.columns)

    styler = df.style.apply(frame_css, axis=None)
    formats: dict[str, Any] = {}
    for name in ("events", "subscribed_events", "phone_numbers"):
        if name in df.columns:
            formats[name] = lambda v: ", ".join(v) if isinstance(v, (list, tuple)) else "—" if v is None else str(v)
    if "last_delivered_at" in df.columns:
        formats["last_delivered_at"] = lambda v: "never" if pd.isna(v) else str(v)
    styler = styler.format(formats, na_rep="—")
    return styler.set_caption("grey: inactive (receives nothing) · yellow: never delivered")


# --------------------------------------------------------------------------- deliveries


def deliveries_frame(records: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> pd.DataFrame:
    """The sandbox's delivery log (one record per HTTP attempt) as a frame.

    ``records`` is ``Sandbox.deliveries()``, or the body of ``GET /_sandbox/deliveries``
    (``{"deliveries": [...]}``). Columns, in order: ``event_id``, ``event_type`` (str),
    ``subscription_id`` (``Int64`` for v2's ids; text when v3's UUIDs are among them),
    ``attempt``, ``status_code`` (``Int64``, <NA> when the attempt got no
    answer), ``error`` (str, missing when none), ``ok`` (bool), ``started_at``
    (``datetime64[ns, UTC]``), ``duration_ms`` (float). Empty input gives the same columns.
    Keys other than these are ignored.
    """
    if isinstance(records, Mapping):
        if "deliveries" not in records:
            raise TypeError("deliveries_frame() needs delivery records or a {'deliveries': [...]} body")
        rows: list[Mapping[str, Any]] = list(records["deliveries"])
    else:
        rows = list(records)
    cols = {name: [row.get(name) for row in rows] for name in DELIVERY_COLUMNS}
    return pd.DataFrame(
        {
            "event_id": _str_series(cols["event_id"]),
            "event_type": _str_series(cols["event_type"]),
            "subscription_id": _id_array(cols["subscription_id"]),
            "attempt": _int_array(cols["attempt"]),
            "status_code": _int_array(cols["status_code"]),
            "error": _str_series(cols["error"]),
            "ok": np.array([bool(v) for v in cols["ok"]], dtype=bool),
            "started_at": _datetime_index(cols["started_at"], "started_at"),
            "duration_ms": np.array(cols["duration_ms"], dtype=np.float64),
        }
    )


# --------------------------------------------------------------------------- snapshots and health


class SupportsListSubscriptions(Protocol):
    """Anything with ``list_subscriptions()``: a ``LinqClient``, or a stand-in in a notebook."""

    def list_subscriptions(self) -> Sequence[SubscriptionLike]: ...


def _as_subscription(item: Any) -> WebhookSubscription:
    if isinstance(item, WebhookSubscription):
        return item
    if _is_v3(item):
        raise TypeError("v3 subscriptions have no delivery counters, which snapshots, health() and the plots read; "
                        "for v3, read the attempt logs: deliveries_frame(client.sandbox_route('GET', "
                        "'/_sandbox/deliveries')) or receiver.frame()")
    if isinstance(item, Mapping):
        return WebhookSubscription.from_api(item)
    raise TypeError(f"a snapshot holds a {type(item).__name__}; expected WebhookSubscription objects or dicts")


def _utc(value: Any, what: str) -> datetime:
    dt = parse_datetime(value)
    if dt is None:
        raise ValueError(f"{what} is missing")
    return dt


def _snapshots_of(source: Any) -> list[Snapshot]:
    """Normalise a Monitor or an iterable of (taken_at, subscriptions) pairs, oldest first."""
    raw = source.snapshots if isinstance(source, Monitor) else source
    if isinstance(raw, (str, bytes, Mapping)):
        raise TypeError("expected a Monitor or a list of (taken_at, [subscriptions]) pairs")
    snaps: list[Snapshot] = []
    for pair in raw:
        try:
            taken_at, subs = pair
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"each snapshot must be a (taken_at, [subscriptions]) pair, not {type(pair).__name__}"
            ) from exc
        snaps.append((_utc(taken_at, "a snapshot's taken_at"), [_as_subscription(s) for s in subs]))
    snaps.sort(key=lambda pair: pair[0])
    return snaps


class _Run:
    """One subscription in one unchanged state over consecutive snapshots: ``start``..``end``, ``count`` of them."""

    __slots__ = ("count", "end", "start", "sub")

    def __init__(self, taken_at: datetime, sub: WebhookSubscription) -> None:
        self.start = self.end = taken_at
        self.sub = sub
        self.count = 1


#: Per subscription id, its runs, oldest first.
_History = dict[int, list[_Run]]


def _add_snapshot(history: _History, taken_at: datetime, previous: datetime | None,
                  subs: Iterable[WebhookSubscription]) -> None:
    """Extend ``history`` by one snapshot; ``previous`` is the taken_at of the snapshot before it."""
    for sub in subs:
        runs = history.get(sub.id)
        if runs is None:
            history[sub.id] = [_Run(taken_at, sub)]
            continue
        last = runs[-1]
        if last.end == taken_at:  # the same id twice in one snapshot (or two snapshots at one moment)
            continue
        if last.end == previous and (last.sub is sub or last.sub == sub):
            last.end = taken_at
            last.count += 1
        else:
            runs.append(_Run(taken_at, sub))


def _history_of(source: Any) -> tuple[_History, list[int], datetime | None]:
    """(runs per id, the ids in the latest snapshot sorted, the latest taken_at) of a Monitor or snapshot pairs."""
    if isinstance(source, Monitor):
        return source._history_copy()
    history: _History = {}
    previous: datetime | None = None
    snaps = _snapshots_of(source)
    for taken_at, subs in snaps:
        _add_snapshot(history, taken_at, previous, subs)
        previous = taken_at
    latest = sorted({sub.id for sub in snaps[-1][1]}) if snaps else []
    return history, latest, previous


def snapshots_frame(snapshots: Any) -> pd.DataFrame:
    """Snapshots as one long frame: ``taken_at`` (``datetime64[ns, UTC]``) + :func:`subscriptions_frame` columns.

    ``snapshots``: a :class:`Monitor` or a list of ``(taken_at, [subscriptions])`` pairs.
    """
    snaps = _snapshots_of(snapshots)
    taken: list[datetime] = []
    subs: list[WebhookSubscription] = []
    for taken_at, items in snaps:
        taken.extend([taken_at] * len(items))
        subs.extend(items)
    df = subscriptions_frame(subs)
    df.insert(0, "taken_at", _datetime_index(taken, "taken_at"))
    return df


def _as_timedelta(value: timedelta | float | pd.Timedelta) -> timedelta:
    if isinstance(value, pd.Timedelta):
        return value.to_pytimedelta()
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=float(value))


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def health(
    snapshots: Any,
    now: datetime | None = None,
    idle_after: timedelta | float | pd.Timedelta = timedelta(hours=1),
) -> pd.DataFrame:
    """Per subscription, whether events reach it, judged from snapshots of ``list_subscriptions()``.

    ``snapshots`` is a :class:`Monitor` or a list of ``(taken_at, [WebhookSubscription or dict])``
    pairs, in any order. One row per subscription present in the latest snapshot (deleted ones
    drop out), sorted by id. ``now`` (default: the latest snapshot's ``taken_at``, the newest
    moment the data speaks for) is what ``since_last_delivery`` is measured against;
    ``idle_after`` is a ``timedelta`` or seconds.

    The status, first rule that applies:

    1. ``"inactive"``: ``active`` is False in the latest snapshot (it receives nothing).
    2. ``"never delivered"``: ``last_delivered_at`` is null and ``delivery_attempts`` is 0
       (nothing was sent to it yet).
    3. ``"failing"``: ``last_delivered_at`` is null but attempts were made (every one failed),
       or ``delivery_attempts`` rose after ``last_delivered_at`` last changed in the window
       (attempts keep coming and none succeeds: retries). A delivery seen later in the
       window turns it healthy again.
    4. ``"idle"``: no new attempts in the window and the last delivery is older than
       ``idle_after``.
    5. ``"healthy"``: anything else.

    Columns: ``id``, ``webhook_url``, ``status``, ``reason`` (one sentence), ``active``,
    ``attempts_first``/``attempts_last`` (``delivery_attempts`` in the first and latest snapshot
    holding it), ``new_attempts`` (their difference), ``attempts_since_delivery`` (the rise since
    ``last_delivered_at`` took its latest value), ``last_delivered_at``, ``since_last_delivery``
    (``timedelta64[ns]``, NaT when never delivered, never negative), ``first_seen``/``last_seen``
    and ``snapshots`` (how many snapshots held it). With a single snapshot nothing can have
    "risen", so only rules 1, 2, the null case of 3, 4 and 5 can apply.
    """
    history, latest_ids, latest = _history_of(snapshots)
    idle = _as_timedelta(idle_after)
    rows: list[dict[str, Any]] = []
    if latest is not None:
        reference = _utc(now, "now") if now is not None else latest
        for sub_id in latest_ids:
            rows.append(_health_row(history[sub_id], reference, idle))
    return pd.DataFrame(
        {
            "id": _int_array([r["id"] for r in rows]),
            "webhook_url": _str_series([r["webhook_url"] for r in rows]),
            "status": _str_series([r["status"] for r in rows]),
            "reason": _str_series([r["reason"] for r in rows]),
            "active": np.array([r["active"] for r in rows], dtype=bool),
            "attempts_first": _int_array([r["attempts_first"] for r in rows]),
            "attempts_last": _int_array([r["attempts_last"] for r in rows]),
            "new_attempts": _int_array([r["new_attempts"] for r in rows]),
            "attempts_since_delivery": _int_array([r["attempts_since_delivery"] for r in rows]),
            "last_delivered_at": _datetime_index([r["last_delivered_at"] for r in rows], "last_delivered_at"),
            "since_last_delivery": pd.to_timedelta([r["since_last_delivery"] for r in rows]).astype(_TIMEDELTA_DTYPE),
            "first_seen": _datetime_index([r["first_seen"] for r in rows], "first_seen"),
            "last_seen": _datetime_index([r["last_seen"] for r in rows], "last_seen"),
            "snapshots": _int_array([r["snapshots"] for r in rows]),
        }
    )


def _health_row(runs: list[_Run], now: datetime, idle: timedelta) -> dict[str, Any]:
    first_at, first = runs[0].start, runs[0].sub
    last_at, last = runs[-1].end, runs[-1].sub
    delivered = last.last_delivered_at
    # The first snapshot in which last_delivered_at already had its latest value (the start of a run).
    k = len(runs) - 1
    while k > 0 and runs[k - 1].sub.last_delivered_at == delivered:
        k -= 1
    attempts_since = last.delivery_attempts - runs[k].sub.delivery_attempts
    new_attempts = last.delivery_attempts - first.delivery_attempts
    since = max(now - delivered, timedelta(0)) if delivered is not None else None

    if not last.active:
        status, reason = "inactive", "inactive: it receives nothing until it is activated again"
    elif delivered is None and last.delivery_attempts == 0:
        status, reason = "never delivered", "no delivery has been attempted yet"
    elif delivered is None:
        status = "failing"
        reason = f"{last.delivery_attempts} attempt(s) and not one succeeded: check the receiver at webhook_url"
    elif attempts_since > 0:
        status = "failing"
        reason = (
            f"{attempts_since} attempt(s) since the last successful delivery "
            f"({_ago(since or timedelta(0))} before now) and none succeeded"
        )
    elif new_attempts == 0 and since is not None and since > idle:
        status, reason = "idle", f"no attempts while watched; last delivery {_ago(since)} before now"
    else:
        status = "healthy"
        reason = "deliveries succeed" if new_attempts else "no failed attempts since the last delivery"
    return {
        "id": last.id,
        "webhook_url": last.webhook_url,
        "status": status,
        "reason": reason,
        "active": last.active,
        "attempts_first": first.delivery_attempts,
        "attempts_last": last.delivery_attempts,
        "new_attempts": new_attempts,
        "attempts_since_delivery": attempts_since,
        "last_delivered_at": delivered,
        "since_last_delivery": since,
        "first_seen": first_at,
        "last_seen": last_at,
        "snapshots": sum(run.count for run in runs),
    }


class Monitor:
    """Snapshots of ``client.list_subscriptions()``, taken now (:meth:`take`) or every ``every`` seconds.

    >>> with Monitor(client, every=1.0) as mon:      # starts polling in a daemon thread
    ...     ...                                        # trigger events, break the receiver, ...
    >>> mon.health()                                   # stopped on leaving the block

    ``client`` is anything with ``list_subscriptions()`` returning ``WebhookSubscription``
    objects or dicts. The background thread waits ``every`` seconds between polls and records
    an exception in :attr:`errors` instead of dying; :meth:`take` called directly raises it.
    :meth:`stop` wakes the thread at once and waits for a poll in flight to finish.

    What it keeps, so that memory stays bounded however long it runs: the latest ``keep``
    snapshots (default 3,600: an hour at one a second; older ones are dropped, oldest first),
    in which a subscription that did not change since the previous snapshot is the same object,
    not a copy. An unchanged subscription then costs one list slot per snapshot (about 1 kB per
    snapshot of 100), and a new object is built only for a change. It also keeps, per subscription,
    its runs of unchanged states, updated as each snapshot arrives, so :meth:`health` and the plots
    read the changes instead of every snapshot.
    """

    def __init__(self, client: SupportsListSubscriptions, every: float = 5.0, *, max_errors: int = 100,
                 keep: int = 3600) -> None:
        if not hasattr(client, "list_subscriptions"):
            raise TypeError(f"Monitor needs a client with list_subscriptions(), not a {type(client).__name__}")
        every = float(every)
        if not every > 0:
            raise ValueError(f"every must be a positive number of seconds, not {every!r}")
        if not (isinstance(keep, int) and keep >= 1):
            raise ValueError(f"keep must be a whole number of snapshots, at least 1, not {keep!r}")
        self.client = client
        self.every = every
        self.max_errors = max_errors
        self.keep = keep
        self._lock = threading.Lock()
        self._snapshots: deque[Snapshot] = deque()
        self._history: _History = {}
        # The latest snapshot's subscriptions by id, with the record each was built from (None for objects).
        self._latest: dict[int, tuple[Any, WebhookSubscription]] = {}
        self._errors: list[tuple[datetime, Exception]] = []
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def snapshots(self) -> list[Snapshot]:
        """``(taken_at, [WebhookSubscription])`` pairs, oldest first (a copy; taken_at in UTC)."""
        with self._lock:
            return list(self._snapshots)

    @property
    def errors(self) -> list[tuple[datetime, Exception]]:
        """``(when, exception)`` for the background polls that failed (the latest ``max_errors``)."""
        with self._lock:
            return list(self._errors)

    @property
    def running(self) -> bool:
        """True while the background thread polls."""
        return self._thread is not None and self._thread.is_alive()

    def take(self) -> Snapshot:
        """Call ``list_subscriptions()`` now, record the snapshot and return it. Errors propagate."""
        result = self.client.list_subscriptions()
        items = result.records if isinstance(result, SubscriptionList) else result
        latest = self._latest
        subs: list[WebhookSubscription] = []
        seen: dict[int, tuple[Any, WebhookSubscription]] = {}
        for item in items:
            if isinstance(item, WebhookSubscription):
                before = latest.get(item.id)
                sub = before[1] if before is not None and before[1] == item else item
                record = None
            else:
                record = item
                before = latest.get(item["id"]) if isinstance(item, Mapping) and "id" in item else None
                sub = before[1] if before is not None and before[0] == item else _as_subscription(item)
            seen[sub.id] = (record, sub)
            subs.append(sub)
        snapshot = (datetime.now(timezone.utc), subs)
        with self._lock:
            previous = self._snapshots[-1][0] if self._snapshots else None
            self._snapshots.append(snapshot)
            _add_snapshot(self._history, snapshot[0], previous, subs)
            self._latest = seen
            while len(self._snapshots) > self.keep:
                self._drop_oldest()
        return snapshot

    def _drop_oldest(self) -> None:
        """Forget the oldest snapshot, and trim each of its subscriptions' first run (lock held)."""
        taken_at, subs = self._snapshots.popleft()
        following = self._snapshots[0][0] if self._snapshots else None
        for sub in subs:
            runs = self._history.get(sub.id)
            if not runs or runs[0].start != taken_at:
                continue  # a repeat of an id within the snapshot: already trimmed
            first = runs[0]
            first.count -= 1
            if first.count == 0:
                runs.pop(0)
                if not runs:
                    del self._history[sub.id]
            else:
                first.start = following  # type: ignore[assignment]  # count > 0: a later snapshot exists

    def _history_copy(self) -> tuple[_History, list[int], datetime | None]:
        with self._lock:
            if not self._snapshots:
                return {}, [], None
            history = {sub_id: [_copy_run(run) for run in runs] for sub_id, runs in self._history.items()}
            taken_at, subs = self._snapshots[-1]
        return history, sorted({sub.id for sub in subs}), taken_at

    def start(self) -> Monitor:
        """Start polling in a daemon thread (the first poll at once); no-op if already running."""
        if self.running:
            return self
        self._stop_event = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stop_event,), name="linq-nb-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling: wake the thread and wait (up to ``timeout`` s) for a poll in flight to end."""
        self._stop_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def clear(self) -> None:
        """Forget every snapshot and error."""
        with self._lock:
            self._snapshots.clear()
            self._history.clear()
            self._latest = {}
            self._errors.clear()

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.take()
            except Exception as exc:  # recorded, never raised in the thread
                with self._lock:
                    self._errors.append((datetime.now(timezone.utc), exc))
                    del self._errors[: max(0, len(self._errors) - self.max_errors)]
            if stop.wait(self.every):
                break

    def frame(self) -> pd.DataFrame:
        """Every snapshot as one long frame (see :func:`snapshots_frame`)."""
        return snapshots_frame(self)

    def health(
        self, now: datetime | None = None, idle_after: timedelta | float | pd.Timedelta = timedelta(hours=1)
    ) -> pd.DataFrame:
        """:func:`health` of these snapshots."""
        return health(self, now=now, idle_after=idle_after)

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        with self._lock:
            n_snaps, n_errors = len(self._snapshots), len(self._errors)
        return f"<Monitor every={self.every:g}s {state}, {n_snaps} snapshot(s), {n_errors} error(s)>"


def _copy_run(run: _Run) -> _Run:
    copy = _Run(run.start, run.sub)
    copy.end, copy.count = run.end, run.count
    return copy


# --------------------------------------------------------------------------- plots

#: Which statuses plot_since_last_delivery keeps first when it cannot show every subscription.
_STATUS_RANK = {"failing": 0, "never delivered": 1, "idle": 2, "inactive": 3, "healthy": 4}

_STATUS_COLOURS = {
    "healthy": "#27ae60",
    "failing": "#c0392b",
    "never delivered": "#f1c40f",
    "idle": "#e67e22",
    "inactive": "#7f8c8d",
}


def _new_axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _fig, new_ax = plt.subplots(figsize=(8, 4))
    return new_ax


_MAX_LEGEND = 10


def plt_cycle() -> Any:
    """matplotlib's colour cycle, as the lines of one Axes would take it."""
    import matplotlib as mpl

    return mpl.rcParams["axes.prop_cycle"]


def plot_attempts(source: Any, ax: Axes | None = None) -> Axes:
    """``delivery_attempts`` over time, one line per subscription, with a marker where a delivery succeeded.

    ``source``: a :class:`Monitor` or a list of ``(taken_at, [subscriptions])`` pairs. A marker
    sits on the snapshot in which ``last_delivered_at`` changed. A line rising with no markers is
    a failing endpoint. Up to ten subscriptions get a ``Line2D`` each, named in the legend; more
    are drawn as one ``LineCollection`` (quick to draw, no per-line legend). Returns the
    matplotlib ``Axes`` (a new figure unless ``ax`` is given).
    """
    import matplotlib.dates as mdates
    from matplotlib.ticker import MaxNLocator

    ax = _new_axes(ax)
    history, _latest, latest = _history_of(source)
    ax.set_title("Delivery attempts per subscription")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("delivery_attempts")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if latest is None:
        ax.text(0.5, 0.5, "no snapshots yet", ha="center", va="center", transform=ax.transAxes)
        return ax
    hit_x: list[np.ndarray] = []
    hit_y: list[np.ndarray] = []
    hit_colours: list[Any] = []
    labelled = len(history) <= _MAX_LEGEND
    segments: list[np.ndarray] = []
    segment_colours: list[Any] = []
    colours = [c["color"] for c in plt_cycle()]
    epoch = float(mdates.date2num(np.datetime64("1970-01-01T00:00:00", "us")))
    for sub_id in sorted(history):
        # A point where each unchanged run starts and ends: the same line as one point per snapshot.
        times: list[datetime] = []
        counts: list[int] = []
        hits: list[int] = []
        before: Any = None
        for i, run in enumerate(history[sub_id]):
            delivered = run.sub.last_delivered_at
            if i and delivered is not None and delivered != before:
                hits.append(len(times))  # a delivery succeeded (not the first snapshot's state)
            before = delivered
            times.append(run.start)
            counts.append(run.sub.delivery_attempts)
            if run.end != run.start:
                times.append(run.end)
                counts.append(run.sub.delivery_attempts)
        # matplotlib's date numbers: days since its epoch (POSIX seconds / 86400, shifted), without building
        # a datetime64 array from datetime objects (most of this loop's time after an hour of snapshots).
        x = np.fromiter([t.timestamp() for t in times], dtype=np.float64, count=len(times)) / 86400.0 + epoch
        y = np.array(counts, dtype=np.float64)
        if labelled:
            (line,) = ax.plot(x, y, marker=".", label=f"#{sub_id}")
            colour = line.get_color()
        else:  # many lines: drawn below as one collection
            colour = colours[len(segments) % len(colours)]
            segments.append(np.column_stack([x, y]))
            segment_colours.append(colour)
        if hits:
            hit_x.append(x[hits])
            hit_y.append(y[hits])
            hit_colours += [colour] * len(hits)
    if segments:
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(segments, colors=segment_colours, linewidths=1.2))
        ax.autoscale_view()
    if hit_x:  # one artist for every marker: quick to draw however many there are
        ax.scatter(
            np.concatenate(hit_x),
            np.concatenate(hit_y),
            s=60,
            marker="o",
            facecolors="none",
            edgecolors=hit_colours,
            linewidths=1.5,
            zorder=3,
            label="successful delivery",
        )
    if not labelled:
        ax.set_title(f"Delivery attempts of {len(history)} subscriptions")
    ax.xaxis_date()
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if labelled or hit_x:
        ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_since_last_delivery(
    source: Any,
    ax: Axes | None = None,
    now: datetime | None = None,
    idle_after: timedelta | float | pd.Timedelta = timedelta(hours=1),
    max_rows: int = 20,
) -> Axes:
    """Time since each subscription's last successful delivery, as horizontal bars coloured by :func:`health` status.

    ``source``: a :class:`Monitor` or a list of ``(taken_at, [subscriptions])`` pairs; ``now`` and
    ``idle_after`` as for :func:`health`. Never-delivered subscriptions get no bar and the word
    "never". With more than ``max_rows`` subscriptions, the ``max_rows`` that most need a look are
    shown (failing, never delivered, idle, inactive, then healthy; the longest since a delivery
    first), in id order, and the title says so. Returns the matplotlib ``Axes``.
    """
    ax = _new_axes(ax)
    h = health(source, now=now, idle_after=idle_after)
    ax.set_title("Time since last successful delivery")
    if h.empty:
        ax.text(0.5, 0.5, "no snapshots yet", ha="center", va="center", transform=ax.transAxes)
        return ax
    if len(h) > max_rows:  # more bars would not be readable (nor quick to draw): the ones that need a look
        worst = h.assign(
            _rank=h["status"].map(_STATUS_RANK).fillna(len(_STATUS_RANK)),
            _since=h["since_last_delivery"].fillna(pd.Timedelta.max),
        ).sort_values(["_rank", "_since"], ascending=[True, False], kind="stable")
        h = h.loc[sorted(worst.index[:max_rows])].reset_index(drop=True)
        ax.set_title(f"Time since last successful delivery ({max_rows} of {len(worst)}: failing and oldest first)")
    seconds = h["since_last_delivery"].dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
    finite = seconds[~np.isnan(seconds)]
    largest = float(finite.max()) if finite.size else 0.0
    unit, size = next(
        ((u, s) for u, s, limit in (("s", 1, 120), ("min", 60, 7200), ("h", 3600, 172800)) if largest < limit),
        ("d", 86400),
    )
    values = np.nan_to_num(seconds / size, nan=0.0)
    labels = [f"#{i}  {s}" for i, s in zip(h["id"], h["status"], strict=True)]
    colours = [_STATUS_COLOURS.get(str(s), "#95a5a6") for s in h["status"]]
    from matplotlib.patches import Rectangle

    positions = np.arange(len(h))
    for pos, value, colour in zip(positions, values, colours, strict=True):
        # What barh draws, without its per-bar limit updates (most of its time): the limits are set once below.
        ax.add_artist(Rectangle((0.0, pos - 0.4), float(value), 0.8, facecolor=colour, edgecolor="none"))
    ax.set_yticks(positions, labels)
    ax.set_ylim(len(h) - 0.5, -0.5)  # the first row on top
    ax.set_xlim(0.0, (float(values.max()) or 1.0) * 1.15)  # room for the value labels at the bars' ends
    ax.set_xlabel(f"{unit} since last delivery")
    for pos, sec, value in zip(positions, seconds, values, strict=True):
        if np.isnan(sec):
            ax.text(0.0, float(pos), " never", va="center", ha="left", fontsize="small")
        else:
            ax.text(float(value), float(pos), f" {value:.3g} {unit}", va="center", ha="left", fontsize="small")
    return ax
