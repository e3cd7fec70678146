"""Jupyter widgets: a token field, a subscription form, an account manager and a live delivery view.

Each widget is a composite ``ipywidgets.VBox`` that owns its children and its
``_on_*`` handlers, in the style of the ipywidgets tutorial and ipyfilechooser.
They make no HTTP request of their own: every call goes through the
:class:`~linq_nb.client.LinqClient` they are given (live or sandbox), so they
work unchanged against the embedded sandbox, a classroom sandbox or the live API.

Everything a notebook or a test needs is a public attribute, so a widget can be
driven without a browser::

    form = SubscriptionForm(client)
    form.url.value = "https://example.com/webhooks/linq"
    form.events.value = ("message.received",)
    form.submit.click()
    form.result          # the WebhookSubscription, once created

Callbacks report into the widget's own ``HTML`` (``.value``) or ``Output``
(``append_display_data``) children, kernel-side, never by printing, so the
browser and nbval see the same thing. No token or webhook secret ever appears in
any of them: the token field is cleared as soon as it is used, and a secret lives
only in its password field (and in the read-only "reveal" field while the reveal
toggle is on) until it has been sent.
"""

from __future__ import annotations

import html
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import ipywidgets as widgets
from IPython.display import HTML

from .errors import AuthenticationError, DuplicateSubscriptionError, LinqError, NotFoundError
from .events import EVENTS
from .models import WebhookSubscription, humanize_since
from .validation import is_loopback_url, url_problems

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import pandas as pd

    from .client import LinqClient
    from .receiver import Receiver

__all__ = ["TokenInput", "token_input", "SubscriptionForm", "SubscriptionManager", "DeliveryView"]

_OK = "#27ae60"
_WARN = "#d35400"
_ERR = "#c0392b"
_MASK = "[secure]"
#: Secrets shorter than this are not scrubbed out of text (replacing one or two
#: characters would mangle the HTML around them); they are never put there anyway.
_MIN_SCRUB = 6

_esc = html.escape
_PREVIEW_NOTE = (
    '<span style="opacity:.75">The token is shown as &lt;X-LINQ-INTEGRATION-TOKEN&gt;, the form Linq\'s docs use; '
    "a webhook secret is masked too. Nothing was sent.</span>"
)


def _note(text: str, kind: str = "info") -> str:
    """One short line of HTML in the colour of its kind (info, ok, warn, error)."""
    colour = {"ok": _OK, "warn": _WARN, "error": _ERR}.get(kind)
    style = f"color:{colour}" if colour else "opacity:.75"
    return f'<span style="{style}">{_esc(text)}</span>'


def _auto() -> widgets.Layout:
    """A layout as wide as the content (for buttons whose label is longer than the default width)."""
    return widgets.Layout(width="auto")


def _button_layout() -> widgets.Layout:
    """As wide as the label, and never squeezed below it by a neighbour (``Create subscri…``)."""
    return widgets.Layout(width="auto", flex="0 0 auto")


#: How the form names the API's fields in messages: the labels a person sees, not the code's names.
_FIELD_LABELS = (("webhook_url", "Webhook URL"), ("events", "Events"), ("secret", "Secret"))


def _in_form_terms(message: str) -> str:
    """``"webhook_url 'x' must ..."`` as ``"Webhook URL 'x' must ..."``: a message in the form's words."""
    for name, label in _FIELD_LABELS:
        if message.startswith(name + " "):
            return label + message[len(name):]
    return message


def _show(widget: widgets.Widget, visible: bool) -> None:
    widget.layout.display = "" if visible else "none"


def _client_label(client: object) -> str:
    """``"sandbox · http://127.0.0.1:8765"``: the client's mode and base URL, never its token."""
    mode = getattr(client, "mode", "?")
    base_url = getattr(client, "base_url", "?")
    return f"{mode} · {base_url}"


def _catalogue(client: object) -> dict[str, str]:
    """The client's API version's events, name -> meaning (v2's ``EVENTS`` for anything without a wire module)."""
    cat = getattr(getattr(client, "wire", None), "catalog", None)
    return {name: cat.description(name) for name in cat.names} if cat is not None else EVENTS


def _event_options(client: object = None) -> list[tuple[str, str]]:
    """(label, value) pairs for the events picker: ``"message.sent — A Linq user sent a message"``."""
    return [(f"{name} — {meaning}", name) for name, meaning in _catalogue(client).items()]


_V2_FORM_FIELDS = {
    "create": {"secret": "secret", "active": "active", "allow_duplicate": "allow_duplicate"},
    "update": {"url": "webhook_url", "events": "events", "active": "active", "secret": "secret"},
}


def _form_fields(client: object, operation: str) -> Mapping[str, str]:
    """The client's keyword names for a form's fields (``client.FORM_FIELDS``: v2's and v3's differ)."""
    return getattr(client, "FORM_FIELDS", _V2_FORM_FIELDS)[operation]


def _kwargs(client: object, operation: str, **values: Any) -> dict[str, Any]:
    """``values`` under the client's keyword names for ``operation``; the ones its version does not take left out."""
    names = _form_fields(client, operation)
    return {names[k]: v for k, v in values.items() if k in names}


# --------------------------------------------------------------------------- token


