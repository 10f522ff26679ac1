"""Reading rows from outside: local CSV/Parquet files and OpenML, with clear errors.

Every error names the file (or the OpenML data id) and the problem, and for a malformed CSV
row the columns concerned, so a bad input is fixed without opening a debugger.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from pathlib import Path

import pandas as pd

OPENML_HOST = "api.openml.org"
FETCH_TIMEOUT_S = 60.0  # per socket operation while downloading from OpenML


class SourceError(ValueError):
    """A source could not be read; the message names the file or service and the problem."""


def _file_error(path: str | Path, problem: str) -> SourceError:
    return SourceError(f"file {path}: {problem}")


def read_table_file(path: str | Path, format: str = "auto", delimiter: str = ",") -> pd.DataFrame:
    """Read a CSV (gzip recognised by the ``.gz`` suffix) or Parquet file with pyarrow.

    Args:
        path: The file.
        format: ``csv``, ``parquet`` or ``auto`` (Parquet for ``.parquet``/``.pq``).
        delimiter: CSV field delimiter.

    Returns:
        The rows; empty strings and ``NA``-like values are missing values.

    Raises:
        SourceError: Missing, empty, truncated or malformed file; the message names it,
            and for a short or long row the columns concerned.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise _file_error(path, "does not exist" if not path.exists() else "is not a file")
    if path.stat().st_size == 0:
        raise _file_error(path, "is empty (0 bytes)")
    suffixes = [suffix.lower() for suffix in path.suffixes]
    parquet = format == "parquet" or (format == "auto" and {".parquet", ".pq"} & set(suffixes))
    if parquet:
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as error:
            raise _file_error(path, f"not a readable Parquet file ({error})") from error
    else:
        invalid_rows: list = []

        def on_invalid_row(row) -> str:
            invalid_rows.append(row)
            return "skip"

        try:
            table = pa_csv.read_csv(
                path,
                parse_options=pa_csv.ParseOptions(
                    delimiter=delimiter, invalid_row_handler=on_invalid_row
                ),
                convert_options=pa_csv.ConvertOptions(strings_can_be_null=True),
            )
        except (pa.ArrowException, OSError) as error:
            text = str(error).lower()  # arrow's messages: "truncated compressed stream", zlib
            corrupt = any(word in text for word in ("compress", "zlib", "inflate", "gzip"))
            problem = "truncated or corrupt compressed file" if corrupt else "malformed CSV"
            raise _file_error(path, f"{problem} ({error})") from error
        if invalid_rows:
            raise _file_error(path, _describe_invalid_row(invalid_rows, table.column_names))
    if table.num_columns == 0 or table.num_rows == 0:
        raise _file_error(path, f"has no data rows (columns: {table.column_names})")
    return table.to_pandas()


def _describe_invalid_row(rows: list, columns: list[str]) -> str:
    row = rows[0]
    where = f"row {row.number}" if row.number is not None else "a row"
    if row.actual_columns < row.expected_columns:
        absent = columns[row.actual_columns :]
        detail = f"column(s) {absent[0]!r}..{absent[-1]!r} missing"
    else:
        detail = "more fields than the header"
    return (
        f"truncated or malformed CSV: {len(rows)} row(s) with the wrong number of fields; "
        f"{where} has {row.actual_columns} of {row.expected_columns} ({detail}): "
        f"{row.text[:60]!r}"
    )


def openml_reachable(timeout_s: float, host: str = OPENML_HOST, port: int = 443) -> str | None:
    """Return None when ``host:port`` accepts a TCP connection, else the reason it did not.

    The probe runs in a daemon thread so that a hanging name lookup (which the socket
    timeout does not bound) also gives up after about ``timeout_s`` seconds.
    """
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                outcome.append(None)
        except OSError as error:
            outcome.append(f"{type(error).__name__}: {error}" if str(error) else repr(error))

    thread = threading.Thread(target=probe, name="openml-probe", daemon=True)
    thread.start()
    thread.join(timeout_s + 0.5)
    if not outcome:
        return f"no answer from {host}:{port} within {timeout_s:g} s (name lookup or connect)"
    return outcome[0]


def fetch_openml_frame(data_id: int, data_home: Path) -> pd.DataFrame:
    """Fetch OpenML data ``data_id`` (features and target in one frame) into ``data_home``.

    scikit-learn opens its URLs without a timeout; a default socket timeout bounds a server
    that accepts connections but never answers.
    """
    from sklearn.datasets import fetch_openml

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(FETCH_TIMEOUT_S)
    try:
        bunch = fetch_openml(
            data_id=data_id, data_home=str(data_home), as_frame=True, n_retries=1, delay=0.5
        )
    finally:
        socket.setdefaulttimeout(previous)
    return bunch.frame


def frame_checksum(frame: pd.DataFrame) -> str:
    """Return a sha256 of a frame's column names and values (row order included)."""
    digest = hashlib.sha256(json.dumps([str(name) for name in frame.columns]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
