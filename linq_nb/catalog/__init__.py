"""Linq's webhook event catalogues as data: one JSON file per API version, and the v2 -> v3 mapping.

Standard library only. ``v2.json`` and ``v3.json`` list every event of that version with a
one-line description and a realistic sample ``data`` payload; ``v2_to_v3.json`` says which
v3 event(s) each v2 event became and how sure that is. See README.md beside this file for
how to update them when Linq adds events.

>>> from linq_nb import catalog
>>> catalog.load("v3").names[:2]
('message.sent', 'message.received')
>>> catalog.v2_to_v3()["typing_indicator.received"]["confidence"]
'renamed'
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["Catalog", "load", "v2_to_v3", "v3_to_v2", "name_in", "VERSIONS", "CONFIDENCES"]

VERSIONS = ("v2", "v3")
#: How sure a v2 -> v3 mapping is: the same name and meaning; one v3 name with the same meaning;
#: several v3 names that between them cover it; no v3 event means the same.
CONFIDENCES = ("exact", "renamed", "split", "none")


@dataclass(frozen=True)
class Catalog:
    """One version's events: names in Linq's order, a description and a sample ``data`` for each."""

    version: str
    source: str
    events: Mapping[str, Mapping[str, Any]]  # name -> {"description", "sample", ...}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.events)

    def description(self, name: str) -> str:
        return str(self.events[name]["description"])

    def sample(self, name: str) -> dict[str, Any]:
        """A fresh copy of the sample ``data`` of ``name`` (KeyError if unknown)."""
        return copy.deepcopy(dict(self.events[name]["sample"]))

    def __contains__(self, name: object) -> bool:
        return name in self.events


def _read(filename: str) -> Any:
    return json.loads(resources.files(__package__).joinpath(filename).read_text(encoding="utf-8"))


@cache
def load(version: str) -> Catalog:
    """The catalogue of ``version`` ("v2" or "v3")."""
    if version not in VERSIONS:
        raise ValueError(f"no event catalogue for API version {version!r}; there are {', '.join(VERSIONS)}")
    raw = _read(f"{version}.json")
    return Catalog(version, raw["source"], {e["name"]: e for e in raw["events"]})


@cache
def v2_to_v3() -> Mapping[str, Mapping[str, Any]]:
    """v2 name -> ``{"v3": [names], "primary": name or None, "confidence": ..., "note": ...}``."""
    return _read("v2_to_v3.json")["mapping"]


@cache
def v3_to_v2() -> Mapping[str, str]:
    """v3 name -> the one v2 name that maps to it exactly or renamed (ambiguous or split ones are left out)."""
    found: dict[str, list[str]] = {}
    for v2_name, entry in v2_to_v3().items():
        if entry["confidence"] in ("exact", "renamed") and entry["primary"]:
            found.setdefault(entry["primary"], []).append(v2_name)
    return {v3: names[0] for v3, names in found.items() if len(names) == 1}


def name_in(version: str, event_type: str) -> str | None:
    """The name under which ``version`` knows the event called ``event_type`` in either version, or None.

    A name of ``version`` is itself; a v2 name maps to its v3 ``primary``; a v3 name maps back to the
    one v2 event that became it (exact or renamed); anything else has no counterpart.
    """
    if event_type in load(version):
        return event_type
    if version == "v3":
        entry = v2_to_v3().get(event_type)
        return entry["primary"] if entry else None
    if version == "v2":
        return v3_to_v2().get(event_type)
    return None
