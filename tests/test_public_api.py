"""The public API: ``linq_nb.__all__`` is complete, every name resolves, and ``import linq_nb`` stays light."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import linq_nb
from linq_nb import errors

INIT = Path(linq_nb.__file__)

# What the issues promise at the top level; removing any of these is a breaking change.
PROMISED = {
    "LinqClient", "connect", "DEFAULT_BASE_URL",
    "WebhookSubscription", "SubscriptionList", "EVENTS", "EVENT_TYPES",
    "Sandbox", "Receiver",
    "subscriptions_frame", "deliveries_frame", "health", "Monitor",
    "token_input", "SubscriptionForm", "SubscriptionManager", "DeliveryView",
    "LinqError", "ConfigurationError", "DuplicateSubscriptionError", "SignatureVerificationError",
    "ValidationError", "AuthenticationError", "NotFoundError", "RateLimitError", "ServerError",
    "LinqConnectionError", "LinqTimeoutError",
}  # fmt: skip

HEAVY = ("pandas", "ipywidgets", "werkzeug", "matplotlib")


def _loaded_after(code: str) -> dict[str, bool]:
    """Run `code` in a fresh interpreter and report which heavy modules (and linq_nb submodules) it loaded."""
    probe = f"import json, sys\n{code}\nprint(json.dumps({{m: m in sys.modules for m in sys.argv[1:]}}))\n"
    watched = [*HEAVY, "linq_nb.client", "linq_nb.sandbox", "linq_nb.frames", "linq_nb.widgets"]
    out = subprocess.run(
        [sys.executable, "-c", probe, *watched], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_promised_names_are_exported() -> None:
    assert sorted(PROMISED - set(linq_nb.__all__)) == []


@pytest.mark.parametrize("name", sorted(set(linq_nb.__all__)))
def test_every_name_in_all_resolves(name: str) -> None:
    value = getattr(linq_nb, name)
    assert value is not None
    module = linq_nb._EXPORTS.get(name)
    if module is not None:
        assert value is getattr(__import__(f"linq_nb.{module}", fromlist=[name]), name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("linq_nb"), f"{name} comes from {value.__module__}"


def test_all_has_no_duplicates_and_matches_exports() -> None:
    assert len(linq_nb.__all__) == len(set(linq_nb.__all__))
    assert set(linq_nb.__all__) == {"__version__", *linq_nb._EXPORTS}


def test_type_checking_imports_match_exports() -> None:
    """The ``if TYPE_CHECKING:`` block (for IDEs and mypy) names exactly the lazy exports, from the same modules."""
    tree = ast.parse(INIT.read_text())
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in ast.walk(node):
                if isinstance(stmt, ast.ImportFrom) and stmt.level == 1 and stmt.module:
                    for alias in stmt.names:
                        imported[alias.asname or alias.name] = stmt.module
    assert imported == linq_nb._EXPORTS


def test_every_error_class_is_exported() -> None:
    """The whole exception tree is public, so users can catch any of it from ``linq_nb``."""
    classes = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, errors.LinqError) and not name.startswith("_")
    }
    assert sorted(classes - set(linq_nb.__all__)) == []


def test_dir_lists_the_public_names() -> None:
    assert set(linq_nb.__all__) <= set(dir(linq_nb))


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        linq_nb.no_such_thing  # noqa: B018


def test_import_linq_nb_does_not_load_heavy_dependencies() -> None:
    loaded = _loaded_after("import linq_nb")
    assert [m for m, present in loaded.items() if present] == []


def test_client_loads_neither_pandas_nor_widgets_nor_the_sandbox() -> None:
    """Layering (design.md): the client never imports the sandbox, frames or widgets."""
    loaded = _loaded_after("from linq_nb import LinqClient, connect")
    assert [m for m in ("pandas", "ipywidgets", "matplotlib", "linq_nb.sandbox", "linq_nb.frames",
                        "linq_nb.widgets") if loaded[m]] == []  # fmt: skip


def test_sandbox_does_not_load_the_client() -> None:
    """Layering (design.md): the sandbox speaks the wire format itself, it never borrows the client."""
    loaded = _loaded_after("from linq_nb import Sandbox")
    assert [m for m in ("pandas", "ipywidgets", "linq_nb.client") if loaded[m]] == []
