"""The token fallback for ``ALTER TABLE``, which sqlglot often gives up on.

MySQL's ``CONVERT TO CHARACTER SET``, ``DROP/TRUNCATE PARTITION``, ``ALTER
IGNORE`` and many PostgreSQL forms come back from sqlglot as ``Command`` or a
``ParseError``. Each comma-separated action is read here by its first word
(:data:`_ACTIONS`); an action that is not understood is ``UNANALYZABLE``.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from migration_guard.analysis.model import ColumnDef, ColumnType, Operation, OpKind, TableRef
from migration_guard.analysis.parse.ast_nodes import column_def, column_type, get_dialect
from migration_guard.analysis.parse.base import ParserBase
from migration_guard.analysis.tokens import (
    Token,
    guess_table,
    read_name,
    skip_words,
    split_top_level,
    token_names,
    word_at,
    words_at,
)

ALTER_OPTION_WORDS = frozenset(
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


class AlterFallback(ParserBase):
    def fb_alter(self, tokens: list[Token], sql: str) -> list[Operation]:
        index = skip_words(tokens, 1, "ONLINE", "OFFLINE", "IGNORE")
        what = word_at(tokens, index)
        if what != "TABLE":
            if what in ("DATABASE", "SCHEMA"):
                name, _ = read_name(tokens, index + 1)
                return [self.op(OpKind.OTHER_DDL, TableRef(name.name) if name else None)]
            if what or tokens[index:]:
                return [self.op(OpKind.OTHER_DDL)]
            return self.unanalyzable("incomplete ALTER statement")
        index += 1
        if_exists = words_at(tokens, index, "IF", "EXISTS")
        if if_exists:
            index += 2
        index = skip_words(tokens, index, "ONLY")
        table, index = read_name(tokens, index)
        if table is None:
            return self.unanalyzable(
                "ALTER TABLE without a recognisable table", guess_table(tokens, self.family)
            )
        if index < len(tokens) and tokens[index].text == "*":
            index += 1
        actions = _merge_partition_lists(split_top_level(tokens[index:]))
        operations: list[Operation] = []
        for action in actions:
            if action:
                operations.extend(self.fb_alter_action(table, action, sql))
        return operations or [self.op(OpKind.OTHER_DDL, table)]

    def fb_alter_action(self, table: TableRef, action: list[Token], sql: str) -> list[Operation]:
        verb = action[0].up
        handler = _ACTIONS.get(verb)
        operations = handler(self, table, action, sql) if handler is not None else None
        if operations is not None:
            return operations
        if (handler is None and verb in ALTER_OPTION_WORDS) or verb == "SET":
            return [self.op(OpKind.OTHER_DDL, table)]
        shown = " ".join(token.text for token in action[:3])
        return self.unanalyzable(f"unrecognised ALTER TABLE action {shown!r}", table)

    # Each action handler returns None when the action is not of the shape it
    # knows: the action is then reported as unrecognised.

    def action_drop(self, table: TableRef, action: list[Token], sql: str) -> list[Operation] | None:
        index = 1
        if word_at(action, index) == "PARTITION":
            return [self.op(OpKind.DROP_PARTITION, table, partitions=token_names(action[2:]))]
        if word_at(action, index) in _NON_COLUMN_DROPS or word_at(action, index) == "DEFAULT":
            return [self.op(OpKind.OTHER_DDL, table)]
        index = skip_words(action, index, "COLUMN")
        if_exists = words_at(action, index, "IF", "EXISTS")
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
        return None

    def action_truncate(
        self, table: TableRef, action: list[Token], sql: str
    ) -> list[Operation] | None:
        if word_at(action, 1) == "PARTITION":
            return [self.op(OpKind.TRUNCATE_PARTITION, table, partitions=token_names(action[2:]))]
        return None

    def action_change(
        self, table: TableRef, action: list[Token], sql: str
    ) -> list[Operation] | None:
        """MySQL ``CHANGE old new type`` and ``MODIFY name type``."""
        index = skip_words(action, 1, "COLUMN")
        if words_at(action, index, "IF", "EXISTS"):
            index += 2
        if index < len(action) and action[index].is_name:
            old_name = action[index].text
            definition = action[index:] if action[0].up == "MODIFY" else action[index + 1 :]
            if definition and definition[0].is_name:
                column = self.column_from_tokens(definition, sql)
                return self.changed_column(table, old_name, column)
        return None

    def action_add(self, table: TableRef, action: list[Token], sql: str) -> list[Operation] | None:
        index = skip_words(action, 1, "COLUMN")
        if words_at(action, index, "IF", "NOT", "EXISTS"):
            index += 3
        if word_at(action, index) in _NON_COLUMN_ADDS:
            return [self.op(OpKind.OTHER_DDL, table)]
        if index < len(action) and action[index].text == "(":
            inner = action[index + 1 : -1] if action[-1].text == ")" else action[index + 1 :]
            definitions = [part for part in split_top_level(inner) if part]
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

    def action_alter_column(
        self, table: TableRef, action: list[Token], sql: str
    ) -> list[Operation] | None:
        index = skip_words(action, 1, "COLUMN")
        if word_at(action, index) in ("INDEX", "KEY", "CONSTRAINT", "CHECK"):
            return [self.op(OpKind.OTHER_DDL, table)]
        if index >= len(action) or not action[index].is_name:
            return None
        column_name = action[index].text
        index += 1
        if words_at(action, index, "SET", "DATA", "TYPE"):
            index += 3
        elif word_at(action, index) == "TYPE":
            index += 1
        else:
            return [self.op(OpKind.OTHER_DDL, table, column=column_name)]
        end = index
        while end < len(action) and action[end].up not in ("USING", "COLLATE"):
            end += 1
        new_type = self.type_from_tokens(action[index:end], sql)
        return [self.op(OpKind.ALTER_COLUMN_TYPE, table, column=column_name, new_type=new_type)]

    def action_rename(
        self, table: TableRef, action: list[Token], sql: str
    ) -> list[Operation] | None:
        word = word_at(action, 1)
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
            return None
        new, _ = read_name(action, skip_words(action, 1, "TO", "AS"))
        if new is not None:
            return [self.op(OpKind.RENAME_TABLE, table, new_name=new.qualified)]
        return None

    def action_engine(
        self, table: TableRef, action: list[Token], sql: str
    ) -> list[Operation] | None:
        index = 2 if len(action) > 1 and action[1].text == "=" else 1
        if index < len(action):
            return [self.op(OpKind.CHANGE_ENGINE, table, value=action[index].text)]
        return None

    def action_convert(
        self, table: TableRef, action: list[Token], sql: str
    ) -> list[Operation] | None:
        index = skip_words(action, 1, "TO")
        if words_at(action, index, "CHARACTER", "SET"):
            index += 2
        elif word_at(action, index) == "CHARSET":
            index += 1
        else:
            return None
        if index < len(action) and action[index].text == "=":
            index += 1
        if index < len(action):
            return [self.op(OpKind.CONVERT_CHARSET, table, value=action[index].text)]
        return None

    def action_set(self, table: TableRef, action: list[Token], sql: str) -> list[Operation] | None:
        if word_at(action, 1) == "SCHEMA" and len(action) > 2:
            new_name = TableRef(name=table.name, schema=action[2].text).qualified
            return [self.op(OpKind.RENAME_TABLE, table, new_name=new_name)]
        return None

    def action_tablespace(
        self, table: TableRef, action: list[Token], sql: str
    ) -> list[Operation] | None:
        """``DISCARD``/``IMPORT TABLESPACE``."""
        if word_at(action, 1) in ("TABLESPACE", "PARTITION"):
            return self.unanalyzable(
                f"{action[0].up} TABLESPACE replaces or removes the table's data file", table
            )
        return None

    def column_from_tokens(self, definition: list[Token], sql: str) -> ColumnDef:
        """A column definition, parsed by sqlglot when it can, else by hand."""
        text = sql[definition[0].start : definition[-1].end]
        try:
            parsed = get_dialect(self.family).parse_one(f"ALTER TABLE _mg ADD COLUMN {text}")
            actions = parsed.args.get("actions") or []
            if isinstance(parsed, exp.Alter) and actions and isinstance(actions[0], exp.ColumnDef):
                column = column_def(actions[0], self.family)
                return ColumnDef(
                    name=definition[0].text, type=column.type, nullable=column.nullable
                )
        except Exception:  # fall through to the hand parse
            pass
        return ColumnDef(name=definition[0].text, type=self.type_from_tokens(definition[1:], sql))

    def type_from_tokens(self, tokens: list[Token], sql: str) -> ColumnType | None:
        if not tokens or not tokens[0].is_name:
            return None
        text = sql[tokens[0].start : tokens[-1].end]
        try:
            return column_type(exp.DataType.build(text, dialect=self.family or None), self.family)
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


def _merge_partition_lists(actions: list[list[Token]]) -> list[list[Token]]:
    """``DROP PARTITION p1, p2``: the top-level commas separate partitions, not actions."""
    merged: list[list[Token]] = []
    in_partition_list = False
    for action in actions:
        if (
            in_partition_list
            and len(action) == 1
            and action[0].is_name
            and action[0].up not in ALTER_OPTION_WORDS
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


_ActionHandler = Callable[[AlterFallback, TableRef, list[Token], str], "list[Operation] | None"]
#: First word of an ``ALTER TABLE`` action -> its handler.
_ACTIONS: dict[str, _ActionHandler] = {
    "DROP": AlterFallback.action_drop,
    "TRUNCATE": AlterFallback.action_truncate,
    "CHANGE": AlterFallback.action_change,
    "MODIFY": AlterFallback.action_change,
    "ADD": AlterFallback.action_add,
    "ALTER": AlterFallback.action_alter_column,
    "RENAME": AlterFallback.action_rename,
    "ENGINE": AlterFallback.action_engine,
    "CONVERT": AlterFallback.action_convert,
    "SET": AlterFallback.action_set,
    "DISCARD": AlterFallback.action_tablespace,
    "IMPORT": AlterFallback.action_tablespace,
}
