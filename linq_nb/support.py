"""What the support app knows: each subscription's health in plain language, and the actions on it.

The logic behind ``apps/support.ipynb`` (the Voilà dashboard of :mod:`linq_nb.dashboard`), kept
here so that it can be tested without a browser and the dashboard only arranges widgets.

- :class:`SupportDesk`: one account seen through a client. :meth:`~SupportDesk.refresh` takes a
  snapshot of ``list_subscriptions()``, judges the latest ones with :func:`linq_nb.frames.health`
  (the one health rule) and turns each row into a :class:`Triage`; it also activates,
  deactivates and sends test events.
- :func:`triage`: the plain-language line for one health row, saying what to check.
- :class:`DemoAccount`: a sandbox in this process with example endpoints and five subscriptions,
  one in each state, so that the app shows something meaningful without a token.

Nothing here prints, logs or keeps the integration token: the client holds it, as everywhere.
"""

from __future__ import annotations

import io
import shutil
import sqlite3
import tempfile
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import LinqError, NotFoundError
from .frames import HEALTH_STATUSES, health, plot_attempts
from .models import WebhookSubscription, format_datetime, humanize_since

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .client import LinqClient
    from .receiver import Receiver
    from .sandbox import Sandbox

__all__ = [
    "STATE_ORDER",
    "STATE_TITLES",
    "STATE_COLOURS",
    "LIVE_TEST_EVENTS",
    "Triage",
    "Outcome",
    "triage",
    "describe_attempt",
    "last_attempts",
    "SupportDesk",
    "DemoAccount",
]

#: The order the app lists subscriptions in: what needs a look first.
STATE_ORDER: tuple[str, ...] = ("failing", "never delivered", "idle", "inactive", "healthy")
assert set(STATE_ORDER) == set(HEALTH_STATUSES), "every frames.health status needs a place in STATE_ORDER"

#: A short title per :func:`linq_nb.frames.health` status, in a support person's words.
STATE_TITLES: dict[str, str] = {
    "healthy": "Working",
    "failing": "Failing",
    "never delivered": "Nothing sent yet",
    "idle": "Quiet",
    "inactive": "Switched off",
}

#: The colour of each state in the app (as in ``frames``' own plots).
STATE_COLOURS: dict[str, str] = {
    "healthy": "#27ae60",
    "failing": "#c0392b",
    "never delivered": "#d4a000",
    "idle": "#e67e22",
    "inactive": "#7f8c8d",
}

LIVE_TEST_EVENTS = (
    "Test events exist only in a sandbox. On the live API, ask the customer to make a real event happen "
    "(send a message, for instance) and watch the attempts."
)


@dataclass(frozen=True)
class Triage:
    """One subscription as the app shows it: its state, a line saying what to check, and the numbers."""

    id: int
    webhook_url: str
    events: tuple[str, ...]
    active: bool
    status: str  #: a :func:`linq_nb.frames.health` status
    title: str  #: :data:`STATE_TITLES` of it
    line: str  #: what is going on and what to check, in plain language
    facts: tuple[str, ...]  #: short facts: attempts, last delivery, the endpoint's last answer


@dataclass(frozen=True)
class Outcome:
    """What an action did: ``kind`` is ``"ok"``, ``"warn"`` or ``"error"``, ``text`` one or two sentences."""

    kind: str
    text: str

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


# --------------------------------------------------------------------------- triage


