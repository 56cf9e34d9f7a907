"""The in-memory tables: rows, the sys_dictionary entries describing them, writes, and sorted indexes.

`TableStore` holds ``tables[table][sys_id]`` as `Row` dicts. Rows are replaced, never mutated, on write, so a
response rendered from a row never sees half an update. Inserts and updates run the incident business rules
and record journal entries (comments / work_notes) in sys_journal_field. Reads page through a `SortedIndex`
per (table, ORDER BY) that writes keep up to date; a keyset query bisects to the lower bound of its first
ORDERBY field instead of scanning the table (see `TableStore._select`). `field_value` reads a field through
dot-walked references.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from connector.sandbox.encoded_query import EncodedQuery, OrderBy, sort_key
from connector.sandbox.servicenow.errors import ApiError
from connector.sandbox.servicenow.incident import CANCELED, CLOSED, CLOSED_WRITABLE, incident_rules
from connector.sandbox.servicenow.schema import (
    DEFAULTS,
    NUMBER_PREFIX,
    SCHEMAS,
    SYSTEM_FIELDS,
    FieldSpec,
    Row,
    S,
    as_field_spec,
    format_datetime,
)
from connector.sandbox.world import stable_hex

SYS_ID_LENGTH = 32  # every sys_id here is 32 hex characters; sorted index keys rely on it


@dataclass
class SortedIndex:
    """The rows of one table in one ORDER BY order: sorted keys and, in parallel, the rows themselves.

    Keeping row references (not sys_ids to look up) makes a scan a plain list walk, several times
    faster on 100k rows. Keys come in three forms. All-ascending orders on string columns use one
    string, ``value1 NUL value2 … NUL sys_id``, which sorts like the tuple but twice as fast; orders
    with an integer column use a tuple ``(key1, …, sys_id)``. Both keep `key_of`, so a write moves its
    row in place (bisect + insert, no re-sort) and a read can bisect to a lower bound (`bound_of`).
    Descending and dot-walked orders store bare sys_ids and are rebuilt after a write.
    """

    keys: list[Any]
    rows: list[Row]
    key_of: Callable[[Mapping[str, str]], Any] | None = None
    bound_of: Callable[[str], Any] | None = None
    walks: bool = False  # orders through a reference, so writes to other tables can reorder it

    def move(self, old: Row | None, new: Row | None) -> None:
        """Follow one write: an insert (old None), delete (new None) or update of a row."""
        assert self.key_of is not None
        old_key = self.key_of(old) if old is not None else None
        new_key = self.key_of(new) if new is not None else None
        if old_key is not None:
            at = bisect_left(self.keys, old_key)
            if new is not None and old_key == new_key:
                self.rows[at] = new  # rows are replaced on write, never mutated
                return
            del self.keys[at], self.rows[at]
        if new is not None:
            at = bisect_left(self.keys, new_key)
            self.keys.insert(at, new_key)
            self.rows.insert(at, new)


def field_value(schema: Mapping[str, Mapping[str, FieldSpec]], tables: Mapping[str, Mapping[str, Row]],
                table: str, row: Mapping[str, str], path: str) -> str:
    """A field's stored value, following dot-walks through references ("" when a link is empty)."""
    if "." not in path:
        return row.get(path, "")
    *hops, last = path.split(".")
    current: Mapping[str, str] | None = row
    for hop in hops:
        spec = schema[table].get(hop)
        if current is None or spec is None or spec.type != "reference":
            return ""
        table = spec.reference
        current = tables.get(table, {}).get(current.get(hop, ""))
    return current.get(last, "") if current is not None else ""


