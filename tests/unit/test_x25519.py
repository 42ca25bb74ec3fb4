"""Public-key recipients (X25519, age's keys): Bech32, key files, the archive's stanzas.

Written before the code, as attacks: a host with only the public key must not
read, a wrong identity or a damaged stanza must never give garbage, secrets
never reach a message.
"""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from migration_guard.backup import bech32
from migration_guard.backup.archive import format as archive_format
from migration_guard.backup.archive import open_reader, open_writer, read_header
from migration_guard.backup.keys import UserKey, generate_key, key_for, load_user_key, parse_key
from migration_guard.backup.x25519 import (
    Identity,
    generate_identity,
    identity_file_text,
    parse_identity,
    parse_recipient,
)
from migration_guard.cli import main
from migration_guard.errors import ArchiveError, EncryptionKeyError

# The age specification's example: the identity of 32 bytes 0x42 and its recipient.
SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
KEY_VARIABLES = (
    "MIGRATION_GUARD_KEY",
    "MIGRATION_GUARD_KEY_FILE",
    "MIGRATION_GUARD_PASSPHRASE",
    "MIGRATION_GUARD_RECIPIENTS",
    "MIGRATION_GUARD_RECIPIENTS_FILE",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def writer_key(*identities: Identity) -> UserKey:
    """What a backup host with only these identities' public keys loads."""
    text = ",".join(identity.recipient.text for identity in identities)
    key = load_user_key({"MIGRATION_GUARD_RECIPIENTS": text})
    assert key is not None
    return key


def reader_key(identity: Identity) -> UserKey:
    return parse_key(identity.text)


def seal(plain: bytes, key: UserKey, backup_id: str = "b-x") -> bytes:
    out = io.BytesIO()
    with open_writer(out, backup_id=backup_id, key=key, chunk_size=64 * 1024) as writer:
        writer.write(plain)
    return out.getvalue()


def read(data: bytes, key: UserKey | None) -> bytes:
    with open_reader(io.BytesIO(data), key=key) as reader:
        return reader.read()


def header_of(data: bytes) -> tuple[int, dict[str, Any]]:
    version, length = struct.unpack(">HI", data[8:14])
    return version, json.loads(data[14 : 14 + length])


# -- Bech32 ------------------------------------------------------------------------------------
BIP173_VALID = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]
BIP173_INVALID = [
    "\x20" + "1nwldj5",  # HRP character out of range
    "\x7f" + "1axkwrx",
    "pzry9x0s0muk",  # no separator
    "1pzry9x0s0muk",  # empty HRP
    "x1b4n0q5v",  # invalid data character
    "li1dgmt3",  # too short checksum
    "de1lg7wt\xff",  # invalid character in checksum
    "A1G7SGD8",  # checksum calculated with upper-case HRP
    "10a06t8",  # empty HRP
    "1qzzfhee",  # empty HRP
    "A12uEL5L",  # mixed case
]


@pytest.mark.parametrize("text", BIP173_VALID)
def test_bech32_accepts_the_bip173_valid_strings(text: str) -> None:
    hrp, _ = bech32.decode_words(text)
    assert hrp == text.lower()[: text.lower().rfind("1")]


@pytest.mark.parametrize("text", BIP173_INVALID)
def test_bech32_refuses_the_bip173_invalid_strings(text: str) -> None:
    with pytest.raises(bech32.Bech32Error):
        bech32.decode_words(text)


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=64),
    hrp=st.sampled_from(["age", "age-secret-key-", "x"]),
    upper=st.booleans(),
)
def test_bech32_round_trips(data: bytes, hrp: str, upper: bool) -> None:
    text = bech32.encode(hrp, data, upper=upper)
    assert bech32.decode(text) == (hrp, data)
    assert text == (text.upper() if upper else text.lower())


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=32, max_size=32), position=st.integers(min_value=4, max_value=61))
def test_bech32_detects_a_changed_character(data: bytes, position: int) -> None:
    text = bech32.encode("age", data)
    replacement = "q" if text[position] != "q" else "p"
    with pytest.raises(bech32.Bech32Error):
        bech32.decode(text[:position] + replacement + text[position + 1 :])


def test_age_specification_key_pair() -> None:
    identity = parse_identity(SPEC_IDENTITY)
    assert identity.text == SPEC_IDENTITY
    assert identity.recipient.text == SPEC_RECIPIENT
    assert parse_recipient(SPEC_RECIPIENT) == identity.recipient
    assert parse_identity(SPEC_IDENTITY.lower()).recipient == identity.recipient


