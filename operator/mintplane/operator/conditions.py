"""metav1.Condition bookkeeping: a condition's lastTransitionTime moves only when its status flips, so
``kubectl describe`` tells how long a resource has been (un)ready, and unchanged status writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: bool | None  # None: Unknown
    reason: str
    message: str = ""

    @property
    def status_text(self) -> str:
        return "Unknown" if self.status is None else ("True" if self.status else "False")


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def merge(
    current: Iterable[Mapping[str, Any]] | None,
    updates: Iterable[Condition],
    *,
    generation: int | None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """Current conditions with ``updates`` applied; other condition types are kept as they are."""
    stamp = now or now_iso()
    merged: dict[str, dict[str, Any]] = {str(c.get("type")): dict(c) for c in current or ()}
    for update in updates:
        previous = merged.get(update.type)
        transition = stamp
        if previous is not None and previous.get("status") == update.status_text:
            transition = str(previous.get("lastTransitionTime") or stamp)
        entry: dict[str, Any] = {
            "type": update.type,
            "status": update.status_text,
            "reason": update.reason,
            "message": update.message,
            "lastTransitionTime": transition,
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        merged[update.type] = entry
    return sorted(merged.values(), key=lambda c: str(c["type"]))


def find(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions or () if c.get("type") == type_), None)


def is_true(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found.get("status") == "True"


def changed(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``desired`` status fields that differ from ``current`` (what a patch must carry)."""
    current = current or {}
    return {key: value for key, value in desired.items() if current.get(key) != value}
