"""Exactly-once appends of inference-log batches to Delta.

Every commit carries a Delta application transaction ``(app_id, lsn)``: the writer's id (one
per write-ahead-log folder) and the last log sequence number of the batch. After a crash the
writer reads the transaction version back and skips what the table already holds, so a batch
is in the table once whether the crash came before, during or after its commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa


class DeltaLogSink:
    """Appends batches to the Delta tables under one root, tagged ``(app_id, lsn)``."""

    def __init__(
        self,
        root: str,
        app_id: str,
        predictions_table: str = "inference_log",
        feedback_table: str = "feedback",
    ) -> None:
        """Bind to a lakehouse root and a writer id; tables are opened lazily and cached."""
        self.root = root
        self.app_id = app_id
        self.predictions_table = predictions_table
        self.feedback_table = feedback_table
        self._tables: dict[str, Any] = {}

    def uri(self, table: str) -> str:
        """Return the URI of ``table`` under the root."""
        return f"{self.root.rstrip('/')}/{table}"

    def _open(self, table: str, refresh: bool = False) -> Any | None:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        handle = self._tables.get(table)
        if handle is not None:
            if refresh:
                handle.update_incremental()
            return handle
        try:
            handle = self._tables[table] = DeltaTable(self.uri(table))
        except TableNotFoundError:
            return None
        return handle

    def committed_lsn(self, table: str) -> int:
        """Return the last sequence number this writer committed to ``table`` (0 if none)."""
        handle = self._open(table, refresh=True)
        return 0 if handle is None else int(handle.transaction_version(self.app_id) or 0)

    def append(self, table: str, rows: pa.Table, lsn: int, verify: bool = False) -> bool:
        """Append ``rows`` to ``table`` as the commit tagged ``lsn``.

        Args:
            table: Table name.
            rows: Rows to append.
            lsn: Last sequence number the rows cover.
            verify: Re-read the table first and skip if a commit tagged ``lsn`` or later is
                there (after a failed attempt, which may have committed).

        Returns:
            True when this call committed, False when the rows were already there.
        """
        from deltalake import CommitProperties, Transaction, write_deltalake

        if verify and self.committed_lsn(table) >= lsn:
            return False
        handle = self._open(table)
        if handle is None and "://" not in self.root:
            Path(self.root).mkdir(parents=True, exist_ok=True)
        write_deltalake(
            handle if handle is not None else self.uri(table),
            rows,
            mode="append",
            schema_mode="merge",
            commit_properties=CommitProperties(
                app_transactions=[Transaction(app_id=self.app_id, version=lsn)],
                custom_metadata={"writer": "mlops-serve", "wal_lsn": str(lsn)},
            ),
        )
        return True