class TableStore:
    """Tables, their schema and sorted indexes, and the write path; the base of `ServiceNowSimulator`.

    Args:
        clock: Returns the aware UTC "now" that stamps sys_dictionary rows (writes are given their time).
    """

    def __init__(self, clock: Callable[[], datetime]):
        self.clock: Callable[[], datetime] = clock
        self.schema: dict[str, dict[str, FieldSpec]] = {}
        self.tables: dict[str, dict[str, Row]] = {}
        self._lock = threading.RLock()
        self._indexes: dict[tuple[str, tuple[OrderBy, ...]], SortedIndex] = {}
        self._match_cache: OrderedDict[tuple[Any, ...], list[Row]] = OrderedDict()
        self._writes = 0
        self._inserted = 0
        self._numbers: dict[str, int] = {}
        # What a closed incident still accepts; `allow_on_closed` adds an admin's ACL exception.
        self.closed_writable: frozenset[str] = CLOSED_WRITABLE
        for name, fields in SCHEMAS.items():
            if name != "sys_dictionary":
                self.register_table(name, fields)
        self.register_table("sys_dictionary", SCHEMAS["sys_dictionary"])
        for name in self.schema:  # tables registered before sys_dictionary existed
            self._describe(name)

    # ---- schema ------------------------------------------------------------------------------------

    def register_table(self, name: str, fields: Mapping[str, FieldSpec | str] | Iterable[str]) -> None:
        """Add a table, or add fields to an existing one; sys_dictionary is updated to describe them.

        `fields` maps names to a `FieldSpec` or an internal_type string (``"integer"``,
        ``"reference:sys_user"``); a plain list of names means string fields. System fields (sys_id,
        sys_created_on, …) are always present.
        """
        specs = ({k: as_field_spec(v) for k, v in fields.items()} if isinstance(fields, Mapping)
                 else {k: S for k in fields})
        with self._lock:
            schema = self.schema.setdefault(name, dict(SYSTEM_FIELDS))
            schema.update(specs)
            table = self.tables.setdefault(name, {})
            self._numbers.setdefault(name, 0)
            for sys_id, row in table.items():  # existing rows gain the new columns, empty
                table[sys_id] = {**dict.fromkeys(schema, ""), **row}
            self._changed(name)
            if "sys_dictionary" in self.schema:
                self._describe(name)

    def _describe(self, name: str) -> None:
        dictionary = self.tables["sys_dictionary"]
        now = format_datetime(self.clock())
        entries = [("", FieldSpec("collection")), *self.schema[name].items()]
        for element, spec in entries:
            sys_id = stable_hex("sys_dictionary", name, element)
            dictionary[sys_id] = self._system_row("sys_dictionary", sys_id, now, "system") | {
                "name": name, "element": element, "internal_type": spec.type, "reference": spec.reference,
                "column_label": spec.label or element.replace("_", " ").title(),
                "max_length": str(spec.max_length) if spec.max_length else "",
                "read_only": "true" if spec.read_only else "false",
            }
        self._changed("sys_dictionary")

    def field_spec(self, table: str, path: str) -> FieldSpec | None:
        """The column `path` names, following dot-walks through references; None if there is none."""
        spec: FieldSpec | None = None
        for i, part in enumerate(path.split(".")):
            columns = self.schema.get(table)
            spec = columns.get(part) if columns is not None else None
            if spec is None:
                return None
            if i < path.count("."):
                if spec.type != "reference":
                    return None
                table = spec.reference
        return spec

    def _numeric_fields(self, table: str) -> set[str]:
        return {name for name, spec in self.schema[table].items() if spec.type == "integer"}

    # ---- rows ----------------------------------------------------------------------------------------

    def _system_row(self, table: str, sys_id: str, now: str, by: str) -> Row:
        return {"sys_id": sys_id, "sys_created_on": now, "sys_created_by": by, "sys_updated_on": now,
                "sys_updated_by": by, "sys_mod_count": "0"}

    def _blank(self, table: str, sys_id: str, at: datetime, by: str = "system") -> Row:
        row = dict.fromkeys(self.schema[table], "")
        row.update(DEFAULTS.get(table, {}))
        row.update(self._system_row(table, sys_id, format_datetime(at), by))
        return row

    def _put(self, table: str, row: Row) -> None:
        self.tables[table][row["sys_id"]] = row
        self._changed(table)

    # ---- writes --------------------------------------------------------------------------------------

    def _insert(self, table: str, values: Mapping[str, str], now: datetime, actor: tuple[str, str]) -> Row:
        sys_id = values.get("sys_id", "")
        while len(sys_id) != SYS_ID_LENGTH or sys_id in self.tables[table]:
            self._inserted += 1
            sys_id = stable_hex("sandbox", table, self._inserted)
        old = self._blank(table, sys_id, now, actor[1])
        if table == "incident":
            old["opened_at"], old["opened_by"] = old["sys_created_on"], actor[0]
        if "number" in self.schema[table]:
            self._numbers[table] += 1
            old["number"] = f"{NUMBER_PREFIX.get(table, 'REC')}{self._numbers[table]:07d}"
        changes, journal = self._writable(table, values)
        changes = {k: v for k, v in changes.items() if v != old.get(k)}
        if table == "incident":
            changes = incident_rules(old, changes, format_datetime(now), actor[0])
        row = old | changes
        self.tables[table][sys_id] = row
        self._changed(table, None, row)
        self._journal(table, sys_id, journal, now, actor[1])
        return row

    def _update(self, table: str, sys_id: str, values: Mapping[str, str], now: datetime,
                actor: tuple[str, str], *, enforce_acl: bool) -> Row:
        old = self.tables[table][sys_id]
        changes, journal = self._writable(table, values)
        changes = {k: v for k, v in changes.items() if v != old.get(k)}
        if table == "incident":
            if enforce_acl and old["state"] in (CLOSED, CANCELED):
                blocked = (set(changes) | set(journal)) - self.closed_writable
                if blocked:
                    raise ApiError(403, "Operation Failed",
                                   "ACL Exception Update Failed due to security constraints")
            changes = incident_rules(old, changes, format_datetime(now), actor[0])
        if not changes and not journal:
            return old  # an update that changes nothing is not a write: no sys_mod_count bump
        row = old | changes
        row.update(sys_updated_on=format_datetime(now), sys_updated_by=actor[1],
                   sys_mod_count=str(int(old.get("sys_mod_count") or 0) + 1))
        self.tables[table][sys_id] = row
        self._changed(table, old, row)
        self._journal(table, sys_id, journal, now, actor[1])
        return row

    def _writable(self, table: str, values: Mapping[str, str]) -> tuple[Row, Row]:
        """Split input into column changes and journal entries; unknown and sys_ fields are ignored."""
        schema = self.schema[table]
        changes: Row = {}
        journal: Row = {}
        for name, value in values.items():
            spec = schema.get(name)
            if spec is None or name.startswith("sys_"):
                continue
            if spec.type == "journal_input":
                if value:
                    journal[name] = value
            else:
                changes[name] = value
        return changes, journal

    def _journal(self, table: str, sys_id: str, entries: Mapping[str, str], now: datetime, by: str) -> None:
        for element, value in entries.items():
            self._inserted += 1
            entry_id = stable_hex("journal", sys_id, element, self._inserted)
            stamp = format_datetime(now)
            row = dict.fromkeys(self.schema["sys_journal_field"], "")
            row.update(self._system_row("sys_journal_field", entry_id, stamp, by))
            row.update(element_id=sys_id, element=element, value=value, name=table)
            self.tables["sys_journal_field"][entry_id] = row
            self._changed("sys_journal_field", None, row)

    def _delete(self, table: str, sys_id: str) -> None:
        old = self.tables[table].pop(sys_id)
        self._changed(table, old, None)

    def _changed(self, table: str, old: Row | None = None, new: Row | None = None) -> None:
        """Record a write: move the row in incremental indexes, drop the others and the count cache.

        `old` / `new` are the row before and after (None for an insert / delete); neither given means a
        bulk change, after which every index of the table is rebuilt on demand.
        """
        self._writes += 1
        self._match_cache.clear()
        bulk = old is None and new is None
        for key, index in list(self._indexes.items()):
            if index.walks or (key[0] == table and (index.key_of is None or bulk)):
                del self._indexes[key]
            elif key[0] == table:
                index.move(old, new)

    # ---- reads ---------------------------------------------------------------------------------------

    def _index(self, table: str, order: tuple[OrderBy, ...]) -> SortedIndex:
        index = self._indexes.get((table, order))
        if index is None:
            index = self._build_index(table, order)
            self._indexes[(table, order)] = index
        return index

    def _build_index(self, table: str, order: tuple[OrderBy, ...]) -> SortedIndex:
        rows = self.tables[table]
        if not order:
            return SortedIndex(list(rows), list(rows.values()))  # no ORDERBY: insertion order
        walks = any("." in o.field for o in order)
        if walks or any(o.descending for o in order):
            # Stable multi-pass sort, least significant key first, sys_id as the final tiebreak.
            ids = sorted(rows)
            for o in reversed(order):
                ids.sort(key=self._row_sort_key(table, o.field), reverse=o.descending)
            return SortedIndex(ids, [rows[i] for i in ids], walks=walks)
        names = [o.field for o in order]
        numeric = self._numeric_fields(table)
        if not any(name in numeric for name in names):
            def joined(row: Mapping[str, str]) -> str:
                return "\x00".join([*(row.get(name, "") for name in names), row["sys_id"]])

            keys: list[Any] = sorted(map(joined, rows.values()))
            return SortedIndex(keys, [rows[k[-SYS_ID_LENGTH:]] for k in keys], joined, str)
        key_fns = [self._sort_key_fn(table, name) for name in names]

        def as_tuple(row: Mapping[str, str]) -> tuple[Any, ...]:
            values = (fn(row.get(name, "")) for fn, name in zip(key_fns, names, strict=True))
            return (*values, row["sys_id"])

        first = key_fns[0]
        keys = sorted(map(as_tuple, rows.values()))
        return SortedIndex(keys, [rows[k[-1]] for k in keys], as_tuple, lambda bound: (first(bound),))

    def _row_sort_key(self, table: str, path: str) -> Callable[[str], Any]:
        schema, tables = self.schema, self.tables
        rows, fn = tables[table], self._sort_key_fn(table, path)
        return lambda sys_id: fn(field_value(schema, tables, table, rows[sys_id], path))

    def _sort_key_fn(self, table: str, path: str) -> Callable[[str], Any]:
        spec = self.field_spec(table, path)
        if spec is not None and spec.type == "integer":
            return lambda v: sort_key(v, True)
        return str  # plain strings already sort like sort_key(v, False): empty first

    def _select(self, table: str, query: EncodedQuery, offset: int, limit: int,
                count: bool) -> tuple[list[Row], int | None]:
        """One page of matching rows, in order, plus the total when `count`.

        Walks the sorted index from the bisected lower bound of the first ORDERBY field, so a keyset
        page costs about limit + offset predicate checks; counting has to finish the walk (cached per
        query until the next write, so offset paging with counts does not rescan).
        """
        index = self._index(table, query.order_by)
        start = self._seek(table, query, index)
        if not query.has_conditions:
            page = index.rows[start + offset:start + offset + limit]
            return page, (len(index.rows) - start if count else None)
        cache_key = (table, query, self._writes)
        matched = self._match_cache.get(cache_key) if count else None
        if matched is None:
            schema, tables = self.schema, self.tables
            predicate = query.matcher(self._numeric_fields(table),
                                      lambda row, path: field_value(schema, tables, table, row, path))
            candidates = index.rows[start:] if start else index.rows
            if count:
                matched = [row for row in candidates if predicate(row)]
                self._match_cache[cache_key] = matched
                while len(self._match_cache) > 8:
                    self._match_cache.popitem(last=False)
            else:
                matched = list(islice(filter(predicate, candidates), offset + limit))
        return matched[offset:offset + limit], (len(matched) if count else None)

    def _seek(self, table: str, query: EncodedQuery, index: SortedIndex) -> int:
        if index.bound_of is None:
            return 0
        bound = query.lower_bound(self._numeric_fields(table))
        return 0 if bound is None else bisect_left(index.keys, index.bound_of(bound))