class TokenInput(widgets.VBox):
    """A password field to paste a Linq integration token for this kernel only.

    Clicking "Use this token" builds a :class:`~linq_nb.client.LinqClient` from it
    (``.client``), clears the field at once and keeps the token nowhere in any
    widget. With ``verify=True`` (the default) it lists the subscriptions once to
    check the token, and refuses a token the API rejects.

    Attributes: ``token`` (Password), ``use_button`` (Button), ``status`` (HTML),
    ``client`` (the LinqClient, or None until a token is accepted).
    """

    def __init__(self, *, base_url: str | None = None, verify: bool = True,
                 on_client: Callable[[LinqClient], Any] | None = None, **kwargs: Any) -> None:
        self.base_url = base_url
        self.verify = verify
        self.client: LinqClient | None = None
        self._callbacks: list[Callable[[LinqClient], Any]] = [on_client] if on_client else []
        self.token = widgets.Password(
            description="Token",
            placeholder="paste your Linq integration token (kept for this kernel only)",
            layout=widgets.Layout(width="28em"),
        )
        self.use_button = widgets.Button(description="Use this token", button_style="primary", icon="key",
                                         layout=_auto())
        self.status = widgets.HTML(
            _note("Without a token, linq_nb uses the built-in sandbox. Paste a token to use the live API.")
        )
        self.use_button.on_click(self._on_use)
        super().__init__(children=[widgets.HBox([self.token, self.use_button]), self.status], **kwargs)

    def on_client(self, callback: Callable[[LinqClient], Any]) -> None:
        """Call ``callback(client)`` each time a token is accepted."""
        self._callbacks.append(callback)

    def _on_use(self, _button: object = None) -> None:
        token = self.token.value.strip()
        self.token.value = ""  # first, whatever happens next
        if not token:
            self.status.value = _note("Paste a token into the field first.", "warn")
            return
        from .client import LinqClient

        try:
            client = LinqClient(token=token, base_url=self.base_url)
        except LinqError as exc:
            self.status.value = exc._repr_html_()
            return
        finally:
            del token
        host = urlsplit(str(client.base_url)).netloc or str(client.base_url)
        detail = ""
        if self.verify:
            try:
                count = len(client.list_subscriptions())
            except AuthenticationError as exc:
                client.close()
                self.status.value = _note("That token was refused; nothing was switched.", "error") + exc._repr_html_()
                return
            except LinqError as exc:
                detail = " The token could not be checked yet:" + exc._repr_html_()
            else:
                detail = _esc(f" Token accepted: {count} subscription{'s' if count != 1 else ''} on this account.")
        self.client = client
        self.status.value = (
            _note(f"Switched to {client.mode} mode ({host}) for this kernel.", "ok")
            + detail
            + " "
            + _note("The token is not kept in this widget.")
        )
        for callback in list(self._callbacks):
            callback(client)

    def __repr__(self) -> str:
        state = f"client={_client_label(self.client)}" if self.client is not None else "no token used yet"
        return f"TokenInput({state})"


def token_input(*, base_url: str | None = None, verify: bool = True,
                on_client: Callable[[LinqClient], Any] | None = None) -> TokenInput:
    """A :class:`TokenInput`: paste a live token, click, and use ``.client``.

    ``base_url`` defaults to ``LINQ_API_BASE_URL`` or the live API, as for ``LinqClient``.
    """
    return TokenInput(base_url=base_url, verify=verify, on_client=on_client)


# --------------------------------------------------------------------------- form


