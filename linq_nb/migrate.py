"""The v2 -> v3 move as a plan: a proposal first, then explicit, resumable, undoable steps.

>>> import linq_nb
>>> m = linq_nb.migrate_v2_to_v3(linq_nb.connect(), state="migration.json")
>>> m                         # the proposed v3 subscriptions, and every event mapping that needs a decision
>>> m.decide("contact.created", [])              # no v3 twin: drop it (or name v3 events to take instead)
>>> m.create_v3(secrets_dir="secrets/")          # each signing_secret saved once, mode 0600
>>> receiver.add_secret(...)                     # the receiver verifies both schemes; Deduplicator drops twins
>>> m.confirm_v3(receiver)                       # every active v3 subscription has a verified delivery
>>> m.deactivate_v2(); m.delete_v2(soak=24 * 3600)
>>> m.undo()                                     # undoes the last step done

Steps, in order: ``create_v3``, ``side_by_side``, ``confirm_v3``, ``deactivate_v2``, ``delete_v2``. Their
state is a small JSON file (no secret in it: only where each was saved); a step already done is not done
again, a step interrupted half way picks up where it stopped, and :meth:`Migration.undo` rolls back the
last step done. The same token works on both versions, so one client serves the whole move.

v3 allows one subscription per ``target_url``, so v2 subscriptions sharing a URL become one v3
subscription with the union of their events; an inactive v2 subscription stays inactive in v3 (v3's
create has no ``is_active``: it is created, then deactivated at once). While both run, an event arrives
twice (once per version, under different event ids): :class:`Deduplicator` passes it on once.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import catalog
from .client import _normalize_webhook_url
from .errors import LinqError
from .plans import _save_secret

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Migration", "MigrationError", "Deduplicator", "dedupe_key", "migrate_v2_to_v3", "STEPS"]

STEPS = ("create_v3", "side_by_side", "confirm_v3", "deactivate_v2", "delete_v2")


class MigrationError(LinqError):
    """A migration step cannot run (yet); the message says why and the hint what to do."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ProposedV3:
    """One v3 subscription the migration would create, and the v2 subscriptions it replaces."""

    url: str
    events: tuple[str, ...]
    active: bool
    v2_ids: tuple[int, ...]
    note: str = ""


