"""Key generation, parsing, loading from the environment, and fingerprints."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migration_guard.backup.keys import (
    KEY_ENV,
    KEY_FILE_ENV,
    LEGACY_SCRYPT,
    PASSPHRASE_ENV,
    UserKey,
    archive_fingerprint,
    generate_key,
    load_user_key,
    new_scrypt_params,
    parse_key,
    passphrase_key,
)
from migration_guard.errors import EncryptionKeyError, UsageError

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def passphrase_user_key() -> UserKey:
    return passphrase_key(PASSPHRASE)


def _body(key_text: str) -> str:
    return key_text.removeprefix("mgk1:")


def test_generated_key_has_self_describing_form_and_32_random_bytes() -> None:
    text = generate_key()
    assert re.fullmatch(r"mgk1:[A-Za-z0-9_-]{43}", text)
    raw = base64.urlsafe_b64decode(_body(text) + "=")
    assert len(raw) == 32
    assert generate_key() != text


def test_parse_key_accepts_padding_and_surrounding_whitespace() -> None:
    text = generate_key()
    key = parse_key(text)
    assert key.kind == "key"
    assert parse_key(f"  {text}=\n").fingerprint == key.fingerprint


def test_fingerprint_is_stable_short_hex_and_differs_between_keys() -> None:
    text = generate_key()
    first, again = parse_key(text), parse_key(text)
    assert first.fingerprint == again.fingerprint
    assert re.fullmatch(r"[0-9a-f]{16}", first.fingerprint)
    assert parse_key(generate_key()).fingerprint != first.fingerprint
    assert first.fingerprint not in text
    assert first == again


def test_repr_and_str_never_show_key_material() -> None:
    text = generate_key()
    key = parse_key(text)
    raw = base64.urlsafe_b64decode(_body(text) + "=")
    for shown in (repr(key), str(key), key.describe(), f"{key!r}"):
        assert _body(text) not in shown
        assert raw.hex() not in shown
        assert key.fingerprint in shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mgk2:" + _body(generate_key()), "starts with 'mgk1:'"),
        (_body(generate_key()), "starts with 'mgk1:'"),
        ("mgk1:" + _body(generate_key())[:-4] + "!!!!", "not URL-safe base64"),
        ("mgk1:" + base64.urlsafe_b64encode(os.urandom(31)).decode(), "must hold 32 bytes"),
        ("mgk1:" + base64.urlsafe_b64encode(os.urandom(48)).decode(), "must hold 32 bytes"),
        ("mgk1:", "must hold 32 bytes"),
    ],
    # random keys must not end up in test ids: pytest-xdist workers must collect the same ids
    ids=["wrong-prefix", "no-prefix", "bad-base64", "31-bytes", "48-bytes", "empty"],
)
def test_bad_keys_are_refused_without_echoing_them(text: str, expected: str) -> None:
    with pytest.raises(EncryptionKeyError) as caught:
        parse_key(text)
    message = str(caught.value)
    assert expected in message
    assert "keygen" in message
    secret = _body(text).strip()
    if secret:
        assert secret not in message
    assert isinstance(caught.value, UsageError)


@given(
    prefix=st.sampled_from(["mgk1:", "mgk2:", "", "MGK1:", "mgk1: "]),
    secret=st.binary(min_size=12, max_size=64).map(
        lambda raw: base64.urlsafe_b64encode(raw).decode()
    ),
    damage=st.sampled_from(["", "!", "==", "$"]),
)
@settings(max_examples=200, deadline=None)
def test_parse_key_never_echoes_what_it_was_given(prefix: str, secret: str, damage: str) -> None:
    try:
        key = parse_key(prefix + secret + damage)
    except EncryptionKeyError as exc:
        assert secret not in str(exc)
        assert secret[:12] not in str(exc)
    else:
        assert secret not in repr(key)


def test_no_key_configured_is_none() -> None:
    assert load_user_key({}) is None
    assert load_user_key({"UNRELATED": "x"}) is None


def test_key_from_environment_variable() -> None:
    text = generate_key()
    key = load_user_key({KEY_ENV: text})
    assert key is not None
    assert key.fingerprint == parse_key(text).fingerprint
    assert key.source == KEY_ENV


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (KEY_ENV, KEY_FILE_ENV, PASSPHRASE_ENV):
        monkeypatch.delenv(name, raising=False)
    assert load_user_key() is None
    text = generate_key()
    monkeypatch.setenv(KEY_ENV, text)
    key = load_user_key()
    assert key is not None and key.fingerprint == parse_key(text).fingerprint


def test_more_than_one_source_is_refused_naming_them() -> None:
    with pytest.raises(EncryptionKeyError) as caught:
        load_user_key({KEY_ENV: generate_key(), PASSPHRASE_ENV: PASSPHRASE})
    message = str(caught.value)
    assert KEY_ENV in message and PASSPHRASE_ENV in message
    assert "unset" in message
    assert PASSPHRASE not in message


def test_set_but_empty_variable_is_an_error_not_silently_no_key() -> None:
    with pytest.raises(EncryptionKeyError, match="set but empty"):
        load_user_key({KEY_ENV: "  "})


def test_bad_key_in_environment_is_not_echoed() -> None:
    text = "mgk1:" + base64.urlsafe_b64encode(os.urandom(20)).decode()
    with pytest.raises(EncryptionKeyError) as caught:
        load_user_key({KEY_ENV: text})
    assert _body(text) not in str(caught.value)
    assert KEY_ENV in str(caught.value)


def _key_file(tmp_path: Path, content: str, mode: int) -> Path:
    path = tmp_path / "backup.key"
    path.write_text(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_key_file_with_private_mode_is_read(tmp_path: Path, mode: int) -> None:
    text = generate_key()
    path = _key_file(tmp_path, f"# backups of shop\n{text}\n\n", mode)
    key = load_user_key({KEY_FILE_ENV: str(path)})
    assert key is not None
    assert key.fingerprint == parse_key(text).fingerprint
    assert str(path) in key.source


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_readable_by_others_is_refused_with_chmod_fix(tmp_path: Path, mode: int) -> None:
    text = generate_key()
    path = _key_file(tmp_path, text, mode)
    with pytest.raises(EncryptionKeyError) as caught:
        load_user_key({KEY_FILE_ENV: str(path)})
    message = str(caught.value)
    assert str(path) in message
    assert f"chmod 600 {path}" in message
    assert _body(text) not in message


def test_missing_key_file_says_so_and_how_to_create_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.key"
    with pytest.raises(EncryptionKeyError) as caught:
        load_user_key({KEY_FILE_ENV: str(path)})
    message = str(caught.value)
    assert str(path) in message and "does not exist" in message
    assert "keygen" in message


def test_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EncryptionKeyError, match="not a regular file"):
        load_user_key({KEY_FILE_ENV: str(tmp_path)})


def test_key_file_with_bad_content_does_not_echo_it(tmp_path: Path) -> None:
    garbage = "mgk1:" + base64.urlsafe_b64encode(os.urandom(24)).decode()
    path = _key_file(tmp_path, garbage, 0o600)
    with pytest.raises(EncryptionKeyError) as caught:
        load_user_key({KEY_FILE_ENV: str(path)})
    assert _body(garbage) not in str(caught.value)
    assert str(path) in str(caught.value)


def test_key_file_with_two_keys_is_refused(tmp_path: Path) -> None:
    path = _key_file(tmp_path, f"{generate_key()}\n{generate_key()}\n", 0o600)
    with pytest.raises(EncryptionKeyError, match="exactly one key line"):
        load_user_key({KEY_FILE_ENV: str(path)})


def test_passphrase_has_no_passphrase_wide_fingerprint(passphrase_user_key: UserKey) -> None:
    key = load_user_key({PASSPHRASE_ENV: PASSPHRASE})
    assert key is not None
    assert key.kind == "passphrase"
    # A value derived from the passphrase alone would be one verifier for every installation.
    assert key.fingerprint == ""
    assert PASSPHRASE not in repr(key) and PASSPHRASE not in key.describe()
    assert key.source == PASSPHRASE_ENV and PASSPHRASE_ENV in key.describe()


def test_passphrase_fingerprint_is_per_archive_salt(passphrase_user_key: UserKey) -> None:
    one, two = new_scrypt_params(), new_scrypt_params()
    assert one.salt != two.salt and len(one.salt) >= 16
    assert one.n >= 2**17 and 128 * one.n * one.r <= 256 * 1024 * 1024
    first = archive_fingerprint(passphrase_user_key, one)
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert archive_fingerprint(passphrase_key(PASSPHRASE), one) == first, "not stable"
    assert archive_fingerprint(passphrase_user_key, two) != first, "not per archive"
    assert archive_fingerprint(passphrase_key(PASSPHRASE + "!"), one) != first


def test_old_archives_keep_their_fixed_salt_fingerprint(passphrase_user_key: UserKey) -> None:
    # What format version 1 wrote for this passphrase: scrypt(n=2**15, fixed salt).
    legacy = archive_fingerprint(passphrase_user_key, LEGACY_SCRYPT)
    assert legacy == archive_fingerprint(passphrase_key(PASSPHRASE), LEGACY_SCRYPT)
    assert LEGACY_SCRYPT.n == 2**15 and LEGACY_SCRYPT.salt == b"migration-guard passphrase v1"


def test_passphrase_is_unicode_normalised() -> None:
    composed = passphrase_key("Passwort für Ärzte")
    decomposed = passphrase_key("Passwort fu\u0308r A\u0308rzte")
    params = new_scrypt_params()
    assert archive_fingerprint(composed, params) == archive_fingerprint(decomposed, params)


def test_short_passphrase_is_refused_without_echo() -> None:
    short = "hunter2abc"
    with pytest.raises(EncryptionKeyError) as caught:
        load_user_key({PASSPHRASE_ENV: short})
    message = str(caught.value)
    assert "at least 12 characters" in message
    assert short not in message


def test_key_file_behind_a_symlink_is_refused(tmp_path: Path) -> None:
    text = generate_key()
    real = _key_file(tmp_path, text, 0o600)
    link = tmp_path / "link.key"
    link.symlink_to(real)
    with pytest.raises(EncryptionKeyError) as caught:
        load_user_key({KEY_FILE_ENV: str(link)})
    message = str(caught.value)
    assert "symbolic link" in message and str(link) in message
    assert _body(text) not in message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_key_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    text = generate_key()
    path = _key_file(tmp_path, text, 0o600)
    os.chown(path, 65534, -1)
    with pytest.raises(EncryptionKeyError) as caught:
        load_user_key({KEY_FILE_ENV: str(path)})
    message = str(caught.value)
    assert "owned by user id 65534" in message and "chown" in message
    assert _body(text) not in message
    os.chown(path, os.geteuid(), -1)
    key = load_user_key({KEY_FILE_ENV: str(path)})
    assert key is not None and key.fingerprint == parse_key(text).fingerprint
