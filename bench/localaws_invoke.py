"""Invocations/s of a trivial handler through the local Lambda runtime (awslambdaric workers).

Client: aiohttp with SigV4 signing (derived key cached per day), N requests in flight, session credentials
from the local STS. Printed beside it, measured in the same run: the ceiling of the same signed HTTP path
without running a handler (DryRun: authentication, permission and routing only).

    python bench/localaws_invoke.py [--seconds 5] [--inflight 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import aiohttp

from eventrelay.config.model import LocalAws
from eventrelay.localaws.server import LocalAwsServer
from eventrelay.localaws.sigv4 import signing_key

HANDLER = "def handler(event, context):\n    return event\n"
REGION, ACCOUNT = "us-west-2", "123456789012"
CPU_US: dict[tuple[str, int], float] = {}  # CPU of this process (client + endpoint) per request


def sign(
    method: str, url: str, body: bytes, creds: dict[str, str], service: str, extra: dict[str, str]
) -> dict[str, str]:
    parts = urlsplit(url)
    now = datetime.now(UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {"host": parts.netloc, "x-amz-date": amz_date, **{k.lower(): v for k, v in extra.items()}}
    if creds.get("token"):
        headers["x-amz-security-token"] = creds["token"]
    names = sorted(headers)
    from urllib.parse import quote

    canonical = "\n".join(
        [
            method,
            quote(parts.path, safe="/~"),
            parts.query,
            "".join(f"{n}:{headers[n]}\n" for n in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{REGION}/{service}/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    sig = hmac.new(signing_key(creds["secret"], day, REGION, service), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={creds['key']}/{scope}, SignedHeaders={';'.join(names)}, Signature={sig}"
    )
    del headers["host"]
    return headers


async def assume(session: aiohttp.ClientSession, url: str) -> dict[str, str]:
    body = (
        f"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A{ACCOUNT}%3Arole%2Fbench"
        "&RoleSessionName=bench&ExternalId=bench-id"
    ).encode()
    base = {"key": "AKIABENCH", "secret": "bench"}
    headers = sign("POST", url + "/", body, base, "sts", {"content-type": "application/x-www-form-urlencoded"})
    async with session.post(url + "/", data=body, headers=headers) as r:
        xml = ElementTree.fromstring(await r.read())
    ns = {"s": "https://sts.amazonaws.com/doc/2011-06-15/"}
    creds = xml.find(".//s:Credentials", ns)
    assert creds is not None, "AssumeRole failed"
    return {
        "key": creds.findtext("s:AccessKeyId", "", ns),
        "secret": creds.findtext("s:SecretAccessKey", "", ns),
        "token": creds.findtext("s:SessionToken", "", ns),
    }


async def run_load(
    session: aiohttp.ClientSession,
    url: str,
    creds: dict[str, str],
    seconds: float,
    inflight: int,
    invocation_type: str,
) -> tuple[int, float]:
    target = f"{url}/2015-03-31/functions/trivial/invocations"
    body = b'{"type": "track", "event": "Bench"}'
    done = 0
    stop_at = time.monotonic() + seconds

    async def loop() -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            headers = sign("POST", target, body, creds, "lambda", {"x-amz-invocation-type": invocation_type})
            async with session.post(target, data=body, headers=headers) as r:
                await r.read()
                assert r.status in (200, 204), (r.status, await r.text())
            done += 1

    started, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(loop() for _ in range(inflight)))
    CPU_US[invocation_type, inflight] = (time.process_time() - cpu) / max(done, 1) * 1e6
    return done, time.monotonic() - started


def write_handler(folder: str) -> None:
    Path(folder, "trivial.py").write_text(HANDLER)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_handler(tmp)
        settings = LocalAws.model_validate(
            {
                "functions_dir": tmp,
                "functions": {"trivial": {"handler": "trivial.handler", "concurrency": args.workers}},
                "roles": {"bench": {"external_id": "bench-id"}},
            }
        )
        server = await LocalAwsServer(settings).start()
        try:
            connector = aiohttp.TCPConnector(limit=args.inflight)
            async with aiohttp.ClientSession(connector=connector) as session:
                creds = await assume(session, server.url)
                await run_load(session, server.url, creds, 1.0, args.inflight, "RequestResponse")  # warm up
                n, t = await run_load(session, server.url, creds, args.seconds, args.inflight, "RequestResponse")
                dn, dt = await run_load(session, server.url, creds, args.seconds, args.inflight, "DryRun")
                n1, t1 = await run_load(session, server.url, creds, args.seconds, 1, "RequestResponse")
        finally:
            await server.stop()
    print(
        f"trivial handler, {args.workers} awslambdaric worker(s), {args.inflight} in flight: {n / t:,.0f} invocations/s"
    )
    print(
        f"trivial handler, sequential (1 in flight): {n1 / t1:,.0f} invocations/s "
        f"({t1 / max(n1, 1) * 1000:.2f} ms per call)"
    )
    print(f"ceiling, same signed HTTP path without a handler (DryRun): {dn / dt:,.0f} requests/s")
    invoke_cpu, dry_cpu = CPU_US["RequestResponse", args.inflight], CPU_US["DryRun", args.inflight]
    print(
        f"CPU of this process (client + endpoint, not workers) per request: invoke {invoke_cpu:.0f} us, "
        f"DryRun {dry_cpu:.0f} us"
    )
    print(f"ratio handler / ceiling: {n / t / (dn / dt):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(args))