def describe_attempt(record: Mapping[str, Any] | None) -> str:
    """The endpoint's answer to one delivery attempt, in plain language (empty for None).

    ``record``: a row of the sandbox's delivery log (``status_code``, ``error``, ``ok``).
    """
    if not record:
        return ""
    code, error = record.get("status_code"), record.get("error")
    if code is None or _missing(code):
        if error and str(error).startswith("timeout"):
            return "no answer within 10 seconds (the server is too slow: it should answer first, then do the work)"
        return "could not connect (the server is down, or the address is wrong)"
    status = int(code)
    if 200 <= status < 300:
        return f"HTTP {status}: accepted"
    if 300 <= status < 400:
        return f"HTTP {status}, a redirect (Linq does not follow redirects: use the final address)"
    if status in (401, 403):
        return (f"HTTP {status}, refused (often a signature check failing: the webhook secret on the "
                "customer's side may be out of date)")
    if status == 404:
        return "HTTP 404 (the address's path is wrong, or that page was removed)"
    if status == 429:
        return "HTTP 429, too many requests (the customer's server is rate limiting Linq)"
    if status >= 500:
        return f"HTTP {status}, an error on the customer's server (its logs say why)"
    return f"HTTP {status}, refused by the customer's server"


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and pandas' NA
    except (TypeError, ValueError):
        return True


def _events_text(events: Sequence[str]) -> str:
    return ", ".join(events) if events else "no events"


def _as_datetime(value: Any) -> datetime | None:
    """A datetime from a datetime, a pandas Timestamp, None or NaT."""
    if _missing(value):
        return None
    to_py = getattr(value, "to_pydatetime", None)
    return to_py() if callable(to_py) else value


def _ago(value: Any, now: datetime) -> str:
    return humanize_since(_as_datetime(value), now)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def triage(row: Mapping[str, Any], events: Sequence[str] = (), *, last_attempt: Mapping[str, Any] | None = None,
           test_events: bool = True, now: datetime | None = None) -> Triage:
    """The plain-language line for one row of :func:`linq_nb.frames.health`.

    ``events``: the subscription's events; ``last_attempt``: its latest row of the sandbox's delivery
    log, if the server has one; ``test_events``: whether the app can send a test event (a sandbox);
    ``now``: what "ago" is measured against (default: the row's ``last_seen``).
    """
    status = str(row["status"])
    if status not in STATE_TITLES:
        raise ValueError(f"unknown health status {status!r}; expected one of {', '.join(STATE_TITLES)}")
    now = now or _as_datetime(row.get("last_seen")) or datetime.now(timezone.utc)
    events = tuple(events)
    attempts = int(row.get("attempts_last") or 0)
    since_delivery = int(row.get("attempts_since_delivery") or 0)
    delivered = row.get("last_delivered_at")
    answer = describe_attempt(last_attempt) if last_attempt else ""
    try_it = " Send a test event to try the endpoint now." if test_events else ""

    if status == "inactive":
        line = ("Switched off: Linq sends this endpoint nothing. If the customer expects events here, "
                "activate it; events that happened while it was off are not sent again.")
    elif status == "never delivered":
        line = (f"No event has been sent here yet. Check that it listens for the events the customer expects "
                f"({_events_text(events)}) and that such events have happened on the account.{try_it}")
    elif status == "failing":
        tried = (f"{_count(attempts, 'attempt')} and not one succeeded" if _missing(delivered)
                 else f"{_count(since_delivery, 'attempt')} since the last success, {_ago(delivered, now)}")
        line = (f"Linq is sending events but the endpoint does not accept them ({tried}). Check that the address "
                "is right and the customer's server is up: it must answer with a 2xx status within 10 seconds. "
                "Linq retries each event for about 25 minutes, then drops it.")
        if answer:
            line += f" Its last answer: {answer}."
    elif status == "idle":
        line = (f"Events used to arrive, but the last one came {_ago(delivered, now)}. Either nothing happened on the "
                f"account (normal for a quiet customer), or the events the customer needs are missing from its list "
                f"({_events_text(events)}).{try_it}")
    else:
        line = "Events are arriving. Nothing to do."

    facts = [
        _count(attempts, "delivery attempt"),
        f"last delivered: {_ago(delivered, now)}",
    ]
    if answer:
        facts.append(f"last answer: {answer.split(' (')[0]}")
    return Triage(
        id=int(row["id"]),
        webhook_url=str(row["webhook_url"]),
        events=events,
        active=bool(row["active"]),
        status=status,
        title=STATE_TITLES[status],
        line=line,
        facts=tuple(facts),
    )


