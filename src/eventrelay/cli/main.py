"""Entry point: ``eventrelay <command>``. Each command lives in its own module of this package."""

from __future__ import annotations

import argparse
import importlib
import sys

from eventrelay.core.errors import ConfigError, EventRelayError

COMMANDS = ("serve", "validate", "localaws", "deliveries", "redrive", "recover", "aws", "check", "send")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eventrelay", description="Segment-compatible event router to AWS Lambda")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"eventrelay.cli.{name}").add_parser(sub)  # each module imports lazily
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except ConfigError as exc:
        print(f"configuration error:\n{_indent(str(exc))}", file=sys.stderr)
        return 2
    except EventRelayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


if __name__ == "__main__":
    sys.exit(main())
