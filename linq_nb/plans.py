"""Subscriptions as code: a desired-state file, a plan (the diff with the account), then apply.

A desired-state file is TOML, one array of tables per API version, secrets by reference only::

    managed = "full"          # optional: subscriptions on the account that the file does not list are deleted

    [[v2]]
    url = "https://example.com/hooks/messages"
    events = ["message.received", "message.sent"]
    secret_env = "MESSAGES_SECRET"      # or secret_file = "secrets/messages.txt"; never secret = "..."
    active = true                       # the default

    [[v3]]
    url = "https://example.com/hooks/v3"
    events = ["message.received"]
    secret_file = "secrets/v3.whsec"    # v3 makes the signing secret: create saves it here (mode 0600)
    phone_numbers = ["+14155551234"]    # optional, v3 only

>>> import linq_nb
>>> p = linq_nb.plan("subscriptions.toml", linq_nb.connect())
>>> p                                   # a table: create / update (field by field) / delete / leave alone
>>> p.frame(); print(p.to_json())
>>> p.apply()                           # stops at the first failure; applying twice changes nothing

Only the versions the file names are looked at (``v3 = []`` names v3 with no subscriptions). Without
``managed = "full"`` a subscription the file does not list is left alone (and said so); with it, it is
deleted. Subscriptions already on the account that duplicate each other are flagged either way.
"""

from __future__ import annotations

import html
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import catalog
from .client import _normalize_webhook_url
from .errors import LinqError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["DesiredStateError", "Desired", "DesiredSubscription", "Change", "Plan", "ApplyResult", "load_desired",
           "plan", "ACTIONS"]

#: What a plan does with one subscription.
ACTIONS = ("create", "update", "delete", "leave")
_KEYS = {"v2": {"url", "events", "active", "secret_env", "secret_file"},
         "v3": {"url", "events", "active", "secret_file", "phone_numbers"}}
_INLINE = ("secret", "signing_secret", "webhook_secret")


class DesiredStateError(ValueError):
    """The desired-state file is wrong; the message says where and how to fix it. Nothing was sent."""