class SubscriptionForm(widgets.VBox):
    """Create a webhook subscription, or edit one when ``subscription`` is given.

    Validates as you type: ``submit`` stays disabled, with the reason in
    ``reason``, while the URL is not an absolute http(s) URL, no event is chosen,
    or a request is in flight. Before creating, it asks the client for
    subscriptions with the same URL and overlapping events; if there are any it
    shows them (``.duplicates``) and only ``create_anyway`` creates a second one.
    ``preview_button`` shows the exact request (JSON body and curl, token and
    secret masked). On success ``result`` holds the
    :class:`~linq_nb.models.WebhookSubscription`, shown as a card; on an error the
    server's messages appear next to the fields and in ``status``, and every
    typed value is kept. In edit mode an empty secret keeps the stored one.

    Child widgets: ``url``, ``events``, ``secret``, ``generate``, ``reveal``,
    ``revealed``, ``active``, ``submit``, ``reason``, ``preview_button``,
    ``create_anyway``, ``url_message``, ``events_message``, ``status``, ``output``.

    With a v3 client (``connect(api="v3")``) the events are v3's, and the fields v3 does not
    take are hidden (its ``FORM_FIELDS`` say which): no secret (Linq makes the signing secret;
    ``result.signing_secret`` has it, this once), no Active box when creating, and no "Create
    anyway" (v3 allows each URL once per account).
    """

    def __init__(self, client: LinqClient, subscription: WebhookSubscription | None = None, *,
                 on_success: Callable[[WebhookSubscription], Any] | None = None, **kwargs: Any) -> None:
        self.client = client
        self.subscription = subscription
        self.result: WebhookSubscription | None = None
        self.duplicates: list[tuple[WebhookSubscription, list[str]]] = []
        self.error: LinqError | None = None
        self._in_flight = False
        self._server_messages: dict[str, list[str]] = {}
        self._callbacks: list[Callable[[WebhookSubscription], Any]] = [on_success] if on_success else []

        wide = widgets.Layout(width="40em")
        label = {"description_width": "7em"}
        self.title = widgets.HTML()
        self.url = widgets.Text(description="Webhook URL", placeholder="https://example.com/webhooks/linq",
                                continuous_update=True, layout=wide, style=label)
        self.url_message = widgets.HTML()
        catalogue = _catalogue(client)
        self.events = widgets.SelectMultiple(options=_event_options(client), rows=min(len(catalogue), 14),
                                             description="Events",
                                             layout=widgets.Layout(width="40em"), style=label)
        self.events_message = widgets.HTML()
        self.secret = widgets.Password(description="Secret", layout=widgets.Layout(width="28em"), style=label)
        self.generate = widgets.Button(description="Generate", icon="random",
                                       tooltip="Fill in a new random secret (secrets.token_urlsafe)")
        self.reveal = widgets.ToggleButton(description="Reveal", icon="eye", value=False,
                                           tooltip="Show the secret in a read-only field while toggled on")
        self.revealed = widgets.Text(disabled=True, description="Secret is", layout=widgets.Layout(width="28em"),
                                     style=label)
        self.active = widgets.Checkbox(description="Active (receives events)", value=True, indent=False)
        self.submit = widgets.Button(layout=_button_layout(), button_style="primary", icon="check")
        self.reason = widgets.HTML()
        self.preview_button = widgets.Button(layout=_button_layout(), description="Preview request", icon="eye",
                                             tooltip="Show the JSON body and the equivalent curl command")
        self.create_anyway = widgets.Button(layout=_button_layout(), description="Create anyway",
                                            button_style="warning",
                                            icon="clone",
                                            tooltip="Create a second subscription with the same URL and events")
        self.status = widgets.HTML()
        self.output = widgets.Output()

        if subscription is None:
            self.title.value = f"<b>New webhook subscription</b> {_note(_client_label(client))}"
            self.submit.description = "Create subscription"
            self.secret.placeholder = "optional: deliveries are signed when set"
        else:
            self.title.value = (f"<b>Edit webhook subscription #{subscription.id}</b> "
                                f"{_note(_client_label(client))}")
            self.submit.description = "Save changes"
            self.url.value = subscription.webhook_url
            self.events.value = tuple(e for e in subscription.events if e in catalogue)
            self.active.value = subscription.active
            self.secret.placeholder = ("stored; leave empty to keep it" if subscription.secret_configured
                                       else "none; leave empty for unsigned deliveries")
        _show(self.revealed, False)
        _show(self.create_anyway, False)
        # v3 makes the signing secret itself (the created subscription carries it, once) and creates only
        # active subscriptions: the fields its version does not take are hidden.
        operation = "create" if subscription is None else "update"
        takes = _form_fields(client, operation)
        if "secret" not in takes:
            self.secret.placeholder = "made by Linq: the created subscription shows it once"
            for child in (self.secret, self.generate, self.reveal):
                _show(child, False)
        _show(self.active, "active" in takes)

        self.url.observe(self._on_url_change, names="value")
        self.events.observe(self._on_events_change, names="value")
        self.secret.observe(self._on_secret_change, names="value")
        self.reveal.observe(self._on_reveal, names="value")
        self.generate.on_click(self._on_generate)
        self.submit.on_click(self._on_submit)
        self.create_anyway.on_click(self._on_create_anyway)
        self.preview_button.on_click(self._on_preview)

        super().__init__(children=[
            self.title,
            self.url, self.url_message,
            self.events, self.events_message,
            widgets.HBox([self.secret, self.generate, self.reveal]), self.revealed,
            self.active,
            widgets.HBox([self.submit, self.preview_button, self.create_anyway],
                         layout=widgets.Layout(flex_flow="row wrap")),
            self.reason,
            self.status,
            self.output,
        ], **kwargs)
        self._update()

    # -- public helpers

    @property
    def editing(self) -> bool:
        """True in edit mode (a subscription was given)."""
        return self.subscription is not None

    def on_success(self, callback: Callable[[WebhookSubscription], Any]) -> None:
        """Call ``callback(subscription)`` after each successful create or update."""
        self._callbacks.append(callback)

    def problems(self) -> list[str]:
        """Why the form cannot be sent right now (empty when it can)."""
        found: list[str] = []
        if self._in_flight:
            found.append("A request is in flight; wait for its answer.")
        url = self.url.value.strip()
        if not url:
            found.append("Enter the Webhook URL above: an absolute http(s) URL such as https://example.com/webhooks/linq.")
        else:
            found += [_in_form_terms(p) for p in url_problems(url)]
        if not self.events.value:
            found.append("Choose at least one event.")
        return found

    # -- validation as you type

    def _on_url_change(self, _change: object = None) -> None:
        trimmed = self.url.value.strip()
        if trimmed != self.url.value:  # pasted with spaces or a newline around it: keep only the URL
            self.url.value = trimmed  # observed again, and handled then
            return
        self._server_messages.pop("url", None)
        self._forget_duplicates()
        self._update()

    def _on_events_change(self, _change: object = None) -> None:
        self._server_messages.pop("events", None)
        self._forget_duplicates()
        self._update()

    def _on_secret_change(self, change: dict[str, Any]) -> None:
        self._server_messages.pop("secret", None)
        if self.reveal.value:
            self.revealed.value = change["new"]
        self._update()

    def _on_reveal(self, change: dict[str, Any]) -> None:
        on = bool(change["new"])
        self.revealed.value = self.secret.value if on else ""
        self.reveal.description = "Hide" if on else "Reveal"
        _show(self.revealed, on)

    def _on_generate(self, _button: object = None) -> None:
        self.secret.value = secrets.token_urlsafe(32)
        self.status.value = _note("Generated a new secret. Reveal it to copy it into your receiver's settings: "
                                  "Linq never returns it.")

    def _forget_duplicates(self) -> None:
        if self.duplicates:
            self.duplicates = []
            self.output.outputs = ()
        _show(self.create_anyway, False)

    def _update(self) -> None:
        """Enable or disable the buttons and show why, from the current values."""
        problems = self.problems()
        self.reason.value = _note(self._blocking(problems), "warn") if problems else ""  # before the state
        self.submit.disabled = bool(problems)
        self.preview_button.disabled = bool(problems)
        self.create_anyway.disabled = bool(problems)

        url = self.url.value.strip()
        url_lines: list[str] = []
        if url:
            url_lines += [_note(_in_form_terms(p), "error") for p in url_problems(url)]
            if not url_lines and urlsplit(url).scheme == "http" and not is_loopback_url(url):
                url_lines.append(_note("Plain http: Linq recommends https, and the sandbox accepts http only "
                                       "for localhost.", "warn"))
        url_lines += [_note(m, "error") for m in self._server_messages.get("url", [])]
        self.url_message.value = "<br>".join(url_lines)

        count = len(self.events.value)
        event_lines = [_note(f"{count} event{'s' if count != 1 else ''} chosen (ctrl/cmd-click to pick several)")]
        event_lines += [_note(m, "error") for m in self._server_messages.get("events", [])]
        event_lines += [_note(m, "error") for m in self._server_messages.get("secret", [])]
        self.events_message.value = "<br>".join(event_lines)

    def _blocking(self, problems: list[str]) -> str:
        """Why the buttons are disabled, in one short line that does not repeat a message shown at a field."""
        first = problems[0]
        if self.url.value.strip() and url_problems(self.url.value.strip()) and not self._in_flight:
            return "Correct the Webhook URL above to continue."
        return first

    @contextmanager
    def _sending(self) -> Iterator[None]:
        self._in_flight = True
        self._update()
        try:
            yield
        finally:
            self._in_flight = False
            self._update()

    # -- actions

    def _values(self) -> tuple[str, list[str], bool, str | None]:
        """(webhook_url, events, active, secret); secret is None when the field is empty, which in edit
        mode keeps the stored secret."""
        return self.url.value.strip(), list(self.events.value), bool(self.active.value), self.secret.value or None

    def _unchanged(self) -> bool:
        """In edit mode: every field still holds the subscription's value and no new secret was typed."""
        sub = self.subscription
        url, events, active, secret = self._values()
        return (sub is not None and secret is None and url == sub.webhook_url and active == sub.active
                and set(events) == set(sub.events))

    def _blocked(self) -> bool:
        problems = self.problems()
        if problems:
            self.status.value = _note(problems[0], "warn")
        return bool(problems)

    def _on_submit(self, _button: object = None) -> None:
        if self._blocked():
            return
        url, events, active, secret = self._values()
        with self._sending():
            if self.subscription is not None:
                subscription_id = self.subscription.id
                if self._unchanged():
                    self.status.value = _note(f"Nothing to save: #{subscription_id} already has these values. "
                                              "Change a field (or type a new secret) first.")
                    return
                self._call(lambda: self.client.update_subscription(
                    subscription_id, **_kwargs(self.client, "update", url=url, events=events, active=active,
                                               secret=secret)))
                return
            try:
                found = self.client.find_duplicates(url, events)
            except LinqError as exc:
                self._show_error(exc)
                return
            if found:
                self._show_duplicates([(sub, list(common)) for sub, common in found])
                return
            self._create(allow_duplicate=False)

    def _on_create_anyway(self, _button: object = None) -> None:
        if self.editing or self._blocked():
            return
        with self._sending():
            self._create(allow_duplicate=True)

    def _create(self, *, allow_duplicate: bool) -> None:
        url, events, active, secret = self._values()
        self._call(lambda: self.client.create_subscription(url, events, **_kwargs(
            self.client, "create", secret=secret, active=active, allow_duplicate=allow_duplicate)))

    def _call(self, request: Callable[[], WebhookSubscription]) -> None:
        try:
            sub = request()
        except DuplicateSubscriptionError as exc:  # someone created one since the check
            self._show_error(exc)
            _show(self.create_anyway, "allow_duplicate" in _form_fields(self.client, "create"))
            return
        except LinqError as exc:
            self._show_error(exc)
            return
        except Exception as exc:  # keep the form usable whatever happens; say what it was
            self._show_error(LinqError(f"{type(exc).__name__}: {exc}", hint="This looks like a bug in linq_nb."))
            return
        self._show_success(sub)

    def _on_preview(self, _button: object = None) -> None:
        if self._blocked():
            return
        url, events, active, secret = self._values()
        try:
            if self.subscription is not None:
                preview = self.client.preview_update(self.subscription.id, **_kwargs(
                    self.client, "update", url=url, events=events, active=active, secret=secret))
            else:
                preview = self.client.preview_create(url, events, **_kwargs(self.client, "create", secret=secret,
                                                                            active=active))
        except LinqError as exc:
            self._show_error(exc)
            return
        method = _esc(str(getattr(preview, "method", "")))
        url = _esc(str(getattr(preview, "url", "")))
        pre = 'style="white-space:pre-wrap;background:rgba(127,127,127,.08);padding:6px;margin:2px 0"'
        body = (
            '<div class="linq-preview">'
            f"<b>{method} {url}</b>"
            f"<div>JSON body</div><pre {pre}>{_esc(self._scrub(str(preview.json)))}</pre>"
            f"<div>Equivalent curl</div><pre {pre}>{_esc(self._scrub(str(preview.curl)))}</pre>"
            f"{_PREVIEW_NOTE}</div>"
        )
        self.output.outputs = ()
        self.output.append_display_data(HTML(body))
        self.status.value = _note("Preview of the request the form would send.")

    # -- reporting

    def _scrub(self, text: str) -> str:
        """``text`` with the typed secret masked (belt and braces: the client masks it already)."""
        secret = self.secret.value
        return text.replace(secret, _MASK) if len(secret) >= _MIN_SCRUB else text

    def _show_error(self, exc: LinqError) -> None:
        self.error = exc
        messages = list(exc.errors) or [exc.message]
        fields: dict[str, list[str]] = {}
        for message in messages:
            low = message.lower()
            field = "url" if "url" in low else "events" if "event" in low else "secret" if "secret" in low else None
            if field:
                fields.setdefault(field, []).append(self._scrub(_in_form_terms(message)))
        self._server_messages = fields
        self.status.value = self._scrub(exc._repr_html_())
        self._update()

    def _show_duplicates(self, found: list[tuple[WebhookSubscription, list[str]]]) -> None:
        self.duplicates = found
        cell = '<td style="text-align:left;padding:2px 6px">'
        rows = "".join(
            f"<tr>{cell}#{sub.id}</td>{cell}<code>{_esc(sub.webhook_url)}</code></td>"
            f"{cell}{_esc(', '.join(events))}</td>{cell}{'active' if sub.active else 'inactive'}</td></tr>"
            for sub, events in found
        )
        head = "".join(f'<th style="text-align:left;padding:2px 6px">{h}</th>'
                       for h in ("id", "URL", "overlapping events", "state"))
        ids = ", ".join(f"#{sub.id}" for sub, _ in found)
        self.output.outputs = ()
        self.output.append_display_data(HTML(
            f'<div class="linq-duplicates"><table><tr>{head}</tr>{rows}</table></div>'
        ))
        if "allow_duplicate" not in _form_fields(self.client, "create"):  # v3: one subscription per URL
            self.status.value = _note(
                f"Already subscribed: {ids} has this URL, and each URL can be used once per account. Edit that "
                "subscription (add the events there), or use another URL.", "warn")
            return
        self.status.value = _note(
            f"Already subscribed: {ids} has this URL and overlapping events, so Linq would deliver those events "
            "twice. Edit the existing subscription, change the URL or events, or click 'Create anyway'.", "warn")
        _show(self.create_anyway, True)

    def _show_success(self, sub: WebhookSubscription) -> None:
        created = self.subscription is None
        self.result = sub
        self.error = None
        self.duplicates = []
        self._server_messages = {}
        if not created:
            self.subscription = sub
        had_secret = bool(self.secret.value)
        self.reveal.value = False
        self.secret.value = ""  # sent; never kept in the widget afterwards
        _show(self.create_anyway, False)
        self.output.outputs = ()
        self.output.append_display_data(sub)
        text = f"{'Created' if created else 'Updated'} subscription #{sub.id}."
        if had_secret:
            text += " The secret was sent and cleared from this form; Linq never returns it."
        self.status.value = _note(text, "ok")
        self._update()
        for callback in list(self._callbacks):
            callback(sub)

    def __repr__(self) -> str:
        mode = f"edit #{self.subscription.id}" if self.subscription is not None else "create"
        done = f", result=#{self.result.id}" if self.result is not None else ""
        return f"SubscriptionForm({mode}, client={_client_label(self.client)}{done})"


