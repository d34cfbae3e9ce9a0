"""`mintplane` command line: the dev stack (`dev up|down|status|env|restart <piece>...`) and `migrate`."""

from __future__ import annotations

import argparse
import sys


def _dev(args: argparse.Namespace) -> int:
    from mintplane.devstack import stack
    from mintplane.devstack.layout import Layout

    layout = Layout.default()
    if args.action == "up":
        return stack.up(layout, services=not args.infra_only)
    if args.action == "down":
        return stack.down(layout, wipe=args.wipe)
    if args.action == "status":
        return stack.status(layout)
    if args.action == "restart":
        return stack.restart(layout, args.pieces)
    print("\n".join(stack.env_lines(layout)))
    return 0


def _migrate(_args: argparse.Namespace) -> int:
    from mintplane.common.migrate import upgrade_to_head
    from mintplane.common.settings import InfraSettings

    applied = upgrade_to_head(InfraSettings().pg_dsn.get_secret_value())
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mintplane", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="the local dev stack")
    dev.add_argument("action", choices=["up", "down", "status", "env", "restart"])
    dev.add_argument("pieces", nargs="*", help="with restart: the pieces to restart (names as `status` prints)")
    dev.add_argument("--wipe", action="store_true", help="with down: delete all data, certs and kubeconfig")
    dev.add_argument("--infra-only", action="store_true", help="with up: infrastructure only, no services")
    dev.set_defaults(handler=_dev)
    migrate = commands.add_parser("migrate", help="apply database migrations (forward-only, re-runnable)")
    migrate.set_defaults(handler=_migrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
