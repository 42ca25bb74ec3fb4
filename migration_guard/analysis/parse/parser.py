"""The parser: one sqlglot parse, with the token fallback where sqlglot gives up."""

from __future__ import annotations

from sqlglot import exp

from migration_guard.analysis.model import Operation, OpKind
from migration_guard.analysis.parse.ast_nodes import command_text, parse_sql
from migration_guard.analysis.parse.dynamic import DynamicSql
from migration_guard.analysis.parse.fallback import TokenFallback
from migration_guard.analysis.parse.from_ast import AstMapper
from migration_guard.analysis.parse.words import (
    BEGIN_TRANSACTION_WORDS,
    DML_MODIFIERS,
    FIRST_WORD,
    LEADING_JUNK,
    NO_OP_WORDS,
    ROUTINE,
    skip_space,
    unwrap_version_comments,
)
from migration_guard.analysis.tokens import guess_table, tokenize


class Parser(AstMapper, TokenFallback, DynamicSql):
    def parse(self, sql: str, depth: int) -> list[Operation]:
        if self.traits.executes_version_comments:
            sql = unwrap_version_comments(sql)
        start = LEADING_JUNK.match(sql)
        position = start.end() if start else 0
        word_match = FIRST_WORD.match(sql, position)
        first = word_match.group().upper() if word_match else ""
        if not first and position >= len(sql.rstrip("; \t\r\n")):
            return [self.op(OpKind.NO_OP)]

        if first in NO_OP_WORDS:
            return [self.op(OpKind.NO_OP)]
        if first == "BEGIN":
            rest = FIRST_WORD.match(sql, skip_space(sql, word_match.end() if word_match else 0))
            rest_word = rest.group().upper() if rest else ""
            tail = sql[word_match.end() if word_match else 0 :].strip(" \t\r\n;")
            if not tail or rest_word in BEGIN_TRANSACTION_WORDS:
                return [self.op(OpKind.NO_OP)]
            return self.unanalyzable(
                "a compound BEGIN ... END block runs procedural code that is not analysed",
                guess_table(tokenize(sql, self.family), self.family),
            )
        if first in ("CALL", "EXECUTE", "PREPARE", "DO"):
            return self.dynamic(sql, first, depth)
        if first in ("RENAME", "REPLACE", "LOAD"):
            return self.fallback(sql, depth)
        if first == "CREATE" and ROUTINE.match(sql, position):
            return self.fallback(sql, depth)
        if self.traits.has_dml_modifiers and first in ("DELETE", "UPDATE") and word_match:
            modifiers = DML_MODIFIERS.match(sql, word_match.end())
            if modifiers:
                # sqlglot reads ``DELETE LOW_PRIORITY FROM t`` as a delete from a
                # table named LOW_PRIORITY; the modifiers change nothing here.
                sql = (
                    sql[: modifiers.start()] + " " * len(modifiers.group()) + sql[modifiers.end() :]
                )

        try:
            expressions = parse_sql(self.family, sql)
        except RecursionError:
            return self.unanalyzable("the statement is nested too deeply to analyse")
        except Exception:  # ParseError/TokenError: use the token fallback
            return self.fallback(sql, depth)
        present = [expression for expression in expressions if expression is not None]
        if not present:
            return [self.op(OpKind.NO_OP)]
        if len(present) == 1 and isinstance(present[0], exp.Command):
            return self.fallback(sql, depth)
        operations: list[Operation] = []
        for expression in present:
            if isinstance(expression, exp.Command):
                operations.extend(self.fallback(command_text(expression), depth))
            else:
                operations.extend(self.from_ast(expression, sql))
        return operations