# --------------------------------------------------------------------------- manager


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


def _as_datetime(value: object) -> datetime | None:
    if _is_missing(value):
        return None
    to_py = getattr(value, "to_pydatetime", None)
    result = to_py() if callable(to_py) else value
    return result if isinstance(result, datetime) else None


def _subscriptions_table(frame: pd.DataFrame, now: datetime | None = None) -> str:
    """An HTML table of a ``subscriptions_frame``, inactive and never-delivered rows marked."""
    now = now or datetime.now(timezone.utc)
    if frame.empty:
        return _note("No subscriptions yet for this token.")
    head = "".join(f'<th style="text-align:left;padding:2px 6px">{h}</th>' for h in (
        "id", "webhook URL", "events", "state", "secret", "attempts", "last delivered", "created"))
    rows = []
    counters = "delivery_attempts" in frame.columns  # a v3 frame has none
    for rec in frame.to_dict("records"):
        if not counters:  # v3's names, and no counters to judge "never delivered" by
            rec = {"id": rec.get("id"), "webhook_url": rec.get("target_url"), "events": rec.get("subscribed_events"),
                   "active": rec.get("is_active"), "secret_configured": True, "created_at": rec.get("created_at")}
        active = bool(rec.get("active"))
        last = _as_datetime(rec.get("last_delivered_at"))
        created = _as_datetime(rec.get("created_at"))
        marks = []
        if not active:
            marks.append('<span class="linq-mark" style="color:#7f8c8d;font-weight:bold">inactive</span>')
        never = counters and last is None
        if never:
            marks.append(f'<span class="linq-mark" style="color:{_WARN};font-weight:bold">never delivered</span>')
        if not marks:
            marks.append(f'<span style="color:{_OK}">delivering</span>' if counters else "active")
        css = []
        if not active:
            css.append("linq-inactive")
        if never:
            css.append("linq-never-delivered")
        style = ("opacity:.55;background:rgba(127,127,127,.12)" if not active
                 else f"background:rgba(211,84,0,.08);box-shadow:inset 3px 0 {_WARN}" if never else "")
        events = rec.get("events")
        event_list = list(events) if isinstance(events, (list, tuple)) else []
        attempts = rec.get("delivery_attempts")
        cells = [
            f"#{_esc(str(rec.get('id')))}",
            f"<code>{_esc(str(rec.get('webhook_url')))}</code>",
            _esc(", ".join(event_list)),
            " ".join(marks),
            "yes" if rec.get("secret_configured") else "no",
            "" if _is_missing(attempts) else _esc(str(attempts)),
            _esc(humanize_since(last, now)) if counters else "n/a (v3 has no counters)",
            _esc(humanize_since(created, now)) if created else "",
        ]
        tds = "".join(f'<td style="text-align:left;padding:2px 6px">{c}</td>' for c in cells)
        rows.append(f'<tr class="{" ".join(css)}" style="{style}">{tds}</tr>')
    return f'<table class="linq-subscriptions"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


