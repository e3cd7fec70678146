"""What differs between Linq's API versions, one small module per version: data and pure functions.

Standard library only, importable by the client, the sandbox, the receiver, frames and widgets
alike (it imports none of them). Each module speaks one version's wire format exactly as
``shared/docs/linq-v2-api.md`` / ``linq-v3-api.md`` describe it, under the same names:

=====================================  ===========================================================
``VERSION``, ``API_VERSION``           ``"v2"`` / ``"v3"``; the envelope's ``api_version``
``COLLECTION_PATH``, ``member_path``   paths under the base URL ``.../api/partner``
``EVENTS_PATH``                        the event-type list (None where the version has none)
``AUTH_HEADER``, ``auth_headers``      the token's header, and the headers that carry a token
``token_from``                         the token in a request's headers (None if absent)
``parse_id``, ``ID_DESCRIPTION``       a path's id as the version's id type, or None
``request_body``, ``fields_of``        a create/update body around fields / the fields in a body
``create_problems``, ``update_problems`` one sentence per problem with a body (empty: all well)
``subscription_object``                a stored record as the API's subscription object
``list_body``, ``item_body``           the list / single answers around objects
``error_body``, ``error_message``      the error shape for a status, and the message in one
``EVENT_TYPES``, ``catalog``           the version's event names and their catalogue
``make_envelope``                      a delivery's JSON envelope around ``data``
``delivery_headers``                   every header of one delivery, signed
=====================================  ===========================================================

>>> from linq_nb import wire
>>> wire.get("v3").AUTH_HEADER
'Authorization'
"""

from __future__ import annotations

from types import ModuleType

from . import v2, v3

__all__ = ["v2", "v3", "VERSIONS", "get"]

#: Every version, by name.
VERSIONS: dict[str, ModuleType] = {"v2": v2, "v3": v3}


def get(version: str | int) -> ModuleType:
    """The wire module of ``version`` (``"v2"``, ``"v3"``, ``2`` or ``3``)."""
    key = f"v{version}" if isinstance(version, int) else str(version).lower()
    try:
        return VERSIONS[key]
    except KeyError:
        raise ValueError(f"unknown Linq API version {version!r}; use one of {', '.join(VERSIONS)}") from None
