"""Username rules: one canonical ASCII form, so no two handles can look alike across scripts.

Choice: ``unicodedata`` NFKC + case folding, then an ASCII-only alphabet ``[a-z0-9_]``, plus an ASCII
look-alike skeleton for reserved names. Why not a confusables library (``confusable_homoglyphs``)?
Such a library answers "is this string mixed-script / confusable with something", which is what a
platform needs when it *accepts* non-Latin handles. We don't: after NFKC (which folds compatibility forms
such as fullwidth letters U+FF41.. or the Kelvin sign into plain ASCII) every remaining non-ASCII code point
is refused, so Cyrillic/Greek homoglyphs, zero-width joiners and bidi overrides can never reach the
database, and the stored handle is exactly what every client renders. That is strictly stronger than
mixed-script detection, needs only the standard library (kept in step with the Unicode version of the
interpreter), and gives precise error messages (the offending character's Unicode name).
What NFKC cannot catch are *ASCII* look-alikes (``adm1n``, ``r00t``, ``rn`` for ``m``); those matter for
staff and platform names, so reserved names are also compared by a small ASCII skeleton (UTS #39's
confusables restricted to ASCII).
"""

from __future__ import annotations

import re
import unicodedata

from mintplane.common.errors import InvalidArgument

MIN_LENGTH = 3
MAX_LENGTH = 30
_ALLOWED = re.compile(r"^[a-z0-9_]+$")
_ADDRESS_LIKE = re.compile(r"^0x[0-9a-f]*$")

RESERVED: frozenset[str] = frozenset(
    {
        "about", "account", "accounts", "activity", "admin", "administrator", "anonymous", "api", "app",
        "assets", "auth", "billing", "blog", "collection", "collections", "contact", "create", "dashboard",
        "dev", "docs", "edit", "email", "everyone", "explore", "graphql", "help", "here", "home", "info",
        "login", "logout", "mail", "marketplace", "me", "media", "mintplane", "mod", "moderator", "new",
        "notifications", "null", "official", "owner", "privacy", "profile", "profiles", "rankings",
        "register", "root", "search", "security", "settings", "signin", "signout", "signup", "staff",
        "static", "stats", "status", "support", "system", "team", "terms", "token", "tokens", "undefined",
        "user", "users", "wallet", "wallets", "www",
    }
)
# Names that may not appear anywhere in a handle: they impersonate the platform ("mintplane_support").
RESERVED_SUBSTRINGS: tuple[str, ...] = ("mintplane",)

# ASCII characters (and pairs) that render like another: UTS #39 confusables.txt restricted to ASCII.
_SKELETON_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))
_SKELETON_CHARS = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "5": "s", "3": "e", "_": ""})


def _skeleton(name: str) -> str:
    for pair, single in _SKELETON_PAIRS:
        name = name.replace(pair, single)
    return name.translate(_SKELETON_CHARS)


_RESERVED_SKELETONS: frozenset[str] = frozenset(_skeleton(name) for name in RESERVED)
_RESERVED_SUBSTRING_SKELETONS: tuple[str, ...] = tuple(_skeleton(name) for name in RESERVED_SUBSTRINGS)


def _describe(char: str) -> str:
    name = unicodedata.name(char, "unnamed character")
    return f"U+{ord(char):04X} {name}"


def canonical(raw: str) -> str:
    """NFKC + full case folding (NFKC_Casefold-like), trimmed: the form stored and compared."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw).casefold())
    return folded.strip()


def normalize_username(raw: str) -> str:
    """Return the canonical handle for `raw`, or raise InvalidArgument saying which rule it breaks."""
    name = canonical(raw)
    for char in name:
        if not (char.isascii() and (char.isalnum() or char == "_")):
            raise InvalidArgument(
                f"username may only contain a-z, 0-9 and _; {_describe(char)} is not allowed"
            )
    if not MIN_LENGTH <= len(name) <= MAX_LENGTH:
        raise InvalidArgument(f"username must be {MIN_LENGTH} to {MAX_LENGTH} characters long, got {len(name)}")
    if not _ALLOWED.match(name):  # defensive: the loop above already guarantees it
        raise InvalidArgument("username may only contain a-z, 0-9 and _")
    if name.startswith("_") or name.endswith("_"):
        raise InvalidArgument("username may not start or end with an underscore")
    if _ADDRESS_LIKE.match(name):
        raise InvalidArgument("username may not look like an address (0x...)")
    skeleton = _skeleton(name)
    if name in RESERVED or skeleton in _RESERVED_SKELETONS:
        raise InvalidArgument(f"username {name!r} is reserved")
    if any(part in name for part in RESERVED_SUBSTRINGS) or any(
        part in skeleton for part in _RESERVED_SUBSTRING_SKELETONS
    ):
        raise InvalidArgument(f"username {name!r} is reserved: it may not contain the platform's name")
    return name


def lookup_key(raw: str) -> str | None:
    """The canonical form to look a handle up by, or None when `raw` can never be a valid handle.

    Lookups are lenient on purpose (no reserved-name check: reserved handles simply do not exist), but a
    string that is not ASCII after NFKC cannot match any stored handle, so it is a miss, not an error.
    """
    name = canonical(raw)
    if not name or len(name) > MAX_LENGTH or not _ALLOWED.match(name):
        return None
    return name
