"""The example bots: the IRC one runs for real against the local ngIRCd; the others import."""

from __future__ import annotations

import ast
import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from tests.servers import server_url

from botpulse.store import open_store

from .irc_client import RawUser

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def test_the_irc_example_runs_against_the_local_server(tmp_path: Path) -> None:
    address = server_url("BOTPULSE_TEST_IRC", "ngIRCd")
    channel, bot_nick, owner = f"#ex{os.getpid() % 10000}", f"exbot{os.getpid() % 10000}", "exowner"
    store = tmp_path / "example.db"
    env = {**os.environ, "IRC_SERVER": address, "IRC_CHANNEL": channel, "IRC_NICK": bot_nick,
           "BOTPULSE_OWNER_IDS": owner, "BOTPULSE_STORE": f"sqlite:///{store}",
           "BOTPULSE_STRICT": "1", "PYTHONWARNINGS": "ignore"}  # fmt: skip
    user = RawUser(owner)
    await user.connect(address)
    await user.join(channel)
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / "irc_bot.py"), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await user.wait_for(f":{bot_nick}!", timeout=30)  # the bot joined the channel
        for _ in range(2):
            mark = len(user.lines)
            user.say(channel, "!ping")
            await user.wait_for("pong", start=mark)
        await asyncio.sleep(1.5)  # one flush interval
        mark = len(user.lines)
        user.say(channel, "!performance")
        line = await user.wait_for("ping ", start=mark)
        assert line.split(" :", 1)[1].split()[1] == "2"  # two pings in the table
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
        await user.close()
    assert process.returncode == 0, output.decode()
    with open_store(f"sqlite:///{store}", create=False) as reader:
        names = {(key.name, key.kind) for key in reader.series()}
    assert {("ping", "flow"), ("db.lookup", "db")} <= names


@pytest.mark.parametrize("name", ["discord_bot.py", "telegram_bot.py", "aiogram_bot.py"])
def test_the_other_examples_set_up_in_a_few_lines(name: str) -> None:
    source = (EXAMPLES / name).read_text()
    ast.parse(source)
    setup = source.split("# botpulse setup: these three lines.", 1)[1].splitlines()[1:4]
    assert all("botpulse" in line or "owners" in line for line in setup)
    assert 'os.environ["' in source  # tokens come from the environment
    assert "TOKEN" in source
