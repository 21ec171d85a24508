"""The demo as a newcomer meets it: ``eventrelay serve`` without a config in a folder, then every
other command run in that same folder without ``--config``, ``--url`` or ``--token``; the demo's
destination changed through the Config API; the same admin token after a restart. No AWS
configuration at all on the machine."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.demo import Demo, newcomer_env, running_demo
from tests.support.serve import EVENTRELAY

DELIVERY_DEADLINE = 60.0  # seconds: the first invoke starts an awslambdaric process


def call(demo: Demo, method: str, path: str, body: Any = None, *, basic: bool = False) -> tuple[int, Any]:
    auth = "Basic " + base64.b64encode(f"{demo.write_key}:".encode()).decode() if basic else f"Bearer {demo.token}"
    request = urllib.request.Request(
        demo.url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": auth, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def delivered(demo: Demo, message_id: str) -> None:
    deadline = time.monotonic() + DELIVERY_DEADLINE
    while time.monotonic() < deadline:
        status, body = call(demo, "GET", "/api/v1/deliveries?destination=demo-lambda&status=delivered")
        if status == 200 and any(d["message_id"] == message_id for d in body["deliveries"]):
            return
        time.sleep(0.2)
    raise AssertionError(f"{message_id} not delivered:\n{demo.output()[-3000:]}")


def test_every_command_works_in_the_demos_folder_without_flags(tmp_path: Path) -> None:
    with running_demo(tmp_path) as demo:
        token = demo.token
        out = demo.output()
        data = tmp_path / "eventrelay-data"
        for private in ("demo.yaml", "api-entities.json"):
            assert stat.S_IMODE((data / private).stat().st_mode) == 0o600, private
        assert f'a.write_key = "{demo.write_key}"' in out and "WRITE_KEY=..." not in out  # the real key
        assert out.index("eventrelay listening on") < out.index(f"admin token: {token}")
        assert "using local-only credentials" in out and "Found credentials" not in out

        status, _ = call(
            demo, "POST", "/v1/track", {"userId": "u-cli", "event": "CLI", "messageId": "m-cli"}, basic=True
        )
        assert status == 200
        delivered(demo, "m-cli")
        demo.wait_output("[eventrelay-demo] received track from u-cli: CLI")

        listed = demo.cli("deliveries")
        assert listed.returncode == 0, listed.stderr
        assert "m-cli" in listed.stdout and "delivered" in listed.stdout and "None" not in listed.stdout
        attempts = demo.cli("deliveries", "--message-id", "m-cli")
        assert attempts.returncode == 0 and "attempt 1 to demo-lambda" in attempts.stdout
        assert "None" not in attempts.stdout

        redriven = demo.cli("redrive", "demo-lambda")  # through the running server's admin API
        assert redriven.returncode == 0, redriven.stderr
        assert redriven.stdout.strip() == (
            "re-drove 0 events of demo-lambda: no event of demo-lambda is failed, discarded or retrying"
        )

        for document in ("policy", "trust-policy", "cloudformation"):
            made = demo.cli("aws", document)
            assert made.returncode == 0, (document, made.stderr)
            assert "eventrelay-demo" in made.stdout or "ExternalId" in made.stdout, document
        policy = json.loads(demo.cli("aws", "policy").stdout)
        assert policy["Statement"][0]["Resource"] == ["arn:aws:lambda:us-west-2:123456789012:function:eventrelay-demo"]

        checked = demo.cli("check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "demo-lambda  eventrelay-demo: OK" in checked.stdout

        sent = demo.cli("send", "--event", "From The CLI")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "Response from destination" in sent.stdout and '"category": "delivered"' in sent.stdout
        demo.wait_output("received track from eventrelay-test-user: From The CLI")  # on serve's output

        valid = demo.cli("validate")
        assert valid.returncode == 0, valid.stdout + valid.stderr
        assert (
            "OK (1 source, 0 destinations, storage sqlite; from the Config API store: 0 sources and 1 destination)"
            in (valid.stdout)
        )

        # The demo's destination is the Config API's: editable, and the local endpoint is allowed.
        status, dest = call(demo, "GET", "/api/v1/config/destinations/demo-lambda")
        assert (status, dest["managed_by"]) == (200, "api")
        patch = {"settings": {"endpoint_url": dest["settings"]["endpoint_url"], "log_type": "Tail"}}
        status, changed = call(demo, "PATCH", "/api/v1/config/destinations/demo-lambda", patch)
        assert status == 200, changed
        assert changed["settings"]["log_type"] == "Tail"
        status, refused = call(
            demo, "PATCH", "/api/v1/config/destinations/demo-lambda", {"settings": {"endpoint_url": "http://evil:1"}}
        )
        assert status == 422 and "allow-list" in refused["error"]["message"]

    with running_demo(tmp_path) as again:  # a restart keeps the token (and the change made above)
        assert again.token == token
        assert f"admin token: {token}" in again.output()
        status, dest = call(again, "GET", "/api/v1/config/destinations/demo-lambda")
        assert (status, dest["settings"]["log_type"]) == (200, "Tail")


def test_commands_outside_a_demo_folder_say_what_they_looked_for(tmp_path: Path) -> None:

    for args in (["deliveries"], ["check"], ["aws", "policy"], ["validate"], ["send"], ["redrive", "x"]):
        done = subprocess.run(
            [*EVENTRELAY, *args], cwd=tmp_path, env=newcomer_env(tmp_path), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "pass --config FILE" in done.stderr and str(tmp_path / "eventrelay-data" / "demo.yaml") in done.stderr
        assert "Traceback" not in done.stderr
