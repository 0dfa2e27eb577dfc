"""What a benchmark returns, and how it is printed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Result:
    name: str
    figure: float
    unit: str
    baseline: float
    baseline_label: str
    target: float | None  # the ratio figure / baseline must reach (None: reported, no target)
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.figure / self.baseline if self.baseline else 0.0

    @property
    def ok(self) -> bool:
        return self.target is None or self.ratio >= self.target

    def line(self) -> str:
        return (f"{self.name:<22} {self.figure:>12,.0f} {self.unit:<10} baseline {self.baseline:>12,.0f} "
                f"({self.baseline_label})  ratio {self.ratio:.2f}  {_target(self)}  "
                f"{'ok' if self.ok else 'SHORT'}")


def _target(r: Result) -> str:
    return "no target" if r.target is None else f"target >= {r.target:.2f}"


def scaled(n: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, int(round(n * scale)))


def markdown(results: list[Result]) -> str:
    lines = ["| benchmark | figure | baseline | ratio | target |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.name} | {r.figure:,.0f} {r.unit} | {r.baseline:,.0f} {r.unit} ({r.baseline_label}) "
                     f"| {r.ratio:.2f} | {_target(r).replace('target ', '')}{'' if r.ok else ' (short)'} |")
    return "\n".join(lines)
