"""Plain-text tables of scores, for ``scalerd simulate`` and the benchmark."""

from __future__ import annotations

from collections.abc import Sequence

from .scores import Scores

__all__ = ["SCORE_HEADERS", "format_table", "score_cells"]

SCORE_HEADERS = (
    "cost/limit",
    "cost/oracle",
    "under-prov time",
    "unserved work",
    "actions",
    "reversals",
    "max replicas",
)


def score_cells(scores: Scores) -> list[str]:
    """One row's cells, in the order of :data:`SCORE_HEADERS`."""
    ratio, unserved = scores.cost_ratio_to_limit, scores.unserved_fraction
    to_oracle = scores.cost_ratio_to_oracle
    return [
        "n/a" if ratio is None else f"{ratio:.3f}",
        "n/a" if to_oracle is None else f"{to_oracle:.3f}",
        f"{scores.underprovisioned_fraction:.2%}",
        "n/a" if unserved is None else f"{unserved:.3%}",
        str(scores.scale_actions),
        str(scores.reversals),
        str(scores.max_provisioned),
    ]


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1
) -> str:
    """The first ``text_columns`` columns left-aligned, the numbers right-aligned, a rule
    under the header."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if index < text_columns else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])
