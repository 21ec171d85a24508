"""Entry point: ``eventrelay <command>``. Each command lives in its own module of this package."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from eventrelay.core.errors import ConfigError, EventRelayError

SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a command whose reader closed the pipe
COMMANDS = ("serve", "validate", "localaws", "deliveries", "redrive", "replay", "aws", "check", "send")


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
    except BrokenPipeError:
        return _reader_gone()
    return int(code or 0)


def _reader_gone() -> int:
    """The reader of stdout went away (``eventrelay deliveries | head``): stop quietly, as a
    command killed by SIGPIPE would, without the traceback of the final flush at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return SIGPIPE_EXIT


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


if __name__ == "__main__":
    sys.exit(main())