@settings(max_examples=50, deadline=None)
@given(secret=st.binary(min_size=32, max_size=32))
def test_random_identities_round_trip_through_their_text(secret: bytes) -> None:
    identity = Identity.from_secret(secret)
    again = parse_identity(identity.text)
    assert again.recipient == identity.recipient
    assert parse_recipient(identity.recipient.text) == identity.recipient
    assert identity.text not in repr(identity) and identity.text not in str(again)


def test_damaged_keys_are_refused_without_repeating_them() -> None:
    broken = SPEC_IDENTITY[:-1] + ("Q" if SPEC_IDENTITY[-1] != "Q" else "P")
    with pytest.raises(EncryptionKeyError) as caught:
        parse_key(broken, source="MIGRATION_GUARD_KEY")
    assert "checksum" in str(caught.value) and broken not in str(caught.value)
    with pytest.raises(EncryptionKeyError, match="public key") as public:
        parse_key(SPEC_RECIPIENT, source="MIGRATION_GUARD_KEY")
    assert "MIGRATION_GUARD_RECIPIENTS" in str(public.value)
    with pytest.raises(EncryptionKeyError, match="private key") as private:
        load_user_key({"MIGRATION_GUARD_RECIPIENTS": SPEC_IDENTITY})
    assert SPEC_IDENTITY not in str(private.value)


def test_a_low_order_recipient_is_refused() -> None:
    zero = bech32.encode("age", bytes(32))  # X25519 with it is zero for every ephemeral key
    with pytest.raises(EncryptionKeyError, match="low-order"):
        parse_recipient(zero)


# -- loading from the environment ------------------------------------------------------------
def test_recipients_configure_a_public_key_only_host(tmp_path: Path) -> None:
    ops, dr = generate_identity(), generate_identity()
    key = load_user_key(
        {"MIGRATION_GUARD_RECIPIENTS": f"{ops.recipient.text}, {dr.recipient.text}\n"}
    )
    assert key is not None and key.kind == "x25519" and not key.can_decrypt
    assert key.recipients == (ops.recipient, dr.recipient)
    listed = tmp_path / "recipients"
    listed.write_text(f"# ops\n{ops.recipient.text}\n\n# disaster recovery\n{dr.recipient.text}\n")
    listed.chmod(0o644)  # public keys: readable by others is fine
    from_file = load_user_key({"MIGRATION_GUARD_RECIPIENTS_FILE": str(listed)})
    assert from_file is not None and from_file.recipients == key.recipients


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MIGRATION_GUARD_RECIPIENTS": ""}, "set but empty"),
        ({"MIGRATION_GUARD_RECIPIENTS": "# nothing"}, "no recipient"),
        ({"MIGRATION_GUARD_RECIPIENTS": "age1abc"}, "damaged"),
        (
            {"MIGRATION_GUARD_RECIPIENTS": SPEC_RECIPIENT, "MIGRATION_GUARD_RECIPIENTS_FILE": "x"},
            "only one recipient source",
        ),
        (
            {"MIGRATION_GUARD_RECIPIENTS": SPEC_RECIPIENT, "MIGRATION_GUARD_KEY": generate_key()},
            "do not combine",
        ),
        (
            {
                "MIGRATION_GUARD_RECIPIENTS": SPEC_RECIPIENT,
                "MIGRATION_GUARD_PASSPHRASE": "correct horse battery staple",
            },
            "do not combine",
        ),
    ],
)
def test_bad_recipient_configurations_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(EncryptionKeyError, match=message):
        load_user_key(env)


def test_identity_and_recipients_together_write_to_the_recipients_and_read_with_the_identity() -> (
    None
):
    mine, other = generate_identity(), generate_identity()
    key = load_user_key(
        {"MIGRATION_GUARD_KEY": mine.text, "MIGRATION_GUARD_RECIPIENTS": other.recipient.text}
    )
    assert key is not None and key.can_decrypt and key.recipients == (other.recipient,)
    alone = load_user_key({"MIGRATION_GUARD_KEY": mine.text})
    assert alone is not None and alone.recipients == (mine.recipient,)


def test_an_age_keygen_file_is_an_identity_file(tmp_path: Path) -> None:
    path = tmp_path / "key.txt"
    path.write_text(
        f"# created: 2024-01-02T03:04:05+01:00\n# public key: {SPEC_RECIPIENT}\n{SPEC_IDENTITY}\n"
    )
    path.chmod(0o600)
    key = load_user_key({"MIGRATION_GUARD_KEY_FILE": str(path)})
    assert key is not None and key.identity is not None
    assert key.identity.recipient.text == SPEC_RECIPIENT
    assert SPEC_IDENTITY not in repr(key) and SPEC_IDENTITY not in key.describe()
    assert load_user_key({"MIGRATION_GUARD_KEY": path.read_text()}) == key  # "$(cat key.txt)"
    ours = tmp_path / "ours.txt"
    ours.write_text(identity_file_text(parse_identity(SPEC_IDENTITY)))
    ours.chmod(0o600)
    assert load_user_key({"MIGRATION_GUARD_KEY_FILE": str(ours)}) == key