def last_attempts(records: Iterable[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per subscription id, its latest attempt in a delivery log (``GET /_sandbox/deliveries``)."""
    latest: dict[int, dict[str, Any]] = {}
    for record in records:  # oldest first
        sub_id = record.get("subscription_id")
        if sub_id is not None:
            latest[int(sub_id)] = dict(record)
    return latest


# --------------------------------------------------------------------------- the desk


class SupportDesk:
    """One account, seen through ``client``: health with triage, and the actions a support person needs.

    ``idle_after``: how long without a delivery makes an endpoint "idle" (as for ``frames.health``);
    ``window``: how many of the latest snapshots the verdicts and plots look at. ``demo``: the
    :class:`DemoAccount` behind the client, if any (closed with the desk).

    >>> desk = SupportDesk(client)
    >>> [t.title for t in desk.refresh()]
    ['Failing', 'Nothing sent yet', 'Working']
    >>> desk.set_active(3, False).text
    '#3 is switched off: Linq sends it nothing until it is activated again.'
    """

    def __init__(self, client: LinqClient, *, idle_after: timedelta | float = timedelta(hours=1),
                 window: int = 360, demo: DemoAccount | None = None) -> None:
        self.client = client
        self.idle_after = idle_after
        self.window = max(2, int(window))
        self.demo = demo
        self._snapshots: deque[tuple[datetime, Sequence[WebhookSubscription]]] = deque(maxlen=self.window)
        self.triages: list[Triage] = []
        self.health_frame: pd.DataFrame | None = None
        self.attempts: dict[int, dict[str, Any]] = {}
        self.refreshed_at: datetime | None = None
        self._log_available = client.mode != "live"
        self._plots: dict[int, tuple[tuple[Any, ...], float, bytes]] = {}

    # -- where we are

    @property
    def mode(self) -> str:
        """``"demo"`` (a :class:`DemoAccount`), ``"sandbox"`` (a shared one) or ``"live"``."""
        return "demo" if self.demo is not None else self.client.mode

    @property
    def where(self) -> str:
        """Where the data comes from, in a sentence; never the token."""
        if self.mode == "demo":
            return "A demo account in a sandbox inside this app: nothing here reaches Linq."
        if self.mode == "live":
            return f"The live Linq API at {self.client.base_url}: changes here are real."
        return f"The sandbox at {self.client.base_url}: nothing here reaches Linq."

    @property
    def can_send_test_events(self) -> bool:
        """True in a sandbox (demo or shared), which has a route for test events; False on the live API."""
        return self.client.mode != "live"

    @property
    def snapshots(self) -> list[tuple[datetime, Sequence[WebhookSubscription]]]:
        """The latest ``window`` snapshots of ``list_subscriptions()``, ``(taken_at, subscriptions)``, oldest first."""
        return list(self._snapshots)

    # -- reading

    def refresh(self) -> list[Triage]:
        """List the subscriptions now and judge them; most urgent first. Raises :class:`LinqError`."""
        subs = self.client.list_subscriptions()
        taken_at = datetime.now(timezone.utc)
        self._snapshots.append((taken_at, subs))
        frame = health(self.snapshots, idle_after=self.idle_after)
        events = {s.id: s.events for s in subs}
        self.attempts = self._delivery_log()
        now = datetime.now(timezone.utc)
        rows: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
        triages = [
            triage(row, events.get(int(row["id"]), ()), last_attempt=self.attempts.get(int(row["id"])),
                   test_events=self.can_send_test_events, now=now)
            for row in rows
        ]
        triages.sort(key=lambda t: (STATE_ORDER.index(t.status), t.id))
        self.health_frame, self.triages, self.refreshed_at = frame, triages, taken_at
        return triages

    def _delivery_log(self) -> dict[int, dict[str, Any]]:
        """The sandbox's delivery log by subscription, or {} when the server has none (the live API)."""
        if not self._log_available:
            return {}
        try:
            body = self.client.sandbox_route("GET", "/_sandbox/deliveries")
        except NotFoundError:  # a server that is not a linq_nb sandbox: stop asking
            self._log_available = False
            return {}
        except LinqError:
            return self.attempts  # keep the last one; the list itself worked
        return last_attempts(body.get("deliveries", []) if isinstance(body, Mapping) else [])

    def counts(self) -> dict[str, int]:
        """How many subscriptions are in each state, in :data:`STATE_ORDER`."""
        found = {status: 0 for status in STATE_ORDER}
        for t in self.triages:
            found[t.status] += 1
        return found

    def summary(self) -> str:
        """``"5 subscriptions: 1 failing, 1 nothing sent yet, ..."``."""
        n = len(self.triages)
        if not n:
            return "No subscriptions on this account."
        parts = [f"{count} {STATE_TITLES[status].lower()}" for status, count in self.counts().items() if count]
        return f"{_count(n, 'subscription')}: " + ", ".join(parts) + "."

    def subscription(self, sub_id: int) -> WebhookSubscription | None:
        """The subscription as last listed."""
        return next((s for s in self._snapshots[-1][1] if s.id == sub_id), None) if self._snapshots else None

    def plot_png(self, sub_id: int, *, size: tuple[float, float] = (4.2, 1.9), dpi: int = 96,
                 min_span: timedelta = timedelta(minutes=2), replot_after: float = 60.0) -> bytes:
        """:func:`linq_nb.frames.plot_attempts` for one subscription over the window, as PNG bytes.

        The line takes the colour of the subscription's state; the time axis spans at least
        ``min_span``. Drawing costs a good part of a second on a busy machine, so the picture is
        redrawn only when the subscription changed or ``replot_after`` seconds have passed.
        """
        snaps = [(at, [s for s in subs if s.id == sub_id]) for at, subs in self.snapshots]
        latest = snaps[-1][1][0] if snaps and snaps[-1][1] else None
        status = next((t.status for t in self.triages if t.id == sub_id), "")
        key = (status, latest.delivery_attempts if latest else None, latest.last_delivered_at if latest else None)
        cached = self._plots.get(sub_id)
        if cached is not None and cached[0] == key and time.monotonic() - cached[1] < replot_after:
            return cached[2]
        png = self._draw(snaps, status, size, dpi, min_span)
        self._plots[sub_id] = (key, time.monotonic(), png)
        return png

    @staticmethod
    def _draw(snaps: Sequence[tuple[datetime, Sequence[WebhookSubscription]]], status: str, size: tuple[float, float],
              dpi: int, min_span: timedelta) -> bytes:
        from matplotlib.figure import Figure  # no pyplot: no global state, safe from any thread

        fig = Figure(figsize=size, dpi=dpi, layout="constrained")
        ax = fig.subplots()
        plot_attempts(snaps, ax=ax)
        colour = STATE_COLOURS.get(status, "#95a5a6")
        for line in ax.get_lines():
            line.set_color(colour)
        for markers in ax.collections:
            markers.set_edgecolor(colour)
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
        ax.set_title("")
        ax.set_title("delivery attempts over time (○: one got through)", fontsize=8, loc="left")
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=7)
        formatter = ax.xaxis.get_major_formatter()
        if hasattr(formatter, "show_offset"):
            formatter.show_offset = False  # the date under the axis: the page says when it was updated
        times = [at for at, subs in snaps if subs]
        if times:
            # naive UTC, as plot_attempts plots them
            first, last = (t.astimezone(timezone.utc).replace(tzinfo=None) for t in (times[0], times[-1]))
            span = max(last - first, min_span)
            ax.set_xlim(last - span, last + span / 20)  # type: ignore[arg-type]
            top = max((s.delivery_attempts for _, subs in snaps for s in subs), default=0)
            ax.set_ylim(0, max(top, 1) * 1.2)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    # -- actions

    def set_active(self, sub_id: int, active: bool) -> Outcome:
        """Activate or deactivate one subscription; says what that means for the customer."""
        try:
            self.client.update_subscription(sub_id, active=active)
        except LinqError as exc:
            return Outcome("error", f"#{sub_id} could not be {'activated' if active else 'deactivated'}: {exc}")
        if active:
            return Outcome("ok", f"#{sub_id} is switched on: new events will be sent to it again.")
        return Outcome("ok", f"#{sub_id} is switched off: Linq sends it nothing until it is activated again.")

    def send_test_event(self, sub_id: int, *, wait: float = 5.0, poll: float = 0.25) -> Outcome:
        """Send one of the subscription's events through the sandbox and wait up to ``wait`` s for the first answer.

        The sandbox delivers the event to every active subscription of the account that listens for
        it, as Linq would. On the live API this does nothing and says so.
        """
        if not self.can_send_test_events:
            return Outcome("warn", LIVE_TEST_EVENTS)
        sub = self.subscription(sub_id)
        if sub is None:
            return Outcome("warn", f"#{sub_id} is no longer listed: refresh.")
        if not sub.active:
            return Outcome("warn", f"#{sub_id} is switched off, so it would receive nothing: activate it first.")
        if not sub.events:
            return Outcome("warn", f"#{sub_id} listens for no events, so there is nothing to send.")
        event_type = sub.events[0]
        try:
            sent = self.client.sandbox_route("POST", "/_sandbox/events", {"event_type": event_type})
        except NotFoundError:
            return Outcome("warn", f"This server ({self.client.base_url}) has no route for test events: it is not a "
                                   "linq_nb sandbox. Ask the customer to make a real event happen instead.")
        except LinqError as exc:
            return Outcome("error", f"The test event could not be sent: {exc}")
        event_id = sent.get("event_id") if isinstance(sent, Mapping) else None
        record = self._wait_for_attempt(sub_id, event_id, wait, poll)
        if record is None:
            return Outcome("warn", f"Sent a test {event_type} event to #{sub_id}; no answer from the endpoint "
                                   f"within {wait:g} s yet. The attempts will show up here.")
        answer = describe_attempt(record)
        if record.get("ok"):
            return Outcome("ok", f"Sent a test {event_type} event: the endpoint accepted it ({answer}).")
        return Outcome("error", f"Sent a test {event_type} event: the endpoint did not accept it: {answer}.")

    def _wait_for_attempt(self, sub_id: int, event_id: object, wait: float, poll: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + wait
        while True:
            try:
                body = self.client.sandbox_route("GET", "/_sandbox/deliveries")
            except LinqError:
                return None
            records = body.get("deliveries", []) if isinstance(body, Mapping) else []
            for record in reversed(records):
                if record.get("event_id") == event_id and record.get("subscription_id") == sub_id:
                    return dict(record)
            if time.monotonic() >= deadline:
                return None
            time.sleep(poll)

    def close(self) -> None:
        """Close the client (and the demo account behind it, if any)."""
        self.client.close()
        if self.demo is not None:
            self.demo.close()


# --------------------------------------------------------------------------- the demo account


@dataclass(frozen=True)
class _DemoEndpoint:
    name: str
    path: str
    events: tuple[str, ...]
    fails: bool = False
    #: (created, last delivered) how long ago, for a history the sandbox cannot make in a minute
    created_ago: timedelta = timedelta(days=30)
    delivered_ago: timedelta | None = None


_DEMO_ENDPOINTS: tuple[_DemoEndpoint, ...] = (
    _DemoEndpoint("orders", "/hooks/orders", ("message.received", "message.sent")),
    _DemoEndpoint("billing", "/hooks/billing", ("call.completed",), fails=True, created_ago=timedelta(days=9)),
    _DemoEndpoint("new-app", "/hooks/new-app", ("participant.added",), created_ago=timedelta(minutes=20)),
    _DemoEndpoint("crm", "/hooks/crm", ("contact.created", "contact.updated"), created_ago=timedelta(days=60),
                  delivered_ago=timedelta(hours=3)),
    _DemoEndpoint("old-app", "/hooks/old-app", ("reaction.received",), created_ago=timedelta(days=120),
                  delivered_ago=timedelta(days=2)),
)


class DemoAccount:
    """A sandbox in this process holding an example account, one subscription in each state.

    - ``orders``: working (its endpoint accepts every event);
    - ``billing``: failing (its endpoint answers HTTP 500 to everything);
    - ``new-app``: nothing sent yet (no ``participant.added`` event has happened);
    - ``crm``: quiet (last delivery three hours ago);
    - ``old-app``: switched off.

    The endpoints are :class:`~linq_nb.receiver.Receiver` servers on 127.0.0.1. The sandbox keeps
    its state in a private temporary file: it is seeded through the API, then the history that
    takes hours to happen (when each subscription was created and last delivered to) is written
    into that file before the sandbox that serves the app opens it. ``client`` is bound to it.
    """

    def __init__(self, *, retry_delays: Sequence[float] | None = None) -> None:
        from .client import LinqClient
        from .receiver import Receiver
        from .sandbox import CLASSROOM_RETRY_DELAYS, Sandbox, new_token

        self._dir = Path(tempfile.mkdtemp(prefix="linq-nb-demo-"))
        weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)  # also when the kernel exits
        self.receivers: dict[str, Receiver] = {}
        self.sandbox: Sandbox | None = None
        self.ids: dict[str, int] = {}
        token = new_token()
        state = self._dir / "demo.sqlite"
        try:
            for ep in _DEMO_ENDPOINTS:
                receiver = Receiver(path=ep.path).start()
                if ep.fails:
                    receiver.fail_next(10**9, 500)
                self.receivers[ep.name] = receiver
            with Sandbox(token, state=state, retry_delays=[0.02, 0.02]) as seeding:
                self._seed(seeding, LinqClient(token=token, base_url=seeding.url))
            self._write_history(state)
            delays = CLASSROOM_RETRY_DELAYS if retry_delays is None else retry_delays
            self.sandbox = Sandbox(token, state=state, retry_delays=delays).start()
            self.client = LinqClient(token=token, base_url=self.sandbox.url)
        except BaseException:
            self.close()
            raise

    def _seed(self, sandbox: Sandbox, client: LinqClient) -> None:
        with client:
            for ep in _DEMO_ENDPOINTS:
                sub = client.create_subscription(self.receivers[ep.name].url, ep.events)
                self.ids[ep.name] = sub.id
            for event_type in ("message.received", "message.sent", "message.received", "call.completed",
                               "contact.created", "reaction.received"):
                sandbox.emit(event_type)
            if not sandbox.wait_for_deliveries(15):
                raise RuntimeError("the demo sandbox did not finish its first deliveries within 15 s")
            client.update_subscription(self.ids["old-app"], active=False)

    def _write_history(self, state: Path) -> None:
        now = datetime.now(timezone.utc)
        db = sqlite3.connect(state)
        try:
            with db:
                for ep in _DEMO_ENDPOINTS:
                    created = format_datetime(now - ep.created_ago)
                    db.execute("UPDATE subscriptions SET created_at = ?, updated_at = ? WHERE id = ?",
                               (created, created, self.ids[ep.name]))
                    if ep.delivered_ago is not None:
                        db.execute("UPDATE subscriptions SET last_delivered_at = ? WHERE id = ?",
                                   (format_datetime(now - ep.delivered_ago), self.ids[ep.name]))
        finally:
            db.close()

    def close(self) -> None:
        """Stop the sandbox and the endpoints and remove the state file. Safe to call twice."""
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None
        for receiver in self.receivers.values():
            receiver.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __repr__(self) -> str:
        where = self.sandbox.url if self.sandbox is not None else "closed"
        return f"<DemoAccount {where}, {len(self.ids)} subscriptions>"
