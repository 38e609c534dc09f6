"""A minimal raw-socket IRC user for the tests: register, join, say things, read replies."""

from __future__ import annotations

import asyncio
import contextlib


class RawUser:
    """One IRC user speaking the protocol by hand (no IRC library)."""

    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.lines: list[str] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._new = asyncio.Event()

    async def connect(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self._reader, self._writer = await asyncio.open_connection(host, int(port))
        self._task = asyncio.create_task(self._read())
        self.send(f"NICK {self.nick}")
        self.send(f"USER {self.nick} 0 * :{self.nick}")
        await self.wait_for(" 001 ")

    def send(self, line: str) -> None:
        assert self._writer is not None
        self._writer.write(line.encode() + b"\r\n")

    async def join(self, channel: str) -> None:
        self.send(f"JOIN {channel}")
        await self.wait_for(f"JOIN {channel}", f"JOIN :{channel}")

    def say(self, target: str, text: str) -> None:
        self.send(f"PRIVMSG {target} :{text}")

    async def _read(self) -> None:
        assert self._reader is not None
        while True:
            raw = await self._reader.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            if line.startswith("PING"):
                self.send("PONG" + line[4:])
            self.lines.append(line)
            self._new.set()

    async def wait_for(self, *needles: str, timeout: float = 10.0, start: int = 0) -> str:
        """The first line (from index ``start``) containing any of ``needles``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = start
        while True:
            for line in self.lines[seen:]:
                if any(n in line for n in needles):
                    return line
            seen = len(self.lines)
            self._new.clear()
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"{self.nick}: no line with {needles}; last: {self.lines[-5:]}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._new.wait(), left)

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self.send("QUIT :bye")
                await self._writer.drain()
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