class SubscriptionManager(widgets.VBox):
    """The account at a glance: a table of every subscription, and actions on a selection.

    ``refresh_button`` re-lists; the table (``table``, built from
    ``linq_nb.frames.subscriptions_frame``, kept as ``frame``) marks inactive and
    never-delivered rows. Pick one or more subscriptions in ``select`` (values are
    ids), then ``edit_button`` (exactly one: opens a :class:`SubscriptionForm` in
    ``editor``; ``new_button`` opens an empty one), ``activate_button``,
    ``deactivate_button`` or ``delete_button`` (which only asks: ``confirm_delete``
    deletes, ``cancel_delete`` does not). Actions on several subscriptions show
    their progress in ``progress``; ``status`` says what happened.

    With a v3 client the ids are UUIDs and the table has no counters: v3's subscriptions have
    no ``delivery_attempts`` or ``last_delivered_at``, so "last delivered" reads "n/a" and no
    row is marked never delivered (the receiver's and the sandbox's attempt logs tell instead).
    """

    def __init__(self, client: LinqClient, *, autorefresh: bool = True, **kwargs: Any) -> None:
        self.client = client
        self.subscriptions: list[WebhookSubscription] = []
        self.frame: pd.DataFrame | None = None
        self.form: SubscriptionForm | None = None
        self._pending_delete: list[int] = []
        self._busy = False

        self.title = widgets.HTML(f"<b>Webhook subscriptions</b> {_note(_client_label(client))}")
        self.table = widgets.HTML()
        self.select = widgets.SelectMultiple(options=[], rows=6, description="Selected",
                                             layout=widgets.Layout(width="48em"))
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.new_button = widgets.Button(description="New", icon="plus")
        self.edit_button = widgets.Button(description="Edit", icon="pencil")
        self.activate_button = widgets.Button(description="Activate", icon="play")
        self.deactivate_button = widgets.Button(description="Deactivate", icon="pause")
        self.delete_button = widgets.Button(description="Delete", icon="trash", button_style="danger")
        self.confirm_delete = widgets.Button(layout=_auto(), description="Yes, delete", button_style="danger",
                                             icon="check")
        self.cancel_delete = widgets.Button(description="Cancel", icon="times")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="Progress")
        self.status = widgets.HTML()
        self.close_editor = widgets.Button(layout=_auto(), description="Close editor", icon="times")
        self.editor = widgets.VBox()
        _show(self.confirm_delete, False)
        _show(self.cancel_delete, False)
        _show(self.progress, False)

        self.refresh_button.on_click(self._on_refresh)
        self.new_button.on_click(self._on_new)
        self.edit_button.on_click(self._on_edit)
        self.activate_button.on_click(self._on_activate)
        self.deactivate_button.on_click(self._on_deactivate)
        self.delete_button.on_click(self._on_delete)
        self.confirm_delete.on_click(self._on_confirm_delete)
        self.cancel_delete.on_click(self._on_cancel_delete)
        self.close_editor.on_click(self._on_close_editor)
        self.select.observe(self._on_select, names="value")

        super().__init__(children=[
            self.title,
            self.table,
            self.select,
            widgets.HBox([self.refresh_button, self.new_button, self.edit_button, self.activate_button,
                          self.deactivate_button, self.delete_button]),
            widgets.HBox([self.confirm_delete, self.cancel_delete, self.progress]),
            self.status,
            self.editor,
        ], **kwargs)
        self._update_buttons()
        if autorefresh:
            self.refresh()

    # -- public

    @property
    def selected(self) -> list[int]:
        """The selected subscription ids."""
        return list(self.select.value)  # v2's integers, v3's UUID strings

    def refresh(self) -> pd.DataFrame | None:
        """List the subscriptions again and redraw the table; returns the new frame (None on error)."""
        try:
            subs = self.client.list_subscriptions()
        except LinqError as exc:
            self.status.value = exc._repr_html_()
            return None
        from .frames import subscriptions_frame

        self.subscriptions = sorted(subs, key=lambda s: s.id)
        self.frame = subscriptions_frame(self.subscriptions)
        self.table.value = _subscriptions_table(self.frame)
        keep = set(self.select.value)
        self.select.options = [(self._label(s), s.id) for s in self.subscriptions]
        self.select.value = tuple(s.id for s in self.subscriptions if s.id in keep)
        self._update_buttons()
        return self.frame

    def subscription(self, subscription_id: int) -> WebhookSubscription | None:
        """The listed subscription with this id, if any."""
        return next((s for s in self.subscriptions if s.id == subscription_id), None)

    # -- handlers

    @staticmethod
    def _label(sub: WebhookSubscription) -> str:
        flags = [] if sub.active else ["inactive"]
        if sub.has_counters and sub.never_delivered:  # v3 has no counters: nothing to say
            flags.append("never delivered")
        extra = f"  [{', '.join(flags)}]" if flags else ""
        return f"#{sub.id}  {sub.webhook_url}  ({len(sub.events)} event{'s' if len(sub.events) != 1 else ''}){extra}"

    def _update_buttons(self) -> None:
        n = len(self.select.value)
        for button in (self.activate_button, self.deactivate_button, self.delete_button):
            button.disabled = self._busy or n == 0
        self.edit_button.disabled = self._busy or n != 1
        self.refresh_button.disabled = self._busy
        self.confirm_delete.disabled = self._busy

    def _on_select(self, _change: object = None) -> None:
        if self._pending_delete:
            self._hide_confirm()
            self.status.value = _note("Selection changed: delete cancelled.")
        self._update_buttons()

    def _on_refresh(self, _button: object = None) -> None:
        if self.refresh() is not None:
            self.status.value = _note(f"{len(self.subscriptions)} subscription"
                                      f"{'s' if len(self.subscriptions) != 1 else ''}.")

    def _open_form(self, form: SubscriptionForm) -> None:
        form.on_success(lambda _sub: self.refresh())
        self.form = form
        self.editor.children = [form, widgets.HBox([self.close_editor])]

    def _on_new(self, _button: object = None) -> None:
        self._open_form(SubscriptionForm(self.client))

    def _on_edit(self, _button: object = None) -> None:
        if len(self.selected) != 1:
            self.status.value = _note("Select exactly one subscription to edit.", "warn")
            return
        sub = self.subscription(self.selected[0])
        if sub is None:
            self.status.value = _note("That subscription is no longer listed; refresh.", "warn")
            return
        self._open_form(SubscriptionForm(self.client, sub))
        self.status.value = _note(f"Editing #{sub.id} below.")

    def _on_close_editor(self, _button: object = None) -> None:
        if self.form is not None:
            self.form.close()
        self.form = None
        self.editor.children = []

    def _on_activate(self, _button: object = None) -> None:
        self._set_active(True)

    def _on_deactivate(self, _button: object = None) -> None:
        self._set_active(False)

    def _set_active(self, active: bool) -> None:
        ids = self.selected
        verb = "activate" if active else "deactivate"
        if not ids:
            self.status.value = _note(f"Select the subscriptions to {verb} first.", "warn")
            return
        todo = [i for i in ids if (s := self.subscription(i)) is None or s.active != active]
        skipped = len(ids) - len(todo)
        self._bulk(todo, f"{verb}d", lambda i: self.client.update_subscription(
                       i, **_kwargs(self.client, "update", active=active)),
                   note=f" ({skipped} already {'active' if active else 'inactive'})" if skipped else "")

    def _on_delete(self, _button: object = None) -> None:
        ids = self.selected
        if not ids:
            self.status.value = _note("Select the subscriptions to delete first.", "warn")
            return
        self._pending_delete = ids
        self.confirm_delete.description = f"Yes, delete {len(ids)}"
        _show(self.confirm_delete, True)
        _show(self.cancel_delete, True)
        self.status.value = _note(
            f"Delete {', '.join(f'#{i}' for i in ids)}? This cannot be undone: "
            f"click '{self.confirm_delete.description}' to confirm.", "warn")

    def _hide_confirm(self) -> None:
        self._pending_delete = []
        _show(self.confirm_delete, False)
        _show(self.cancel_delete, False)

    def _on_cancel_delete(self, _button: object = None) -> None:
        self._hide_confirm()
        self.status.value = _note("Nothing was deleted.")

    def _on_confirm_delete(self, _button: object = None) -> None:
        ids = list(self._pending_delete)
        self._hide_confirm()
        if not ids:
            self.status.value = _note("Nothing to confirm: click Delete first.", "warn")
            return

        def delete(subscription_id: int) -> None:
            with suppress(NotFoundError):  # already gone: the goal is reached
                self.client.delete_subscription(subscription_id)

        self._bulk(ids, "deleted", delete)

    def _bulk(self, ids: Sequence[int], done: str, action: Callable[[int], object], *, note: str = "") -> None:
        """Run ``action`` on each id, with progress; report successes and each failure, then refresh."""
        failures: list[tuple[int, LinqError]] = []
        self._busy = True
        self._update_buttons()
        self.progress.max = max(len(ids), 1)
        self.progress.value = 0
        self.progress.bar_style = "info"
        _show(self.progress, bool(ids))
        try:
            for subscription_id in ids:
                try:
                    action(subscription_id)
                except LinqError as exc:
                    failures.append((subscription_id, exc))
                self.progress.value += 1
        finally:
            self._busy = False
            self.progress.bar_style = "danger" if failures else "success"
        self.refresh()
        ok = len(ids) - len(failures)
        text = _note(f"{ok} of {len(ids)} {done}{note}.", "error" if failures else "ok")
        for subscription_id, failure in failures:
            text += f"<div>#{subscription_id}:</div>{failure._repr_html_()}"
        self.status.value = text

    def __repr__(self) -> str:
        n = len(self.subscriptions)
        return f"SubscriptionManager({n} subscription{'s' if n != 1 else ''}, client={_client_label(self.client)})"


