"""The demo as the showcase: `botpulse audit` names /stats's N+1 with its line; report says so."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from botpulse.cli import main
from botpulse.demo import run_demo


def test_audit_of_a_demo_run_names_the_stats_n_plus_one_and_its_line(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'demo.db'}"
    run_demo(store, seconds=3, seed=3, users=8, database_dir=tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "--store", store, "--since", "1h", "--format", "json"])
    assert result.exit_code == 0, result.output
    found = [f for f in json.loads(result.output)["findings"] if f["type"] == "n_plus_one"]
    assert [(f["flow"], f["fingerprint"]) for f in found] == [("/stats", "db.match_score")]
    path, line = found[0]["source"].split(" in ")[0].split(":")
    assert found[0]["source"].endswith(" in stats")
    bot = Path(__file__).parents[2] / "src" / path
    assert "match_score" in bot.read_text().splitlines()[int(line) - 1]

    report = runner.invoke(main, ["report", "--store", store, "--since", "1h"])
    assert report.exit_code == 0, report.output
    last = report.output.strip().splitlines()[-1]
    assert last.startswith("Findings: 1 N+1 pattern")
    assert last.endswith("run `botpulse audit` for what to fix")
