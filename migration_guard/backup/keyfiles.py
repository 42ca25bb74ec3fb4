"""Files that hold keys or recipients: opened so that nobody else can swap them."""

from __future__ import annotations

import errno
import os
import stat

from migration_guard.errors import EncryptionKeyError

# A key file holds a few short lines (age-keygen: two comments and the key);
# anything bigger is not a key file.
MAX_KEY_FILE_BYTES = 4096


def read_guarded_file(path: str, variable: str, *, private: bool) -> str:
    """The text of a small regular file named by ``variable`` that nobody else can swap.

    Opened without following a symbolic link (``O_NOFOLLOW``: a link could be
    re-pointed later). Refused, as ssh refuses a private key, when another user
    owns it (root may own a file of public keys) or group or others may write
    it; a ``private`` file (a key) may not be readable by them either.
    """
    display = path
    expanded = os.path.expanduser(path)
    what = "key file" if private else "recipients file"
    try:
        # O_NONBLOCK: opening a FIFO someone put in place of the file must not hang.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(expanded, flags | os.O_CLOEXEC)
    except FileNotFoundError:
        create = (
            f"`(umask 077; migration-guard keygen > {display})`"
            if private
            else "`migration-guard keygen --x25519 -o KEYFILE` (it prints the public key)"
        )
        raise EncryptionKeyError(
            f"{what} {display} (from {variable}) does not exist; create it with {create} "
            f"or point {variable} at the right file"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(expanded):
            raise EncryptionKeyError(
                f"{what} {display} (from {variable}) is a symbolic link, which is not "
                f"followed; point {variable} at the file itself (`realpath {display}`)"
            ) from None
        raise EncryptionKeyError(
            f"{what} {display} (from {variable}) cannot be opened: {exc.strerror or exc}"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise EncryptionKeyError(
                f"{what} {display} (from {variable}) is not a regular file; "
                "point it at a file that holds the key"
            )
        owner = getattr(os, "geteuid", None)
        me = owner() if owner is not None else None
        if me is not None and info.st_uid not in ((me,) if private else (me, 0)):
            raise EncryptionKeyError(
                f"{what} {display} is owned by user id {info.st_uid}, not by the user "
                f"running migration-guard (id {me}); another user could replace the "
                f"key. Make it yours: `chown $(id -u) {display}` (or copy it) and "
                f"`chmod {600 if private else 644} {display}`"
            )
        loose = stat.S_IMODE(info.st_mode) & (0o077 if private else 0o022)
        if loose and os.name != "nt":
            access = "accessible" if private else "writable"
            raise EncryptionKeyError(
                f"{what} {display} is {access} by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); restrict it with "
                f"`chmod {600 if private else 644} {display}`"
            )
        if info.st_size > MAX_KEY_FILE_BYTES:
            raise EncryptionKeyError(
                f"{what} {display} is {info.st_size} bytes, too large to be a {what}"
            )
        content = os.read(fd, MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise EncryptionKeyError(f"{what} {display} is not text") from None
