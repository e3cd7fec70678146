"""The support app's widgets: :class:`SupportDashboard`, served by Voilà from ``apps/support.ipynb``.

Widgets arranged, no logic: every verdict, sentence and action comes from
:class:`linq_nb.support.SupportDesk`; these classes show them and wire the buttons.
Everything is a public attribute, so the dashboard can be driven from pytest::

    dash = SupportDashboard(SupportDesk(client), autostart=False)
    card = dash.cards[3]
    card.deactivate_button.click()
    card.title.value      # "... Switched off ..."
"""

from __future__ import annotations

import html
import os
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from .client import BASE_URL_ENV
from .errors import LinqError
from .support import LIVE_TEST_EVENTS, STATE_COLOURS, Outcome, SupportDesk, Triage
from .widgets import TokenInput

__all__ = ["SupportDashboard", "SubscriptionCard", "default_desk"]

_esc = html.escape
_KIND_COLOURS = {"ok": "#27ae60", "warn": "#d35400", "error": "#c0392b"}


def _note(text: str, kind: str = "info") -> str:
    colour = _KIND_COLOURS.get(kind)
    style = f"color:{colour}" if colour else "opacity:.75"
    return f'<span style="{style}">{_esc(text)}</span>'


def default_desk() -> SupportDesk:
    """The live API (or ``LINQ_API_BASE_URL``) when ``LINQ_INTEGRATION_TOKEN`` is set, else the demo account."""
    from .client import TOKEN_ENV, connect
    from .support import DemoAccount

    if (os.environ.get(TOKEN_ENV) or "").strip():
        return SupportDesk(connect())
    demo = DemoAccount()
    return SupportDesk(demo.client, demo=demo)


class SubscriptionCard(widgets.HBox):
    """One subscription: its state and what to check on the left, its attempts plot on the right.

    Attributes: ``title``, ``line`` (what to check), ``facts`` (HTML), ``plot`` (Image),
    ``activate_button``, ``deactivate_button`` (one of them is shown), ``test_button``, ``result``
    (what the last action did). ``triage`` is the :class:`~linq_nb.support.Triage` shown.
    """

    def __init__(self, sub_id: int, on_action: Callable[[int, str], None]) -> None:
        self.sub_id = sub_id
        self.triage: Triage | None = None
        self.title = widgets.HTML()
        self.line = widgets.HTML(layout=widgets.Layout(max_width="48em"))
        self.facts = widgets.HTML()
        self.plot = widgets.Image(format="png", layout=widgets.Layout(width="400px", min_width="300px"))
        self.activate_button = widgets.Button(description="Activate", icon="play", button_style="success",
                                              layout=widgets.Layout(width="auto"))
        self.deactivate_button = widgets.Button(description="Deactivate", icon="pause",
                                                layout=widgets.Layout(width="auto"))
        self.test_button = widgets.Button(description="Send a test event", icon="paper-plane",
                                          layout=widgets.Layout(width="auto"))
        self.result = widgets.HTML()
        self.activate_button.on_click(lambda _b: on_action(sub_id, "activate"))
        self.deactivate_button.on_click(lambda _b: on_action(sub_id, "deactivate"))
        self.test_button.on_click(lambda _b: on_action(sub_id, "test"))
        text = widgets.VBox(
            [self.title, self.line, self.facts,
             widgets.HBox([self.activate_button, self.deactivate_button, self.test_button]), self.result],
            layout=widgets.Layout(flex="1 1 auto", padding="0 12px 0 0"),
        )
        super().__init__([text, self.plot], layout=widgets.Layout(
            border="1px solid rgba(127,127,127,.35)", padding="8px 10px", margin="0 0 10px 0",
            align_items="center", width="100%"))
        self.add_class("linq-support-card")

    def show(self, t: Triage, png: bytes | None, *, test_events: bool) -> None:
        """Redraw for ``t`` (and its plot, when given)."""
        self.triage = t
        colour = STATE_COLOURS.get(t.status, "#95a5a6")
        self.layout.border_left = f"6px solid {colour}"
        badge = (f'<span class="linq-state" data-state="{_esc(t.status)}" style="background:{colour};color:white;'
                 f'border-radius:3px;padding:1px 8px;font-weight:bold">{_esc(t.title)}</span>')
        events = ", ".join(t.events) or "no events"
        self.title.value = (f'<div style="font-size:1.1em;line-height:1.6">{badge} <b>#{t.id}</b> '
                            f"<code>{_esc(t.webhook_url)}</code></div>"
                            f'<div style="opacity:.75;line-height:1.5">listens for: {_esc(events)}</div>')
        self.line.value = f'<div class="linq-triage" style="margin:4px 0;line-height:1.45">{_esc(t.line)}</div>'
        self.facts.value = f'<div style="opacity:.75;line-height:1.45">{_esc(" · ".join(t.facts))}</div>'
        self.activate_button.layout.display = "none" if t.active else ""
        self.deactivate_button.layout.display = "" if t.active else "none"
        self.test_button.disabled = not (test_events and t.active)
        self.test_button.tooltip = (LIVE_TEST_EVENTS if not test_events
                                    else "" if t.active else "Switched off: activate it first")
        if png is not None:
            self.plot.value = png

    def report(self, outcome: Outcome) -> None:
        self.result.value = (f'<div class="linq-result" style="line-height:1.45;max-width:48em">'
                             f"{_note(outcome.text, outcome.kind)}</div>")