def test_identity_files_must_be_private_and_not_links(tmp_path: Path) -> None:
    path = tmp_path / "key.txt"
    path.write_text(identity_file_text(generate_identity()))
    path.chmod(0o644)
    with pytest.raises(EncryptionKeyError, match="accessible by group or others") as loose:
        load_user_key({"MIGRATION_GUARD_KEY_FILE": str(path)})
    assert "AGE-SECRET-KEY" not in str(loose.value)
    path.chmod(0o600)
    link = tmp_path / "link.txt"
    link.symlink_to(path)
    with pytest.raises(EncryptionKeyError, match="symbolic link"):
        load_user_key({"MIGRATION_GUARD_KEY_FILE": str(link)})


def test_recipients_files_must_not_be_writable_by_others_nor_links(tmp_path: Path) -> None:
    path = tmp_path / "recipients"
    path.write_text(SPEC_RECIPIENT + "\n")
    path.chmod(0o666)  # anyone could swap in their own key and read every later backup
    with pytest.raises(EncryptionKeyError, match="writable by group or others"):
        load_user_key({"MIGRATION_GUARD_RECIPIENTS_FILE": str(path)})
    path.chmod(0o644)
    link = tmp_path / "link"
    link.symlink_to(path)
    with pytest.raises(EncryptionKeyError, match="symbolic link"):
        load_user_key({"MIGRATION_GUARD_RECIPIENTS_FILE": str(link)})


# -- archives ----------------------------------------------------------------------------------
PLAIN = b"INSERT INTO t VALUES (1);\n" * 8000


def test_public_key_round_trip_and_the_writer_cannot_read() -> None:
    identity = generate_identity()
    data = seal(PLAIN, writer_key(identity))
    version, header = header_of(data)
    assert version == 3 and header["format_version"] == 3
    encryption = header["encryption"]
    assert encryption["key_kind"] == "x25519"
    assert encryption["key_fingerprint"] == identity.recipient.fingerprint
    (stanza,) = encryption["recipients"]
    assert stanza["type"] == "X25519" and stanza["fingerprint"] == identity.recipient.fingerprint
    assert read(data, reader_key(identity)) == PLAIN
    with pytest.raises(EncryptionKeyError) as caught:
        read(data, writer_key(identity))
    message = str(caught.value)
    assert identity.recipient.fingerprint in message and "private key" in message
    with pytest.raises(EncryptionKeyError, match="no key is configured"):
        read(data, None)


def test_every_recipient_reads_and_the_data_key_is_wrapped_per_recipient() -> None:
    ops, dr, third = generate_identity(), generate_identity(), generate_identity()
    data = seal(PLAIN, writer_key(ops, dr, third))
    _, header = header_of(data)
    shares = {stanza["share"] for stanza in header["encryption"]["recipients"]}
    assert len(shares) == 3  # a fresh ephemeral key per recipient
    for identity in (ops, dr, third):
        assert read(data, reader_key(identity)) == PLAIN


def test_wrong_identity_is_wrong_key_naming_the_fingerprints() -> None:
    right, wrong = generate_identity(), generate_identity()
    data = seal(PLAIN, writer_key(right))
    with pytest.raises(ArchiveError) as caught:
        read(data, reader_key(wrong))
    assert caught.value.reason == "wrong-key"
    message = str(caught.value)
    assert right.recipient.fingerprint in message and wrong.recipient.fingerprint in message
    assert wrong.text not in message and right.text not in message


def _rewrite_stanza(data: bytes, field: str, change: Any) -> bytes:
    version, header = header_of(data)
    (length,) = struct.unpack(">I", data[10:14])
    stanza = header["encryption"]["recipients"][0]
    stanza[field] = change(stanza[field])
    if field == "fingerprint":
        header["encryption"]["key_fingerprint"] = stanza[field]
    body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return data[:8] + struct.pack(">HI", version, len(body)) + body + data[14 + length :]


