"""Small columnar helpers the report's figures share: score columns as numpy, pairs, named group-bys."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def scores(table: pa.Table, column: str) -> np.ndarray:
    """A score column as float64, nulls as NaN."""
    return table[column].to_numpy(zero_copy_only=False).astype(np.float64)


def paired(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs in which both values are known."""
    both = np.isfinite(x) & np.isfinite(y)
    return x[both], y[both]


def grouped(table: pa.Table, keys: str | list[str], aggregations: dict[str, tuple[str, str]]) -> pa.Table:
    """One row per value of `keys`, the other columns named as `aggregations` says: {name: (column, function)}.

    Selected by name because the column order of `group_by().aggregate()` differs between pyarrow versions.
    """
    keys = [keys] if isinstance(keys, str) else keys
    result = table.group_by(keys).aggregate(list(aggregations.values()))
    return result.select([*keys, *(f"{c}_{f}" for c, f in aggregations.values())]).rename_columns(
        [*keys, *aggregations]
    )
