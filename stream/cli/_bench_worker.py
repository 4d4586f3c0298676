"""Bench only (lives in cli/ because it runs the command line): ``bpstream worker`` with another fetch wait for faust's consumer (a what-if).

faust-streaming 0.15 creates its aiokafka consumer with ``fetch_max_wait_ms=1500`` fixed, and Tansu
holds each fetch close to that wait, so on Tansu the wait sets a floor under the latency. Run as
``python -m bpstream.stream.cli._bench_worker WAIT_MS``: the same worker, with only that number changed.
The product's worker is untouched; ``bpstream bench perf --perf-fetch-wait-ms`` reports both.
"""

from __future__ import annotations

import sys
import types

FAUST_FETCH_WAIT_MS = 1500


def patch_fetch_wait(wait_ms: int) -> None:
    import aiokafka
    import faust.transport.drivers.aiokafka as driver

    class _Consumer(aiokafka.AIOKafkaConsumer):
        def __init__(self, *args, **kwargs):
            if kwargs.get("fetch_max_wait_ms") == FAUST_FETCH_WAIT_MS:
                kwargs["fetch_max_wait_ms"] = int(wait_ms)
            super().__init__(*args, **kwargs)

    shim = types.ModuleType("aiokafka")
    shim.__dict__.update(aiokafka.__dict__)
    shim.AIOKafkaConsumer = _Consumer
    driver.aiokafka = shim


def main(argv: list[str]) -> int:
    patch_fetch_wait(int(argv[0]))
    from ._main import main as cli_main

    return cli_main(["worker", *argv[1:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
