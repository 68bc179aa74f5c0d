"""``manage.py streams consume``: start runs of ``trigger.stream`` flows from Redis Streams
(see apps/connectors/streams/consumer.py). ``streams status`` prints each flow's consumer
group lag."""

from __future__ import annotations

import json
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.connectors.streams.consumer import StreamConsumer, stream_status


class Command(BaseCommand):
    help = "Consume Redis Streams for stream-triggered flows, or show their lag."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["consume", "status"])
        parser.add_argument("--consumer", default=None, help="Consumer name (default: host).")
        parser.add_argument("--once", action="store_true", help="One round, then exit.")

    def handle(
        self, *args: Any, action: str, consumer: str | None, once: bool, **options: Any
    ) -> None:
        if action == "status":
            for row in stream_status():
                self.stdout.write(json.dumps(row))
            return
        worker = StreamConsumer(name=consumer)
        if once:
            outcomes = worker.poll_once()
            self.stdout.write(f"handled {len(outcomes)} message(s)")
            return
        # SIGTERM/SIGINT finish the current round, so no message is half-handled.
        signal.signal(signal.SIGTERM, lambda *_: worker.stop())
        signal.signal(signal.SIGINT, lambda *_: worker.stop())
        worker.run()
