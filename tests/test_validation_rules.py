"""Validation rules that mutation testing (``make mutate``) found unpinned.

The rules are public (``linq_nb.validation``) and shared by the client, the sandbox and the form, so they
are tested directly here; the sandbox's 422 answers carry the same sentences (tests/test_sandbox.py).
"""

from __future__ import annotations

import pytest

from linq_nb.events import EVENT_TYPES
from linq_nb.validation import (
    events_problems,
    is_loopback_host,
    is_loopback_url,
    shorten,
    subscription_problems,
    url_problems,
    version_problems,
)

GOOD = {"webhook_url": "https://example.com/hook", "events": ["message.sent"], "version": 2}


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "app.localhost", "127.0.0.1", "127.8.9.10", "::1",
                                  "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["", "example.com", "localhost.example.com", "xlocalhost", "Xlocalhost", "notlocalhost",
                                  "10.0.0.1", "128.0.0.1", "::2", "[::2]", "0.0.0.0"])
def test_hosts_that_are_not_loopback(host: str) -> None:
    assert not is_loopback_host(host)


def test_loopback_urls() -> None:
    assert is_loopback_url("http://LOCALHOST:8000/hook") and is_loopback_url("http://[::1]:9/h")
    assert not is_loopback_url("http://example.com/hook") and not is_loopback_url("not a url")


def test_url_problems_name_the_url_and_the_rule() -> None:
    absolute = "webhook_url must be an absolute http(s) URL, such as https://example.com/webhooks/linq"
    assert url_problems(None) == [absolute]
    assert url_problems("   ") == [absolute]
    assert url_problems("ftp://example.com/h") == [
        "webhook_url 'ftp://example.com/h' must be an absolute http(s) URL, such as https://example.com/webhooks/linq"]
    assert url_problems("https:///path") == [
        "webhook_url 'https:///path' must be an absolute http(s) URL, such as https://example.com/webhooks/linq"]
    assert url_problems("https://example.com:99999/h") == [
        "webhook_url 'https://example.com:99999/h' is not a valid URL"]
    assert url_problems("https://example.com/a b") == ["webhook_url 'https://example.com/a b' must not contain spaces"]
    # a space that is no control character (a no-break space) is still a space
    assert url_problems("https://example.com/a\xa0b") == [
        "webhook_url 'https://example.com/a\\xa0b' must not contain spaces"]
    # a tab, like NUL and the other control characters, has its own rule (hardening, issue 8)
    control = "must not contain control characters; type the URL again by hand"
    assert url_problems("https://example.com/a\tb") == [f"webhook_url 'https://example.com/a\\tb' {control}"]
    assert url_problems("https://example.com/a\x00b") == [f"webhook_url 'https://example.com/a\\x00b' {control}"]



@pytest.mark.parametrize("char, refused", [
    ("\x1f", True), ("~", False), ("\x7f", True), ("\x80", True), ("\x9f", True),  # C0, DEL and C1 controls
    ("\ud7ff", False), ("\ud800", True), ("\udfff", True), ("\ue000", False),  # lone surrogates; then private use
])
def test_control_characters_and_surrogates_are_refused_to_the_code_point(char: str, refused: bool) -> None:
    url = f"https://example.com/a{char}b"
    control = [f"webhook_url {url!r} must not contain control characters; type the URL again by hand"]
    assert url_problems(url) == (control if refused else [])


HOST_RULE = "is not a valid host name (letters, digits and hyphens between dots)"


@pytest.mark.parametrize("host, problem", [
    ("[2001:db8::1]", None),  # an IPv6 literal: an address, not a name
    ("10.0.0.1", None),
    ("example.com.", None),  # a fully qualified name's last dot
    ("example.com-", HOST_RULE),
    ("bad-.com.", HOST_RULE),
    ("example.c-.", HOST_RULE),
    ("a..com", "is not a valid host name"),  # an empty label: IDNA cannot encode it
    (("a" * 63 + ".") * 3 + "b" * 61, None),  # 253 characters: the longest name DNS allows
    (("a" * 63 + ".") * 3 + "b" * 62, HOST_RULE),  # 254
])
def test_host_names_follow_dns(host: str, problem: str | None) -> None:
    url = f"https://{host}/h"
    name = host.strip("[]")
    shown = repr(url) if len(repr(url)) <= 60 else repr(url)[:59] + "…"
    host_shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:39] + "…"
    assert url_problems(url) == ([] if problem is None else [f"webhook_url {shown}: the host {host_shown} {problem}"])

