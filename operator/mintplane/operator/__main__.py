"""`python -m mintplane.operator [--namespace NS ...]`: run the operator (Kopf, standalone, no peering).

Without namespaces (flag or MINTPLANE_OPERATOR_NAMESPACES) it watches the whole cluster. Liveness is served
on MINTPLANE_OPERATOR_LIVENESS_ENDPOINT (default http://127.0.0.1:8080/healthz; "" turns it off).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import kopf

from mintplane.common.log import configure_logging
from mintplane.operator.settings import get_settings


class KopfRecords(logging.Filter):
    """Kopf's per-object log lines, fit for our JSON logs: prefixed with the object they are about, and
    without the "Timer ... succeeded." line Kopf writes on every run (probes tick every second)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Timer ") and message.endswith(" succeeded."):
            return False
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict) and ref.get("name"):
            record.msg, record.args = f"[{ref.get('kind')} {ref.get('namespace')}/{ref['name']}] {message}", ()
        return True


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mintplane-operator", description=__doc__)
    parser.add_argument("--namespace", "-n", action="append", default=[],
                        help="namespace or glob to watch (repeatable); default: settings, else cluster-wide")
    args = parser.parse_args(argv)

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json, service="operator")
    logging.getLogger("kopf.objects").addFilter(KopfRecords())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # one line per liveness probe otherwise

    import mintplane.operator.handlers
    import mintplane.operator.startup  # noqa: F401  (both register Kopf handlers on import)

    if args.namespace:
        settings.namespaces = list(args.namespace)
    namespaces = settings.namespaces
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=settings.liveness_endpoint or None,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