def _slug(url: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", url.split("://", 1)[-1]).strip("-")[:80] or "subscription"


class Migration:
    """The move of one account's v2 subscriptions to v3; see the module's docstring."""

    def __init__(self, client: Any, state: str | Path, *, decisions: Mapping[str, Iterable[str]] | None = None
                 ) -> None:
        self.v2 = client.for_api("v2")
        self.v3 = client.for_api("v3")
        self.state_path = Path(state)
        if self.state_path.exists():
            self.state: dict[str, Any] = json.loads(self.state_path.read_text(encoding="utf-8"))
        else:
            snapshot = [{"id": s.id, "url": s.webhook_url, "events": list(s.events), "active": s.active,
                         "secret_configured": s.secret_configured} for s in self.v2.list_subscriptions()]
            self.state = {"v2": snapshot, "decisions": {}, "steps": {}, "started_at": _now()}
        for name, events in (decisions or {}).items():
            self.decide(name, events, save=False)
        self._save()

    # ------------------------------------------------------------------ the proposal

    def mapping(self) -> list[dict[str, Any]]:
        """Each v2 event in use: its v3 event(s), the confidence, and whether it waits for a decision."""
        used = dict.fromkeys(e for s in self.state["v2"] for e in s["events"])
        rows = []
        table = catalog.v2_to_v3()
        for name in used:
            entry = table[name]
            decided = self.state["decisions"].get(name)
            certain = entry["confidence"] in ("exact", "renamed")
            rows.append({"v2_event": name, "v3_events": tuple(decided if decided is not None else entry["v3"]),
                         "confidence": entry["confidence"], "needs_decision": not certain and decided is None,
                         "decided": decided is not None, "note": entry["note"]})
        return rows

    @property
    def undecided(self) -> list[str]:
        """v2 events mapped with confidence ``split`` or ``none`` that no :meth:`decide` has settled yet."""
        return [r["v2_event"] for r in self.mapping() if r["needs_decision"]]

    def decide(self, v2_event: str, v3_events: Iterable[str], *, save: bool = True) -> None:
        """Settle an uncertain mapping: ``v3_events`` (``[]`` drops the event: v3 will not send it)."""
        if v2_event not in catalog.v2_to_v3():
            raise MigrationError(f"{v2_event!r} is not a v2 event", hint="See migration.mapping().")
        chosen = list(dict.fromkeys(v3_events))
        bad = [e for e in chosen if e not in catalog.load("v3")]
        if bad:
            raise MigrationError(f"{', '.join(bad)} not v3 event name(s)", hint="catalog.load('v3').names lists them.")
        if "create_v3" in self.state["steps"]:
            raise MigrationError("the v3 subscriptions are created: a decision now would not reach them",
                                 hint="migration.undo() the create_v3 step first, then decide again.")
        self.state["decisions"][v2_event] = chosen
        if save:
            self._save()

    def proposal(self) -> list[ProposedV3]:
        """The v3 subscriptions to create: one per URL, events mapped, inactive kept inactive."""
        mapped = {r["v2_event"]: r["v3_events"] for r in self.mapping()}
        groups: dict[str, list[dict[str, Any]]] = {}
        for s in self.state["v2"]:
            groups.setdefault(_normalize_webhook_url(s["url"]), []).append(s)
        out = []
        for subs in groups.values():
            active = [s for s in subs if s["active"]]
            source = active or subs  # an inactive one's events do not join an active URL's
            events = tuple(dict.fromkeys(e3 for s in source for e2 in s["events"] for e3 in mapped[e2]))
            notes = []
            if len(subs) > 1:
                notes.append(f"merges v2 {', '.join(str(s['id']) for s in subs)} (v3 allows one per URL)")
            if not events:
                notes.append("no v3 event left after the decisions: no v3 subscription")
            elif not active:
                notes.append("inactive in v2: created inactive")
            elif len(active) < len(subs):
                notes.append(f"v2 {', '.join(str(s['id']) for s in subs if not s['active'])} inactive: not merged")
            out.append(ProposedV3(subs[0]["url"], events, bool(active), tuple(s["id"] for s in subs),
                                  "; ".join(notes)))
        return out

    # ------------------------------------------------------------------ the steps

    def done(self, step: str) -> bool:
        return bool(self.state["steps"].get(step, {}).get("done_at"))

    def _need(self, step: str, before: str) -> None:
        if not self.done(before):
            raise MigrationError(f"{step} comes after {before}, which is not done yet",
                                 hint=f"Run migration.{before}(...) first.")

    def _record(self, step: str) -> dict[str, Any]:
        record: dict[str, Any] = self.state["steps"].setdefault(step, {})
        return record

    def create_v3(self, *, secrets_dir: str | Path | None = None,
                  save_secret: Callable[[str, str], str] | None = None) -> list[str]:
        """Create the proposed v3 subscriptions and save each ``signing_secret`` once.

        ``secrets_dir``: each secret goes to ``<dir>/<url slug>.whsec`` (mode 0600). Or ``save_secret(url,
        secret)`` stores it and returns where (for the state file). Returns the v3 ids; a URL already
        done is skipped, so rerunning after a failure finishes the rest.
        """
        if self.undecided:
            raise MigrationError(f"mappings wait for a decision: {', '.join(self.undecided)}",
                                 hint="migration.decide(v2_event, [v3 events]) each ([] drops it); "
                                      "migration.mapping() shows the options.")
        if secrets_dir is None and save_secret is None:
            raise MigrationError("say where to save the signing secrets (v3 shows each once, at create)",
                                 hint="create_v3(secrets_dir='secrets/') or create_v3(save_secret=callable).")
        record = self._record("create_v3")
        created: dict[str, dict[str, Any]] = record.setdefault("created", {})
        for p in self.proposal():
            if p.url in created:
                continue
            if not p.events:
                created[p.url] = {"id": None, "note": "no v3 events left after the decisions: not created"}
                continue
            try:
                sub = self.v3.create_subscription(p.url, list(p.events))
            except LinqError as exc:
                lost = getattr(exc, "subscription", None)
                if lost is not None:  # made, but its secret was in the lost answer
                    created[p.url] = {"id": lost.id, "secret": None}
                    self._save()
                    raise MigrationError(f"{p.url}: {exc.message}",
                                         hint="migration.undo() deletes what was created; then run create_v3 "
                                              "again.") from None
                self._save()
                raise
            secret = sub.signing_secret or ""
            if save_secret is not None:
                where = save_secret(p.url, secret)
            else:
                where = str(Path(secrets_dir or ".") / f"{_slug(p.url)}.whsec")
                _save_secret(where, secret)
            created[p.url] = {"id": sub.id, "secret": where}
            self._save()
            if not p.active:
                self.v3.update_subscription(sub, is_active=False)
        record["done_at"] = _now()
        self._save()
        return [c["id"] for c in created.values() if c["id"]]

    def secrets(self) -> dict[str, str]:
        """v3 id -> where its signing secret was saved (the paths the state file keeps)."""
        created = self.state["steps"].get("create_v3", {}).get("created", {})
        return {c["id"]: c["secret"] for c in created.values() if c.get("id") and c.get("secret")}

    def side_by_side(self, receiver: Any = None) -> None:
        """Both versions deliver now. Given a :class:`Receiver`, adds the saved v3 secrets to it."""
        self._need("side_by_side", "create_v3")
        if receiver is not None:
            for where in self.secrets().values():
                if Path(where).exists():
                    receiver.add_secret(Path(where).read_text(encoding="utf-8").strip())
        self._record("side_by_side")["done_at"] = _now()
        self._save()

    def v3_ids(self, *, active_only: bool = False) -> list[str]:
        created = self.state["steps"].get("create_v3", {}).get("created", {})
        active = {p.url for p in self.proposal() if p.active}
        return [c["id"] for url, c in created.items() if c.get("id") and (url in active or not active_only)]

    def unconfirmed(self, evidence: Any = None) -> list[str]:
        """Active v3 subscriptions with no verified, accepted delivery yet, per ``evidence`` (a Receiver,
        or ids that were seen); without evidence, the sandbox's attempt log (sandbox mode only)."""
        seen: set[str] = set()
        if evidence is None:
            for sub_id in self.v3_ids(active_only=True):
                page = self.v3.sandbox_route("GET", f"/_sandbox/deliveries?subscription_id={sub_id}")
                if any(d.get("ok") for d in page.get("deliveries", [])):
                    seen.add(sub_id)
        elif hasattr(evidence, "requests"):
            seen = {str(r["subscription_id"]) for r in evidence.requests if r.get("status") == 200
                    and r.get("verified") is not False}
        else:
            seen = {str(x) for x in evidence}
        return [i for i in self.v3_ids(active_only=True) if i not in seen]

    def confirm_v3(self, evidence: Any = None) -> None:
        """Check that every active v3 subscription has had a delivery accepted; MigrationError if not."""
        self._need("confirm_v3", "side_by_side")
        missing = self.unconfirmed(evidence)
        if missing:
            raise MigrationError(f"no accepted v3 delivery yet for {', '.join(missing)}",
                                 hint="Wait for (or trigger) an event those subscriptions get, then confirm again; "
                                      "a 401 at the receiver means it lacks that subscription's signing secret.")
        self._record("confirm_v3")["done_at"] = _now()
        self._save()

    def deactivate_v2(self) -> list[int]:
        """Deactivate the v2 subscriptions that were active (only those: undo reactivates them)."""
        self._need("deactivate_v2", "confirm_v3")
        record = self._record("deactivate_v2")
        done: list[int] = record.setdefault("ids", [])
        for s in self.state["v2"]:
            if s["active"] and s["id"] not in done:
                self.v2.update_subscription(s["id"], active=False)
                done.append(s["id"])
                self._save()
        record["done_at"] = _now()
        self._save()
        return list(done)

    def delete_v2(self, *, soak: float) -> list[int]:
        """Delete the v2 subscriptions once ``soak`` seconds have passed since they were deactivated."""
        self._need("delete_v2", "deactivate_v2")
        since = datetime.fromisoformat(self.state["steps"]["deactivate_v2"]["done_at"])
        left = soak - (datetime.now(timezone.utc) - since).total_seconds()
        if left > 0:
            raise MigrationError(f"the soak is not over: {left:.0f} s left of {soak:g} s",
                                 hint="Wait, and watch that nothing is missed while v2 is off, then run it again.")
        record = self._record("delete_v2")
        done: list[int] = record.setdefault("ids", [])
        for s in self.state["v2"]:
            if s["id"] not in done:
                try:
                    self.v2.delete_subscription(s["id"])
                except LinqError as exc:
                    if getattr(exc, "status", None) != 404:
                        self._save()
                        raise
                done.append(s["id"])
                self._save()
        record["done_at"] = _now()
        self._save()
        return list(done)

    # ------------------------------------------------------------------ undo and display

    @property
    def last_done(self) -> str | None:
        started = [s for s in STEPS if s in self.state["steps"]]
        return started[-1] if started else None

    def undo(self, *, v2_secret: str | None = None) -> str | None:
        """Roll back the last step done (or half done); returns its name, None if nothing is left.

        Undoing ``delete_v2`` recreates the v2 subscriptions (inactive, as they were): v2 never shows
        a secret, so pass ``v2_secret`` to set one.
        """
        step = self.last_done
        record = self.state["steps"].get(step or "", {})
        if step == "create_v3":
            for url, c in list(record.get("created", {}).items()):
                if c.get("id"):
                    try:
                        self.v3.delete_subscription(c["id"])
                    except LinqError as exc:
                        if getattr(exc, "status", None) != 404:
                            raise
                del record["created"][url]
                self._save()
        elif step == "deactivate_v2":
            for sub_id in list(record.get("ids", [])):
                self.v2.update_subscription(sub_id, active=True)
                record["ids"].remove(sub_id)
                self._save()
        elif step == "delete_v2":
            by_id = {s["id"]: s for s in self.state["v2"]}
            for old in list(record.get("ids", [])):
                s = by_id[old]
                new = self.v2.create_subscription(s["url"], s["events"], secret=v2_secret, active=False,
                                                  allow_duplicate=True)
                s["id"] = new.id
                self.state["steps"]["deactivate_v2"]["ids"] = [
                    new.id if i == old else i for i in self.state["steps"]["deactivate_v2"].get("ids", [])]
                record["ids"].remove(old)
                self._save()
        if step is not None:
            del self.state["steps"][step]
            self._save()
        return step

    def status(self) -> list[dict[str, Any]]:
        return [{"step": s, "done_at": self.state["steps"].get(s, {}).get("done_at"),
                 "state": "done" if self.done(s) else "started" if s in self.state["steps"] else "to do"}
                for s in STEPS]

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([{"target_url": p.url, "subscribed_events": ", ".join(p.events), "is_active": p.active,
                              "v2_ids": ", ".join(map(str, p.v2_ids)), "note": p.note} for p in self.proposal()])

    def __str__(self) -> str:
        lines = ["Proposed v3 subscriptions:"]
        lines += [f"  {p.url}  [{', '.join(p.events) or 'no events'}]{'' if p.active else ' (inactive)'}"
                  f"{'  ' + p.note if p.note else ''}" for p in self.proposal()]
        lines.append("Event mapping:")
        lines += [f"  {r['v2_event']} -> {', '.join(r['v3_events']) or '(none)'}  {r['confidence']}"
                  f"{'  NEEDS A DECISION' if r['needs_decision'] else '  decided' if r['decided'] else ''}"
                  for r in self.mapping()]
        lines.append("Steps:")
        lines += [f"  {s['step']:<14} {s['state']}" for s in self.status()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Migration {self.state_path} next={next((s for s in STEPS if not self.done(s)), 'finished')}>"

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(str(self)) + "</pre>"

    def _save(self) -> None:
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps(self.state, indent=2), encoding="utf-8")
        os.replace(tmp, self.state_path)


def migrate_v2_to_v3(client: Any, state: str | Path = "linq-migration.json", *,
                     decisions: Mapping[str, Iterable[str]] | None = None) -> Migration:
    """The :class:`Migration` of ``client``'s account (either version's client: the same token serves both),
    resumed from ``state`` when that file exists."""
    return Migration(client, state, decisions=decisions)


# --------------------------------------------------------------------------- de-duplication


def dedupe_key(envelope: Mapping[str, Any]) -> tuple[str, str]:
    """What makes two deliveries the same event across versions: the event under its v3 name and its object's
    id (``data.id``); the event id when the data has none (each version gives an event its own id)."""
    name = str(envelope.get("event_type"))
    data = envelope.get("data")
    object_id = data.get("id") if isinstance(data, Mapping) else None
    return (catalog.name_in("v3", name) or name, str(object_id if object_id is not None else envelope.get("event_id")))


class Deduplicator:
    """Passes each event on once while v2 and v3 both deliver it: ``accept(envelope)`` is True the first time.

    >>> app = Deduplicator()
    >>> [e for e in receiver.events if app.accept(e)]    # what the application handles
    """

    def __init__(self, key: Callable[[Mapping[str, Any]], Any] = dedupe_key, history: int = 100_000) -> None:
        self.key = key
        self.history = history
        self._seen: dict[Any, None] = {}
        self.twins = 0

    def accept(self, envelope: Mapping[str, Any]) -> bool:
        k = self.key(envelope)
        if k in self._seen:
            self.twins += 1
            return False
        self._seen[k] = None
        if len(self._seen) > self.history:
            del self._seen[next(iter(self._seen))]
        return True

    def __call__(self, envelopes: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        return [e for e in envelopes if self.accept(e)]


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``check`` until True or ``timeout`` s pass (for notebooks and tests waiting on deliveries)."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True
