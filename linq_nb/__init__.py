"""linq_nb: explore, teach and debug Linq Partner API webhook subscriptions (v2 and v3) from Jupyter.

>>> import linq_nb
>>> client = linq_nb.connect()          # the sandbox, unless LINQ_INTEGRATION_TOKEN is set
>>> v3 = linq_nb.connect(api="v3")      # or LINQ_API_VERSION=v3: the same token, the same sandbox
>>> sub = client.create_subscription("https://example.com/hook", ["message.received"])
>>> linq_nb.subscriptions_frame(client.list_subscriptions())

Names are imported lazily, so ``import linq_nb`` stays fast: pandas and
ipywidgets load only when a frame or a widget is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # client
    "LinqClient": "client",
    "LinqClientV3": "client_v3",
    "connect": "client",
    "DEFAULT_BASE_URL": "client",
    # models and catalogue
    "WebhookSubscription": "models",
    "WebhookSubscriptionV3": "models",
    "SubscriptionList": "models",
    "EVENTS": "events",
    "EVENT_TYPES": "events",
    # errors
    "LinqError": "errors",
    "ConfigurationError": "errors",
    "DuplicateSubscriptionError": "errors",
    "SignatureVerificationError": "errors",
    "ValidationError": "errors",
    "AuthenticationError": "errors",
    "NotFoundError": "errors",
    "RateLimitError": "errors",
    "ServerError": "errors",
    "LinqConnectionError": "errors",
    "LinqTimeoutError": "errors",
    # servers
    "Sandbox": "sandbox",
    "Receiver": "receiver",
    "Listener": "listen",  # receiver.listen(client): deliveries through a sandbox's relay
    # frames
    "subscriptions_frame": "frames",
    "deliveries_frame": "frames",
    "health": "frames",
    "Monitor": "frames",
    "snapshots_frame": "frames",
    "plot_attempts": "frames",
    "plot_since_last_delivery": "frames",
    # widgets
    "token_input": "widgets",
    "TokenInput": "widgets",
    "SubscriptionForm": "widgets",
    "SubscriptionManager": "widgets",
    "DeliveryView": "widgets",
    # subscriptions as code, and the v2 -> v3 move (linq_nb.plans: plan is the function)
    "plan": "plans",
    "Plan": "plans",
    "load_desired": "plans",
    "DesiredStateError": "plans",
    "migrate_v2_to_v3": "migrate",
    "Migration": "migrate",
    "MigrationError": "migrate",
    "Deduplicator": "migrate",
    "PlanView": "plan_widget",
    # the support app (apps/support.ipynb)
    "SupportDesk": "support",
    "SupportDashboard": "dashboard",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'linq_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .client import DEFAULT_BASE_URL, LinqClient, connect
    from .client_v3 import LinqClientV3
    from .dashboard import SupportDashboard
    from .errors import (
        AuthenticationError,
        ConfigurationError,
        DuplicateSubscriptionError,
        LinqConnectionError,
        LinqError,
        LinqTimeoutError,
        NotFoundError,
        RateLimitError,
        ServerError,
        SignatureVerificationError,
        ValidationError,
    )
    from .events import EVENT_TYPES, EVENTS
    from .frames import (
        Monitor,
        deliveries_frame,
        health,
        plot_attempts,
        plot_since_last_delivery,
        snapshots_frame,
        subscriptions_frame,
    )
    from .listen import Listener
    from .migrate import Deduplicator, Migration, MigrationError, migrate_v2_to_v3
    from .models import SubscriptionList, WebhookSubscription, WebhookSubscriptionV3
    from .plan_widget import PlanView
    from .plans import DesiredStateError, Plan, load_desired, plan
    from .receiver import Receiver
    from .sandbox import Sandbox
    from .support import SupportDesk
    from .widgets import DeliveryView, SubscriptionForm, SubscriptionManager, TokenInput, token_input
