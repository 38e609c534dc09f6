"""Redis, aiohttp and httpx instrumentation against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tests.servers import server_url

import botpulse
from botpulse.instrument import instrument, uninstrument
from botpulse.instrument._http import route_template
from botpulse.testing import capture

from .helpers import children, findings

TOKEN = "123456789:AAHfake-TelegramToken_abcdefghijklmno"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 500 if "boom" in self.path else 200
        body = json.dumps({"path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_route_templates_replace_ids_and_tokens() -> None:
    assert route_template(f"/bot{TOKEN}/getUpdates") == "/bot{token}/getUpdates"
    assert route_template(f"/file/bot{TOKEN}/photos/x.jpg") == "/file/bot{token}/photos/x.jpg"
    assert route_template("/api/v10/channels/123456789012345678/messages") == (
        "/api/v10/channels/{id}/messages"
    )
    assert route_template("/users/7/avatar?size=64") == "/users/{id}/avatar"
    assert route_template("/items/550e8400-e29b-41d4-a716-446655440000") == "/items/{id}"
    assert route_template("/webhooks/1234/aB3dE6gH9jK2mN5pQ8sT1vW4yZ7") == "/webhooks/{id}/{token}"
    assert route_template("/v1/status") == "/v1/status"


def test_httpx_sync_requests_failures_and_no_token_in_the_store(http_base: str) -> None:
    import httpx

    instrument("httpx")
    port = _closed_port()
    with capture() as recorded:
        with httpx.Client() as client, botpulse.flow("fetch"):
            assert client.get(f"{http_base}/bot{TOKEN}/getMe?x=1").status_code == 200
            assert client.get(f"{http_base}/boom/42").status_code == 500
            with pytest.raises(httpx.ConnectError):
                client.get(f"http://127.0.0.1:{port}/users/5")
        ops = children(recorded, "fetch", "http")
        stored = json.dumps([dataclasses.asdict(t) for t in recorded.traces()], default=str)
    host = http_base.removeprefix("http://")
    assert [(c.name, c.status, c.error) for c in ops] == [
        (f"GET {host}/bot{{token}}/getMe", "ok", None),
        (f"GET {host}/boom/{{id}}", "error", "HTTP 500"),
        (f"GET 127.0.0.1:{port}/users/{{id}}", "error", "ConnectError"),
    ]
    assert ops[0].attrs["status_code"] == 200
    assert ops[0].attrs["method"] == "GET"
    assert ops[0].attrs["route"] == "/bot{token}/getMe"
    assert "TelegramToken" not in stored
    assert "source" in ops[0].attrs


async def test_httpx_async(http_base: str) -> None:
    import httpx

    instrument("httpx")
    with capture() as recorded:
        async with httpx.AsyncClient() as client, botpulse.flow("afetch"):
            response = await client.get(f"{http_base}/guilds/987654321/members")
            assert response.status_code == 200
        ops = children(recorded, "afetch", "http")
    host = http_base.removeprefix("http://")
    assert [(c.name, c.status) for c in ops] == [(f"GET {host}/guilds/{{id}}/members", "ok")]
    uninstrument("httpx")
    import httpx as again

    assert "__wrapped__" not in again.AsyncHTTPTransport.__dict__["handle_async_request"].__dict__


async def test_aiohttp_trace_config_never_fails_the_request(http_base: str) -> None:
    import aiohttp

    instrument("aiohttp")
    port = _closed_port()
    with capture() as recorded:
        async with aiohttp.ClientSession() as session, botpulse.flow("aio"):
            async with session.get(f"{http_base}/bot{TOKEN}/sendMessage") as response:
                assert response.status == 200
                await response.read()
            with pytest.raises(aiohttp.ClientConnectorError):
                async with session.get(f"http://127.0.0.1:{port}/x"):
                    pass
        ops = children(recorded, "aio", "http")
    host = http_base.removeprefix("http://")
    assert [(c.name, c.status, c.error) for c in ops] == [
        (f"GET {host}/bot{{token}}/sendMessage", "ok", None),
        (f"GET 127.0.0.1:{port}/x", "error", "ClientConnectorError"),
    ]
    assert ops[0].attrs["status_code"] == 200
    # Outside capture() (botpulse not initialised) requests work and record nothing.
    async with aiohttp.ClientSession() as session, session.get(f"{http_base}/ok") as response:
        assert response.status == 200


@pytest.fixture
def redis_url() -> str:
    return server_url("BOTPULSE_TEST_REDIS_URL", "Redis")


def test_redis_sync_commands_and_pipelines(redis_url: str) -> None:
    import redis

    instrument("redis")
    client = redis.Redis.from_url(redis_url)
    try:
        with capture() as recorded:
            with botpulse.flow("cache"):
                client.set("bp:test:k", "v")
                assert client.get("bp:test:k") == b"v"
                with client.pipeline() as pipe:
                    pipe.incr("bp:test:n").get("bp:test:k").expire("bp:test:n", 60)
                    pipe.execute()
                with pytest.raises(redis.ResponseError):
                    client.incr("bp:test:k")
            ops = children(recorded, "cache", "redis")
    finally:
        client.delete("bp:test:k", "bp:test:n")
        client.close()
    assert [(c.name, c.status) for c in ops] == [
        ("SET", "ok"),
        ("GET", "ok"),
        ("PIPELINE INCRBY GET EXPIRE", "ok"),
        ("INCRBY", "error"),
    ]
    assert ops[2].attrs["commands"] == 3
    assert ops[0].attrs["params_secret"] == "***"


async def test_redis_asyncio_and_repeated_reads(redis_url: str) -> None:
    import redis.asyncio

    instrument("redis")
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.set("bp:test:a", "1")
        with capture() as recorded:
            async with botpulse.flow("acache"):
                for _ in range(3):
                    await client.get("bp:test:a")
                async with client.pipeline(transaction=False) as pipe:
                    pipe.get("bp:test:a").get("bp:test:b")
                    await pipe.execute()
            ops = children(recorded, "acache", "redis")
            found = findings(recorded, "cache_candidate")
    finally:
        await client.delete("bp:test:a")
        await client.aclose()
    assert [c.name for c in ops] == ["GET", "GET", "GET", "PIPELINE GET"]
    assert [(f.flow, f.subject, f.count) for f in found] == [("acache", "GET", 2)]


def test_uninstrument_all_restores_every_library() -> None:
    import aiohttp
    import httpx
    import redis

    before = (
        redis.Redis.__dict__["execute_command"],
        httpx.HTTPTransport.__dict__["handle_request"],
        aiohttp.ClientSession.__dict__["__init__"],
    )
    instrument("redis", "httpx", "aiohttp")
    assert redis.Redis.__dict__["execute_command"] is not before[0]
    uninstrument()
    after = (
        redis.Redis.__dict__["execute_command"],
        httpx.HTTPTransport.__dict__["handle_request"],
        aiohttp.ClientSession.__dict__["__init__"],
    )
    assert after == before
    asyncio.get_event_loop_policy()  # nothing left running