# --------------------------------------------------------------------------- deliveries


class DeliveryView(widgets.VBox):
    """A live table of the requests a :class:`~linq_nb.receiver.Receiver` has received.

    A daemon thread checks the receiver every ``every`` seconds and redraws
    ``table`` (an HTML widget; its ``.value`` syncs from threads in ipywidgets 8)
    when new requests have arrived. ``refresh()`` redraws now, ``stop()`` ends the
    thread (``start()`` starts it again); ``frame`` is the last
    ``receiver.frame()`` shown and ``summary`` counts what it holds.
    """

    def __init__(self, receiver: Receiver, every: float = 1.0, *, max_rows: int = 50, autostart: bool = True,
                 **kwargs: Any) -> None:
        self.receiver = receiver
        self.every = float(every)
        self.max_rows = max_rows
        self.frame: pd.DataFrame | None = None
        self.refreshes = 0
        self._seen = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        relayed = " through the sandbox's relay" if getattr(receiver, "listener", None) is not None else ""
        self.title = widgets.HTML(f"<b>Webhook deliveries received</b>{relayed} "
                                  f"{_note(str(getattr(receiver, 'url', '')))}")
        self.summary = widgets.HTML()
        self.table = widgets.HTML()
        super().__init__(children=[self.title, self.summary, self.table], **kwargs)
        self.refresh()
        if autostart:
            self.start()

    @property
    def running(self) -> bool:
        """True while the background thread is refreshing."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start refreshing in the background (no-op when already running)."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="linq-nb-delivery-view", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background refresh and wait for the thread to end."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(self.every * 2, 5.0))
        self._thread = None

    def close(self) -> None:
        """Stop the thread, then close the widget."""
        self.stop()
        super().close()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                if self.receiver.counts()["requests"] != self._seen:  # cheap: no copy of the records
                    self.refresh()
            except Exception as exc:  # keep going: show the problem instead of dying silently
                self.summary.value = _note(f"Could not read the receiver: {type(exc).__name__}: {exc}", "error")

    def refresh(self) -> pd.DataFrame:
        """Read ``receiver.frame()`` now and redraw; returns the frame."""
        with self._lock:
            frame = self.receiver.frame()
            self.frame = frame
            self._seen = len(frame)
            self.summary.value = self._summary(frame)
            self.table.value = self._table(frame)
            self.refreshes += 1
            return frame

    def _summary(self, frame: pd.DataFrame) -> str:
        n = len(frame)
        parts = [f"{n} request{'s' if n != 1 else ''}"]
        if n and "event_id" in frame:
            parts.append(f"{frame['event_id'].nunique()} distinct events")
        if n and "verified" in frame:
            bad = int((frame["verified"] == False).sum())  # noqa: E712 - None means "not checked"
            if bad:
                parts.append(f"{bad} failed signature verification")
        if n and "status" in frame:
            failed = int((frame["status"].astype("Int64") >= 300).sum())
            if failed:
                parts.append(f"{failed} answered with an error status")
        if n and "duplicate" in frame:
            dup = int(frame["duplicate"].astype(bool).sum())
            if dup:
                parts.append(f"{dup} repeated deliveries")
        return _note(" · ".join(parts) + f" (checked every {self.every:g} s)")

    def _table(self, frame: pd.DataFrame) -> str:
        """The requests newest first, in the columns a person reads (``frame`` keeps them all)."""
        if frame.empty:
            return _note("Nothing received yet. Trigger an event and it will appear here.")
        shown = frame.tail(self.max_rows).iloc[::-1]
        more = len(frame) - len(shown)
        prefix = _note(f"latest {len(shown)} of {len(frame)}, newest first") if more else ""
        cell = "padding:1px 8px;text-align:left;white-space:nowrap"
        heads = ("received (UTC)", "status", "event type", "event id", "subscription", "signature", "took", "note")
        head = "".join(f'<th style="{cell}">{h}</th>' for h in heads)
        rows = []
        for rec in shown.to_dict("records"):
            status = None if _is_missing(rec.get("status")) else int(rec["status"])
            verified = None if _is_missing(rec.get("verified")) else bool(rec["verified"])
            bad = (status is not None and status >= 300) or verified is False
            received = _as_datetime(rec.get("received_at"))
            event_id = "" if _is_missing(rec.get("event_id")) else str(rec["event_id"])
            sub_id = rec.get("subscription_id")
            took = rec.get("duration_ms")
            note = "repeat of an earlier delivery" if rec.get("duplicate") else rec.get("reason")
            cells = [
                received.strftime("%H:%M:%S.%f")[:-3] if received else "",
                "" if status is None else str(status),
                "" if _is_missing(rec.get("event_type")) else _esc(str(rec["event_type"])),
                f'<code title="{_esc(event_id)}">{_esc(event_id[:8])}</code>' if event_id else "",
                "" if _is_missing(sub_id) else f"#{_esc(str(sub_id))}",
                {None: "not checked", True: "✓ valid", False: "✗ invalid"}[verified],
                "" if _is_missing(took) else f"{float(took):.{1 if float(took) < 10 else 0}f} ms",
                "" if _is_missing(note) else _esc(str(note)),
            ]
            style = f' style="color:{_ERR}"' if bad else ""
            tds = "".join(f'<td style="{cell}">{c}</td>' for c in cells[:-1])
            tds += f'<td style="padding:1px 8px;text-align:left;min-width:16em">{cells[-1]}</td>'  # may wrap
            rows.append(f"<tr{style}>{tds}</tr>")
        return (f'{prefix}<table class="linq-deliveries" style="font-size:90%"><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(rows)}</tbody></table>')

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"DeliveryView(receiver={getattr(self.receiver, 'url', '?')}, every={self.every:g}s, {state})"
