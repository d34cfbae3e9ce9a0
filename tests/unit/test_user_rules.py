"""User service rules that need nothing running: usernames, profile text and URLs, page tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from mintplane.common import pagination
from mintplane.common.errors import InvalidArgument
from mintplane.user import text_rules, usernames

pytestmark = pytest.mark.unit

HOSTILE_USERNAMES = {
    "cyrillic a in admin": "\u0430dmin",
    "cyrillic o in bob": "b\u043eb_smith",
    "greek omicron": "r\u03bfot_user",
    "zero-width joiner": "ali\u200dce",
    "zero-width space": "ali\u200bce",
    "RTL override": "alice\u202egnp",
    "fullwidth admin (NFKC -> reserved)": "\uff41\uff44\uff4d\uff49\uff4e",
    "reserved": "support",
    "reserved, other case": "ROOT",
    "ascii look-alike of reserved": "adm1n",
    "ascii look-alike of reserved, zeros": "r00t",
    "ascii look-alike of the platform (rn for m)": "rnintplane_fan",
    "platform name inside": "the_mintplane_team",
    "too short": "ab",
    "too long": "a" * 31,
    "leading underscore": "_alice",
    "trailing underscore": "alice_",
    "space inside": "alice smith",
    "dot": "alice.eth",
    "address-like": "0xdeadbeef",
    "empty after trim": "   ",
    "emoji": "alice\U0001f600",
}


@pytest.mark.parametrize("raw", list(HOSTILE_USERNAMES.values()), ids=list(HOSTILE_USERNAMES))
def test_hostile_usernames_are_refused(raw: str) -> None:
    with pytest.raises(InvalidArgument):
        usernames.normalize_username(raw)


def test_refusals_name_the_offending_character() -> None:
    with pytest.raises(InvalidArgument, match="U\\+0430 CYRILLIC SMALL LETTER A"):
        usernames.normalize_username("\u0430dmin")
    with pytest.raises(InvalidArgument, match="U\\+200D ZERO WIDTH JOINER"):
        usernames.normalize_username("ali\u200dce")
    with pytest.raises(InvalidArgument, match="reserved"):
        usernames.normalize_username("\uff41\uff44\uff4d\uff49\uff4e")


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Alice_1", "alice_1"),
        ("\uff21\uff4c\uff49\uff43\uff45", "alice"),  # fullwidth folds to the ASCII handle
        ("  bob  ", "bob"),
        ("STRASSE", "strasse"),
        ("stra\u00dfe_x", "strasse_x"),  # case folding: sharp s -> ss
        ("\u212aelvin", "kelvin"),  # Kelvin sign -> k
        ("a" * 30, "a" * 30),
    ],
)
def test_valid_usernames_normalize_to_one_ascii_form(raw: str, canonical: str) -> None:
    assert usernames.normalize_username(raw) == canonical


def test_lookup_key_never_raises_and_misses_impossible_handles() -> None:
    assert usernames.lookup_key("ALICE") == "alice"
    assert usernames.lookup_key("\u0430dmin") is None
    assert usernames.lookup_key("x" * 40) is None
    assert usernames.lookup_key("") is None


def test_clean_text_removes_invisible_and_control_characters_but_keeps_emoji_sequences() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert text_rules.clean_text(f"\u202eevil\u202c {family}\x00\x07") == f"evil {family}"
    assert text_rules.clean_text("line1\nline2\tx", multiline=True) == "line1\nline2\tx"
    assert text_rules.clean_text("line1\nline2") == "line1line2"
    assert text_rules.clean_text("e\u0301") == "\u00e9"  # NFC


def test_bounded_text_refuses_instead_of_truncating() -> None:
    assert text_rules.bounded_text("display_name", "x" * 50, 50) == "x" * 50
    with pytest.raises(InvalidArgument, match="at most 50"):
        text_rules.bounded_text("display_name", "x" * 51, 50)
    # invisible characters do not count against the limit
    assert text_rules.bounded_text("display_name", "x" * 50 + "\u200b" * 10, 50) == "x" * 50


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a.png",
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "https://user:pass@example.com/a.png",
        "https://localhost/a.png",
        "https://127.0.0.1/a.png",
        "https://10.0.0.8/a.png",
        "https://[::1]/a.png",
        "https://intranet/a.png",
        "https://example.com/a b.png",
        "https://example.com:99999/a.png",
        "https:///nohost",
        "https://example.com/" + "a" * 2100,
    ],
)
def test_bad_image_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgument):
        text_rules.https_url("avatar_url", url)


def test_good_image_urls_are_kept_verbatim() -> None:
    url = "https://cdn.example.com/u/1.png?v=2#x"
    assert text_rules.https_url("avatar_url", url) == url
    assert text_rules.https_url("avatar_url", "  ") == ""


def test_socials_known_networks_only() -> None:
    assert text_rules.socials({"Twitter": "@alice", "website": "https://alice.dev"}) == {
        "x": "@alice", "website": "https://alice.dev",
    }
    with pytest.raises(InvalidArgument, match="unknown network"):
        text_rules.socials({"myspace": "alice"})
    with pytest.raises(InvalidArgument):
        text_rules.socials({"website": "http://alice.dev"})
    with pytest.raises(InvalidArgument):
        text_rules.socials({"x": "@alice smith"})


def test_locale_timezone_currency() -> None:
    assert text_rules.language_tag("locale", "en-US") == "en-US"
    assert text_rules.time_zone("Europe/Berlin") == "Europe/Berlin"
    assert text_rules.currency("usd") == "USD"
    for bad in (lambda: text_rules.language_tag("locale", "english!"), lambda: text_rules.time_zone("Mars/Base"),
                lambda: text_rules.currency("dollars")):
        with pytest.raises(InvalidArgument):
            bad()


def test_page_tokens_round_trip_and_are_bound_to_their_list() -> None:
    cursor = pagination.Cursor(datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), uuid.uuid4())
    token = pagination.encode("followers", "user-a", cursor)
    assert pagination.decode(token, "followers", "user-a") == cursor  # microseconds survive
    assert pagination.decode("", "followers", "user-a") is None
    with pytest.raises(InvalidArgument, match="different request"):
        pagination.decode(token, "followers", "user-b")
    with pytest.raises(InvalidArgument, match="different request"):
        pagination.decode(token, "following", "user-a")
    for garbage in ("%%%", "bm90IGpzb24", token[:-3] + "AAA"):
        with pytest.raises(InvalidArgument):
            pagination.decode(garbage, "followers", "user-a")
    assert pagination.page_size(0) == 20 and pagination.page_size(1000) == 100
    with pytest.raises(InvalidArgument):
        pagination.page_size(-1)
