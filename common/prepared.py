"""Queries compiled once and run many times.

Django builds and compiles a queryset to SQL each time one is evaluated: for a one-table lookup by id that is
about 200 µs, ten times the query itself on SQLite, and every authenticated request makes such a lookup
(docs/benchmark.md, "HTTP"). A `PreparedQuery` builds its queryset once per database with marker values in
place of its parameters, keeps the SQL Django compiled, and then runs that SQL with the call's values, turning
the rows into Python values with the same converters the ORM applies. It is still one query per call, so what
it reads is always what the database holds (a deactivated user is refused at once).

Only what can be compiled once is prepared: SQL databases, parameters that are strings passed through as they
are (ids), short lists of them (an `__in` lookup, compiled once per length), or aware datetimes compared with a
datetime column (adapted for the database as Django adapts them), each appearing once in the compiled
parameters. Anything else — MongoDB, whose compiler makes no SQL, or a query the markers do not
survive — is evaluated by the ORM each time, with the same result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.exceptions import EmptyResultSet, ValidationError
from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.query import FlatValuesListIterable, ValuesListIterable

ModelT = TypeVar("ModelT", bound=Model)

# What a parameter is replaced with while compiling: a string no id or input can be (it holds NUL characters),
# with the characters a LIKE pattern escapes (%, _ and a backslash): a lookup that escapes or wraps its value
# (iexact on SQLite, contains, startswith) changes the marker, which is then not found, and the ORM serves it.
_MARKER = "\x00%_\\prepared parameter {}\x00"
# A datetime parameter's marker: an aware datetime no query compares with (its microseconds tell them apart),
# looked for in the compiled parameters as the database adapts it.
_DATETIME_MARKER = datetime(1971, 2, 3, 4, 5, 6, 900000, tzinfo=UTC)
# A shape's entry for a datetime (a string is -1, a list its length).
_DATETIME = -2


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    positions: tuple[int, ...]  # where each of the call's values goes in params
    datetimes: frozenset[int]  # which of those positions take a datetime, adapted for the database
    converters: dict[int, tuple[list[Any], Any]]  # as SQLCompiler.get_converters gives them
    flat: bool


# A query that matches no row whatever its values.
_NOTHING = _Compiled(sql="", params=(), positions=(), datetimes=frozenset(), converters={}, flat=False)


class PreparedQuery:
    """`build(*values)` returns a `values_list` queryset of `model`; calling the prepared query with values —
    strings, lists of strings for an `__in` lookup, aware datetimes — returns the rows that queryset would (a list
    of tuples, or of values when flat). A query with a list is compiled once per length of that list, up to
    MAX_LIST.

    `build` must not branch on its values (it sees markers, not the call's values, when it is compiled): what it
    builds for one shape of values is what every call of that shape runs — or, should nothing match it whatever
    the values (an empty list), what every such call answers without a query."""

    def __init__(self, model: type[Model], build: Callable[..., QuerySet[Any, Any]]) -> None:
        self.model = model
        self._build = build
        # Per database alias and shape of the values (-1 for a string, n for a list of n): what was compiled, or
        # None where the ORM must evaluate each time.
        self._compiled: dict[tuple[str, tuple[int, ...], bool, str], _Compiled | None] = {}

    def __call__(self, *values: str | list[str] | datetime) -> list[Any]:
        shape = _shape(values)
        if shape is None:
            return list(self._build(*values))
        alias = router.db_for_read(self.model)
        # The time zone too: the converters (datetimes on SQLite) read it from the connection they were made with.
        key = (alias, shape, settings.USE_TZ, settings.TIME_ZONE)
        try:
            compiled = self._compiled[key]
        except KeyError:
            compiled = self._compiled[key] = self._compile(alias, shape)
        if compiled is None:
            return list(self._build(*values))
        if compiled is _NOTHING:
            return []
        connection = connections[alias]
        params = list(compiled.params)
        flat_values: list[Any] = []
        for value in values:
            if isinstance(value, list):
                flat_values += value
            else:
                flat_values.append(value)
        adapt = connection.ops.adapt_datetimefield_value
        for position, value in zip(compiled.positions, flat_values, strict=True):
            params[position] = adapt(value) if position in compiled.datetimes else value
        # A backend's own lean read where it has one (attendance_site/sqlite3: no cursor wrappers), else a cursor.
        fetch_all = getattr(connection, "fetch_all", None)
        rows: list[Any] | None = fetch_all(compiled.sql, params) if fetch_all is not None else None
        if rows is None:
            with connection.cursor() as cursor:
                cursor.execute(compiled.sql, params)
                rows = cursor.fetchall()
        if compiled.converters:
            rows = [_convert(row, compiled.converters, connection) for row in rows]
        return [row[0] for row in rows] if compiled.flat else [tuple(row) for row in rows]

    def _compile(self, alias: str, shape: tuple[int, ...]) -> _Compiled | None:
        if connections[alias].vendor == "mongodb":
            return None
        ops = connections[alias].ops
        arguments: list[str | list[str] | datetime] = []
        markers: list[Any] = []  # each as it appears in the compiled parameters
        dated: set[int] = set()  # which of the markers are datetimes
        for index, length in enumerate(shape):
            if length == _DATETIME:
                moment = _DATETIME_MARKER.replace(microsecond=_DATETIME_MARKER.microsecond + index)
                arguments.append(moment)
                dated.add(len(markers))
                markers.append(ops.adapt_datetimefield_value(moment))
            elif length < 0:
                marker = _MARKER.format(index)
                arguments.append(marker)
                markers.append(marker)
            else:
                items = [_MARKER.format(f"{index}.{item}") for item in range(length)]
                arguments.append(items)
                markers += items
        try:
            queryset = self._build(*arguments)
            flat = queryset._iterable_class is FlatValuesListIterable
            if not (flat or queryset._iterable_class is ValuesListIterable) or queryset.query.extra_select:
                return None  # not a values_list: the ORM builds whatever it is
            compiler = queryset.query.get_compiler(using=alias)
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            # Nothing can match whatever the values (an empty `__in` list: its length is in the key), so no
            # query: what Django answers too, without running one (SQLCompiler.execute_sql).
            return _NOTHING
        except (ValueError, TypeError, ValidationError):
            return None  # a field that takes no string (a number, a date): the ORM's
        positions = []
        for marker in markers:
            found = [index for index, param in enumerate(params) if param == marker]
            if len(found) != 1:
                return None
            positions.append(found[0])
        selected = [column for column, _, _ in compiler.select[: compiler.col_count]]
        return _Compiled(
            sql=sql,
            params=tuple(params),
            positions=tuple(positions),
            datetimes=frozenset(positions[i] for i in dated),
            converters=compiler.get_converters(selected),
            flat=flat,
        )


class PreparedInstances(Generic[ModelT]):
    """`build(*values)` filters and orders `model`; calling the prepared query returns every instance it finds,
    in its order, the `deferred` fields left unread (as QuerySet.defer leaves them)."""

    def __init__(
        self, model: type[ModelT], build: Callable[..., QuerySet[ModelT, ModelT]], deferred: tuple[str, ...] = ()
    ) -> None:
        self._model = model
        self._names = [field.attname for field in model._meta.concrete_fields if field.name not in deferred]
        self._rows = PreparedQuery(model, lambda *values: build(*values).values_list(*self._names))

    def __call__(self, *values: str | list[str] | datetime) -> list[ModelT]:
        rows = self._rows(*values)
        alias = router.db_for_read(self._model)
        return [self._model.from_db(alias, self._names, row) for row in rows]


class PreparedInstance(Generic[ModelT]):
    """`build(*values)` filters `model`; calling the prepared lookup returns the one instance it finds (the
    first if there were several, in no particular order), or None."""

    def __init__(self, model: type[ModelT], build: Callable[..., QuerySet[ModelT, ModelT]]) -> None:
        self._instances = PreparedInstances(model, lambda *values: build(*values).order_by()[:1])

    def __call__(self, *values: str) -> ModelT | None:
        found = self._instances(*values)
        return found[0] if found else None


# Longer lists are left to the ORM: each length is compiled apart, and their number must stay small.
MAX_LIST = 64


def _shape(values: tuple[Any, ...]) -> tuple[int, ...] | None:
    """-1 for each string, the length for each list of strings, _DATETIME for each aware datetime; None when a
    value is none of these (or a list too long)."""
    shape = []
    for value in values:
        if isinstance(value, str):
            shape.append(-1)
        elif isinstance(value, datetime) and value.utcoffset() is not None:
            shape.append(_DATETIME)
        elif isinstance(value, list) and len(value) <= MAX_LIST and all(isinstance(item, str) for item in value):
            shape.append(len(value))
        else:
            return None
    return tuple(shape)


def _convert(row: tuple[Any, ...], converters: dict[int, tuple[list[Any], Any]], connection: Any) -> list[Any]:
    values = list(row)
    for position, (functions, expression) in converters.items():
        value = values[position]
        for function in functions:
            value = function(value, expression, connection)
        values[position] = value
    return values
