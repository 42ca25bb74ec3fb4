"""Turn one SQL statement into normalised :class:`Operation` values.

The main path is a single sqlglot parse followed by a walk over the few AST
shapes that matter. sqlglot gives up (``exp.Command`` or ``ParseError``) on
several statements people really write in MySQL migrations (``RENAME TABLE``,
``CONVERT TO CHARACTER SET``, ``DROP/TRUNCATE PARTITION``, ``ALTER IGNORE``...)
and on many PostgreSQL ``ALTER TABLE`` forms; those go through a token-level
fallback that only understands the statements that can destroy data.

Everything fails closed: whatever neither path understands becomes an
``UNANALYZABLE`` operation, never an exception and never a silent "fine".
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import sqlglot
from sqlglot import exp

from migration_guard.analysis.model import (
    ColumnDef,
    ColumnType,
    Operation,
    OpKind,
    Statement,
    TableRef,
)

# sqlglot logs a warning for every statement it degrades to ``Command``; those
# are expected here (the fallback handles them) and must not reach the user.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

__all__ = ["parse_statement"]

_SQLGLOT_DIALECTS = {
    "mysql": "mysql",
    "mariadb": "mysql",
    "postgresql": "postgres",
    "postgres": "postgres",
    "sqlite": "sqlite",
}
_dialect_cache: dict[str, Any] = {}
_thread_state = threading.local()
#: Nesting limit for ``PREPARE ... FROM 'literal'`` style re-parsing.
_MAX_DEPTH = 3


def parse_statement(statement: Statement, dialect: str) -> list[Operation]:
    """Return what ``statement`` does, as normalised operations.

    ``dialect`` is one of ``mysql``, ``mariadb``, ``postgresql`` or ``sqlite``.
    Never raises: a statement that cannot be understood, or whose target cannot
    be known (dynamic SQL, ``CALL``, ``DO`` blocks), yields one ``UNANALYZABLE``
    operation carrying the reason and, when it can be guessed, the table.
    Operations already attached to the statement (``known_operations``) are
    returned unchanged.
    """
    if statement.known_operations:
        return list(statement.known_operations)
    try:
        family = _SQLGLOT_DIALECTS.get(dialect.lower(), "")
        return _Parser(statement, family).parse(statement.sql, 0)
    except Exception as exc:  # the contract is "never raises"
        return [
            Operation(
                kind=OpKind.UNANALYZABLE,
                statement=statement,
                reason=f"the statement could not be analysed ({type(exc).__name__}: {exc})",
            )
        ]


# --------------------------------------------------------------------------- text helpers

_VERSION_SCAN = re.compile(
    r"""(?P<skip>'(?:[^'\\]|\\.)*(?:'|\Z)|"(?:[^"\\]|\\.)*(?:"|\Z)|`[^`]*(?:`|\Z)|(?:--|\#)[^\n]*)
    |(?P<open>/\*M?!\d*)
    |(?P<close>\*/)
    |(?P<comment>/\*.*?(?:\*/|\Z))""",
    re.S | re.X,
)


def unwrap_version_comments(sql: str) -> str:
    """Replace MySQL ``/*!NNNNN ... */`` and ``/*M!NNNNNN ... */`` by their content.

    The server executes what these comments hold, so the check must see it.
    Strings, quoted identifiers and ordinary comments are left alone.
    """
    if "/*!" not in sql and "/*M!" not in sql:
        return sql
    parts: list[str] = []
    position = 0
    depth = 0
    for match in _VERSION_SCAN.finditer(sql):
        kind = match.lastgroup
        if kind == "open":
            parts.append(sql[position : match.start()])
            parts.append(" ")
            position = match.end()
            depth += 1
        elif kind == "close" and depth:
            parts.append(sql[position : match.start()])
            parts.append(" ")
            position = match.end()
            depth -= 1
    parts.append(sql[position:])
    return "".join(parts)


_LEADING_JUNK = re.compile(r"(?:\s+|--[^\n]*|\#[^\n]*|/\*.*?(?:\*/|\Z))*", re.S)
_FIRST_WORD = re.compile(r"[A-Za-z_]+")
_DML_MODIFIERS = re.compile(r"(?:\s+(?:LOW_PRIORITY|QUICK|IGNORE)\b)+", re.I)
_ROUTINE = re.compile(
    r"""CREATE\s+(?:OR\s+REPLACE\s+)?
    (?:DEFINER\s*=\s*(?:`[^`]*`|'[^']*'|"[^"]*"|[^\s@`'"]+)
       (?:\s*@\s*(?:`[^`]*`|'[^']*'|"[^"]*"|[^\s`'"]+))?\s+)?
    (?:(?:AGGREGATE|CONSTRAINT)\s+)?
    (?:TRIGGER|PROCEDURE|FUNCTION|EVENT)\b""",
    re.I | re.X,
)

#: Statements that touch no table's data (session state, transactions, admin).
_NO_OP_WORDS = frozenset(
    {
        "SET",
        "USE",
        "START",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT",
        "RELEASE",
        "END",
        "ABORT",
        "FLUSH",
        "SHOW",
        "DESCRIBE",
        "DESC",
        "EXPLAIN",
        "LOCK",
        "UNLOCK",
        "XA",
        "DEALLOCATE",
        "GRANT",
        "REVOKE",
        "KILL",
        "HANDLER",
        "CHECKSUM",
        "CHECK",
        "PRAGMA",
        "VACUUM",
        "LISTEN",
        "NOTIFY",
        "UNLISTEN",
        "RESET",
        "DISCARD",
        "CHECKPOINT",
        "REINDEX",
        "DECLARE",
        "FETCH",
        "CLOSE",
        "MOVE",
        "DELIMITER",
        "SOURCE",
        "INSTALL",
        "UNINSTALL",
        "HELP",
        "CACHE",
        "PURGE",
        "STOP",
        "OPTIMIZE",
        "REPAIR",
        "ANALYZE",
        "CLUSTER",
        "REFRESH",
        "SECURITY",
        "ATTACH",
        "DETACH",
        "SHUTDOWN",
        "BINLOG",
    }
)
_BEGIN_TRANSACTION_WORDS = frozenset(
    ["", "WORK", "TRANSACTION", "DEFERRED", "IMMEDIATE", "EXCLUSIVE", "ISOLATION", "READ"]
)


# --------------------------------------------------------------------------- tokens


class _Token(NamedTuple):
    kind: str  # word, ident (quoted identifier), string, number, var, op
    text: str  # unquoted for ident; as written otherwise
    start: int
    end: int

    @property
    def up(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    @property
    def is_name(self) -> bool:
        return self.kind in ("word", "ident")


_TOKEN_TAIL = r"""
 |(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?(?![\w$])|\.\d+(?:[eE][+-]?\d+)?)
 |(?P<word>[^\W\d][\w$]*|\d[\w$]*)
 |(?P<var>@@?[\w.$]*|\$\d+|:[A-Za-z_]\w*)
 |(?P<op><=>|<>|!=|<=|>=|::|:=|\|\||->>|->|.)
"""
_TOKEN_PATTERNS = {
    "mysql": re.compile(
        r"""(?P<ws>\s+)
 |(?P<comment>--(?=[\x00-\x20]|\Z)[^\n]*|\#[^\n]*|/\*.*?(?:\*/|\Z))
 |(?P<string>[xXbBnN]?'(?:[^'\\]|\\.|'')*(?:'|\Z)|"(?:[^"\\]|\\.|"")*(?:"|\Z))
 |(?P<ident>`(?:[^`]|``)*(?:`|\Z))"""
        + _TOKEN_TAIL,
        re.S | re.X,
    ),
    "postgres": re.compile(
        r"""(?P<ws>\s+)
 |(?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
 |(?P<string>(?:[eE]'(?:[^'\\]|\\.|'')*|[bBxXnN]?'(?:[^']|'')*)(?:'|\Z)
    |\$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?(?:\$(?P=tag)\$|\Z))
 |(?P<ident>"(?:[^"]|"")*(?:"|\Z))"""
        + _TOKEN_TAIL,
        re.S | re.X,
    ),
    "sqlite": re.compile(
        r"""(?P<ws>\s+)
 |(?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
 |(?P<string>[xX]?'(?:[^']|'')*(?:'|\Z))
 |(?P<ident>"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[^\]]*(?:\]|\Z))"""
        + _TOKEN_TAIL,
        re.S | re.X,
    ),
}


def _tokenize(sql: str, family: str) -> list[_Token]:
    """Split ``sql`` into tokens, respecting the dialect's quoting. Never raises."""
    pattern = _TOKEN_PATTERNS.get(family, _TOKEN_PATTERNS["postgres"])
    tokens: list[_Token] = []
    for match in pattern.finditer(sql):
        kind = match.lastgroup
        if kind in ("ws", "comment") or kind is None:
            continue
        text = match.group()
        if kind == "ident":
            text = _unquote_identifier(text)
        tokens.append(_Token(kind, text, match.start(), match.end()))
    return tokens


def _unquote_identifier(text: str) -> str:
    opener = text[0]
    closer = "]" if opener == "[" else opener
    body = text[1:-1] if len(text) > 1 and text.endswith(closer) else text[1:]
    return body if opener == "[" else body.replace(closer * 2, closer)


def _string_value(text: str) -> str:
    """The content of a string token (quotes removed, escapes resolved)."""
    if text.startswith("$"):
        tag_end = text.index("$", 1) + 1
        tag = text[:tag_end]
        body = text[tag_end:]
        return body[: -len(tag)] if body.endswith(tag) and len(body) >= len(tag) else body
    if text[:1] in "eExXbBnN" and text[1:2] in ("'", '"'):
        text = text[1:]
    quote = text[0]
    body = text[1:-1] if len(text) > 1 and text.endswith(quote) else text[1:]
    body = body.replace(quote * 2, quote)
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "0": "\0"}.get(m[1], m[1]), body)


def _split_top_level(tokens: Sequence[_Token]) -> list[list[_Token]]:
    """Split on commas outside parentheses."""
    parts: list[list[_Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "op":
            if token.text == "(":
                depth += 1
            elif token.text == ")":
                depth = max(0, depth - 1)
            elif token.text == "," and depth == 0:
                parts.append([])
                continue
        parts[-1].append(token)
    return parts


def _read_name(tokens: Sequence[_Token], index: int) -> tuple[TableRef | None, int]:
    """Read ``a``, ``s.a`` or ``c.s.a`` starting at ``index``."""
    if index >= len(tokens) or not tokens[index].is_name:
        return None, index
    parts = [tokens[index].text]
    index += 1
    while (
        index + 1 < len(tokens)
        and tokens[index].kind == "op"
        and tokens[index].text == "."
        and tokens[index + 1].is_name
    ):
        parts.append(tokens[index + 1].text)
        index += 2
    schema = parts[-2] if len(parts) > 1 else None
    return TableRef(name=parts[-1], schema=schema), index


def _skip_words(tokens: Sequence[_Token], index: int, *words: str) -> int:
    while index < len(tokens) and tokens[index].up in words:
        index += 1
    return index


def _at(tokens: Sequence[_Token], index: int, *words: str) -> bool:
    """Whether the tokens from ``index`` are exactly ``words`` (upper-case)."""
    if index + len(words) > len(tokens):
        return False
    return all(tokens[index + offset].up == word for offset, word in enumerate(words))


def _word(tokens: Sequence[_Token], index: int) -> str:
    return tokens[index].up if index < len(tokens) else ""


_GUESS_AFTER = frozenset(["FROM", "TABLE", "INTO", "UPDATE", "JOIN", "TRUNCATE"])
_NOT_A_TABLE = frozenset(
    ["IF", "EXISTS", "NOT", "ONLY", "SELECT", "WHERE", "SET", "VALUES", "LATERAL", "TABLE"]
)


def _guess_table(tokens: Sequence[_Token], family: str = "", depth: int = 0) -> TableRef | None:
    """The first name after FROM/TABLE/INTO/UPDATE/JOIN, for UNANALYZABLE reports.

    Looks into string literals too (``EXECUTE 'DROP TABLE x'``) when the
    statement itself names no table.
    """
    found = _guess_table_in(tokens)
    if found is None and depth < 2:
        for token in tokens:
            if token.kind == "string" and len(token.text) > 8:
                inner = _tokenize(_string_value(token.text), family)
                found = _guess_table(inner, family, depth + 1)
                if found is not None:
                    break
    return found


def _guess_table_in(tokens: Sequence[_Token]) -> TableRef | None:
    for index, token in enumerate(tokens):
        if token.up not in _GUESS_AFTER:
            continue
        after = _skip_words(tokens, index + 1, "IF", "NOT", "EXISTS", "ONLY", "TABLE")
        if after < len(tokens) and tokens[after].up not in _NOT_A_TABLE:
            table, _ = _read_name(tokens, after)
            if table is not None:
                return table
    return None


# --------------------------------------------------------------------------- AST helpers

_UNSIGNED_TYPES = {
    "UBIGINT": "BIGINT",
    "UINT": "INT",
    "UMEDIUMINT": "MEDIUMINT",
    "USMALLINT": "SMALLINT",
    "UTINYINT": "TINYINT",
    "UDECIMAL": "DECIMAL",
    "UDOUBLE": "DOUBLE",
}


def _table_ref(node: Any) -> TableRef | None:
    if isinstance(node, exp.Schema):
        node = node.this
    if not isinstance(node, exp.Table):
        return None
    name = node.name
    if not name:
        return None
    return TableRef(name=name, schema=node.text("db") or None)


def _schema_name(node: Any) -> TableRef | None:
    """``CREATE/DROP DATABASE x`` puts x in ``this``; ``... SCHEMA x`` in ``db``."""
    if isinstance(node, exp.Table):
        name = node.name or node.text("db")
        return TableRef(name=name) if name else None
    return None


def _column_type(node: Any, family: str) -> ColumnType | None:
    if not isinstance(node, exp.DataType):
        return None
    type_name = node.this.name if hasattr(node.this, "name") else str(node.this)
    unsigned = type_name in _UNSIGNED_TYPES
    if unsigned:
        type_name = _UNSIGNED_TYPES[type_name]
    elif type_name == "USERDEFINED":
        type_name = str(node.args.get("kind") or "USER-DEFINED").upper()
    args: list[int] = []
    for param in node.expressions:
        value = param.this if isinstance(param, exp.DataTypeParam) else param
        if isinstance(value, exp.Literal) and not value.is_string:
            try:
                args.append(int(value.this))
            except ValueError:
                continue
    return ColumnType(
        name=type_name, args=tuple(args), unsigned=unsigned, text=_type_text(node, type_name)
    )


def _type_text(node: Any, type_name: str) -> str:
    """The type as users write it; cheap for the common shapes (rendering via
    sqlglot's generator costs as much as parsing the statement)."""
    params: list[str] = []
    for param in node.expressions:
        value = param.this if isinstance(param, exp.DataTypeParam) else param
        if isinstance(value, exp.Literal):
            params.append(f"'{value.this}'" if value.is_string else str(value.this))
        elif isinstance(value, exp.Var):
            params.append(str(value.this))
        else:
            try:
                return str(node.sql())
            except Exception:  # rendering is cosmetic
                return type_name
    text = f"{type_name}({', '.join(params)})" if params else type_name
    return f"{text} UNSIGNED" if node.this.name in _UNSIGNED_TYPES else text


def _column_def(node: Any, family: str) -> ColumnDef:
    nullable: bool | None = None
    for constraint in node.args.get("constraints") or ():
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.NotNullColumnConstraint):
            nullable = bool(kind.args.get("allow_null"))
        elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
            nullable = False
    return ColumnDef(
        name=node.name, type=_column_type(node.args.get("kind"), family), nullable=nullable
    )


_Const = tuple[str, Any]


def _constant(node: Any) -> _Const | None:
    """A literal's value: ("num", float) or ("str", text); None if not a constant."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Literal):
        if node.is_string:
            return ("str", node.this)
        try:
            return ("num", float(node.this))
        except ValueError:
            return None
    if isinstance(node, exp.Neg):
        inner = _constant(node.this)
        if inner is not None and inner[0] == "num":
            return ("num", -inner[1])
    if isinstance(node, exp.Boolean):
        return ("num", 1.0 if node.this else 0.0)
    return None


def _as_number(value: _Const) -> float | None:
    if value[0] == "num":
        return float(value[1])
    try:
        return float(value[1])
    except ValueError:
        return None


def _compare(node: Any) -> bool | None:
    left, right = node.this, node.expression
    left_const, right_const = _constant(left), _constant(right)
    if left_const is None or right_const is None:
        if isinstance(left, exp.Column) and isinstance(right, exp.Column) and left == right:
            # ``x = x`` is true for every non-NULL x: close enough to "every row".
            return isinstance(node, (exp.EQ, exp.GTE, exp.LTE, exp.NullSafeEQ)) or None
        return None
    if left_const[0] == "str" and right_const[0] == "str":
        if left_const[1] == right_const[1]:
            difference = 0.0
        elif str(left_const[1]).lower() == str(right_const[1]).lower():
            return None  # equal or not depending on the collation
        else:
            difference = -1.0 if left_const[1] < right_const[1] else 1.0
    else:
        left_number, right_number = _as_number(left_const), _as_number(right_const)
        if left_number is None or right_number is None:
            return None
        difference = left_number - right_number
    if isinstance(node, (exp.EQ, exp.NullSafeEQ)):
        return difference == 0
    if isinstance(node, exp.NEQ):
        return difference != 0
    if isinstance(node, exp.GT):
        return difference > 0
    if isinstance(node, exp.GTE):
        return difference >= 0
    if isinstance(node, exp.LT):
        return difference < 0
    if isinstance(node, exp.LTE):
        return difference <= 0
    return None


def _flatten(node: Any, kind: type[Any]) -> list[Any]:
    if isinstance(node, kind):
        return _flatten(node.this, kind) + _flatten(node.expression, kind)
    while isinstance(node, exp.Paren):
        node = node.this
        if isinstance(node, kind):
            return _flatten(node, kind)
    return [node]


def _null_test_key(node: Any) -> tuple[bool, Any] | None:
    """For ``x IS NULL`` -> (True, x); ``x IS NOT NULL`` -> (False, x)."""
    negated = False
    while isinstance(node, (exp.Paren, exp.Not)):
        if isinstance(node, exp.Not):
            negated = not negated
        node = node.this
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        if node.args.get("negate"):
            negated = not negated
        return (not negated, node.this)
    return None


def _truth(node: Any) -> bool | None:
    """Constant-fold a condition: True/False when provable for every row, else None."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Or):
        branches = _flatten(node, exp.Or)
        values = [_truth(branch) for branch in branches]
        if any(value is True for value in values):
            return True
        null_tests = [_null_test_key(branch) for branch in branches]
        is_null = [key[1] for key in null_tests if key and key[0]]
        if any(key[1] in is_null for key in null_tests if key and not key[0]):
            return True
        return False if all(value is False for value in values) else None
    if isinstance(node, exp.And):
        values = [_truth(branch) for branch in _flatten(node, exp.And)]
        if any(value is False for value in values):
            return False
        return True if all(value is True for value in values) else None
    if isinstance(node, exp.Not):
        inner = _truth(node.this)
        return None if inner is None else not inner
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, (exp.Literal, exp.Neg)):
        value = _constant(node)
        number = _as_number(value) if value is not None else None
        return None if number is None else number != 0
    if isinstance(node, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ)):
        return _compare(node)
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        if isinstance(node.this, exp.Null):
            result: bool | None = True
        else:
            result = False if _constant(node.this) is not None else None
        if result is not None and node.args.get("negate"):
            return not result
        return result
    if isinstance(node, exp.In) and not node.args.get("query"):
        needle = _constant(node.this)
        if needle is None:
            return None
        options = [_constant(option) for option in node.expressions]
        if any(option == needle for option in options):
            return True
        return False if options and all(option is not None for option in options) else None
    return None


def _is_tautology(condition: Any) -> bool:
    return _truth(condition) is True


# --------------------------------------------------------------------------- the parser

_BENIGN_ALTER_ACTIONS: tuple[type, ...] = tuple(
    cls
    for cls in (
        getattr(exp, name, None)
        for name in (
            "AddConstraint",
            "RenameIndex",
            "ForceProperty",
            "DropPrimaryKey",
            "AlterSet",
            "AlterIndex",
            "Property",
        )
    )
    if isinstance(cls, type)
)
_ALTER_OPTION_WORDS = frozenset(
    {
        "ALGORITHM",
        "LOCK",
        "FORCE",
        "ORDER",
        "COMMENT",
        "DEFAULT",
        "CHARACTER",
        "CHARSET",
        "COLLATE",
        "AUTO_INCREMENT",
        "ROW_FORMAT",
        "KEY_BLOCK_SIZE",
        "STATS_PERSISTENT",
        "STATS_AUTO_RECALC",
        "STATS_SAMPLE_PAGES",
        "PACK_KEYS",
        "CHECKSUM",
        "AVG_ROW_LENGTH",
        "MAX_ROWS",
        "MIN_ROWS",
        "DELAY_KEY_WRITE",
        "INSERT_METHOD",
        "DATA",
        "INDEX",
        "TABLESPACE",
        "ENABLE",
        "DISABLE",
        "OWNER",
        "VALIDATE",
        "ATTACH",
        "DETACH",
        "INHERIT",
        "NO",
        "CLUSTER",
        "REPLICA",
        "RESET",
        "OF",
        "NOT",
        "ANALYZE",
        "CHECK",
        "OPTIMIZE",
        "REBUILD",
        "REPAIR",
        "REORGANIZE",
        "COALESCE",
        "UPGRADE",
        "WITH",
        "WITHOUT",
        "PARTITION",
        "REMOVE",
        "EXCHANGE",
        "COMPRESSION",
        "ENCRYPTION",
        "PAGE_CHECKSUM",
        "TRANSACTIONAL",
        "SECONDARY_ENGINE",
        "CONNECTION",
        "PASSWORD",
        "UNION",
        "ENCRYPTED",
        "ENCRYPTION_KEY_ID",
        "IETF_QUOTES",
        "SEQUENCE",
        "SYSTEM",
    }
)
_NON_COLUMN_DROPS = frozenset(
    ["INDEX", "KEY", "PRIMARY", "FOREIGN", "CONSTRAINT", "CHECK", "UNIQUE", "PERIOD", "SYSTEM"]
)
_NON_COLUMN_ADDS = _NON_COLUMN_DROPS | frozenset(["FULLTEXT", "SPATIAL", "PARTITION", "VECTOR"])


class _Parser:
    def __init__(self, statement: Statement, family: str) -> None:
        self.statement = statement
        self.family = family

    # -- construction helpers

    def op(self, kind: OpKind, table: TableRef | None = None, **fields: Any) -> Operation:
        return Operation(kind=kind, statement=self.statement, table=table, **fields)

    def unanalyzable(self, reason: str, table: TableRef | None = None) -> list[Operation]:
        return [self.op(OpKind.UNANALYZABLE, table, reason=reason)]

    # -- entry

    def parse(self, sql: str, depth: int) -> list[Operation]:
        if self.family == "mysql":
            sql = unwrap_version_comments(sql)
        start = _LEADING_JUNK.match(sql)
        position = start.end() if start else 0
        word_match = _FIRST_WORD.match(sql, position)
        first = word_match.group().upper() if word_match else ""
        if not first and position >= len(sql.rstrip("; \t\r\n")):
            return [self.op(OpKind.NO_OP)]

        if first in _NO_OP_WORDS:
            return [self.op(OpKind.NO_OP)]
        if first == "BEGIN":
            rest = _FIRST_WORD.match(sql, _skip_space(sql, word_match.end() if word_match else 0))
            rest_word = rest.group().upper() if rest else ""
            tail = sql[word_match.end() if word_match else 0 :].strip(" \t\r\n;")
            if not tail or rest_word in _BEGIN_TRANSACTION_WORDS:
                return [self.op(OpKind.NO_OP)]
            return self.unanalyzable(
                "a compound BEGIN ... END block runs procedural code that is not analysed",
                _guess_table(_tokenize(sql, self.family), self.family),
            )
        if first in ("CALL", "EXECUTE", "PREPARE", "DO"):
            return self.dynamic(sql, first, depth)
        if first in ("RENAME", "REPLACE", "LOAD"):
            return self.fallback(sql, depth)
        if first == "CREATE" and _ROUTINE.match(sql, position):
            return self.fallback(sql, depth)
        if self.family == "mysql" and first in ("DELETE", "UPDATE") and word_match:
            modifiers = _DML_MODIFIERS.match(sql, word_match.end())
            if modifiers:
                # sqlglot reads ``DELETE LOW_PRIORITY FROM t`` as a delete from a
                # table named LOW_PRIORITY; the modifiers change nothing here.
                sql = (
                    sql[: modifiers.start()] + " " * len(modifiers.group()) + sql[modifiers.end() :]
                )

        try:
            expressions = _parse_sql(self.family, sql)
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
                operations.extend(self.fallback(_command_text(expression), depth))
            else:
                operations.extend(self.from_ast(expression, sql))
        return operations

    # -- dynamic SQL and procedural code

    def dynamic(self, sql: str, first: str, depth: int) -> list[Operation]:
        tokens = _tokenize(sql, self.family)
        if first == "CALL":
            routine, _ = _read_name(tokens, 1)
            called = f"CALL {routine}" if routine else "CALL"
            return self.unanalyzable(f"{called} runs a stored procedure whose body is not analysed")
        if first == "DO":
            if self.family == "mysql":
                return [self.op(OpKind.NO_OP)]
            body = next((token for token in tokens if token.kind == "string"), None)
            guess = (
                _guess_table(_tokenize(_string_value(body.text), self.family), self.family)
                if body
                else None
            )
            return self.unanalyzable("a DO block runs procedural code that is not analysed", guess)
        if first == "EXECUTE":
            if _word(tokens, 1) == "IMMEDIATE":
                literal = tokens[2] if len(tokens) > 2 else None
                if literal is not None and literal.kind == "string" and depth < _MAX_DEPTH:
                    return self.parse(_string_value(literal.text), depth + 1)
            return self.unanalyzable(
                "EXECUTE runs dynamic SQL whose statement cannot be known before it runs"
            )
        # PREPARE
        if _word(tokens, 1) == "TRANSACTION":
            return [self.op(OpKind.NO_OP)]
        for index, token in enumerate(tokens[:-1]):
            if token.up == "FROM" and self.family == "mysql":
                source = tokens[index + 1]
                if source.kind == "string" and depth < _MAX_DEPTH:
                    return self.parse(_string_value(source.text), depth + 1)
                break
            if token.up == "AS" and self.family != "mysql" and depth < _MAX_DEPTH:
                return self.parse(sql[tokens[index + 1].start :], depth + 1)
        return self.unanalyzable(
            "PREPARE ... FROM a variable builds dynamic SQL whose target cannot be known"
        )

    # -- AST mapping

    def from_ast(self, node: Any, sql: str) -> list[Operation]:
        if isinstance(node, exp.Create):
            return self.create(node)
        if isinstance(node, exp.Drop):
            return self.drop(node)
        if isinstance(node, exp.Alter):
            return self.alter(node)
        if isinstance(node, exp.TruncateTable):
            return [
                self.op(OpKind.TRUNCATE_TABLE, ref)
                for ref in map(_table_ref, node.expressions)
                if ref is not None
            ] or self.unanalyzable("TRUNCATE without a recognisable table")
        if isinstance(node, exp.Delete):
            return self.delete(node)
        if isinstance(node, exp.Update):
            return self.update(node)
        if isinstance(node, exp.Insert):
            return [self.op(OpKind.INSERT, _table_ref(node.this))]
        if isinstance(node, exp.Merge):
            return [self.op(OpKind.UPDATE, _table_ref(node.this), has_where=True)]
        if isinstance(node, exp.Copy):
            kind = OpKind.INSERT if node.args.get("kind") else OpKind.SELECT
            return [self.op(kind, _table_ref(node.this))]
        if isinstance(node, (exp.Query, exp.Values)):
            return [*self.writable_ctes(node, sql), self.op(OpKind.SELECT)]
        if isinstance(node, exp.Comment):
            return [self.op(OpKind.OTHER_DDL, _table_ref(node.this))]
        if isinstance(node, _NO_OP_NODES):
            return [self.op(OpKind.NO_OP)]
        return self.unanalyzable(
            f"not a recognised SQL statement ({type(node).__name__})",
            _guess_table(_tokenize(sql, self.family), self.family),
        )

    def writable_ctes(self, node: Any, sql: str) -> list[Operation]:
        """PostgreSQL ``WITH d AS (DELETE ... RETURNING *) SELECT ...`` modifies data."""
        with_clause = node.args.get("with_") or node.args.get("with")
        if with_clause is None:
            return []
        operations: list[Operation] = []
        for cte in with_clause.expressions:
            if isinstance(cte.this, (exp.Delete, exp.Update, exp.Insert, exp.Merge)):
                operations.extend(self.from_ast(cte.this, sql))
        return operations

    def create(self, node: Any) -> list[Operation]:
        kind = str(node.args.get("kind") or "").upper()
        target = node.this
        if kind == "TABLE":
            table = _table_ref(target)
            columns: tuple[ColumnDef, ...] = ()
            if isinstance(target, exp.Schema):
                columns = tuple(
                    _column_def(column, self.family)
                    for column in target.expressions
                    if isinstance(column, exp.ColumnDef)
                )
            created = self.op(OpKind.CREATE_TABLE, table, columns=columns)
            if node.args.get("replace"):
                # MariaDB ``CREATE OR REPLACE TABLE`` drops an existing table first.
                return [self.op(OpKind.DROP_TABLE, table, if_exists=True), created]
            return [created]
        if kind in ("DATABASE", "SCHEMA"):
            return [self.op(OpKind.OTHER_DDL, _schema_name(target))]
        if kind == "INDEX" and isinstance(target, exp.Index):
            return [self.op(OpKind.OTHER_DDL, _table_ref(target.args.get("table")))]
        if kind == "TRIGGER":
            properties = node.args.get("properties")
            table = None
            if properties is not None:
                for prop in properties.expressions:
                    table = table or _table_ref(prop.args.get("table"))
            return [self.op(OpKind.OTHER_DDL, table)]
        if kind in ("VIEW", "SEQUENCE"):
            return [self.op(OpKind.OTHER_DDL, _table_ref(target))]
        return [self.op(OpKind.OTHER_DDL)]

    def drop(self, node: Any) -> list[Operation]:
        kind = str(node.args.get("kind") or "").upper()
        targets = node.args.get("tables") or []
        if_exists = bool(node.args.get("exists"))
        if kind in ("DATABASE", "SCHEMA"):
            refs = [_schema_name(target) for target in targets]
            return [
                self.op(OpKind.DROP_DATABASE, ref, if_exists=if_exists)
                for ref in refs
                if ref is not None
            ] or self.unanalyzable(f"DROP {kind} without a recognisable name")
        if kind == "TABLE" and not node.args.get("temporary"):
            refs = [_table_ref(target) for target in targets]
            return [
                self.op(OpKind.DROP_TABLE, ref, if_exists=if_exists)
                for ref in refs
                if ref is not None
            ] or self.unanalyzable("DROP TABLE without a recognisable table")
        on = node.args.get("cluster")
        if isinstance(on, exp.OnProperty):
            return [self.op(OpKind.OTHER_DDL, _table_ref(on.this))]
        if kind in ("VIEW", "TABLE"):
            return [self.op(OpKind.OTHER_DDL, _table_ref(target)) for target in targets] or [
                self.op(OpKind.OTHER_DDL)
            ]
        return [self.op(OpKind.OTHER_DDL)]

    def alter(self, node: Any) -> list[Operation]:
        kind = str(node.args.get("kind") or "").upper()
        table = _table_ref(node.this)
        if kind != "TABLE":
            return [self.op(OpKind.OTHER_DDL, table if kind in ("VIEW",) else None)]
        operations: list[Operation] = []
        options = node.args.get("options") or []
        # PostgreSQL ``RENAME c TO d`` (no COLUMN keyword) comes back as a table
        # rename to ``c`` plus a stray ``TO d`` option: it is a column rename.
        stray_to = next((o for o in options if type(o).__name__ == "ToTableProperty"), None)
        for action in node.args.get("actions") or ():
            if stray_to is not None and isinstance(action, exp.AlterRename):
                operations.append(
                    self.op(
                        OpKind.RENAME_COLUMN,
                        table,
                        column=action.this.name,
                        new_name=stray_to.this.name,
                    )
                )
                continue
            operations.extend(self.alter_action(table, action))
        for option in options:
            if isinstance(option, exp.EngineProperty):
                operations.append(
                    self.op(OpKind.CHANGE_ENGINE, table, value=option.name or option.sql())
                )
        return operations or [self.op(OpKind.OTHER_DDL, table)]

    def alter_action(self, table: TableRef | None, action: Any) -> list[Operation]:
        if isinstance(action, exp.Drop):
            if str(action.args.get("kind") or "").upper() == "COLUMN":
                if_exists = bool(action.args.get("exists"))
                return [
                    self.op(OpKind.DROP_COLUMN, table, column=column.name, if_exists=if_exists)
                    for column in action.args.get("tables") or ()
                ]
            return [self.op(OpKind.OTHER_DDL, table)]
        if isinstance(action, exp.ColumnDef):
            column = _column_def(action, self.family)
            return [
                self.op(
                    OpKind.ADD_COLUMN,
                    table,
                    column=column.name,
                    new_type=column.type,
                    columns=(column,),
                )
            ]
        if isinstance(action, exp.ModifyColumn):
            column = _column_def(action.this, self.family)
            renamed_from = action.args.get("rename_from")
            old_name = renamed_from.name if renamed_from is not None else column.name
            return self.changed_column(table, old_name, column)
        if isinstance(action, exp.AlterColumn):
            dtype = action.args.get("dtype")
            if dtype is not None:
                return [
                    self.op(
                        OpKind.ALTER_COLUMN_TYPE,
                        table,
                        column=action.name,
                        new_type=_column_type(dtype, self.family),
                    )
                ]
            return [self.op(OpKind.OTHER_DDL, table, column=action.name)]
        if isinstance(action, exp.RenameColumn):
            return [
                self.op(
                    OpKind.RENAME_COLUMN,
                    table,
                    column=action.this.name,
                    new_name=action.args["to"].name,
                )
            ]
        if isinstance(action, exp.AlterRename):
            new = _table_ref(action.this)
            return [self.op(OpKind.RENAME_TABLE, table, new_name=new.qualified if new else None)]
        if isinstance(action, _BENIGN_ALTER_ACTIONS):
            return [self.op(OpKind.OTHER_DDL, table)]
        return self.unanalyzable(
            f"unrecognised ALTER TABLE action ({type(action).__name__})", table
        )

    def changed_column(
        self, table: TableRef | None, old_name: str, column: ColumnDef
    ) -> list[Operation]:
        """MySQL CHANGE/MODIFY: the whole definition is restated."""
        operations: list[Operation] = []
        renamed = old_name.lower() != column.name.lower()
        if renamed:
            operations.append(
                self.op(OpKind.RENAME_COLUMN, table, column=old_name, new_name=column.name)
            )
        operations.append(
            self.op(
                OpKind.ALTER_COLUMN_TYPE,
                table,
                column=old_name,
                new_name=column.name if renamed else None,
                new_type=column.type,
                columns=(column,),
            )
        )
        return operations

    def delete(self, node: Any) -> list[Operation]:
        target = node.this
        sources = _sources(target)
        explicit = node.args.get("tables")
        if explicit:
            aliases = _alias_map(sources + list(_as_list(node.args.get("using"))))
            tables = [_resolve(ref, aliases) for ref in map(_table_ref, explicit)]
        elif node.args.get("using") and self.family == "mysql":
            tables = [_table_ref(source) for source in sources]
        else:
            tables = [_table_ref(target)]
        where = node.args.get("where")
        has_where = where is not None
        tautology = has_where and _is_tautology(where.this)
        refs = _unique(ref for ref in tables if ref is not None)
        return [
            self.op(OpKind.DELETE, ref, has_where=has_where, where_is_tautology=tautology)
            for ref in refs
        ] or [self.op(OpKind.DELETE, None, has_where=has_where, where_is_tautology=tautology)]

    def update(self, node: Any) -> list[Operation]:
        sources = _sources(node.this)
        first = _table_ref(node.this)
        refs: list[TableRef | None] = [first]
        if len(sources) > 1:
            aliases = _alias_map(sources)
            refs = []
            for assignment in node.expressions:
                column = assignment.this if isinstance(assignment, exp.EQ) else None
                qualifier = column.table if isinstance(column, exp.Column) else ""
                if qualifier and qualifier.lower() in aliases:
                    refs.append(aliases[qualifier.lower()])
                else:
                    refs.append(first)
        where = node.args.get("where")
        has_where = where is not None
        tautology = has_where and _is_tautology(where.this)
        return [
            self.op(OpKind.UPDATE, ref, has_where=has_where, where_is_tautology=tautology)
            for ref in _unique(refs)
        ]

    # -- token fallback

    def fallback(self, sql: str, depth: int) -> list[Operation]:
        tokens = _tokenize(sql, self.family)
        if not tokens:
            return [self.op(OpKind.NO_OP)]
        first = tokens[0].up
        handler = {
            "ALTER": self.fb_alter,
            "RENAME": self.fb_rename,
            "DROP": self.fb_drop,
            "TRUNCATE": self.fb_truncate,
            "CREATE": self.fb_create,
            "INSERT": self.fb_insert,
            "REPLACE": self.fb_insert,
            "LOAD": self.fb_insert,
            "DELETE": self.fb_delete,
            "UPDATE": self.fb_update,
        }.get(first)
        if handler is not None:
            return handler(tokens, sql)
        if first in ("SELECT", "VALUES", "TABLE"):
            return [self.op(OpKind.SELECT)]
        if first in _NO_OP_WORDS:
            return [self.op(OpKind.NO_OP)]
        if first in ("CALL", "EXECUTE", "PREPARE", "DO") and depth < _MAX_DEPTH:
            return self.dynamic(sql, first, depth + 1)
        described = first or (tokens[0].text[:20] if tokens else "")
        return self.unanalyzable(
            f"the statement starting with {described!r} could not be parsed",
            _guess_table(tokens, self.family),
        )

    def fb_alter(self, tokens: list[_Token], sql: str) -> list[Operation]:
        index = _skip_words(tokens, 1, "ONLINE", "OFFLINE", "IGNORE")
        what = _word(tokens, index)
        if what != "TABLE":
            if what in ("DATABASE", "SCHEMA"):
                name, _ = _read_name(tokens, index + 1)
                return [self.op(OpKind.OTHER_DDL, TableRef(name.name) if name else None)]
            if what or tokens[index:]:
                return [self.op(OpKind.OTHER_DDL)]
            return self.unanalyzable("incomplete ALTER statement")
        index += 1
        if_exists = _at(tokens, index, "IF", "EXISTS")
        if if_exists:
            index += 2
        index = _skip_words(tokens, index, "ONLY")
        table, index = _read_name(tokens, index)
        if table is None:
            return self.unanalyzable(
                "ALTER TABLE without a recognisable table", _guess_table(tokens, self.family)
            )
        if index < len(tokens) and tokens[index].text == "*":
            index += 1
        actions = _merge_partition_lists(_split_top_level(tokens[index:]))
        operations: list[Operation] = []
        for action in actions:
            if action:
                operations.extend(self.fb_alter_action(table, action, sql))
        return operations or [self.op(OpKind.OTHER_DDL, table)]

    def fb_alter_action(self, table: TableRef, action: list[_Token], sql: str) -> list[Operation]:
        verb = action[0].up
        if verb == "DROP":
            index = 1
            if _word(action, index) == "PARTITION":
                return [self.op(OpKind.DROP_PARTITION, table, partitions=_names(action[2:]))]
            if _word(action, index) in _NON_COLUMN_DROPS or _word(action, index) == "DEFAULT":
                return [self.op(OpKind.OTHER_DDL, table)]
            index = _skip_words(action, index, "COLUMN")
            if_exists = _at(action, index, "IF", "EXISTS")
            if if_exists:
                index += 2
            if index < len(action) and action[index].is_name:
                return [
                    self.op(
                        OpKind.DROP_COLUMN,
                        table,
                        column=action[index].text,
                        if_exists=if_exists,
                    )
                ]
        elif verb == "TRUNCATE" and _word(action, 1) == "PARTITION":
            return [self.op(OpKind.TRUNCATE_PARTITION, table, partitions=_names(action[2:]))]
        elif verb in ("CHANGE", "MODIFY"):
            index = _skip_words(action, 1, "COLUMN")
            if _at(action, index, "IF", "EXISTS"):
                index += 2
            if index < len(action) and action[index].is_name:
                old_name = action[index].text
                definition = action[index:] if verb == "MODIFY" else action[index + 1 :]
                if definition and definition[0].is_name:
                    column = self.column_from_tokens(definition, sql)
                    return self.changed_column(table, old_name, column)
        elif verb == "ADD":
            index = _skip_words(action, 1, "COLUMN")
            if _at(action, index, "IF", "NOT", "EXISTS"):
                index += 3
            word = _word(action, index)
            if word in _NON_COLUMN_ADDS:
                return [self.op(OpKind.OTHER_DDL, table)]
            if index < len(action) and action[index].text == "(":
                inner = action[index + 1 : -1] if action[-1].text == ")" else action[index + 1 :]
                definitions = [part for part in _split_top_level(inner) if part]
            else:
                definitions = [action[index:]]
            operations = []
            for definition in definitions:
                if not definition or definition[0].up in _NON_COLUMN_ADDS:
                    continue
                column = self.column_from_tokens(definition, sql)
                operations.append(
                    self.op(
                        OpKind.ADD_COLUMN,
                        table,
                        column=column.name,
                        new_type=column.type,
                        columns=(column,),
                    )
                )
            return operations or [self.op(OpKind.OTHER_DDL, table)]
        elif verb == "ALTER":
            index = _skip_words(action, 1, "COLUMN")
            if _word(action, index) in ("INDEX", "KEY", "CONSTRAINT", "CHECK"):
                return [self.op(OpKind.OTHER_DDL, table)]
            if index < len(action) and action[index].is_name:
                column_name = action[index].text
                index += 1
                if _at(action, index, "SET", "DATA", "TYPE"):
                    index += 3
                elif _word(action, index) == "TYPE":
                    index += 1
                else:
                    return [self.op(OpKind.OTHER_DDL, table, column=column_name)]
                end = index
                while end < len(action) and action[end].up not in ("USING", "COLLATE"):
                    end += 1
                new_type = self.type_from_tokens(action[index:end], sql)
                return [
                    self.op(OpKind.ALTER_COLUMN_TYPE, table, column=column_name, new_type=new_type)
                ]
        elif verb == "RENAME":
            word = _word(action, 1)
            if word in ("INDEX", "KEY", "CONSTRAINT"):
                return [self.op(OpKind.OTHER_DDL, table)]
            if word == "COLUMN" or (
                len(action) > 3
                and action[1].is_name
                and action[2].up == "TO"
                and word not in ("TO", "AS")
            ):
                index = 2 if word == "COLUMN" else 1
                if index + 2 < len(action) and action[index + 1].up == "TO":
                    return [
                        self.op(
                            OpKind.RENAME_COLUMN,
                            table,
                            column=action[index].text,
                            new_name=action[index + 2].text,
                        )
                    ]
            else:
                new, _ = _read_name(action, _skip_words(action, 1, "TO", "AS"))
                if new is not None:
                    return [self.op(OpKind.RENAME_TABLE, table, new_name=new.qualified)]
        elif verb == "ENGINE":
            index = 2 if len(action) > 1 and action[1].text == "=" else 1
            if index < len(action):
                return [self.op(OpKind.CHANGE_ENGINE, table, value=action[index].text)]
        elif verb == "CONVERT":
            index = _skip_words(action, 1, "TO")
            if _at(action, index, "CHARACTER", "SET"):
                index += 2
            elif _word(action, index) == "CHARSET":
                index += 1
            else:
                index = -1
            if 0 <= index < len(action):
                if action[index].text == "=":
                    index += 1
                if index < len(action):
                    return [self.op(OpKind.CONVERT_CHARSET, table, value=action[index].text)]
        elif verb == "SET" and _word(action, 1) == "SCHEMA" and len(action) > 2:
            new_name = TableRef(name=table.name, schema=action[2].text).qualified
            return [self.op(OpKind.RENAME_TABLE, table, new_name=new_name)]
        elif verb in ("DISCARD", "IMPORT") and _word(action, 1) in ("TABLESPACE", "PARTITION"):
            return self.unanalyzable(
                f"{verb} TABLESPACE replaces or removes the table's data file", table
            )
        elif verb in _ALTER_OPTION_WORDS or verb == "SET":
            return [self.op(OpKind.OTHER_DDL, table)]
        shown = " ".join(token.text for token in action[:3])
        return self.unanalyzable(f"unrecognised ALTER TABLE action {shown!r}", table)

    def column_from_tokens(self, definition: list[_Token], sql: str) -> ColumnDef:
        """A column definition, parsed by sqlglot when it can, else by hand."""
        text = sql[definition[0].start : definition[-1].end]
        try:
            parsed = _get_dialect(self.family).parse_one(f"ALTER TABLE _mg ADD COLUMN {text}")
            actions = parsed.args.get("actions") or []
            if isinstance(parsed, exp.Alter) and actions and isinstance(actions[0], exp.ColumnDef):
                column = _column_def(actions[0], self.family)
                return ColumnDef(
                    name=definition[0].text, type=column.type, nullable=column.nullable
                )
        except Exception:  # fall through to the hand parse
            pass
        return ColumnDef(name=definition[0].text, type=self.type_from_tokens(definition[1:], sql))

    def type_from_tokens(self, tokens: list[_Token], sql: str) -> ColumnType | None:
        if not tokens or not tokens[0].is_name:
            return None
        text = sql[tokens[0].start : tokens[-1].end]
        try:
            return _column_type(exp.DataType.build(text, dialect=self.family or None), self.family)
        except Exception:  # fall back to the first word and its numbers
            pass
        args: list[int] = []
        index = 1
        if index < len(tokens) and tokens[index].text == "(":
            index += 1
            while index < len(tokens) and tokens[index].text != ")":
                if tokens[index].kind == "number" and tokens[index].text.isdigit():
                    args.append(int(tokens[index].text))
                index += 1
        unsigned = any(token.up == "UNSIGNED" for token in tokens)
        return ColumnType(
            name=tokens[0].text.upper(), args=tuple(args), unsigned=unsigned, text=text
        )

    def fb_rename(self, tokens: list[_Token], sql: str) -> list[Operation]:
        if _word(tokens, 1) not in ("TABLE", "TABLES"):
            return (
                [self.op(OpKind.NO_OP)]
                if _word(tokens, 1) == "USER"
                else self.unanalyzable(
                    "unrecognised RENAME statement", _guess_table(tokens, self.family)
                )
            )
        index = 2
        if _at(tokens, index, "IF", "EXISTS"):
            index += 2
        operations: list[Operation] = []
        for pair in _split_top_level(tokens[index:]):
            old, position = _read_name(pair, 0)
            new, _ = _read_name(pair, position + 1) if _word(pair, position) == "TO" else (None, 0)
            if old is None or new is None:
                return self.unanalyzable("unrecognised RENAME TABLE clause", old)
            operations.append(self.op(OpKind.RENAME_TABLE, old, new_name=new.qualified))
        return operations or self.unanalyzable("RENAME TABLE without tables")

    def fb_drop(self, tokens: list[_Token], sql: str) -> list[Operation]:
        index = _skip_words(tokens, 1, "TEMPORARY")
        temporary = index > 1
        what = _word(tokens, index)
        index += 1
        if_exists = _at(tokens, index, "IF", "EXISTS")
        if if_exists:
            index += 2
        if what in ("TABLE", "TABLES") and not temporary:
            refs = [
                _read_name(part, _skip_words(part, 0, "ONLY"))[0]
                for part in _split_top_level(tokens[index:])
            ]
            return [
                self.op(OpKind.DROP_TABLE, ref, if_exists=if_exists) for ref in refs if ref
            ] or self.unanalyzable("DROP TABLE without a recognisable table")
        if what in ("DATABASE", "SCHEMA"):
            name, _ = _read_name(tokens, index)
            if name is None:
                return self.unanalyzable(f"DROP {what} without a recognisable name")
            return [self.op(OpKind.DROP_DATABASE, TableRef(name.name), if_exists=if_exists)]
        for position, token in enumerate(tokens):
            if token.up == "ON":
                table, _ = _read_name(tokens, position + 1)
                return [self.op(OpKind.OTHER_DDL, table)]
        return [self.op(OpKind.OTHER_DDL)]

    def fb_truncate(self, tokens: list[_Token], sql: str) -> list[Operation]:
        index = _skip_words(tokens, 1, "TABLE")
        refs: list[TableRef] = []
        for part in _split_top_level(tokens[index:]):
            ref, _ = _read_name(part, _skip_words(part, 0, "ONLY"))
            if ref is not None and ref.name.upper() not in ("RESTART", "CONTINUE"):
                refs.append(ref)
        return [self.op(OpKind.TRUNCATE_TABLE, ref) for ref in refs] or self.unanalyzable(
            "TRUNCATE without a recognisable table"
        )

    def fb_create(self, tokens: list[_Token], sql: str) -> list[Operation]:
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
        replace = _at(tokens, 1, "OR", "REPLACE")
        for index, token in enumerate(tokens):
            if token.up not in kinds:
                continue
            kind = token.up
            position = index + 1
            if _at(tokens, position, "IF", "NOT", "EXISTS"):
                position += 3
            name, _ = _read_name(tokens, position)
            if kind == "TABLE":
                created = self.op(OpKind.CREATE_TABLE, name)
                if replace:
                    return [self.op(OpKind.DROP_TABLE, name, if_exists=True), created]
                return [created]
            if kind in ("INDEX", "TRIGGER"):
                for after in range(position, len(tokens)):
                    if tokens[after].up == "ON":
                        table, _ = _read_name(tokens, _skip_words(tokens, after + 1, "ONLY"))
                        return [self.op(OpKind.OTHER_DDL, table)]
                return [self.op(OpKind.OTHER_DDL)]
            if kind in ("DATABASE", "SCHEMA"):
                return [self.op(OpKind.OTHER_DDL, TableRef(name.name) if name else None)]
            if kind == "VIEW":
                return [self.op(OpKind.OTHER_DDL, name)]
            return [self.op(OpKind.OTHER_DDL)]
        return [self.op(OpKind.OTHER_DDL)]

    def fb_insert(self, tokens: list[_Token], sql: str) -> list[Operation]:
        if tokens[0].up == "LOAD":
            for index in range(len(tokens) - 1):
                if _at(tokens, index, "INTO", "TABLE"):
                    table, _ = _read_name(tokens, index + 2)
                    return [self.op(OpKind.INSERT, table)]
            return self.unanalyzable("LOAD without a recognisable target table")
        index = _skip_words(
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
        table, _ = _read_name(tokens, index)
        return [self.op(OpKind.INSERT, table)]

    def fb_delete(self, tokens: list[_Token], sql: str) -> list[Operation]:
        index = _skip_words(tokens, 1, "LOW_PRIORITY", "QUICK", "IGNORE")
        refs: list[TableRef] = []
        if _word(tokens, index) == "FROM":
            index += 1
        for part in _split_top_level(tokens[index:]):
            ref, _ = _read_name(part, _skip_words(part, 0, "ONLY"))
            if ref is not None:
                refs.append(ref)
            if any(token.up in ("FROM", "USING", "WHERE") for token in part):
                break
        has_where = _has_top_level_word(tokens, "WHERE")
        return [self.op(OpKind.DELETE, ref, has_where=has_where) for ref in refs] or [
            self.op(OpKind.DELETE, None, has_where=has_where)
        ]

    def fb_update(self, tokens: list[_Token], sql: str) -> list[Operation]:
        index = _skip_words(
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
        table, _ = _read_name(tokens, index)
        return [self.op(OpKind.UPDATE, table, has_where=_has_top_level_word(tokens, "WHERE"))]


# --------------------------------------------------------------------------- small helpers

_NO_OP_NODES: tuple[type, ...] = tuple(
    cls
    for cls in (
        getattr(exp, name, None)
        for name in (
            "Set",
            "Use",
            "Transaction",
            "Commit",
            "Rollback",
            "Pragma",
            "Show",
            "Describe",
            "Kill",
            "Grant",
            "Revoke",
            "Attach",
            "Detach",
            "Analyze",
            "Cache",
            "Uncache",
            "Refresh",
            "Semicolon",
        )
    )
    if isinstance(cls, type)
)


def _parse_sql(family: str, sql: str) -> list[Any]:
    """``sqlglot.parse`` with the tokenizer and parser reused across statements."""
    cached = getattr(_thread_state, family or "default", None)
    if cached is None:
        dialect = _get_dialect(family)
        cached = (dialect.tokenizer(), dialect.parser())
        setattr(_thread_state, family or "default", cached)
    tokenizer, parser = cached
    return list(parser.parse(tokenizer.tokenize(sql), sql))


def _get_dialect(family: str) -> Any:
    dialect = _dialect_cache.get(family)
    if dialect is None:
        dialect = sqlglot.Dialect.get_or_raise(family or None)
        _dialect_cache[family] = dialect
    return dialect


def _skip_space(sql: str, position: int) -> int:
    match = _LEADING_JUNK.match(sql, position)
    return match.end() if match else position


def _command_text(command: Any) -> str:
    expression = command.args.get("expression")
    rest = expression.this if isinstance(expression, exp.Literal) else (expression or "")
    return f"{command.this} {rest}"


def _as_list(value: Any) -> list[Any]:
    if value is None or value is False:
        return []
    return list(value) if isinstance(value, list) else [value]


def _sources(table: Any) -> list[Any]:
    """A FROM item and the tables joined to it."""
    if table is None:
        return []
    return [table] + [join.this for join in table.args.get("joins") or ()]


def _alias_map(sources: Iterable[Any]) -> dict[str, TableRef]:
    aliases: dict[str, TableRef] = {}
    for source in sources:
        for item in _sources(source):
            ref = _table_ref(item)
            if ref is None:
                continue
            aliases.setdefault(ref.name.lower(), ref)
            alias = item.alias if isinstance(item, exp.Table) else ""
            if alias:
                aliases[alias.lower()] = ref
    return aliases


def _resolve(ref: TableRef | None, aliases: dict[str, TableRef]) -> TableRef | None:
    if ref is None or ref.schema:
        return ref
    return aliases.get(ref.name.lower(), ref)


def _unique(refs: Iterable[TableRef | None]) -> list[TableRef | None]:
    seen: list[TableRef | None] = []
    for ref in refs:
        if ref not in seen:
            seen.append(ref)
    return seen


def _names(tokens: Sequence[_Token]) -> tuple[str, ...]:
    return tuple(token.text for token in tokens if token.is_name)


def _has_top_level_word(tokens: Sequence[_Token], word: str) -> bool:
    depth = 0
    for token in tokens:
        if token.text == "(" and token.kind == "op":
            depth += 1
        elif token.text == ")" and token.kind == "op":
            depth = max(0, depth - 1)
        elif depth == 0 and token.up == word:
            return True
    return False


def _merge_partition_lists(actions: list[list[_Token]]) -> list[list[_Token]]:
    """``DROP PARTITION p1, p2``: the top-level commas separate partitions, not actions."""
    merged: list[list[_Token]] = []
    in_partition_list = False
    for action in actions:
        if (
            in_partition_list
            and len(action) == 1
            and action[0].is_name
            and action[0].up not in _ALTER_OPTION_WORDS
        ):
            merged[-1] = [*merged[-1], action[0]]
            continue
        in_partition_list = (
            len(action) >= 2
            and action[0].up in ("DROP", "TRUNCATE")
            and (action[1].up == "PARTITION")
        )
        merged.append(action)
    return merged