@dataclass(frozen=True)
class DesiredSubscription:
    """One subscription as the file wants it."""

    api: str
    url: str
    events: tuple[str, ...]
    active: bool = True
    secret_env: str | None = None
    secret_file: str | None = None
    phone_numbers: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        return _normalize_webhook_url(self.url)

    def secret(self) -> str | None:
        """The v2 secret the reference points at (read now; never stored in the plan)."""
        if self.secret_env:
            value = os.environ.get(self.secret_env)
            if not value:
                raise DesiredStateError(f"{self.url}: secret_env = {self.secret_env!r} but that environment "
                                        "variable is not set (set it, or remove secret_env)")
            return value
        if self.secret_file:
            try:
                return Path(self.secret_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise DesiredStateError(f"{self.url}: secret_file = {self.secret_file!r} cannot be read "
                                        f"({exc.strerror})") from None
        return None


@dataclass(frozen=True)
class Desired:
    """A parsed desired-state file: per version, its subscriptions; ``full``: the file manages all of them."""

    subscriptions: Mapping[str, tuple[DesiredSubscription, ...]]
    full: bool = False
    source: str = "<dict>"


def _fail(where: str, problem: str) -> DesiredStateError:
    return DesiredStateError(f"{where}: {problem}")


def load_desired(source: str | Path | Mapping[str, Any]) -> Desired:
    """Parse a desired-state file (a path, TOML text or an already-parsed dict); DesiredStateError if wrong."""
    name = "<dict>"
    if isinstance(source, Mapping):
        raw: Mapping[str, Any] = source
    else:
        text = str(source)
        if isinstance(source, Path) or ("\n" not in text and not text.lstrip().startswith("[")):
            name = text
            try:
                text = Path(text).read_text(encoding="utf-8")
            except OSError as exc:
                raise DesiredStateError(f"cannot read the desired-state file {name!r}: {exc.strerror}") from None
        else:
            name = "<toml>"
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DesiredStateError(f"{name} is not valid TOML: {exc}") from None
    unknown = set(raw) - {"managed", "v2", "v3"}
    if unknown:
        raise _fail(name, f"unknown top-level key(s) {', '.join(sorted(unknown))}; the file has managed, "
                          "[[v2]] and [[v3]]")
    managed = raw.get("managed", "partial")
    if managed not in ("full", "partial"):
        raise _fail(name, f'managed must be "full" or "partial", not {managed!r}')
    subs: dict[str, tuple[DesiredSubscription, ...]] = {}
    for api in ("v2", "v3"):
        if api in raw:
            if not isinstance(raw[api], list):
                raise _fail(name, f"{api} must be an array of tables ([[{api}]] ... ) or {api} = []")
            subs[api] = tuple(_entry(name, api, i, e) for i, e in enumerate(raw[api], 1))
            _check_unique(name, api, subs[api])
    if not subs:
        raise _fail(name, "no [[v2]] or [[v3]] subscriptions (write v2 = [] to manage an empty v2 account)")
    return Desired(subs, managed == "full", name)


def _entry(name: str, api: str, i: int, e: object) -> DesiredSubscription:
    where = f"{name} [[{api}]] #{i}"
    if not isinstance(e, Mapping):
        raise _fail(where, "each entry is a table with url and events")
    inline = [k for k in _INLINE if k in e]
    if inline:
        raise _fail(where, f"{inline[0]} is written inline; secrets never go in this file. Use "
                           + ('secret_env = "NAME" (an environment variable) or secret_file = "PATH"' if api == "v2"
                              else 'secret_file = "PATH" (v3 makes the secret; create saves it there)'))
    if api == "v3" and "secret_env" in e:
        raise _fail(where, "v3 makes the signing secret itself and shows it once: name a secret_file to save it in")
    unknown = set(e) - _KEYS[api]
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_KEYS[api]))}")
    url, events = e.get("url"), e.get("events")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _fail(where, f"url must be an http(s) URL, got {url!r}"[:200])
    if not isinstance(events, list) or not events or not all(isinstance(x, str) for x in events):
        raise _fail(where, 'events must be a non-empty list of event names, such as ["message.received"]')
    known = catalog.load(api)
    bad = [x for x in events if x not in known]
    if bad:
        raise _fail(where, f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not {api} event name(s)"
                           + (f" (in {api}, {catalog.name_in(api, bad[0])})" if catalog.name_in(api, bad[0]) else ""))
    active = e.get("active", True)
    if not isinstance(active, bool):
        raise _fail(where, f"active must be true or false, got {active!r}")
    if "secret_env" in e and "secret_file" in e:
        raise _fail(where, "give secret_env or secret_file, not both")
    phones = e.get("phone_numbers")
    if phones is not None and (not isinstance(phones, list) or not all(isinstance(p, str) for p in phones)):
        raise _fail(where, 'phone_numbers must be a list of E.164 numbers, such as ["+14155551234"]')
    return DesiredSubscription(api, url, tuple(dict.fromkeys(events)), active, e.get("secret_env"),
                               e.get("secret_file"), tuple(phones) if phones else None)


def _check_unique(name: str, api: str, subs: tuple[DesiredSubscription, ...]) -> None:
    seen: dict[str, list[DesiredSubscription]] = {}
    for s in subs:
        for other in seen.get(s.key, []):  # every earlier entry of the URL, not only the first
            if api == "v3" or set(other.events) & set(s.events):
                why = ("v3 allows each URL once per account: merge their events" if api == "v3"
                       else f"both list {', '.join(sorted(set(other.events) & set(s.events)))}: Linq would "
                            "deliver those twice")
                raise _fail(f"{name} [[{api}]]", f"{s.url} is listed twice; {why}")
        seen.setdefault(s.key, []).append(s)


# --------------------------------------------------------------------------- the plan


def _actual_fields(api: str, sub: Any) -> dict[str, Any]:
    fields = {"events": tuple(sub.events), "active": bool(sub.active)}
    if api == "v3":
        fields["phone_numbers"] = tuple(sub.phone_numbers) if sub.phone_numbers else None
    return fields


