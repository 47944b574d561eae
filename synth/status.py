"""The funnel as a rich table (``synth status``, and the end of ``synth run`` / ``synth smoke``)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def funnel_table(shape: dict[str, Any], title: str = "synth funnel") -> Table:
    table = Table(title=title)
    for name, justify in (("stage", "left"), ("in", "right"), ("kept", "right"), ("dropped", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("pending", justify="right")
    table.add_column("drop reasons")
    for stage, row in shape["stages"].items():
        reasons = "\n".join(f"{n} {reason}" for reason, n in row["dropped"].items())
        table.add_row(
            stage, str(row["in"]), str(row["kept"]), str(sum(row["dropped"].values())), str(row["pending"]), reasons
        )
    return table


def print_funnel(shape: dict[str, Any], console: Console | None = None, title: str = "synth funnel") -> None:
    out = console or Console()
    out.print(funnel_table(shape, title))
    splits = ", ".join(f"{k} {v}" for k, v in shape.get("splits", {}).items()) or "none yet"
    flags = ", ".join(f"{k} {v}" for k, v in shape.get("flags", {}).items())
    out.print(f"splits: {splits}" + (f"; flagged: {flags}" if flags else ""))
