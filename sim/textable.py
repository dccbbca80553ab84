"""Plain-text tables for the terminal: aligned columns, numbers with their intervals."""

from __future__ import annotations

from collections.abc import Sequence


def fmt_number(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1e5:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def fmt_estimate(e: dict, digits: int = 4) -> str:
    """``value ±half`` from an ``{"value", "ci95"}`` dict."""
    v = e.get("value")
    lo, hi = e.get("ci95", [None, None])
    if v is None:
        return "-"
    if lo is None or hi is None:
        return fmt_number(v, digits)
    return f"{fmt_number(v, digits)} ±{fmt_number((hi - lo) / 2, 2)}"


def render(headers: Sequence[str], rows: Sequence[Sequence[str]], right: bool = True) -> str:
    widths = [len(h) for h in headers]
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, c in enumerate(cells):
            out.append(c.ljust(widths[i]) if i == 0 or not right else c.rjust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])
