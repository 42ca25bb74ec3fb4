"""What a guarded run did to which table: the scope of its restore.

The statement interceptor hands every operation that changes a table to
:meth:`RunChanges.record` before the statement reaches the server. Per table it keeps
whether the run changed its definition (DDL), wrote its rows (DML, or a foreign-key
action fired by a row the run deleted or updated, or a table it dropped), or created
it. A failed run restores exactly these tables (:mod:`migration_guard.alembic.recovery`):
every other table is left as the application left it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migration_guard.alembic.intercept import BATCH_TEMP_PREFIX
from migration_guard.analysis.model import Operation, OpKind

if TYPE_CHECKING:
    from migration_guard.dialects.base import ForeignKeyAction

#: Operations that write rows of their table.
ROW_WRITES = frozenset(
    {
        OpKind.INSERT,
        OpKind.UPDATE,
        OpKind.DELETE,
        OpKind.TRUNCATE_TABLE,
        OpKind.TRUNCATE_PARTITION,
        OpKind.DROP_PARTITION,
    }
)
#: Operations after which foreign-key actions of the rows they remove or rekey fire.
_DELETES_ROWS = frozenset(
    {
        OpKind.DELETE,
        OpKind.TRUNCATE_TABLE,
        OpKind.TRUNCATE_PARTITION,
        OpKind.DROP_PARTITION,
        OpKind.DROP_TABLE,
    }
)
#: Operations of the plan that change no table.
_NOT_CHANGES = frozenset({OpKind.SELECT, OpKind.NO_OP, OpKind.UNANALYZABLE})
#: Foreign-key actions that change the referencing rows.
_CHANGING_ACTIONS = frozenset({"CASCADE", "SET NULL", "SET DEFAULT"})


@dataclass
class TableChange:
    """What the run did to one table (``name`` as the statements spelled it)."""

    name: str
    ddl: bool = False
    wrote: bool = False
    created: bool = False
    #: Foreign-key actions from these tables changed rows of this one.
    via: list[str] = field(default_factory=list)
    #: The name the run renamed this table to (its rows went there).
    renamed_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ddl": self.ddl,
            "wrote": self.wrote,
            "created": self.created,
            "via": self.via,
            "renamed_to": self.renamed_to,
        }


@dataclass
class RunChanges:
    """The tables one run changed, keyed by lower-cased (schema-qualified) name.

    ``existing`` holds the lower-cased names of the tables from before the run;
    ``load_foreign_keys`` reads the database's foreign keys the first time a row
    deletion or update needs them; ``on_change`` is called when a table or a kind of
    change is seen for the first time (the session saves its run record then).
    ``unknown`` is set when a statement ran whose targets could not be known.
    """

    existing: Collection[str] = field(default_factory=frozenset)
    load_foreign_keys: Callable[[], Sequence[ForeignKeyAction]] | None = None
    on_change: Callable[[], None] | None = None
    tables: dict[str, TableChange] = field(default_factory=dict)
    unknown: bool = False
    #: The version table (lower-cased): the guard's own, no foreign key refers to it.
    version_table: str = ""
    #: What the plan's statements would do, saved once before the run: a change it
    #: holds already needs no new save of the run record (see :meth:`merged`).
    planned: dict[str, TableChange] = field(default_factory=dict)
    _children: dict[str, list[tuple[str, str | None, str | None]]] | None = None

    # -- recording ---------------------------------------------------------------
    def record(self, operation: Operation) -> list[str]:
        """Note ``operation`` (about to run); return the further tables it changes
        through foreign-key actions, which must be backed up before it runs."""
        if operation.kind is OpKind.UNANALYZABLE or operation.table is None:
            if not self.unknown:
                self.unknown = True
                self._changed()
            return []
        name = operation.table.qualified
        lowered = name.lower()
        before = self._state()
        if operation.kind is OpKind.CREATE_TABLE:
            entry = self._entry(name)
            entry.created = entry.created or lowered not in self.existing
            entry.ddl = True
        elif operation.kind is OpKind.RENAME_TABLE and operation.new_name:
            old = self._entry(name)
            old.ddl, old.renamed_to = True, operation.new_name
            new = self._entry(operation.new_name)
            new.ddl = True
            new.created = new.created or operation.new_name.lower() not in self.existing
        elif operation.kind in ROW_WRITES:
            self._entry(name).wrote = True
        else:
            self._entry(name).ddl = True
        cascaded = self._cascade(operation, lowered)
        after = self._state()
        if after != before and not self._foreseen(after - before):
            self._changed()
        return cascaded

    def plan(
        self, operations: Iterable[Operation], live: Iterable[str], version_table: str
    ) -> None:
        """Note what the plan's ``operations`` do to the ``live`` tables (before the run);
        Alembic writes (and may create) ``version_table`` besides."""
        self.existing = frozenset(name.lower() for name in live)
        self.version_table = version_table.lower()
        planner = RunChanges(existing=self.existing, version_table=self.version_table)
        for operation in operations:
            if operation.kind not in _NOT_CHANGES:
                planner.record(operation)
        versions = planner._entry(version_table)
        versions.wrote = True
        versions.ddl = versions.created = self.version_table not in self.existing
        self.planned = planner.tables

    def _foreseen(self, changed: set[tuple[Any, ...]]) -> bool:
        """Whether the ``changed`` entries (of :meth:`_state`) are in the plan already."""
        for key, *_flags in changed:
            entry = self.tables[key]
            plan = self.planned.get(key)
            if plan is None or entry.via:
                return False
            if (entry.ddl and not plan.ddl) or (entry.wrote and not plan.wrote):
                return False
            if entry.created and not plan.created:
                return False
        return True

    def _cascade(self, operation: Operation, lowered: str) -> list[str]:
        deletes = operation.kind in _DELETES_ROWS
        if not deletes and operation.kind is not OpKind.UPDATE:
            return []
        if lowered == self.version_table or self.tables[lowered].created:
            return []  # the guard's own table, or made by this run: nothing refers to it
        copy = self.tables.get(BATCH_TEMP_PREFIX + lowered)
        if operation.kind is OpKind.DROP_TABLE and copy is not None and copy.created:
            # A batch rebuild's drop: the guard switched the actions off at its start
            # (:mod:`migration_guard.alembic.rebuilds`), or refused to go on.
            return []
        children = self._foreign_keys()
        found: list[str] = []
        # The foreign keys are those of the connected database, named without a schema.
        bare = lowered.rpartition(".")[2]
        pending = [bare]
        seen = {bare}
        while pending:
            parent = pending.pop()
            for child, on_delete, on_update in children.get(parent, ()):
                action = on_delete if deletes else on_update
                if (action or "").upper() not in _CHANGING_ACTIONS:
                    continue
                entry = self._entry(child)
                entry.wrote = True
                if parent not in entry.via:
                    entry.via.append(parent)
                if child.lower() not in seen:
                    seen.add(child.lower())
                    found.append(child)
                    pending.append(child.lower())
        return found

    def _foreign_keys(self) -> Mapping[str, list[tuple[str, str | None, str | None]]]:
        if self._children is None:
            self._children = {}
            try:
                found = self.load_foreign_keys() if self.load_foreign_keys is not None else ()
            except Exception:  # unknown foreign keys widen the restore, never stop the run
                self.unknown = True
                found = ()
            for fk in found:
                self._children.setdefault(fk.parent.lower(), []).append(
                    (fk.child, fk.on_delete, fk.on_update)
                )
        return self._children

    def _entry(self, name: str) -> TableChange:
        lowered = name.lower()
        entry = self.tables.get(lowered)
        if entry is None:
            entry = self.tables[lowered] = TableChange(name)
        return entry

    def _state(self) -> set[tuple[Any, ...]]:
        return {
            (key, entry.ddl, entry.wrote, entry.created, len(entry.via))
            for key, entry in self.tables.items()
        }

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- the run record ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "unknown": self.unknown,
            "tables": {key: entry.to_dict() for key, entry in self.tables.items()},
            "planned": {key: entry.to_dict() for key, entry in self.planned.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunChanges:
        changes = cls(unknown=bool(data.get("unknown")))
        changes.tables = _entries(data.get("tables"))
        changes.planned = _entries(data.get("planned"))
        return changes

    def merged(self) -> RunChanges:
        """The recorded changes plus the planned ones: the scope of a run that died
        (its record is saved only when a change was not planned)."""
        merged = RunChanges(unknown=self.unknown)
        merged.tables = _entries(self.to_dict()["tables"])
        for key, plan in self.planned.items():
            entry = merged.tables.setdefault(key, TableChange(plan.name))
            entry.ddl, entry.wrote = entry.ddl or plan.ddl, entry.wrote or plan.wrote
            entry.created = entry.created or plan.created
            entry.renamed_to = entry.renamed_to or plan.renamed_to
        return merged

    def created(self) -> list[str]:
        """The tables this run created (that did not exist before it)."""
        return [entry.name for entry in self.tables.values() if entry.created]

    def changed(self) -> list[TableChange]:
        """The tables from before the run that it changed."""
        return [entry for entry in self.tables.values() if not entry.created]

    def renames(self, entry: TableChange) -> list[TableChange]:
        """The tables ``entry``'s rows went to through the run's renames, in order."""
        found: list[TableChange] = []
        seen = {entry.name.lower()}
        while entry.renamed_to and entry.renamed_to.lower() not in seen:
            seen.add(entry.renamed_to.lower())
            entry = self.tables.get(entry.renamed_to.lower()) or TableChange(entry.renamed_to)
            found.append(entry)
        return found


def _entries(data: Any) -> dict[str, TableChange]:
    return {
        str(key): TableChange(
            name=str(entry.get("name") or key),
            ddl=bool(entry.get("ddl")),
            wrote=bool(entry.get("wrote")),
            created=bool(entry.get("created")),
            via=[str(v) for v in entry.get("via") or ()],
            renamed_to=str(entry["renamed_to"]) if entry.get("renamed_to") else None,
        )
        for key, entry in dict(data or {}).items()
    }
