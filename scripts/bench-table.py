#!/usr/bin/env python3
"""Renders the goals table of docs/benchmarks.md from benchmark rows.

    bench-table.py ROWS.jsonl              print the table of this run only
    bench-table.py --stamp ROWS.jsonl FROM LOAD
                                           rows FROM.. of ROWS (those one
                                           benchmark just wrote): add the
                                           date and LOAD where missing, and
                                           mark rows of a scaled run
    bench-table.py ROWS.jsonl DOC.md       merge this run's rows into
                                           docs/goals.jsonl (the last figure
                                           of every row) and rewrite the
                                           table between DOC's markers

Rows are JSON lines written by the benchmarks (`SENTINEL_BENCH_OUT`):
row, figure, value, unit, goal, met, command, load, date[, note] — or
row and error when the benchmark that measures it failed. Called by
scripts/bench; standard library only.
"""

import datetime
import json
import os
import sys

BEGIN = "<!-- goals:begin (scripts/bench writes this table; do not edit by hand) -->"
END = "<!-- goals:end -->"

# (row key, what is measured), in the order.
ORDER = [
    ("events_node_node_100k", "events end to end, node → node, 100k, until queryable on the receiver"),
    ("events_node_node_1m", "events end to end, node → node, 1M, until queryable on the receiver"),
    ("import_events", "local import (`sentinel-node import`)"),
    ("wire_bytes_ratio", "bytes on the wire per event / the records' JSON"),
    ("readings_node_node_1m", "sensor readings node → node, 1M, verified and durable"),
    ("hub_ingest_log_1m", "node → hub, 1M, into the log, PostgreSQL with durable commits"),
    ("hub_views_1m", "node → hub, 1M: hub views (projector)"),
    ("hub_read_p95", "hub read API, 100 concurrent clients, 1M events: p95"),
    ("handshake_p99_1000", "1,000 sessions arriving at once: handshake p99"),
    ("node_binary_mb", "node binary as shipped (release profile)"),
    ("node_rss_100k_mb", "node RSS serving 100k events"),
    ("node_cold_start_ms", "node cold start to serving (first HTTP answer)"),
    ("peer_pouchdb_100k", "side by side: PouchDB 9 → express-pouchdb (HTTP), 100k"),
    ("peer_hypercore_100k", "side by side: Hypercore 11 (TCP), 100k"),
]


def read_rows(path):
    rows = {}
    if not os.path.exists(path):
        return rows
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"error: {path}:{n}: not JSON: {e}")
            if "row" not in r:
                sys.exit(f"error: {path}:{n}: no `row`")
            rows[r["row"]] = r
    return rows


def cell(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


def side_by_side(rows):
    """Sentinel against the peers, when all three were measured on the same
    day (each row above has its own date and load)."""
    ours, pouch, hyper = (rows.get(k) for k in ("events_node_node_100k", "peer_pouchdb_100k", "peer_hypercore_100k"))
    if not (ours and pouch and hyper) or any("error" in r for r in (ours, pouch, hyper)):
        return None
    if ours.get("date", "")[:10] != pouch.get("date", "")[:10]:
        return None
    p = ours["value"] / pouch["value"]
    h = ours["value"] / hyper["value"]
    return (
        f"Sentinel {ours['value']:.0f} events/s = {p:.1f}× PouchDB, {h:.1f}× Hypercore",
        p >= 10 and h >= 4,
        ours.get("date", ""),
        ours.get("load", ""),
    )


def table(rows, extra=False):
    out = [
        "| path | goal | figure | met | date | load average (start → end) | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, what in ORDER:
        r = rows.get(key)
        if r is None:
            out.append(f"| {what} | | not measured yet | — | | | |")
            continue
        if "error" in r:
            out.append(f"| {what} | | **not measured**: {cell(r['error'])} | — | | | |")
            continue
        met = {True: "yes", False: "**no**", None: "—"}[r.get("met")]
        figure = cell(r["figure"])
        if r.get("note"):
            figure += f" — {cell(r['note'])}"
        out.append(
            f"| {what} | {cell(r.get('goal', ''))} | {figure} | {met} | {cell(r.get('date', ''))} "
            f"| {cell(r.get('load', ''))} | `{cell(r.get('command', ''))}` |"
        )
    if extra:
        # Rows measured at other sizes than the goals' (a scaled run)
        # carry their sizes in their keys, and are shown as such.
        known = {k for k, _ in ORDER}
        for key, r in rows.items():
            if key not in known and "error" not in r:
                out.append(f"| {key} | {cell(r.get('goal', ''))} | {cell(r['figure'])} | "
                           f"{ {True: 'yes', False: '**no**', None: '—'}[r.get('met')] } | {cell(r.get('date', ''))} "
                           f"| {cell(r.get('load', ''))} | `{cell(r.get('command', ''))}` |")
    sbs = side_by_side(rows)
    if sbs:
        fig, met, date, load = sbs
        out.append(
            f"| side by side, same day: Sentinel / PouchDB / Hypercore | ≥ 10× PouchDB, ≥ 4× Hypercore | {fig} "
            f"| {'yes' if met else '**no**'} | {date} | {load} | `scripts/bench --peers DIR` |"
        )
    return "\n".join(out) + "\n"


def stamp(path, first, load):
    """Dates and loads the rows a benchmark just appended; a row of a run
    at another scale than the goals' gets the scale in its key, so it can
    never stand for the goal-size figure."""
    scale = os.environ.get("SENTINEL_BENCH_SCALE", "1")
    scaled = float(scale) != 1.0
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for i, line in enumerate(lines):
        if i >= first and line.strip():
            r = json.loads(line)
            r.setdefault("date", now)
            if not r.get("load"):
                r["load"] = load
            if scaled and "@" not in r["row"] and r["row"] in {k for k, _ in ORDER}:
                r["row"] += f"@scale{scale}"
                r["command"] = f"SENTINEL_BENCH_SCALE={scale} " + r.get("command", "")
            line = json.dumps(r, ensure_ascii=False)
        out.append(line)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + ("\n" if out else ""))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--stamp":
        stamp(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    run = read_rows(sys.argv[1])
    if len(sys.argv) == 2:
        sys.stdout.write(table(run, extra=True))
        return
    doc = sys.argv[2]
    store = os.path.join(os.path.dirname(doc), "goals.jsonl")
    rows = read_rows(store)
    for k, r in run.items():
        # A failed measurement does not erase the last good figure; it is
        # shown beside it.
        if "error" in r and k in rows and "error" not in rows[k]:
            rows[k]["note"] = (rows[k].get("note", "") + f" (rerun on {r.get('date', 'a later run')} failed: {r['error']})").strip()
        else:
            rows[k] = r
    known = [k for k, _ in ORDER]
    with open(store, "w", encoding="utf-8") as f:
        for key in known + sorted(k for k in rows if k not in known):
            if key in rows:
                f.write(json.dumps(rows[key], ensure_ascii=False) + "\n")
    text = open(doc, encoding="utf-8").read()
    if BEGIN not in text or END not in text:
        sys.exit(f"error: {doc} has no goals markers ({BEGIN} … {END})")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(doc, "w", encoding="utf-8") as f:
        f.write(head + BEGIN + "\n" + table(rows, extra=True) + END + tail)


if __name__ == "__main__":
    main()
