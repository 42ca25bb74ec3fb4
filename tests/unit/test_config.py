from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migration_guard.config import (
    Config,
    ProtectedTables,
    load_config,
    normalise_dialect,
)
from migration_guard.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIGRATION_GUARD_CONFIG", raising=False)
    config = load_config()
    assert config == Config()
    assert config.protected.protects_everything


def test_reads_pyproject_in_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIGRATION_GUARD_CONFIG", raising=False)
    write(
        tmp_path / "pyproject.toml",
        '[tool.migration_guard]\nprotected_tables = ["users", "billing.*"]\ndialect = "MariaDB"\n',
    )
    config = load_config()
    assert config.protected_tables == ("users", "billing.*")
    assert config.dialect == "mariadb"
    assert config.source == "pyproject.toml"


def test_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "guard.toml", '[tool.migration_guard]\nprotected_tables = "x"\n')
    monkeypatch.setenv("MIGRATION_GUARD_CONFIG", str(path))
    assert load_config().protected_tables == ("x",)


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.toml", "[tool.migration_guard\nx=")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_unknown_key_lists_known_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[tool.migration_guard]\nprotected_tabels = []\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "protected_tabels" in message
    assert "protected_tables" in message
    assert info.value.key == "protected_tabels"


def test_wrong_type_is_explained(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[tool.migration_guard]\nprotected_tables = 3\n")
    with pytest.raises(ConfigError, match="list of strings"):
        load_config(path)


def test_sections_are_kept_for_their_owners(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[tool.migration_guard.backup]\nkeep_days = 7\n")
    assert load_config(path).sections["backup"] == {"keep_days": 7}


def test_unknown_dialect() -> None:
    with pytest.raises(ConfigError, match="known dialects: mysql, mariadb, postgresql, sqlite"):
        normalise_dialect("oracle")
    assert normalise_dialect("postgres") == "postgresql"


@pytest.mark.parametrize(
    ("patterns", "name", "schema", "expected"),
    [
        ((), "anything", None, True),
        (("users",), "USERS", None, True),
        (("users",), "users", "app", True),
        (("users",), "orders", None, False),
        (("users",), "alembic_version", None, True),
        (("app.*",), "orders", "app", True),
        (("app.*",), "orders", "other", False),
        (("app.*",), "orders", None, False),
        (("cust*",), "customers", None, True),
    ],
)
def test_protected_tables(
    patterns: tuple[str, ...], name: str, schema: str | None, expected: bool
) -> None:
    assert ProtectedTables(patterns).is_protected(name, schema) is expected


def _protected_one_glob_at_a_time(tables: ProtectedTables, name: str, schema: str | None) -> bool:
    """The definition: fnmatch each lower-cased glob in turn."""
    if not tables.patterns or name.lower() == tables.version_table.lower():
        return True
    schema = schema or tables.default_schema
    for pattern in (glob.lower() for glob in tables.patterns):
        if "." in pattern:
            if schema and fnmatch.fnmatchcase(f"{schema.lower()}.{name.lower()}", pattern):
                return True
        elif fnmatch.fnmatchcase(name.lower(), pattern):
            return True
    return False


_GLOB = st.text(st.sampled_from("aAbB_.*?[]!-é"), max_size=6)
_NAME = st.text(st.sampled_from("aAbB_.-é\n"), max_size=6)


@given(
    st.lists(_GLOB, max_size=4),
    _NAME,
    st.none() | _NAME,
    st.none() | _NAME,
)
def test_protected_tables_match_the_globs_one_at_a_time(
    patterns: list[str], name: str, schema: str | None, default_schema: str | None
) -> None:
    # is_protected compiles the globs into one pattern per kind: same answers.
    tables = ProtectedTables(tuple(patterns), default_schema=default_schema)
    expected = _protected_one_glob_at_a_time(tables, name, schema)
    assert tables.is_protected(name, schema) is expected


def test_offsite_from_the_file_and_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIGRATION_GUARD_OFFSITE", raising=False)
    path = write(
        tmp_path / "guard.toml",
        '[tool.migration_guard]\noffsite = ["s3://bucket/prod", "file:///srv/copies"]\n',
    )
    assert load_config(path).offsite == ("s3://bucket/prod", "file:///srv/copies")
    monkeypatch.setenv("MIGRATION_GUARD_OFFSITE", " s3://other/p , /mnt/nas ,")
    assert load_config(path).offsite == ("s3://other/p", "/mnt/nas")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('offsite = "bucket/prefix"', "is not a location"),
        ('offsite = ["s3://AKIA:hunter2secret@bucket/p"]', "must not carry credentials"),
        ("offsite = [1]", "must be a list of strings"),
    ],
)
def test_bad_offsite_locations_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.delenv("MIGRATION_GUARD_OFFSITE", raising=False)
    path = write(tmp_path / "guard.toml", f"[tool.migration_guard]\n{value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert problem in str(caught.value)
    assert "hunter2secret" not in str(caught.value)


def test_a_default_pyproject_without_the_table_is_not_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another tool's broken section is not ours to judge; ours, when present, is.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIGRATION_GUARD_CONFIG", raising=False)
    write(tmp_path / "pyproject.toml", "[tool.black\nline-length = ")
    assert load_config().protected_tables == ()
    write(tmp_path / "pyproject.toml", "[tool.black\n[tool.migration_guard]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config()
    write(tmp_path / "pyproject.toml", '[tool]\nmigration_guard = { dialect = "sqlite" }\n')
    assert load_config().dialect == "sqlite"
    # A file named explicitly is always parsed.
    write(tmp_path / "other.toml", "[tool.black\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "other.toml")


@pytest.mark.parametrize(("text", "days"), [("30", 30), ('"7"', 7), ("0", None)])
def test_offsite_lock_days_is_a_whole_number_of_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, days: int | None
) -> None:
    monkeypatch.delenv("MIGRATION_GUARD_OFFSITE_LOCK_DAYS", raising=False)
    path = write(tmp_path / "c.toml", f"[tool.migration_guard]\noffsite_lock_days = {text}\n")
    assert load_config(path).offsite_lock_days == days


@pytest.mark.parametrize("text", ["-1", "true", "1.5", '"thirty"'])
def test_bad_offsite_lock_days_name_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.delenv("MIGRATION_GUARD_OFFSITE_LOCK_DAYS", raising=False)
    path = write(tmp_path / "c.toml", f"[tool.migration_guard]\noffsite_lock_days = {text}\n")
    with pytest.raises(ConfigError, match="offsite_lock_days must be a whole number of days"):
        load_config(path)


def test_a_backup_dir_in_s3_is_the_first_offsite_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_guard.backup.catalog import remote_backup_dir, resolve_backup_dir

    for name in ("MIGRATION_GUARD_BACKUP_DIR", "MIGRATION_GUARD_OFFSITE"):
        monkeypatch.delenv(name, raising=False)
    path = write(
        tmp_path / "pyproject.toml",
        '[tool.migration_guard]\nbackup_dir = "s3://bucket/prod"\n'
        'offsite = ["file:///mnt/nas", "s3://bucket/prod"]\n',
    )
    config = load_config(path)
    assert config.offsite == ("s3://bucket/prod", "file:///mnt/nas")
    assert remote_backup_dir(config) == "s3://bucket/prod"
    cache = resolve_backup_dir(config)
    assert cache.parent == tmp_path / ".migration-guard" / "cache"
    assert cache.name.startswith("s3-bucket-")


def test_credentials_in_a_backup_dir_url_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", "s3://AKIAX:topsecret@bucket/p")
    with pytest.raises(ConfigError, match="must not carry credentials") as refused:
        load_config(write(tmp_path / "c.toml", "[tool.migration_guard]\n"))
    assert "topsecret" not in str(refused.value)
