"""Dynamic SQL and procedural code: ``CALL``, ``EXECUTE``, ``PREPARE`` and ``DO``.

One statement alone cannot say what they run, so they are ``UNANALYZABLE``,
except where the SQL is a literal in the statement itself (``EXECUTE IMMEDIATE
'...'``, MySQL's ``PREPARE s FROM '...'``, PostgreSQL's ``PREPARE s AS ...``):
that SQL is analysed as if written directly, up to :data:`MAX_DEPTH` levels.

The analyzer resolves more before a statement gets here, with what the rest
of the run says (:mod:`migration_guard.analysis.runtime`): ``PREPARE`` from a
variable set in the same file, ``EXECUTE`` of a statement prepared there, and
``CALL`` of a procedure created in the run. What reaches this module is what
the file alone cannot tell.
"""

from __future__ import annotations

from migration_guard.analysis.model import Operation, OpKind
from migration_guard.analysis.parse.base import MAX_DEPTH, ParserBase
from migration_guard.analysis.tokens import (
    guess_table,
    read_name,
    string_value,
    tokenize,
    word_at,
)


class DynamicSql(ParserBase):
    def dynamic(self, sql: str, first: str, depth: int) -> list[Operation]:
        tokens = tokenize(sql, self.family)
        if first == "CALL":
            routine, _ = read_name(tokens, 1)
            called = f"CALL {routine}" if routine else "CALL"
            return self.unanalyzable(
                f"{called} runs a stored procedure not created in this check run, "
                "whose body cannot be analysed"
            )
        if first == "DO":
            if self.traits.do_evaluates_expressions:
                return [self.op(OpKind.NO_OP)]
            body = next((token for token in tokens if token.kind == "string"), None)
            guess = (
                guess_table(tokenize(string_value(body.text), self.family), self.family)
                if body
                else None
            )
            return self.unanalyzable("a DO block runs procedural code that is not analysed", guess)
        if first == "EXECUTE":
            if word_at(tokens, 1) == "IMMEDIATE":
                literal = tokens[2] if len(tokens) > 2 else None
                if literal is not None and literal.kind == "string" and depth < MAX_DEPTH:
                    return self.parse(string_value(literal.text), depth + 1)
            return self.unanalyzable(
                "EXECUTE runs dynamic SQL whose statement cannot be known before it runs"
            )
        # PREPARE
        if word_at(tokens, 1) == "TRANSACTION":
            return [self.op(OpKind.NO_OP)]
        for index, token in enumerate(tokens[:-1]):
            if token.up == "FROM" and self.traits.prepares_from_string:
                source = tokens[index + 1]
                if source.kind == "string" and depth < MAX_DEPTH:
                    return self.parse(string_value(source.text), depth + 1)
                break
            if token.up == "AS" and not self.traits.prepares_from_string and depth < MAX_DEPTH:
                return self.parse(sql[tokens[index + 1].start :], depth + 1)
        return self.unanalyzable(
            "PREPARE ... FROM a variable builds dynamic SQL whose target cannot be known"
        )
