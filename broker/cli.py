"""The ``carebroker`` command.

Each group of commands lives in its own module under ``broker/commands/`` and
registers itself on the parser; this module only builds the parser, reads the
settings once, and turns a :class:`StartupError` into a one-line message and
exit status 2 (never a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from broker.errors import BrokerError, StartupError

COMMAND_MODULES = (
    "broker.commands.audit",
    "broker.commands.up",
    "broker.commands.config",
    "broker.commands.users",
    "broker.commands.openapi",
    "broker.commands.asyncapi",
    "broker.commands.convert",
    "broker.commands.partners",
    "broker.commands.route",
    "broker.commands.consent",
    "broker.commands.replay",
    "broker.commands.bench",
    "broker.commands.messages",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every command module's subcommands."""
    parser = argparse.ArgumentParser(
        prog="carebroker",
        description="Regional care-coordination message broker (HL7 v2, FHIR, Kafka).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except StartupError as exc:
        sys.stderr.write(f"carebroker: error: {exc}\n")
        return 2
    except BrokerError as exc:
        sys.stderr.write(f"carebroker: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
