"""bench/RESULTS.md merging: a run replaces only its own benchmarks' rows (no timing here)."""

from __future__ import annotations

from bench.common import Result
from bench.results import merge, owner, parse

BENCHMARKS = ["issuance", "graphql-issuance", "hot-listing", "catalog"]


def result(name: str, figure: float, target: float | None = 0.5) -> Result:
    return Result(name, figure, "ops/s", 100.0, "raw", target, note=f"about {name}")


def test_rows_belong_to_the_benchmark_named_by_their_prefix():
    assert owner("issuance-4x", BENCHMARKS) == "issuance"
    assert owner("graphql-issuance-4x", BENCHMARKS) == "graphql-issuance"
    assert owner("catalog-cold", BENCHMARKS) == "catalog"
    assert owner("hot-listing", BENCHMARKS) == "hot-listing"
    assert owner("catalogue", BENCHMARKS) is None


def test_a_run_replaces_its_own_rows_and_keeps_the_others(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(merge(path, BENCHMARKS, BENCHMARKS,
                          [result("issuance", 10), result("issuance-4x", 20), result("catalog-cached", 30),
                           result("catalog-cold", 40)], "2026-01-01", "- first run"))
    text = merge(path, BENCHMARKS, ["catalog", "hot-listing"],
                 [result("hot-listing", 40), result("hot-listing-http", 80, target=None), result("catalog-cold", 45)],
                 "2026-02-02", "- second run")
    rows, notes, runs = parse(text)
    assert list(rows) == ["issuance", "issuance-4x", "hot-listing", "hot-listing-http", "catalog-cold"]
    assert rows["issuance"].endswith("| 2026-01-01 |") and rows["catalog-cold"].endswith("| 2026-02-02 |")
    assert "| 45 ops/s |" in rows["catalog-cold"] and "catalog-cached" not in text
    assert "| 0.40 | >= 0.50 (short) |" in rows["hot-listing"] and "| no target |" in rows["hot-listing-http"]
    assert list(notes) == list(rows)
    assert runs == ["- first run", "- second run"]
