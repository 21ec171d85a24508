"""Benchmark: batch ingest, 100 events per request (issue 8 item 2). Target: >= 0.5 x the ceiling.

Same harness as ``ingest_single.py`` (bare uvicorn + orjson ceiling vs eventrelay on the SQLite
queue, separate load generator process, 64 connections); the body is ``/v1/batch`` with 100
~1.2 KB track events (each gets its own generated messageId). Prints req/s, events/s and the ratio.

    python bench/ingest_batch.py [--seconds 10] [--connections 64] [--batch 100] [--rounds 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from ingest_single import child, compare, parser, track_event


def main() -> None:
    p = parser("batch ingest: eventrelay vs a bare uvicorn ASGI app")
    p.add_argument("--batch", type=int, default=100, help="events per request (default 100)")
    args = p.parse_args()
    if child(args):
        return
    batch = [track_event(i) for i in range(args.batch)]
    for event in batch:
        del event["sentAt"]
    body = orjson.dumps({"batch": batch, "sentAt": "2024-05-01T12:00:00.250Z", "context": {"locale": "en-US"}})
    compare("/v1/batch", body, args.batch, args, target=0.5)


if __name__ == "__main__":
    main()
