"""The token fallback: statements sqlglot cannot parse, read word by word.

sqlglot gives up (``Command`` or ``ParseError``) on statements people really
write in migrations: MySQL's ``RENAME TABLE``, ``REPLACE``, ``LOAD DATA``,
routines, and many ``ALTER TABLE`` forms (:mod:`.fallback_alter`). This only
understands the statements that can destroy data; whatever else it meets is
``UNANALYZABLE``.
"""

from __future__ import annotations

from collections.abc import Callable

from migration_guard.analysis.model import Operation, OpKind, TableRef
from migration_guard.analysis.parse.base import MAX_DEPTH
from migration_guard.analysis.parse.fallback_alter import AlterFallback
from migration_guard.analysis.parse.words import NO_OP_WORDS
from migration_guard.analysis.tokens import (
    Token,
    guess_table,
    has_top_level_word,
    read_name,
    skip_words,
    split_top_level,
    tokenize,
    word_at,
    words_at,
)


class TokenFallback(AlterFallback):
    def fallback(self, sql: str, depth: int) -> list[Operation]:
        """The operations of ``sql`` read from its tokens, by its first word."""
        tokens = tokenize(sql, self.family)
        if not tokens:
            return [self.op(OpKind.NO_OP)]
        first = tokens[0].up
        handler = _STATEMENTS.get(first)
        if handler is not None:
            return handler(self, tokens, sql)
        if first in ("SELECT", "VALUES", "TABLE"):
            return [self.op(OpKind.SELECT)]
        if first in NO_OP_WORDS:
            return [self.op(OpKind.NO_OP)]
        if first in ("CALL", "EXECUTE", "PREPARE", "DO") and depth < MAX_DEPTH:
            return self.dynamic(sql, first, depth + 1)
        described = first or (tokens[0].text[:20] if tokens else "")
        return self.unanalyzable(
            f"the statement starting with {described!r} could not be parsed",
            guess_table(tokens, self.family),
        )

    def fb_rename(self, tokens: list[Token], sql: str) -> list[Operation]:
        if word_at(tokens, 1) not in ("TABLE", "TABLES"):
            return (
                [self.op(OpKind.NO_OP)]
                if word_at(tokens, 1) == "USER"
                else self.unanalyzable(
                    "unrecognised RENAME statement", guess_table(tokens, self.family)
                )
            )
        index = 2
        if words_at(tokens, index, "IF", "EXISTS"):
            index += 2
        operations: list[Operation] = []
        for pair in split_top_level(tokens[index:]):
            old, position = read_name(pair, 0)
            new, _ = read_name(pair, position + 1) if word_at(pair, position) == "TO" else (None, 0)
            if old is None or new is None:
                return self.unanalyzable("unrecognised RENAME TABLE clause", old)
            operations.append(self.op(OpKind.RENAME_TABLE, old, new_name=new.qualified))
        return operations or self.unanalyzable("RENAME TABLE without tables")

    def fb_drop(self, tokens: list[Token], sql: str) -> list[Operation]:
        index = skip_words(tokens, 1, "TEMPORARY")
        temporary = index > 1
        what = word_at(tokens, index)
        index += 1
        if_exists = words_at(tokens, index, "IF", "EXISTS")
        if if_exists:
            index += 2
        if what in ("TABLE", "TABLES") and not temporary:
            refs = [
                read_name(part, skip_words(part, 0, "ONLY"))[0]
                for part in split_top_level(tokens[index:])
            ]
            return [
                self.op(OpKind.DROP_TABLE, ref, if_exists=if_exists) for ref in refs if ref
            ] or self.unanalyzable("DROP TABLE without a recognisable table")
        if what in ("DATABASE", "SCHEMA"):
            name, _ = read_name(tokens, index)
            if name is None:
                return self.unanalyzable(f"DROP {what} without a recognisable name")
            return [self.op(OpKind.DROP_DATABASE, TableRef(name.name), if_exists=if_exists)]
        for position, token in enumerate(tokens):
            if token.up == "ON":
                table, _ = read_name(tokens, position + 1)
                return [self.op(OpKind.OTHER_DDL, table)]
        return [self.op(OpKind.OTHER_DDL)]

    def fb_truncate(self, tokens: list[Token], sql: str) -> list[Operation]:
        index = skip_words(tokens, 1, "TABLE")
        refs: list[TableRef] = []
        for part in split_top_level(tokens[index:]):
            ref, _ = read_name(part, skip_words(part, 0, "ONLY"))
            if ref is not None and ref.name.upper() not in ("RESTART", "CONTINUE"):
                refs.append(ref)
        return [self.op(OpKind.TRUNCATE_TABLE, ref) for ref in refs] or self.unanalyzable(
            "TRUNCATE without a recognisable table"
        )

    def fb_create(self, tokens: list[Token], sql: str) -> list[Operation]:
        kinds = (
            "TABLE",
            "INDEX",
            "TRIGGER",
            "VIEW",
            "PROCEDURE",
            "FUNCTION",
            "EVENT",
            "DATABASE",
            "SCHEMA",
            "SEQUENCE",
        )
        replace = words_at(tokens, 1, "OR", "REPLACE")
        for index, token in enumerate(tokens):
            if token.up not in kinds:
                continue
            kind = token.up
            position = index + 1
            if words_at(tokens, position, "IF", "NOT", "EXISTS"):
                position += 3
            name, _ = read_name(tokens, position)
            if kind == "TABLE":
                created = self.op(OpKind.CREATE_TABLE, name)
                if replace:
                    return [self.op(OpKind.DROP_TABLE, name, if_exists=True), created]
                return [created]
            if kind in ("INDEX", "TRIGGER"):
                for after in range(position, len(tokens)):
                    if tokens[after].up == "ON":
                        table, _ = read_name(tokens, skip_words(tokens, after + 1, "ONLY"))
                        return [self.op(OpKind.OTHER_DDL, table)]
                return [self.op(OpKind.OTHER_DDL)]
            if kind in ("DATABASE", "SCHEMA"):
                return [self.op(OpKind.OTHER_DDL, TableRef(name.name) if name else None)]
            if kind == "VIEW":
                return [self.op(OpKind.OTHER_DDL, name)]
            return [self.op(OpKind.OTHER_DDL)]
        return [self.op(OpKind.OTHER_DDL)]

    def fb_insert(self, tokens: list[Token], sql: str) -> list[Operation]:
        if tokens[0].up == "LOAD":
            for index in range(len(tokens) - 1):
                if words_at(tokens, index, "INTO", "TABLE"):
                    table, _ = read_name(tokens, index + 2)
                    return [self.op(OpKind.INSERT, table)]
            return self.unanalyzable("LOAD without a recognisable target table")
        index = skip_words(
            tokens,
            1,
            "LOW_PRIORITY",
            "DELAYED",
            "HIGH_PRIORITY",
            "IGNORE",
            "OR",
            "REPLACE",
            "ROLLBACK",
            "ABORT",
            "FAIL",
            "INTO",
        )
        table, _ = read_name(tokens, index)
        return [self.op(OpKind.INSERT, table)]

    def fb_delete(self, tokens: list[Token], sql: str) -> list[Operation]:
        index = skip_words(tokens, 1, "LOW_PRIORITY", "QUICK", "IGNORE")
        refs: list[TableRef] = []
        if word_at(tokens, index) == "FROM":
            index += 1
        for part in split_top_level(tokens[index:]):
            ref, _ = read_name(part, skip_words(part, 0, "ONLY"))
            if ref is not None:
                refs.append(ref)
            if any(token.up in ("FROM", "USING", "WHERE") for token in part):
                break
        has_where = has_top_level_word(tokens, "WHERE")
        return [self.op(OpKind.DELETE, ref, has_where=has_where) for ref in refs] or [
            self.op(OpKind.DELETE, None, has_where=has_where)
        ]

    def fb_update(self, tokens: list[Token], sql: str) -> list[Operation]:
        index = skip_words(
            tokens,
            1,
            "LOW_PRIORITY",
            "IGNORE",
            "ONLY",
            "OR",
            "REPLACE",
            "ROLLBACK",
            "ABORT",
            "FAIL",
        )
        table, _ = read_name(tokens, index)
        return [self.op(OpKind.UPDATE, table, has_where=has_top_level_word(tokens, "WHERE"))]


_StatementHandler = Callable[[TokenFallback, list[Token], str], list[Operation]]
#: First word of a statement -> its token-level reading.
_STATEMENTS: dict[str, _StatementHandler] = {
    "ALTER": TokenFallback.fb_alter,
    "RENAME": TokenFallback.fb_rename,
    "DROP": TokenFallback.fb_drop,
    "TRUNCATE": TokenFallback.fb_truncate,
    "CREATE": TokenFallback.fb_create,
    "INSERT": TokenFallback.fb_insert,
    "REPLACE": TokenFallback.fb_insert,
    "LOAD": TokenFallback.fb_insert,
    "DELETE": TokenFallback.fb_delete,
    "UPDATE": TokenFallback.fb_update,
}
