"""bench/RESULTS.md: one table of every benchmark's latest rows, each row dated with its run.

A run replaces the rows (and notes) of the benchmarks it ran and keeps the others, so running
one benchmark does not lose the figures of the rest. A row belongs to the benchmark whose name
it has, or starts with followed by "-" (issuance-4x is issuance's, catalog-cold is catalog's)."""

from __future__ import annotations

import re
from pathlib import Path

from bench.common import Result, _target

HEADER = "| benchmark | figure | baseline | ratio | target | run |\n|---|---|---|---|---|---|"
INTRO = ("Each row comes from the run dated in its last column (the runs are listed at the end). Every benchmark "
         "runs on its own fresh embedded PostgreSQL + Redis, and each baseline is measured in the same run. "
         "ratio = figure / baseline. `python -m bench NAME ...` replaces the rows of the benchmarks it runs and "
         "keeps the others.")
_ROW = re.compile(r"^\| ([\w-]+) \|")


def row(r: Result, run: str) -> str:
    return (f"| {r.name} | {r.figure:,.0f} {r.unit} | {r.baseline:,.0f} {r.unit} ({r.baseline_label}) "
            f"| {r.ratio:.2f} | {_target(r).replace('target ', '')}{'' if r.ok else ' (short)'} | {run} |")


def owner(result_name: str, benchmarks: list[str]) -> str | None:
    for name in sorted(benchmarks, key=len, reverse=True):
        if result_name == name or result_name.startswith(name + "-"):
            return name
    return None


def parse(text: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(rows by result name, notes by result name, run lines) of a RESULTS.md in this format."""
    rows: dict[str, str] = {}
    notes: dict[str, str] = {}
    runs: list[str] = []
    section = "table"
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip().lower()
        elif section == "table" and (m := _ROW.match(line)) and m[1] != "benchmark":
            rows[m[1]] = line
        elif section == "notes" and line.startswith("- ") and ":" in line:
            notes[line[2:].split(":", 1)[0]] = line
        elif section == "runs" and line.startswith("- "):
            runs.append(line)
    return rows, notes, runs


def merge(path: Path, benchmarks: list[str], ran: list[str], results: list[Result], run: str,
          run_line: str) -> str:
    """The new text of `path`: its rows of benchmarks not in `ran`, and `results`."""
    rows, notes, runs = parse(path.read_text()) if path.exists() else ({}, {}, [])
    for name in list(rows):
        if owner(name, benchmarks) in ran:
            del rows[name]
    for name in list(notes):
        if owner(name, benchmarks) in ran:
            del notes[name]
    for r in results:
        rows[r.name] = row(r, run)
        if r.note:
            notes[r.name] = f"- {r.name}: {r.note}"
    order = {name: i for i, name in enumerate(benchmarks)}

    def key(name: str) -> int:
        return order.get(owner(name, benchmarks) or "", len(order))

    names = sorted(rows, key=key)  # stable: a benchmark's rows keep their order
    body = "\n".join(rows[n] for n in names)
    note_lines = "\n".join(notes[n] for n in names if n in notes)
    return (f"# Benchmark results\n\n{INTRO}\n\n{HEADER}\n{body}\n\n## Notes\n\n{note_lines}\n\n"
            f"## Runs\n\n" + "\n".join(runs + [run_line]) + "\n")