def _wanted_fields(d: DesiredSubscription) -> dict[str, Any]:
    fields: dict[str, Any] = {"events": d.events, "active": d.active}
    if d.api == "v3":
        fields["phone_numbers"] = d.phone_numbers
    return fields


def _same(name: str, a: Any, b: Any) -> bool:
    if name in ("events", "phone_numbers"):
        return set(a or ()) == set(b or ())
    return bool(a == b)


@dataclass
class Change:
    """One row of a plan: what happens to one subscription, and why."""

    action: str  # one of ACTIONS
    api: str
    url: str
    id: int | str | None = None
    diff: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (now, wanted)
    events: tuple[str, ...] = ()
    duplicate_of: int | str | None = None
    note: str = ""
    desired: DesiredSubscription | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "api": self.api, "url": self.url, "id": self.id,
                "diff": {k: [_jsonable(a), _jsonable(b)] for k, (a, b) in self.diff.items()},
                "events": list(self.events), "duplicate_of": self.duplicate_of, "note": self.note}

    def describe(self) -> str:
        if self.action == "update":
            return "; ".join(f"{k}: {_show(a)} -> {_show(b)}" for k, (a, b) in self.diff.items())
        return ", ".join(self.events)


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _show(v: Any) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(v) + "]"
    return "none" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def _match(api: str, wanted: tuple[DesiredSubscription, ...], actual: list[Any]
           ) -> tuple[list[tuple[DesiredSubscription, Any | None]], list[Any]]:
    """Pair each desired subscription with an account one of the same URL (most shared events first)."""
    free = list(actual)
    pairs: list[tuple[DesiredSubscription, Any | None]] = []
    for d in wanted:
        same_url = [s for s in free if _normalize_webhook_url(s.webhook_url) == d.key]
        best = max(same_url, key=lambda s: (len(set(s.events) & set(d.events)), s.active, -len(free)), default=None)
        if best is not None:
            free.remove(best)
        pairs.append((d, best))
    return pairs, free


def _duplicate_of(sub: Any, others: Iterable[Any]) -> Any | None:
    for o in others:
        if o is not sub and _normalize_webhook_url(o.webhook_url) == _normalize_webhook_url(sub.webhook_url) \
                and (sub.api_version == "v3" or set(o.events) & set(sub.events)):
            return o
    return None


