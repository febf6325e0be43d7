"""`fleet` command line: status table, prerequisites, local base image, image builds."""

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
    width = args.width or (None if sys.stdout.isatty() else 180)  # logs and CI: no terminal to size to
    Console(width=width).print(status_table(Path(args.file)))
    blocks = read_status(Path(args.file))
    return 1 if any(b.status == FAILED for b in blocks.values()) else 0


def cmd_ensure_base(args: argparse.Namespace) -> int:
    from fleet.images import ensure_local_base

    print(ensure_local_base().describe())
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from fleet.images import prune_cached_images

    for tag in prune_cached_images(keep=args.keep):
        print(f"removed {tag}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from fleet.docker_engine import engine_client
    from fleet.image_catalog import build_for_local_target, build_image

    client, results = engine_client(), {}
    for name in args.names:
        if args.base_image:
            build_image(name, client, None if args.base_image == "default" else args.base_image, results)
        else:
            build_for_local_target(name, client, results)
    for result in results.values():
        print(result.describe())
    return 0


def cmd_prereqs(args: argparse.Namespace) -> int:
    from fleet.prereqs import check_prerequisites, prerequisites_table, write_docker_status

    results = check_prerequisites(Path(args.env_file))
    Console().print(prerequisites_table(results))
    write_docker_status(Path(args.docker_status), results)
    return 0 if all(r.ok for r in results) else 1


def _catalog_names() -> list[str]:
    from fleet.image_catalog import CATALOG

    return list(CATALOG)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="print the implementation status table")
    status.add_argument("--file", default=".docker-implementation-status")
    status.add_argument("--width", type=int, default=None)
    status.set_defaults(func=cmd_status)
    images = sub.add_parser("images", help="image helpers").add_subparsers(dest="images_command", required=True)
    images.add_parser("ensure-base", help="make the local base image if missing").set_defaults(func=cmd_ensure_base)
    build = images.add_parser("build", help="build images of the catalogue (parents first, cached by context)")
    build.add_argument("names", nargs="+", choices=sorted(_catalog_names()))
    build.add_argument("--base-image", default=None,
                       help="BASE_IMAGE of the root images: 'default' = each Dockerfile's own; unset = the local base")
    build.set_defaults(func=cmd_build)
    prune = images.add_parser("prune", help="remove cached builds older than the newest KEEP of each image")
    prune.add_argument("--keep", type=int, default=2)
    prune.set_defaults(func=cmd_prune)
    prereqs = sub.add_parser("prereqs", help="check the deployment's prerequisites (step 100)")
    prereqs.add_argument("--env-file", default=".env")
    prereqs.add_argument("--docker-status", default=".docker-status")
    prereqs.set_defaults(func=cmd_prereqs)
    from fleet.host_commands import add_subcommands as add_host_commands

    add_host_commands(sub)  # sweep, hosts, userdata
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