def test_plain_http_is_refused_only_off_loopback_and_only_when_asked() -> None:
    assert url_problems("http://example.com/h") == []
    assert url_problems("http://example.com/h", https_only_unless_loopback=True) == [
        "webhook_url 'http://example.com/h' must use https (plain http is accepted only for localhost)"]
    assert url_problems("http://127.0.0.1:9/h", https_only_unless_loopback=True) == []
    assert url_problems("https://example.com/h", https_only_unless_loopback=True) == []
    assert url_problems("HTTP://example.com/h", https_only_unless_loopback=True) != []


def test_events_problems_list_the_unknown_names_with_the_right_plural() -> None:
    assert events_problems(["message.sent", "message.read"]) == []
    assert events_problems(("message.sent",)) == []
    assert events_problems("message.sent") == ["events must be an array of event names"]
    assert events_problems([]) == [f"events must name at least one event; valid events: {', '.join(EVENT_TYPES)}"]
    one = events_problems(["message.sent", "nope"])
    assert one[0].startswith("unknown event 'nope'; valid events: ")
    two = events_problems(["nope", 3])
    assert two[0].startswith("unknown events 'nope', 3; valid events: ")
    assert "message.sent, " in two[0]


def test_version_must_be_the_integer_2() -> None:
    assert version_problems(2) == []
    for bad in (3, 1, "2", 2.0, True, None):
        assert version_problems(bad) == [f"version must be 2 for the v2 API, got {bad!r}"]
    long = "v" * 50  # echoed cut to 40 characters: 39 of its repr, then an ellipsis
    assert version_problems(long) == [f"version must be 2 for the v2 API, got {repr(long)[:39]}…"]


def test_subscription_problems_check_presence_then_types_then_values() -> None:
    assert subscription_problems(GOOD) == []
    assert subscription_problems({}) == ["webhook_url is required", "events is required", "version is required"]
    typed = subscription_problems({**GOOD, "events": "message.sent", "version": True, "active": "yes"})
    assert typed == ["events must be an array of strings, got str 'message.sent'",
                     "version must be an integer, got bool True",
                     "active must be a boolean, got str 'yes'"]
    # values are checked only once the types are right, and every value problem is listed
    assert subscription_problems({**GOOD, "webhook_url": "ftp://x/h", "events": ["nope"], "version": 3}) == [
        *url_problems("ftp://x/h"), *events_problems(["nope"]), *version_problems(3)]
    assert subscription_problems({**GOOD, "secret": ""}) == [
        "secret must not be empty; leave it out to keep the stored one, or send null for no secret"]
    assert subscription_problems({**GOOD, "webhook_url": "http://example.com/h"},
                                 https_only_unless_loopback=True) == url_problems(
        "http://example.com/h", https_only_unless_loopback=True)


def test_a_wrong_value_is_shown_cut_short_and_a_secret_never() -> None:
    # an echoed value is its repr cut to 60 characters, the last of them an ellipsis (hardening, issue 8)
    (long,) = subscription_problems({**GOOD, "webhook_url": ["x" * 200]})
    assert long == "webhook_url must be a string, got list ['" + "x" * 57 + "…"
    (fits,) = subscription_problems({**GOOD, "webhook_url": ["x" * 56]})  # a repr of exactly 60 is kept whole
    assert fits == "webhook_url must be a string, got list ['" + "x" * 56 + "']"
    (secret,) = subscription_problems({**GOOD, "secret": 12345})
    assert secret == "secret must be a string, got int"


def test_many_unknown_events_show_the_first_five_cut_short_and_count_the_rest() -> None:
    long = "x" * 100
    (seven,) = events_problems([long, "b", "c", "d", "e", "f", "g"])
    assert seven.startswith(f"unknown events {shorten(long, 40)}, 'b', 'c', 'd', 'e' and 2 more; valid events: ")
    assert len(shorten(long, 40)) == 40
    (six,) = events_problems(["a", "b", "c", "d", "e", "f"])
    assert six.startswith("unknown events 'a', 'b', 'c', 'd', 'e' and 1 more; valid events: ")
    (five,) = events_problems(["a", "b", "c", "d", "e"])
    assert five.startswith("unknown events 'a', 'b', 'c', 'd', 'e'; valid events: ")


def test_an_event_named_twice_is_refused_and_named() -> None:
    assert events_problems(["message.sent", "message.read", "message.sent"]) == [
        "events lists 'message.sent' more than once; name each event once"]
    assert events_problems(["message.sent", "message.read", "message.read", "message.sent"]) == [
        "events lists 'message.sent', 'message.read' more than once; name each event once"]
    assert events_problems(["message.sent", "message.read"]) == []
