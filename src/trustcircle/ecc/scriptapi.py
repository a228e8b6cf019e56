"""The API instance scripts see (DESIGN §7): ``records``, ``ecc``, ``include`` and ``log``.

``records.get(table, sys_id)`` → ``{"table", "sys_id", "fields"}`` or None;
``records.query(table, equals=None, limit=100)`` → a list of those (at most 1000);
``records.insert(table, fields)`` / ``records.update(table, sys_id, fields)`` → sys_id
(tables of ordinary records only: signatures, certificates and Circle-of-Trust records
are never written by scripts); ``ecc.enqueue(agent, topic, name=None, payload=None,
source=None)`` → sys_id of the output message, notarized by the :mod:`.tracker` when the
calling stack allows; ``include(name)`` runs a ``sys_script_include`` (by api_name,
name or sys_id) and returns its names. Writes land in the operation's transaction: a
run that fails leaves nothing behind. The first write of a job's run takes the write
lock (:meth:`~trustcircle.platform.context.Operation.begin_writing`); until then the
run only reads.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import UsageError
from ..jobs.runner import ApiCall, ScriptApi
from ..platform import records
from ..platform.context import Operation
from ..platform.tables import table_def, writable_table
from .tracker import Tracker, bind

MAX_QUERY = 1000

_P = inspect.Parameter


def _signature(*params: tuple[str, object]) -> inspect.Signature:
    return inspect.Signature([_P(n, _P.POSITIONAL_OR_KEYWORD, default=d) for n, d in params])


_GET = _signature(("table", _P.empty), ("sys_id", _P.empty))
_QUERY = _signature(("table", _P.empty), ("equals", None), ("limit", 100))
_INSERT = _signature(("table", _P.empty), ("fields", _P.empty))
_UPDATE = _signature(("table", _P.empty), ("sys_id", _P.empty), ("fields", _P.empty))


class _Records:
    """``records.*`` answered inside the operation's session."""

    def __init__(self, op: Operation) -> None:
        self._op = op

    def get(self, call: ApiCall) -> object:
        args = bind(_GET, call)
        table, sys_id = _text(args["table"], "table"), _text(args["sys_id"], "sys_id")
        table_def(table)
        found = records.find(self._op.session, table, sys_id)
        return None if found is None else _view(found)

    def query(self, call: ApiCall) -> object:
        args = bind(_QUERY, call)
        equals, limit = args["equals"], args["limit"]
        if equals is not None and (
            not isinstance(equals, dict) or not all(isinstance(v, str) for v in equals.values())
        ):
            raise UsageError("records.query: equals must map field names to text")
        if type(limit) is not int or not 1 <= limit <= MAX_QUERY:
            raise UsageError(f"records.query: limit must be a whole number from 1 to {MAX_QUERY}")
        found = records.query(self._op.session, _text(args["table"], "table"), equals, limit)
        return [_view(r) for r in found]

    def insert(self, call: ApiCall) -> object:
        args = bind(_INSERT, call)
        table = _writable(args["table"])
        self._op.begin_writing()
        change = records.insert(
            self._op.session, table, _fields(args["fields"]), self._op.actor.name, self._op.ts
        )
        self._changed(change)
        return change.record.sys_id

    def update(self, call: ApiCall) -> object:
        args = bind(_UPDATE, call)
        table = _writable(args["table"])
        self._op.begin_writing()
        change = records.update(
            self._op.session,
            table,
            _text(args["sys_id"], "sys_id"),
            _fields(args["fields"]),
            self._op.actor.name,
            self._op.ts,
        )
        self._changed(change)
        return change.record.sys_id

    def _changed(self, change: records.RecordChange) -> None:
        record = change.record
        self._op.changed(record.table, record.sys_id, change.action, record.fields)


def instance_api(
    op: Operation, base: ScriptApi | None = None, tracker: Tracker | None = None
) -> ScriptApi:
    """*base* (or a new API) with ``records``, ``ecc`` and ``include`` for *op*'s run."""
    api = base or ScriptApi()
    tracker = tracker or Tracker(op)
    recs = _Records(op)
    api.register("records", "get", recs.get)
    api.register("records", "query", recs.query)
    api.register("records", "insert", recs.insert)
    api.register("records", "update", recs.update)
    api.register("ecc", "enqueue", tracker.handle_enqueue)
    api.set_includes(tracker.resolve_include)
    return api


def _view(record: records.Record) -> dict[str, Any]:
    return {"table": record.table, "sys_id": record.sys_id, "fields": dict(record.fields)}


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise UsageError(f"{what} must be text of 1 to 200 characters")
    return value


def _writable(table: object) -> str:
    name = _text(table, "table")
    writable_table(name)  # refused before the run takes the write lock
    return name


def _fields(value: object) -> dict[str, str | None]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items()
    ):
        raise UsageError("fields must map field names to text or None")
    return dict(value)
