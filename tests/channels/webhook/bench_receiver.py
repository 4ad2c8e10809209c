"""`python -m tests.channels.webhook.bench_receiver --ports N`: a fast HTTP/1.1 sink for the webhook benchmark.

It listens on N loopback ports, answers every request 200 with an empty body (keep-alive unless the client
says close), and counts requests and distinct paths. GET /__stats answers {"requests": n, "paths": k};
POST /__reset sets both to zero. It prints {"ports": [...]} on its first stdout line, then serves until
its stdin closes (the benchmark that started it ended or died), SIGTERM, or --max-seconds.

It is a bare asyncio protocol rather than an aiohttp app so that, on a small machine, the receiving side
costs a fraction of the sending side and the benchmark measures the senders."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
from typing import Final

OK: Final = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
HEAD_LIMIT: Final = 64 * 1024
BODY_LIMIT: Final = 1024 * 1024


class Counts:
    def __init__(self) -> None:
        self.requests = 0
        self.paths: set[str] = set()

    def answer(self, method: str, path: str) -> bytes:
        if path == "/__stats":
            body = json.dumps({"requests": self.requests, "paths": len(self.paths)}).encode()
            return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                len(body),
                body,
            )
        if path == "/__reset" and method == "POST":
            self.requests, self.paths = 0, set()
            return OK
        self.requests += 1
        self.paths.add(path)
        return OK


class Sink(asyncio.Protocol):
    def __init__(self, counts: Counts) -> None:
        self._counts = counts
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > HEAD_LIMIT:
                    self._transport.close()
                return
            lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            method, path, _version = lines[0].split(" ", 2)
            length, close = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection":
                    close = value.strip().lower() == "close"
            if length > BODY_LIMIT:
                self._transport.close()
                return
            if len(self._buffer) < end + 4 + length:
                return
            del self._buffer[: end + 4 + length]
            self._transport.write(self._counts.answer(method, path))
            if close:
                self._transport.close()
                return


async def serve(ports: int, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    counts = Counts()
    servers = [await loop.create_server(lambda: Sink(counts), "127.0.0.1", 0, backlog=1024) for _ in range(ports)]
    print(json.dumps({"ports": [server.sockets[0].getsockname()[1] for server in servers]}), flush=True)
    parent_gone = asyncio.Event()

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF: the process that started us closed the pipe or died
        loop.call_soon_threadsafe(parent_gone.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        async with asyncio.timeout(max_seconds):
            await parent_gone.wait()
    except TimeoutError:
        pass
    finally:
        for server in servers:
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    asyncio.run(serve(args.ports, args.max_seconds))


if __name__ == "__main__":
    main()
