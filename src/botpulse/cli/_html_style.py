"""The inline stylesheet of the HTML report: system fonts, light and dark, no network."""

from __future__ import annotations

__all__ = ["KNOWN_KINDS", "STYLESHEET"]

#: Kinds with their own bar colour; any other kind is drawn as ``kind-other``.
KNOWN_KINDS = frozenset({"flow", "checkpoint", "op", "db", "http", "redis", "cache", "event"})

STYLESHEET = """
:root {
  --bg: #f7f8fa; --card: #ffffff; --fg: #1f2328; --muted: #636c76; --line: #d8dee4;
  --track: #eef1f4; --warn-bg: #fff8c5; --warn-fg: #7d4e00; --bad-bg: #ffebe9;
  --bad-fg: #b42318; --ok: #1a7f37;
  --flow: #0969da; --checkpoint: #bf8700; --op: #1b7c83; --db: #3e63dd; --http: #8250df;
  --redis: #bf3989; --cache: #2da44e; --event: #d4a72c; --other: #6e7781; --error: #cf222e;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --card: #161b22; --fg: #e6edf3; --muted: #8d96a0; --line: #30363d;
    --track: #21262d; --warn-bg: #3b2e00; --warn-fg: #e3b341; --bad-bg: #3c1618;
    --bad-fg: #ff7b72; --ok: #3fb950;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; padding: 2rem clamp(1rem, 4vw, 3rem); background: var(--bg); color: var(--fg);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif;
}
h1 { font-size: 1.6rem; margin: 0 0 .75rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; }
h3 { font-size: 1rem; margin: 0 0 .25rem; display: flex; gap: .75rem; align-items: baseline;
  flex-wrap: wrap; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1.25rem; margin: 0; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; overflow-wrap: anywhere; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 1rem 1.25rem; margin: 0 0 1rem; }
.drops { border-radius: 10px; padding: .75rem 1.25rem; margin: 0 0 1rem; font-weight: 600; }
.drops.warn { background: var(--warn-bg); color: var(--warn-fg); }
.drops.severe { background: var(--bad-bg); color: var(--bad-fg); }
.ok { color: var(--ok); }
.note, .sub { color: var(--muted); margin: .25rem 0 .75rem; }
.empty { font-size: 1.05rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: middle; }
th { color: var(--muted); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { overflow-wrap: anywhere; font-weight: 500; }
tr.flow-op td.name { font-weight: 700; }
.bad { color: var(--bad-fg); font-weight: 600; }
.pill { display: inline-block; padding: 0 .5rem; border-radius: 999px; font-size: .8rem;
  border: 1px solid var(--line); color: var(--muted); }
.pill.error { color: var(--bad-fg); border-color: var(--bad-fg); }
.rank { color: var(--muted); }
.duration { font-variant-numeric: tabular-nums; }
.flow.failed { border-left: 4px solid var(--error); }
.flow .error-text { color: var(--bad-fg); margin: .25rem 0 .75rem; overflow-wrap: anywhere; }
.wf td { border-bottom: 1px solid var(--track); padding: .2rem .6rem; }
.wf td.step { white-space: nowrap; max-width: 28rem; overflow: hidden; text-overflow: ellipsis; }
.wf tr.root td.step { font-weight: 700; }
.wf tr.failed td.step { color: var(--bad-fg); font-weight: 600; }
.wf .kind { color: var(--muted); font-size: .8rem; }
.wf .marker { color: var(--checkpoint); }
.wf td.timeline { width: 45%; min-width: 12rem; }
.track { position: relative; height: 14px; background: var(--track); border-radius: 3px; }
.bar { position: absolute; top: 0; bottom: 0; min-width: 2px; border-radius: 3px;
  background: var(--other); }
.kind-flow .bar { background: var(--flow); }
.kind-checkpoint .bar { background: var(--checkpoint); opacity: .75; }
.lead { position: absolute; top: 6px; height: 0; border-top: 2px dotted var(--checkpoint); }
.mark { position: absolute; top: 1px; width: 10px; height: 10px; margin-left: -5px;
  background: var(--checkpoint); transform: rotate(45deg); }
.wf .since { color: var(--muted); font-size: .8rem; }
tr.all-flows td { font-style: italic; font-weight: 600; border-top: 2px solid var(--line); }
.kind-op .bar { background: var(--op); }
.kind-db .bar { background: var(--db); }
.kind-http .bar { background: var(--http); }
.kind-redis .bar { background: var(--redis); }
.kind-cache .bar { background: var(--cache); }
.kind-event .bar { background: var(--event); }
tr.failed .bar { background: var(--error); }
footer { color: var(--muted); margin-top: 2rem; font-size: .85rem; }
"""