class Plan:
    """What applying a desired state would do: data first (``frame``, ``to_json``, a table), then ``apply``."""

    def __init__(self, desired: Desired, clients: Mapping[str, Any], changes: list[Change]) -> None:
        self.desired = desired
        self.clients = dict(clients)
        self.changes = changes

    @property
    def pending(self) -> list[Change]:
        """The rows that would change something (create, update, delete)."""
        return [c for c in self.changes if c.action != "leave"]

    @property
    def changed(self) -> bool:
        return bool(self.pending)

    def counts(self) -> dict[str, int]:
        return {a: sum(c.action == a for c in self.changes) for a in ACTIONS}

    def summary(self) -> str:
        n = self.counts()
        dups = sum(c.duplicate_of is not None for c in self.changes)
        text = f"{n['create']} to create, {n['update']} to update, {n['delete']} to delete, {n['leave']} left alone"
        return text + (f"; {dups} duplicate(s) on the account flagged" if dups else "")

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{"action": c.action, "api": c.api, "url": c.url, "id": c.id, "change": c.describe(),
                 "duplicate_of": c.duplicate_of, "note": c.note} for c in self.changes]
        return pd.DataFrame(rows, columns=["action", "api", "url", "id", "change", "duplicate_of", "note"])

    def to_json(self) -> str:
        return json.dumps({"source": self.desired.source, "managed": "full" if self.desired.full else "partial",
                           "changed": self.changed, "counts": self.counts(),
                           "changes": [c.as_dict() for c in self.changes]}, indent=2)

    def __str__(self) -> str:
        marks = {"create": "+", "update": "~", "delete": "-", "leave": " "}
        rows = [(marks[c.action] + " " + c.action, c.api, c.url, "" if c.id is None else str(c.id),
                 c.describe() + (f" (duplicate of {c.duplicate_of})" if c.duplicate_of is not None else "")
                 + (f"  [{c.note}]" if c.note else "")) for c in self.changes]
        head = ("action", "api", "url", "id", "change")
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head[:-1])]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head[:-1], widths, strict=True)) + "  " + head[-1]]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]
        return "\n".join([*lines, "", f"Plan: {self.summary()}."])

    def __repr__(self) -> str:
        return f"<Plan {self.summary()}>"

    def _repr_html_(self) -> str:
        colour = {"create": "#1a7f37", "update": "#9a6700", "delete": "#cf222e", "leave": "#57606a"}
        rows = "".join(
            f"<tr><td style='color:{colour[c.action]}'><b>{c.action}</b></td><td>{c.api}</td>"
            f"<td><code>{html.escape(c.url)}</code></td><td>{html.escape(str(c.id or ''))}</td>"
            f"<td>{html.escape(c.describe())}"
            + (f" <i>duplicate of {html.escape(str(c.duplicate_of))}</i>" if c.duplicate_of is not None else "")
            + f"</td><td>{html.escape(c.note)}</td></tr>" for c in self.changes)
        return (f"<div><b>Plan</b>: {html.escape(self.summary())}<table><tr><th>action</th><th>api</th><th>url</th>"
                f"<th>id</th><th>change</th><th>note</th></tr>{rows}</table></div>")

    def refresh(self) -> Plan:
        """The same desired state planned again against the account as it is now."""
        return plan(self.desired, next(iter(self.clients.values())))

    def apply(self, *, progress: Callable[[str], None] | bool = False) -> ApplyResult:
        """Carry out the plan: creates, then updates, then deletes; stop at the first failure.

        ``progress`` is a callable given one line per step (``True``: print them). Creates go through
        the client's create, which is never resent and finds what a lost answer created, so a plan never
        makes a duplicate. Returns an :class:`ApplyResult` (what was done, what failed, what was not done).
        """
        report = print if progress is True else (progress or (lambda line: None))
        todo = sorted(self.pending, key=lambda c: ("create", "update", "delete").index(c.action))
        result = ApplyResult(todo=todo)
        for i, change in enumerate(todo, 1):
            report(f"[{i}/{len(todo)}] {change.action} {change.api} {change.url} ...")
            try:
                change.id = self._apply_one(change) or change.id
            except (LinqError, DesiredStateError, OSError) as exc:
                result.failed = (change, exc)
                report(f"[{i}/{len(todo)}] failed: {exc}")
                result.not_done = todo[i:]
                break
            result.done.append(change)
            report(f"[{i}/{len(todo)}] done{'' if change.id is None else f' ({change.id})'}")
        return result

    def _apply_one(self, change: Change) -> int | str | None:
        client = self.clients[change.api]
        d = change.desired
        if change.action == "delete":
            client.delete_subscription(change.id)
            return None
        assert d is not None
        if change.api == "v2":
            secret = d.secret()
            if change.action == "create":
                return client.create_subscription(d.url, list(d.events), secret=secret, active=d.active).id
            kw: dict[str, Any] = {"events": list(d.events)} if "events" in change.diff else {}
            if "active" in change.diff:
                kw["active"] = d.active
            if "secret" in change.diff:
                kw["secret"] = secret
            client.update_subscription(change.id, **kw)
            return None
        if change.action == "create":
            sub = client.create_subscription(d.url, list(d.events), phone_numbers=d.phone_numbers)
            if d.secret_file:
                _save_secret(d.secret_file, sub.signing_secret)
            if not d.active:
                client.update_subscription(sub, is_active=False)
            return str(sub.id)
        kw3: dict[str, Any] = {}
        if "events" in change.diff:
            kw3["subscribed_events"] = list(d.events)
        if "active" in change.diff:
            kw3["is_active"] = d.active
        if "phone_numbers" in change.diff:
            kw3["phone_numbers"] = list(d.phone_numbers) if d.phone_numbers else None
        client.update_subscription(change.id, **kw3)
        return None


