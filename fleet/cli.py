"""`fleet` command line: status table, prerequisites, local base image."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fleet.status import FAILED, SKIPPED, SUCCESS, read_status
from fleet.steps import STEPS

STYLE = {SUCCESS: "green", FAILED: "red", SKIPPED: "yellow"}


def status_table(path: Path) -> Table:
    table = Table(title=f"spotscribe implementation status ({path})")
    for column in ("step", "phase", "title", "status", "completed", "notes"):
        table.add_column(column, overflow="fold")
    blocks = read_status(path)
    for number, step in STEPS.items():
        block = blocks.get(number)
        status = block.status if block else "-"
        table.add_row(str(number), f"phase{step.phase}", step.title, f"[{STYLE.get(status, 'dim')}]{status}[/]",
                      block.completed if block else "", block.notes if block else "not run yet")
    return table


def cmd_status(args: argparse.Namespace) -> int:
    Console(width=args.width).print(status_table(Path(args.file)))
    blocks = read_status(Path(args.file))
    return 1 if any(b.status == FAILED for b in blocks.values()) else 0


def cmd_ensure_base(args: argparse.Namespace) -> int:
    from fleet.images import ensure_local_base

    print(ensure_local_base().describe())
    return 0


def cmd_prereqs(args: argparse.Namespace) -> int:
    from fleet.prereqs import check_prerequisites, prerequisites_table, write_docker_status

    results = check_prerequisites(Path(args.env_file))
    Console().print(prerequisites_table(results))
    write_docker_status(Path(args.docker_status), results)
    return 0 if all(r.ok for r in results) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="print the implementation status table")
    status.add_argument("--file", default=".docker-implementation-status")
    status.add_argument("--width", type=int, default=None)
    status.set_defaults(func=cmd_status)
    images = sub.add_parser("images", help="image helpers").add_subparsers(dest="images_command", required=True)
    images.add_parser("ensure-base", help="make the local base image if missing").set_defaults(func=cmd_ensure_base)
    prereqs = sub.add_parser("prereqs", help="check the deployment's prerequisites (step 100)")
    prereqs.add_argument("--env-file", default=".env")
    prereqs.add_argument("--docker-status", default=".docker-status")
    prereqs.set_defaults(func=cmd_prereqs)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