def _flip_b64(text: str) -> str:
    import base64

    raw = bytearray(base64.b64decode(text))
    raw[5] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("field", "change", "reasons"),
    [
        ("share", _flip_b64, {"corrupted"}),
        ("wrapped_key", _flip_b64, {"corrupted"}),
        ("fingerprint", lambda fp: fp[:-1] + ("0" if fp[-1] != "0" else "1"), {"corrupted"}),
    ],
)
def test_a_damaged_stanza_is_refused_never_garbage(
    field: str, change: Any, reasons: set[str]
) -> None:
    identity = generate_identity()
    data = _rewrite_stanza(seal(PLAIN, writer_key(identity)), field, change)
    with pytest.raises(ArchiveError) as caught:
        read(data, reader_key(identity))
    assert caught.value.reason in reasons


def test_any_flipped_header_byte_is_refused() -> None:
    identity = generate_identity()
    data = seal(PLAIN, writer_key(identity))
    (length,) = struct.unpack(">I", data[10:14])
    for offset in range(14, 14 + length, 7):
        damaged = bytearray(data)
        damaged[offset] ^= 0x04
        with pytest.raises((ArchiveError, EncryptionKeyError)):
            read(bytes(damaged), reader_key(identity))


def test_a_reader_of_versions_1_and_2_refuses_it_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    data = seal(PLAIN, writer_key(generate_identity()))
    monkeypatch.setattr(archive_format, "READABLE_VERSIONS", (1, 2))
    with pytest.raises(ArchiveError) as caught:
        read_header(io.BytesIO(data))
    assert caught.value.reason == "unsupported-version"


def test_x25519_in_an_old_version_header_is_damage() -> None:
    data = seal(PLAIN, writer_key(generate_identity()))
    _, header = header_of(data)
    (length,) = struct.unpack(">I", data[10:14])
    header["format_version"] = 1
    body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    downgraded = data[:8] + struct.pack(">HI", 1, len(body)) + body + data[14 + length :]
    with pytest.raises(ArchiveError, match="key kind 'x25519' in a format version 1") as caught:
        read_header(io.BytesIO(downgraded))
    assert caught.value.reason == "corrupted"


def test_key_for_names_the_key_a_public_only_host_lacks(clean_env: pytest.MonkeyPatch) -> None:
    identity, other = generate_identity(), generate_identity()
    fingerprint = identity.recipient.fingerprint
    clean_env.setenv("MIGRATION_GUARD_RECIPIENTS", identity.recipient.text)
    with pytest.raises(EncryptionKeyError) as public:
        key_for(fingerprint, "backup b1")
    assert fingerprint in str(public.value) and "only public keys" in str(public.value)
    clean_env.delenv("MIGRATION_GUARD_RECIPIENTS")
    clean_env.setenv("MIGRATION_GUARD_KEY", other.text)
    with pytest.raises(EncryptionKeyError, match="wrong key") as wrong:
        key_for(fingerprint, "backup b1")
    assert fingerprint in str(wrong.value) and other.recipient.fingerprint in str(wrong.value)
    assert other.text not in str(wrong.value)
    clean_env.setenv("MIGRATION_GUARD_KEY", identity.text)
    assert key_for(fingerprint, "backup b1") is not None


# -- keygen --x25519 ---------------------------------------------------------------------------
def test_keygen_x25519_writes_a_private_age_keygen_file(tmp_path: Path) -> None:
    target = tmp_path / "identity.txt"
    result = CliRunner().invoke(main, ["keygen", "--x25519", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert (target.stat().st_mode & 0o777) == 0o600
    lines = target.read_text().splitlines()
    assert lines[0].startswith("# created: ") and lines[1].startswith("# public key: age1")
    identity = parse_identity(lines[2])
    assert lines[1] == f"# public key: {identity.recipient.text}"
    assert result.stdout.strip() == identity.recipient.text
    assert lines[2] not in result.output
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    again = CliRunner().invoke(main, ["keygen", "--x25519", "-o", str(target)])
    assert again.exit_code == 2 and "exists" in again.output
    assert target.read_text().splitlines()[2] == lines[2]


def test_keygen_x25519_never_writes_through_a_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    link = tmp_path / "identity.txt"
    link.symlink_to(elsewhere)
    result = CliRunner().invoke(main, ["keygen", "--x25519", "-o", str(link)])
    assert result.exit_code == 2 and not elsewhere.exists()


def test_keygen_x25519_to_stdout_is_an_identity(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["keygen", "--x25519"])
    assert result.exit_code == 0
    secret = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    assert parse_identity(secret[0]).recipient.text in result.stderr
    assert CliRunner().invoke(main, ["keygen", "-o", str(tmp_path / "k")]).exit_code == 2
    assert os.listdir(tmp_path) == []
