"""Kubernetes Events for condition transitions, so ``kubectl describe`` tells the story of a resource.

Only flips are posted (Ready False -> True, an endpoint turning unhealthy, ...), never every timer run: a
probe every few seconds must not become an Event every few seconds. Messages are the condition messages,
which never carry credentials.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from mintplane.operator.conditions import find


def _first_worth_telling(condition: Mapping[str, Any]) -> bool:
    """A condition seen for the first time: tell a Ready that starts True, and a failed first sync."""
    kind, status = condition.get("type"), condition.get("status")
    if kind == "Ready":
        return status == "True"
    return kind == "Synced" and status == "False"


def post_transitions(body: kopf.Body, before: Iterable[Mapping[str, Any]] | None,
                     after: Iterable[Mapping[str, Any]] | None) -> None:
    previous = list(before or ())
    for condition in after or ():
        old = find(previous, str(condition.get("type")))
        if old is not None and old.get("status") == condition.get("status"):
            continue
        if old is None and not _first_worth_telling(condition):
            continue
        status = condition.get("status")
        text = f"{condition.get('type')} is {status}: {condition.get('message') or condition.get('reason')}"
        reason = str(condition.get("reason") or condition.get("type"))
        if status == "True":
            kopf.info(body, reason=reason, message=text)
        else:
            kopf.warn(body, reason=reason, message=text)
