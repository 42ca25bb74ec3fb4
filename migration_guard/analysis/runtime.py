"""What really runs: literal dynamic SQL resolved, stored-program bodies unfolded.

The analyzer hands every statement to :meth:`Runtime.expand`, which returns
the statements to analyse in its place, each a :class:`Run`:

* ``PREPARE s FROM <expression>`` and ``EXECUTE IMMEDIATE <expression>``: one
  run per text the expression can have (:mod:`.dynamic_values`), located at
  the line of its literal and tagged "inside PREPARE s". Variables are
  followed through ``SET`` and ``SELECT ... INTO`` in the same file; what
  cannot be known stays one ``unanalyzable`` operation with the reason.
  ``EXECUTE s`` of a statement prepared in the file adds nothing: its text
  was analysed at the ``PREPARE``.
* ``CREATE PROCEDURE``: the body is analysed at the first ``CALL`` in the
  run, where it runs (findings at the body's own lines, tagged with the
  ``CALL``); a later ``CALL`` adds nothing. A procedure dropped before any
  ``CALL`` ran nothing. A procedure still there at the end of the run, never
  called, is analysed by :meth:`Runtime.finish`: it runs whenever someone
  calls it.
* ``CREATE FUNCTION``/``TRIGGER``/``EVENT``: their bodies run later, on their
  own; :meth:`Runtime.finish` analyses them.
* ``BEGIN NOT ATOMIC ... END`` runs right there: its body is analysed in place.

Every finding of a body or of resolved dynamic SQL is reported once, at the
line where its SQL is written; a suppression comment there, or above the
statement that runs it (``PREPARE``, ``CALL``, ``CREATE``, the ``SET`` of the
variable) applies (:attr:`Run.anchors`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from migration_guard.analysis.dynamic_values import Values, evaluate
from migration_guard.analysis.families import family_traits
from migration_guard.analysis.leading import handled_keyword, is_plain
from migration_guard.analysis.malformed import breaks_before
from migration_guard.analysis.model import Operation, OpKind, Statement
from migration_guard.analysis.programs import (
    SPLIT_DIALECT,
    Program,
    program_name,
    read_program,
    visible_sql,
)
from migration_guard.analysis.tokens import Token, tokenize

__all__ = ["Run", "Runtime"]

#: How deep procedures may call procedures (and dynamic SQL nest) before giving up.
MAX_DEPTH = 8
_SELECT_TARGET_END = frozenset(["FROM", "WHERE", "LIMIT", "GROUP", "ORDER", "HAVING", "FOR"])
_SELECT_LIST_END = _SELECT_TARGET_END | {"INTO"}
_INTO = re.compile(r"\bINTO\b", re.IGNORECASE)


@dataclass(frozen=True)
class Run:
    """One statement to analyse, why it runs, and the other places a suppression may sit."""

    statement: Statement
    origin: str = ""
    anchors: tuple[tuple[str, int], ...] = ()
    #: It may not run (a branch, a loop, one alternative of dynamic SQL): what it
    #: changes must not exempt later statements.
    conditional: bool = False


@dataclass
class _Frame:
    """Where statements are being unfolded: variables, origin, nesting."""

    variables: dict[str, Values]
    prepared: set[str]
    origin: str = ""
    anchors: tuple[tuple[str, int], ...] = ()
    conditional: bool = False
    depth: int = 0
    unit: str | None = None

    def child(self, **changes: object) -> _Frame:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass
class _Defined:
    program: Program
    statement: Statement
    called: bool = False


@dataclass
class Runtime:
    """The state of one ``check`` run: variables per file, stored programs of the run."""

    family: str
    _variables: dict[str, dict[str, Values]] = field(default_factory=dict)
    _prepared: dict[str, set[str]] = field(default_factory=dict)
    _procedures: dict[str, _Defined] = field(default_factory=dict)
    _later: list[_Defined] = field(default_factory=list)
    _active: set[str] = field(default_factory=set)

    def expand(self, statement: Statement) -> list[Run]:
        """The statements that run when ``statement`` runs."""
        if is_plain(statement):
            return [Run(statement)]  # the common case, without tokenizing
        frame = _Frame(
            self._variables.setdefault(statement.file, {}),
            self._prepared.setdefault(statement.file, set()),
        )
        return list(self._expand(statement, frame))

    def finish(self) -> list[list[Run]]:
        """The bodies that run after the migration: functions, triggers, events, and
        procedures created and never called. Each list shares one schema state."""
        waiting = self._later + [
            defined for defined in self._procedures.values() if not defined.called
        ]
        batches: list[list[Run]] = []
        for defined in waiting:
            if defined.called:
                continue  # run meanwhile by the CALL of another body
            defined.called = True
            kind, name = defined.program.kind.lower(), defined.program.name
            if defined.program.kind == "PROCEDURE":
                origin = f"in procedure {name}, not called here: it runs whenever it is called"
            else:
                origin = f"in {kind} {name}"
            creator = defined.statement
            frame = _Frame(
                {},
                set(),
                origin=origin,
                anchors=((creator.file, creator.line),),
                unit=f"{creator.unit or creator.file}\0{kind} {name}",
            )
            batches.append(list(self._unfold(defined.program, frame)))
        self._later.clear()
        self._procedures.clear()
        return batches

    # --- dispatch ---------------------------------------------------------------------------

    def _expand(self, statement: Statement, frame: _Frame) -> Iterator[Run]:
        if frame.unit is not None and statement.unit != frame.unit:
            statement = replace(statement, unit=frame.unit)
        if statement.known_operations:
            return self._plain(statement, frame)
        sql = visible_sql(statement.sql)
        handler = _HANDLERS.get(handled_keyword(sql))
        assigns = ":=" in sql or (("@" in sql or frame.origin) and _INTO.search(sql) is not None)
        if handler is None or (handler is Runtime._select and not assigns):
            if assigns:
                self._forget_assigned(tokenize(sql, self.family), frame)
            return self._plain(statement, frame)
        tokens = tokenize(sql, self.family)
        if not tokens:
            return self._plain(statement, frame)
        return handler(self, statement, tokens, sql, frame)

    def _plain(self, statement: Statement, frame: _Frame) -> Iterator[Run]:
        yield Run(statement, frame.origin, frame.anchors, frame.conditional)

    def _unanalyzable(self, statement: Statement, frame: _Frame, reason: str) -> Iterator[Run]:
        operation = Operation(OpKind.UNANALYZABLE, statement, reason=reason)
        yield Run(
            replace(statement, known_operations=(operation,)),
            frame.origin,
            frame.anchors,
            frame.conditional,
        )

    # --- variables --------------------------------------------------------------------------

    def _assign(
        self, frame: _Frame, name: str, values: Values, statement: Statement, maybe: bool
    ) -> None:
        """Set ``name``; under a condition, or when ``maybe`` (``SELECT ... INTO`` from a
        table, which sets nothing when no row is found), it may also keep its old value."""
        values = values.placed(_placer(statement))
        previous = frame.variables.get(name)
        if frame.conditional and previous is None and name.startswith("@"):
            previous = Values(unknown=f"{name} may keep a value set outside this file")
        if (maybe or frame.conditional) and previous is not None:
            values = previous | values
        frame.variables[name] = values

    def _forget_assigned(self, tokens: Sequence[Token], frame: _Frame) -> None:
        """Variables set in ways not followed (``@v :=``, ``INTO``) become unknown."""
        into = False
        for index, token in enumerate(tokens):
            after = tokens[index + 1] if index + 1 < len(tokens) else None
            if token.kind == "var" and after is not None and after.text == ":=":
                self._unknown(frame, token.text)
            elif token.up == "INTO":
                into = True
            elif into and token.kind == "var":
                self._unknown(frame, token.text)

    def _unknown(self, frame: _Frame, name: str) -> None:
        frame.variables[name.lower()] = Values(unknown=f"{name} is set in a way not followed")

    def _set(
        self, statement: Statement, tokens: Sequence[Token], sql: str, frame: _Frame
    ) -> Iterator[Run]:
        for part in _top_level_split(tokens[1:]):
            equals = next(
                (i for i, t in enumerate(part) if t.kind == "op" and t.text in ("=", ":=")), None
            )
            if equals is None:
                continue
            targets = [t for t in part[:equals] if t.up not in ("SESSION", "LOCAL", "GLOBAL")]
            if len(targets) == 1 and (targets[0].kind == "var" or targets[0].is_name):
                values = evaluate(part[equals + 1 :], sql, self._lookup(frame))
                self._assign(frame, targets[0].text.lower(), values, statement, maybe=False)
        return self._plain(statement, frame)

    def _select(
        self, statement: Statement, tokens: Sequence[Token], sql: str, frame: _Frame
    ) -> Iterator[Run]:
        """``SELECT expression[, ...] INTO target[, ...]``, before or after ``FROM``."""
        into = _top_level_index(tokens, {"INTO"})
        if into is None:
            self._forget_assigned(tokens, frame)
            return self._plain(statement, frame)
        end = _top_level_index(tokens, _SELECT_LIST_END, 1) or len(tokens)
        columns = _top_level_split(tokens[1:end])
        target_end = _top_level_index(tokens, _SELECT_TARGET_END, into + 1) or len(tokens)
        targets = [t for t in tokens[into + 1 : target_end] if t.kind == "var" or t.is_name]
        has_from = _top_level_index(tokens, {"FROM"}) is not None
        lookup = self._lookup(frame)
        for index, target in enumerate(targets):
            if len(columns) == len(targets):
                values = evaluate(columns[index], sql, lookup)
            else:
                values = Values(unknown=f"{target.text} is set in a way not followed")
            # With FROM, no row leaves the variable as it was.
            self._assign(frame, target.text.lower(), values, statement, maybe=has_from)
        return self._plain(statement, frame)

    def _lookup(self, frame: _Frame) -> Callable[[str], Values | None]:
        return frame.variables.get

    # --- dynamic SQL ------------------------------------------------------------------------

    def _prepare(
        self, statement: Statement, tokens: Sequence[Token], sql: str, frame: _Frame
    ) -> Iterator[Run]:
        name = tokens[1].text.lower() if len(tokens) > 1 and tokens[1].is_name else ""
        if name:
            frame.prepared.add(name)
        if not family_traits(self.family).prepares_from_string:
            return self._plain(statement, frame)  # PREPARE s AS <statement>
        if len(tokens) < 4 or tokens[2].up != "FROM":
            return self._plain(statement, frame)
        origin = f"inside PREPARE {tokens[1].text}"
        return self._dynamic(statement, tokens[3:], sql, frame, origin)

    def _execute(
        self, statement: Statement, tokens: Sequence[Token], sql: str, frame: _Frame
    ) -> Iterator[Run]:
        if len(tokens) > 2 and tokens[1].up == "IMMEDIATE":
            end = _top_level_index(tokens, {"USING"}, 2) or len(tokens)
            return self._dynamic(statement, tokens[2:end], sql, frame, "inside EXECUTE IMMEDIATE")
        if len(tokens) > 1 and tokens[1].text.lower() in frame.prepared:
            return iter(())  # analysed at its PREPARE
        return self._plain(statement, frame)

    def _dynamic(
        self,
        statement: Statement,
        source: Sequence[Token],
        sql: str,
        frame: _Frame,
        origin: str,
    ) -> Iterator[Run]:
        from migration_guard.analysis.splitter import split_sql

        values = evaluate(source, sql, self._lookup(frame)).placed(_placer(statement))
        what = origin.removeprefix("inside ")
        if frame.depth >= MAX_DEPTH:
            values = Values(unknown="dynamic SQL nests too deeply to follow")
        inner = frame.child(
            origin=_join(origin, frame.origin),
            anchors=(*frame.anchors, (statement.file, statement.line)),
            depth=frame.depth + 1,
            # Alternatives exclude each other: none of them may exempt another.
            conditional=frame.conditional or len(values.literals) > 1,
        )
        dialect = SPLIT_DIALECT.get(self.family, "mysql")
        for literal in values.literals:
            anchors = (*inner.anchors, (statement.file, literal.anchor))
            for piece in split_sql(
                literal.text, file=statement.file, dialect=dialect, first_line=literal.line
            ):
                resolved = Statement(
                    sql=piece.sql,
                    file=statement.file,
                    line=piece.line,
                    column=literal.column if piece.line == literal.line else piece.column,
                    unit=statement.unit,
                )
                yield from self._expand(resolved, inner.child(anchors=anchors))
        if values.unknown is not None:
            yield from self._unanalyzable(
                statement,
                frame,
                f"{what} runs dynamic SQL not known from this file: {values.unknown}",
            )

    # --- stored programs --------------------------------------------------------------------

    def _create(
        self, statement: Statement, tokens: Sequence[Token], sql: str, frame: _Frame
    ) -> Iterator[Run]:
        program = read_program(statement, self.family)
        if program is not None and program.kind == "PROCEDURE":
            self._procedures[program.name.lower()] = _Defined(program, statement)
        elif program is not None:
            self._later.append(_Defined(program, statement))
        return self._plain(statement, frame)

    def _drop(
        self, statement: Statement, tokens: Sequence[Token], sql: str, frame: _Frame
    ) -> Iterator[Run]:
        if len(tokens) > 2 and tokens[1].up == "PROCEDURE":
            name, _ = program_name(tokens, 2)
            self._procedures.pop(name.lower(), None)  # never called: its body never ran
        return self._plain(statement, frame)

    def _begin(
        self, statement: Statement, tokens: Sequence[Token], sql: str, frame: _Frame
    ) -> Iterator[Run]:
        program = read_program(statement, self.family)
        if program is None:
            return self._plain(statement, frame)
        inner = frame.child(
            origin=_join("in a BEGIN NOT ATOMIC block", frame.origin),
            anchors=(*frame.anchors, (statement.file, statement.line)),
        )
        return self._unfold(program, inner)

    def _call(
        self, statement: Statement, tokens: Sequence[Token], sql: str, frame: _Frame
    ) -> Iterator[Run]:
        name, _ = program_name(tokens, 1)
        name = name.lower()
        defined = self._procedures.get(name)
        if defined is None:
            for variable in list(frame.variables):
                if variable.startswith("@"):
                    frame.variables[variable] = Values(
                        unknown=f"{variable} may be set by CALL {tokens[1].text}"
                    )
            return self._plain(statement, frame)
        if defined.called or name in self._active:
            return iter(())  # its body is analysed once, at its first CALL
        if frame.depth >= MAX_DEPTH:
            return self._unanalyzable(
                statement, frame, f"CALL {tokens[1].text}: procedures call each other too deeply"
            )
        defined.called = True
        creator = defined.statement
        inner = frame.child(
            variables={k: v for k, v in frame.variables.items() if k.startswith("@")},
            prepared=set(),
            origin=_join(
                f"in procedure {defined.program.name}, run by CALL at "
                + _where(statement, creator),
                frame.origin,
            ),
            anchors=(
                *frame.anchors,
                (statement.file, statement.line),
                (creator.file, creator.line),
            ),
            depth=frame.depth + 1,
            unit=statement.unit,
        )
        return self._call_body(defined, inner, frame, tokens)

    def _call_body(
        self, defined: _Defined, inner: _Frame, outer: _Frame, tokens: Sequence[Token]
    ) -> Iterator[Run]:
        key = defined.program.name.lower()
        self._active.add(key)
        try:
            yield from self._unfold(defined.program, inner)
        finally:
            self._active.discard(key)
        for name, values in inner.variables.items():
            if name.startswith("@"):
                outer.variables[name] = values
        outer.prepared |= inner.prepared  # prepared statements belong to the session
        for token in tokens[2:]:
            if token.kind == "var":  # an OUT parameter
                self._unknown(outer, token.text)

    def _unfold(self, program: Program, frame: _Frame) -> Iterator[Run]:
        for body in program.body:
            yield from self._expand(
                body.statement, frame.child(conditional=frame.conditional or body.conditional)
            )


def _where(statement: Statement, creator: Statement) -> str:
    if statement.file == creator.file:
        return f"line {statement.line}"
    return f"{statement.file}:{statement.line}"


def _join(origin: str, outer: str) -> str:
    return f"{origin}, {outer}" if outer else origin


def _placer(statement: Statement) -> Callable[[int], tuple[int, int, int]]:
    """Where an offset of ``statement.sql`` is in its file: (line, column, statement line)."""

    def place(offset: int) -> tuple[int, int, int]:
        lines, last = breaks_before(statement.sql, offset)
        column = offset - last if lines else statement.column + offset
        return statement.line + lines, column, statement.line

    return place


def _top_level_split(tokens: Sequence[Token]) -> list[Sequence[Token]]:
    parts: list[Sequence[Token]] = []
    depth = begin = 0
    for index, token in enumerate(tokens):
        if token.kind == "op" and token.text in ("(", ")", ","):
            if token.text == ",":
                if depth == 0:
                    parts.append(tokens[begin:index])
                    begin = index + 1
            else:
                depth += 1 if token.text == "(" else -1
    parts.append(tokens[begin:])
    return [part for part in parts if part]


def _top_level_index(
    tokens: Sequence[Token], words: frozenset[str] | set[str], start: int = 0
) -> int | None:
    depth = 0
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token.kind == "op" and token.text in ("(", ")"):
            depth += 1 if token.text == "(" else -1
        elif depth == 0 and token.up in words:
            return index
    return None


_Handler = Callable[[Runtime, Statement, Sequence[Token], str, _Frame], Iterator[Run]]
_HANDLERS: dict[str, _Handler] = {
    "SET": Runtime._set,
    "SELECT": Runtime._select,
    "PREPARE": Runtime._prepare,
    "EXECUTE": Runtime._execute,
    "CREATE": Runtime._create,
    "DROP": Runtime._drop,
    "BEGIN": Runtime._begin,
    "CALL": Runtime._call,
}