class SupportDashboard(widgets.VBox):
    """Every subscription of one account, with its health, a plot, what to check and the actions.

    ``desk``: the :class:`~linq_nb.support.SupportDesk` to show (default :func:`default_desk`: the
    demo account unless ``LINQ_INTEGRATION_TOKEN`` is set). ``every``: seconds between automatic
    refreshes while ``auto`` is ticked; ``autostart=False`` refreshes once and starts no thread.

    Attributes: ``where`` (which account, in a sentence), ``base_url`` (Text) and ``token_input``
    (a :class:`~linq_nb.widgets.TokenInput`: a masked field, cleared when used) to look at another
    account, ``demo_button``, ``refresh_button``, ``auto`` (Checkbox), ``summary``, ``cards``
    (id -> :class:`SubscriptionCard`), ``status``.
    """

    def __init__(self, desk: SupportDesk | None = None, *, every: float = 10.0, autostart: bool = True,
                 **kwargs: Any) -> None:
        self.desk = desk if desk is not None else default_desk()
        self.every = float(every)
        self.cards: dict[int, SubscriptionCard] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

        self.heading = widgets.HTML('<h2 style="margin:0 0 4px 0">Webhook support desk</h2>')
        self.where = widgets.HTML()
        self.base_url = widgets.Text(description="Address",
                                     placeholder="empty for the live API, or a sandbox's, e.g. http://host:8765",
                                     layout=widgets.Layout(width="40em"))
        self.token_input = TokenInput(on_client=self._on_client)
        self.token_input.token.layout.width = "40em"
        self.token_input.token.placeholder = "paste the integration token"
        self.token_input.status.value = ""  # the explanation above says it for this page
        self.demo_button = widgets.Button(description="Back to the demo account", icon="undo",
                                          layout=widgets.Layout(width="auto"))
        connect = widgets.VBox([
            widgets.HTML(_note("Paste the customer's integration token to see their account. Leave the address "
                               "empty for the live API. The token is used for this page only: it is not shown, "
                               "saved or logged.")),
            self.base_url, self.token_input, self.demo_button])
        self.connect = widgets.Accordion(children=[connect], titles=("Look at another account",))
        self.connect.selected_index = None
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh", layout=widgets.Layout(width="auto"))
        self.auto = widgets.Checkbox(value=autostart, description=f"update every {self.every:g} s", indent=False,
                                     layout=widgets.Layout(width="auto"))
        self.updated = widgets.HTML()
        self.summary = widgets.HTML()
        self.status = widgets.HTML()
        self.card_box = widgets.VBox()

        self.base_url.observe(self._on_base_url, names="value")
        self.base_url.value = os.environ.get(BASE_URL_ENV, "")  # a classroom's shared sandbox, if one is set
        self.demo_button.on_click(self._on_demo)
        self.refresh_button.on_click(lambda _b: self.refresh(reorder=True))
        self.auto.observe(self._on_auto, names="value")

        super().__init__([
            self.heading, self.where, self.connect,
            widgets.HBox([self.refresh_button, self.auto, self.updated], layout=widgets.Layout(align_items="center")),
            self.summary, self.status, self.card_box,
        ], **kwargs)
        self.add_class("linq-support-dashboard")
        self._show_where()
        self.refresh()
        if autostart:
            self.start()

    # -- refreshing

    def refresh(self, *, reorder: bool = False) -> None:
        """List the account again and redraw every card.

        New subscriptions come in the desk's order (what needs a look first); cards already shown keep
        their place, so that a card does not jump away from the button just clicked, unless ``reorder``
        (the Refresh button) puts them all in the desk's order again.
        """
        with self._lock:
            try:
                triages = self.desk.refresh()
            except LinqError as exc:
                self.status.value = exc._repr_html_()
                return
            self.status.value = ""
            shown = {t.id for t in triages}
            for sub_id in [i for i in self.cards if i not in shown]:
                self.cards.pop(sub_id).close()
            for t in triages:
                card = self.cards.get(t.id)
                if card is None:
                    card = self.cards[t.id] = SubscriptionCard(t.id, self._on_action)
                card.show(t, self.desk.plot_png(t.id), test_events=self.desk.can_send_test_events)
            order = [t.id for t in triages]
            if not reorder:
                kept = [c.sub_id for c in self.card_box.children if c.sub_id in self.cards]
                order = kept + [i for i in order if i not in kept]
            self.card_box.children = tuple(self.cards[i] for i in order)
            self.summary.value = f'<div style="font-size:1.05em;margin:6px 0">{_esc(self.desk.summary())}</div>'
            if not self.desk.can_send_test_events:
                self.summary.value += f"<div>{_note(LIVE_TEST_EVENTS)}</div>"
            at = self.desk.refreshed_at
            self.updated.value = _note(f"updated {at:%H:%M:%S} UTC" if at else "")

    def _show_where(self) -> None:
        colour = "#c0392b" if self.desk.mode == "live" else "#2980b9"
        self.where.value = (f'<div class="linq-where" style="border-left:4px solid {colour};padding:2px 10px;'
                            f'margin:0 0 6px 0;line-height:1.5">{_esc(self.desk.where)}</div>')
        self.demo_button.layout.display = "none" if self.desk.mode == "demo" else ""

    # -- the background refresh

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Refresh every ``every`` seconds in a daemon thread (no-op when running)."""
        if self.running:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name="linq-nb-support", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing and wait for a refresh in progress."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        self._thread = None

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.every):
            try:
                self.refresh()
            except Exception as exc:  # keep going, and say so instead of dying silently
                self.status.value = _note(f"Could not refresh: {type(exc).__name__}: {exc}", "error")

    def close(self) -> None:
        """Stop the thread, close the desk (and its demo account) and the widgets."""
        self.stop()
        self.desk.close()
        for card in self.cards.values():
            card.close()
        super().close()

    # -- handlers

    def _on_auto(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.start()
        else:
            self.stop()

    def _on_action(self, sub_id: int, action: str) -> None:
        card = self.cards.get(sub_id)
        if card is None:
            return
        if action == "test":
            card.report(Outcome("info", "Sending a test event and waiting for the endpoint's answer…"))
        with self._lock:
            if action == "test":
                outcome = self.desk.send_test_event(sub_id)
            else:
                outcome = self.desk.set_active(sub_id, action == "activate")
            self.refresh()
        card.report(outcome)

    def _on_base_url(self, change: dict[str, Any]) -> None:
        self.token_input.base_url = str(change["new"]).strip() or None

    def _switch(self, desk: SupportDesk) -> None:
        with self._lock:
            old, self.desk = self.desk, desk
            for card in self.cards.values():
                card.close()
            self.cards.clear()
            self.card_box.children = ()
            old.close()
            self._show_where()
            self.refresh()

    def _on_client(self, client: Any) -> None:
        self._switch(SupportDesk(client))
        self.connect.selected_index = None

    def _on_demo(self, _button: object = None) -> None:
        from .support import DemoAccount

        self.status.value = _note("Starting the demo account…")
        demo = DemoAccount()
        self._switch(SupportDesk(demo.client, demo=demo))
        self.token_input.status.value = ""

    def __repr__(self) -> str:
        return f"SupportDashboard({self.desk.mode}, {len(self.cards)} subscriptions)"