def _save_secret(path: str, secret: str | None) -> None:
    """Write a signing secret readable by its owner only (0600), atomically."""
    if not secret:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    os.replace(tmp, target)


@dataclass
class ApplyResult:
    """What ``Plan.apply`` did: ``done``, the one that ``failed`` (with its error), and ``not_done``."""

    todo: list[Change]
    done: list[Change] = field(default_factory=list)
    failed: tuple[Change, Exception] | None = None
    not_done: list[Change] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed is None

    def __str__(self) -> str:
        lines = [f"done ({len(self.done)}):"] + [f"  {c.action} {c.api} {c.url} {c.id or ''}" for c in self.done]
        if self.failed:
            change, exc = self.failed
            lines += [f"FAILED: {change.action} {change.api} {change.url}: {exc}"]  # a LinqError's ends with its hint
        lines += [f"not done ({len(self.not_done)}):"] + [f"  {c.action} {c.api} {c.url}" for c in self.not_done]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<ApplyResult {'ok' if self.ok else 'FAILED'}: {len(self.done)} done, "
                f"{len(self.not_done) + (not self.ok)} not done>")

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(str(self)) + "</pre>"


def plan(desired: str | Path | Mapping[str, Any] | Desired, client: Any) -> Plan:
    """Compare a desired state with the account behind ``client`` (either version's; the same token
    serves both) and return the :class:`Plan`. Nothing is changed.

    >>> p = plan("subscriptions.toml", connect())
    >>> p.changed, p.counts()
    (True, {'create': 2, 'update': 0, 'delete': 0, 'leave': 1})
    """
    wanted = desired if isinstance(desired, Desired) else load_desired(desired)
    clients = {api: client.for_api(api) for api in wanted.subscriptions}
    changes: list[Change] = []
    for api, subs in wanted.subscriptions.items():
        actual = clients[api].list_subscriptions()
        pairs, unmatched = _match(api, subs, actual)
        for d, sub in pairs:
            if d.secret_env or (d.secret_file and api == "v2"):
                d.secret()  # a missing reference is an error now, not halfway through apply
            if sub is None:
                changes.append(Change("create", api, d.url, events=d.events, desired=d,
                                      note="secret saved to " + d.secret_file if api == "v3" and d.secret_file
                                      else ""))
                continue
            now, want = _actual_fields(api, sub), _wanted_fields(d)
            diff = {k: (now[k], want[k]) for k in want if not _same(k, now[k], want[k])}
            if api == "v2" and (d.secret_env or d.secret_file) and not sub.secret_configured:
                diff["secret"] = ("none", "set")
            # A v2 secret that is set is not compared: Linq never shows it (rotate it with the client).
            note = ""
            if api == "v3" and d.secret_file and not Path(d.secret_file).exists():
                note = (f"secret_file {d.secret_file} is missing and v3 never shows the secret again: delete the "
                        "subscription and apply to get a new one")
            changes.append(Change("update" if diff else "leave", api, d.url, sub.id, diff, d.events, note=note,
                                  desired=d))
        for sub in unmatched:
            dup = _duplicate_of(sub, actual)
            if wanted.full:
                note = "duplicate: Linq delivers its events twice" if dup else "not in the file (managed = full)"
                changes.append(Change("delete", api, sub.webhook_url, sub.id, events=tuple(sub.events),
                                      duplicate_of=dup.id if dup else None, note=note))
            else:
                note = ("duplicate: Linq delivers its events twice; delete it or set managed = \"full\"" if dup
                        else "not in the file; left alone (managed = \"full\" would delete it)")
                changes.append(Change("leave", api, sub.webhook_url, sub.id, events=tuple(sub.events),
                                      duplicate_of=dup.id if dup else None, note=note))
    return Plan(wanted, clients, changes)
