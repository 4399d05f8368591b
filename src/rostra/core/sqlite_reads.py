"""``Database.read`` on a SQLite file: reads outside any transaction on the event loop's thread.

A read runs on one plain (synchronous) read-only connection, where an indexed read takes a few
microseconds, against about 60 through the async engine and 300 through a session. A read that
holds the loop past its budget is interrupted and runs again on a worker thread
(``lib.inline_sqlite.LoopBudget``).

A statement built once (a module constant, or one a cache hands out again) may be run
``prepared``: compiled once, then executed straight on the driver, its parameters and values
turned by the bind and result processors of its columns' own types, and the columns it leaves
out given their Python-side ``default`` (an insert) or ``onupdate`` (an update) as SQLAlchemy
would give them. SQLAlchemy's execution of a
compiled statement (an execution context, parameter processing, a result object) costs several
times a small statement's own run; a statement built afresh each time is better served by
SQLAlchemy, whose cache knows it by its shape.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache, partial
from itertools import repeat
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Select, create_engine, event
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.dml import UpdateBase

from rostra.lib import inline_sqlite

BUSY_MS = 1000
"""A WAL reader meets a busy database only while another connection recovers or truncates
the log; it waits this long (holding its process's loop) before it fails."""
PREPARED_PER_PROCESS = 2048
"""Prepared statements kept: built-once statements, a few per signed-in caller."""

Processor = Callable[[Any], Any]


class Prepared:
    """A statement compiled once for SQLite, run on the driver with its types' processors: a
    select, or an insert, update or delete (whose rows are those it ``returning``s)."""

    def __init__(self, statement: Select[Any] | UpdateBase, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if (
            compiled.post_compile_params
            or compiled.escaped_bind_names
            or compiled.positiontup is None
        ):
            raise ValueError("only plain positional statements are prepared")
        self.sql = compiled.string
        self._names = tuple(compiled.positiontup or ())
        self._distinct = tuple(dict.fromkeys(self._names))
        self._generated, constants = _python_defaults(compiled)
        binds = compiled.binds
        self._defaults = {
            name: binds[name].effective_value
            for name in self._names
            if not binds[name].required and name not in self._generated
        }
        self._defaults.update(constants)
        self._bind: dict[str, Processor] = {}
        for name in self._names:
            process = binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self._bind[name] = process
        columns = statement.exported_columns
        self._width = len(columns)
        self._results: list[tuple[int, Processor]] = []
        for index, column in enumerate(columns):
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                self._results.append((index, process))
        names = list(map(str, columns.keys()))
        self._row: Any = namedtuple("Row", names, rename=True)  # type: ignore[misc]

    def run(self, raw: sqlite3.Connection, params: Mapping[str, Any]) -> list[Any]:
        return self.rows(self.execute(raw, params))

    def execute(self, raw: sqlite3.Connection, params: Mapping[str, Any]) -> sqlite3.Cursor:
        # Each parameter processed once, however often the statement uses it (a keyset
        # position appears three times).
        bound: dict[str, Any] = {}
        for name in self._distinct:
            if name in params:
                value = params[name]
            elif name in self._generated:
                value = self._generated[name]()
            elif name in self._defaults:
                value = self._defaults[name]
            else:
                raise KeyError(f"a value is required for the parameter {name!r}")
            process = self._bind.get(name)
            bound[name] = value if process is None else process(value)
        return raw.execute(self.sql, [bound[name] for name in self._names])

    def rows(self, cursor: sqlite3.Cursor) -> list[Any]:
        if cursor.description is None:
            if self._width:
                raise RuntimeError(f"{self.sql!r} answers no rows but returns columns")
            return []
        if len(cursor.description) != self._width:
            raise RuntimeError(f"{self.sql!r} answers other columns than it selects")
        # Column by column, each processor mapped over its column, and the rows made of the
        # columns: no loop in Python per row (the width was checked above).
        rows: Iterable[Any] = cursor.fetchall()
        if self._results and rows:
            columns: list[Iterable[Any]] = list(zip(*rows, strict=True))
            for index, process in self._results:
                columns[index] = map(process, columns[index])
            rows = zip(*columns, strict=True)
        return list(map(tuple.__new__, repeat(self._row), rows))


def _python_defaults(
    compiled: Any,
) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    """The values SQLAlchemy's execution works out in Python for the columns a write leaves
    out (``updated_at``, a project's ``revision``, its ``visibility``), by parameter name:
    without them such a column would be written NULL. The callables (called without an
    execution context), then the constants."""
    generated: dict[str, Callable[[], Any]] = {}
    constants: dict[str, Any] = {}
    prefetch = [(column, column.default) for column in compiled.insert_prefetch]
    prefetch += [(column, column.onupdate) for column in compiled.update_prefetch]
    for column, default in prefetch:
        if default.is_callable:
            generated[column.key] = partial(default.arg, None)
        elif default.is_scalar:
            constants[column.key] = default.arg
        else:
            raise ValueError(f"{column}: only Python-side defaults are prepared")
    return generated, constants


prepare = lru_cache(maxsize=PREPARED_PER_PROCESS)(Prepared)
"""The ``Prepared`` form of a statement, made once per statement object."""


class SQLiteReads:
    """The read-only connection of one ``Database`` on a SQLite file, and what runs on it."""

    def __init__(self, path: Path, *, loop_seconds: float, json_deserializer: Processor) -> None:
        self._budget = inline_sqlite.LoopBudget(loop_seconds)
        self._engine = create_engine(f"sqlite:///{path}", json_deserializer=json_deserializer)
        event.listen(self._engine, "connect", self._set_up)
        self._connection: Connection | None = None

    def _set_up(self, dbapi_connection: Any, _: object) -> None:
        dbapi_connection.execute("PRAGMA query_only=ON")
        dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        self._budget.watch(dbapi_connection)

    async def rows(
        self, statement: Any, params: Mapping[str, Any] | None, *, prepared: bool
    ) -> Sequence[Any]:
        if self._connection is None:
            self._connection = self._engine.connect()
        connection = self._connection
        try:
            with self._budget.running():
                if prepared:
                    prepared_statement = prepare(statement, self._engine.dialect)
                    raw = connection.connection.dbapi_connection
                    assert isinstance(raw, sqlite3.Connection)
                    return prepared_statement.run(raw, params or {})
                return connection.execute(statement, params).all()
        except (sqlite3.OperationalError, OperationalError) as error:
            if not inline_sqlite.interrupted(getattr(error, "orig", error)):
                raise
        finally:
            connection.rollback()
        return await asyncio.to_thread(self._rows_apart, statement, params)

    def _rows_apart(self, statement: Any, params: Mapping[str, Any] | None) -> Sequence[Any]:
        """On a worker thread, with a connection of its own: a read past the loop's budget."""
        with self._engine.connect() as connection:
            return connection.execute(statement, params).all()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._engine.dispose()
