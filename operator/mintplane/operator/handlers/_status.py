"""Writing status through Kopf's patch, safely between a change handler and a timer of the same object.

Kopf runs an object's timers concurrently with its change handlers, each with its own snapshot of the
body. ``conditions`` is a list, which a merge patch replaces whole: a timer working from a snapshot taken
just before the handler's write would drop the handler's Synced condition. So every write is also kept in
the object's own memo (Kopf gives each object one, shared by its handlers), and every computation starts
from the body's status overlaid with what this process last wrote. After a restart the memo is empty and
the body is the truth again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from mintplane.operator.conditions import changed
from mintplane.operator.errors import ReconcileError, to_kopf
from mintplane.operator.events import post_transitions


def effective(status: Mapping[str, Any], memo: Any) -> dict[str, Any]:
    """The status as it is once our own latest writes are applied."""
    return {**status, **memo.get("status_written", {})}


def write_status(body: kopf.Body, patch: kopf.Patch, status: Mapping[str, Any], desired: Mapping[str, Any],
                 memo: Any) -> None:
    current = effective(status, memo)
    delta = changed(current, desired)
    if "conditions" in delta:
        post_transitions(body, current.get("conditions"), delta["conditions"])
    memo.status_written = {**memo.get("status_written", {}), **desired}
    # Against the body (not our memo): a write Kopf could not apply must be sent again.
    patch.status.update(changed(status, desired))


def kopf_error(error: ReconcileError, memo: Any,
               kwargs: Mapping[str, Any]) -> kopf.TemporaryError | kopf.PermanentError:
    """The Kopf error for a failed reconcile, backing off with Kopf's retry count of this handler."""
    return to_kopf(error, default_delay=memo.settings.retry_delay_seconds, retry=int(kwargs.get("retry") or 0))
