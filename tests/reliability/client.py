"""A small concurrent Tracking API client for the reliability suites: records which events got a 200."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

from tests.support.send import batch_post


@dataclass
class Sender:
    url: str
    write_key: str
    acked: list[str] = field(default_factory=list)
    refused: int = 0
    errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send_batch(self, size: int = 10) -> None:
        ids = [str(uuid.uuid4()) for _ in range(size)]
        events = [
            {"type": "track", "event": "Reliability", "userId": f"u{i}", "messageId": mid, "properties": {"n": i}}
            for i, mid in enumerate(ids)
        ]
        req = batch_post(self.url, self.write_key, events)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                if resp.status == 200:
                    with self.lock:
                        self.acked.extend(ids)
        except urllib.error.HTTPError:
            with self.lock:
                self.refused += 1
        except OSError:
            with self.lock:
                self.errors += 1
            time.sleep(0.05)

    def run_threads(self, n: int, batch: int = 10) -> list[threading.Thread]:
        def loop() -> None:
            while not self.stop.is_set():
                self.send_batch(batch)

        threads = [threading.Thread(target=loop, daemon=True) for _ in range(n)]
        for t in threads:
            t.start()
        return threads
