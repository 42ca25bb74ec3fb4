"""The MariaDB/MySQL client programs: finding them, giving them credentials, running them.

Credentials reach the client tools only through a 0600 ``--defaults-extra-file``
in a private 0700 directory that is removed afterwards; the password is never
in argv, and a child's environment holds only allow-listed variables
(:func:`child_environment`), so no key, passphrase or URL reaches it. A tool
that fails becomes a clear error (:func:`tool_error`), its stderr cleaned of
secrets.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from migration_guard.backup.backends.base import (
    ByteCounter,
    Sink,
    read_chunks,
    write_chunks,
)
from migration_guard.backup.backends.dumpscan import DumpScanner, scanned
from migration_guard.backup.backends.mysql_stream import (
    RESTORE_EPILOGUE,
    RESTORE_PROLOGUE,
)
from migration_guard.backup.scratch import scratch_directory
from migration_guard.dialects.base import safe_url_text
from migration_guard.errors import (
    BackupError,
    DatabaseUnavailableError,
    ToolMissingError,
    redact_values,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from migration_guard.urls import PlainURL

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


DUMP_TOOLS = ("mariadb-dump", "mysqldump")
CLIENT_TOOLS = ("mariadb", "mysql")
INSTALL_HINT = (
    "install the MariaDB/MySQL client tools (Debian/Ubuntu: apt-get install mariadb-client; "
    "Fedora/RHEL: dnf install mariadb; macOS: brew install mariadb) "
    "or use the pure-Python backend with --backend native"
)


#: Client error codes and texts that mean "wrong credentials or no server".
_UNAVAILABLE_PATTERNS = re.compile(
    r"Access denied|\b(1044|1045|1049|2002|2003|2005|2006|2013)\b|Can't connect|"
    r"Unknown (MySQL server host|database)|Lost connection",
    re.IGNORECASE,
)
_STDERR_LIMIT = 64 * 1024


def find_tool(candidates: Sequence[str], purpose: str) -> str:
    """The path of the first of ``candidates`` on ``PATH``; :class:`ToolMissingError` if none."""
    for candidate in candidates:
        path = shutil.which(candidate)
        if path:
            return path
    raise ToolMissingError(
        f"{' or '.join(candidates)} is needed to {purpose} but is not installed; {INSTALL_HINT}"
    )


def _option_value(value: str) -> str:
    """``value`` quoted for a MySQL option file (backslash escapes inside double quotes)."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def _query_value(url: URL | PlainURL, key: str) -> str | None:
    value = url.query.get(key)
    if isinstance(value, tuple):
        return value[-1] if value else None
    return value


def defaults_file_text(url: URL | PlainURL) -> str:
    """The ``[client]`` option-file section carrying ``url``'s connection settings."""
    lines = ["[client]"]
    if url.username:
        lines.append(f"user={_option_value(url.username)}")
    if url.password is not None:
        lines.append(f"password={_option_value(str(url.password))}")
    socket = _query_value(url, "unix_socket")
    if socket:
        lines.append(f"socket={_option_value(socket)}")
    if url.host:
        lines.append(f"host={_option_value(url.host)}")
        lines.append("protocol=TCP")
    if url.port:
        lines.append(f"port={int(url.port)}")
    for url_key, option in (
        ("ssl_ca", "ssl-ca"),
        ("ssl_cert", "ssl-cert"),
        ("ssl_key", "ssl-key"),
    ):
        value = _query_value(url, url_key)
        if value:
            lines.append(f"{option}={_option_value(value)}")
    lines.append("default-character-set=utf8mb4")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def client_defaults_file(url: URL) -> Iterator[Path]:
    """A 0600 option file in a private 0700 directory, removed on exit whatever happens.

    After a SIGKILL the next backup or restore removes it (:mod:`..scratch`).
    """
    with scratch_directory("client") as directory:
        path = directory / "client.cnf"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(defaults_file_text(url))
        yield path


#: The variables a client tool may see: where programs and libraries are, the
#: user's home (for ``~/.my.cnf``), locale, time zone and temporary directory.
#: Everything else stays behind: our keys, passphrases and URLs with passwords,
#: ``MYSQL_PWD``, cloud credentials, whatever the caller's environment holds.
CHILD_ENV_ALLOWED = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TMP",
        "TEMP",
        "LD_LIBRARY_PATH",
        "SYSTEMROOT",
        "WINDIR",
        "PATHEXT",
        "COMSPEC",
    }
)
CHILD_ENV_ALLOWED_PREFIXES = ("LC_",)


def child_environment(
    environ: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment every child process gets: the allow-listed variables only.

    Every process migration-guard starts (dump and client tools, ``stdbuf``,
    ``--version`` probes) gets this, never the inherited environment. ``extra``
    adds the variables a tool needs and that carry no secret themselves (the
    path of pg_dump's ``PGPASSFILE``, never a password).
    """
    source = os.environ if environ is None else environ
    allowed = {
        name: value
        for name, value in source.items()
        if name in CHILD_ENV_ALLOWED or name.startswith(CHILD_ENV_ALLOWED_PREFIXES)
    }
    return {**allowed, **(extra or {})}


class _StderrCollector(threading.Thread):
    """Drains a child's stderr (so it never blocks) and keeps its first 64 KiB."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.data = bytearray()

    def run(self) -> None:
        for chunk in iter(lambda: self.stream.read(8192), b""):
            if len(self.data) < _STDERR_LIMIT:
                self.data += chunk[: _STDERR_LIMIT - len(self.data)]

    def text(self, url: URL | PlainURL) -> str:
        message = self.data.decode("utf-8", "replace").strip()
        if url.password:
            message = message.replace(str(url.password), "***")
        return message


def _error_lines(stderr: str) -> list[str]:
    """The client's own error lines: what it echoes around them may be row data, whose
    numbers must not read as error codes (``2003`` in a row is not "can't connect")."""
    return [
        line[:500]
        for line in stderr.splitlines()
        if line.startswith("ERROR") or "Got error" in line or ": error:" in line.lower()
    ]


def tool_error(
    tool: str, action: str, url: URL | PlainURL, returncode: int, stderr: str
) -> Exception:
    errors = _error_lines(stderr)
    detail = "\n".join(errors[:5]) if errors else (stderr[:2000] or f"exit status {returncode}")
    # The client quotes rows in its errors (``Duplicate entry 'alice@example.com'``).
    detail = redact_values(detail)
    if any(_UNAVAILABLE_PATTERNS.search(line) for line in errors or stderr.splitlines()[:3]):
        return DatabaseUnavailableError(
            f"{Path(tool).name} cannot {action} {safe_url_text(url)}: {detail}. "
            "Check that the server is running and reachable and that the user, password "
            "and database name are right."
        )
    return BackupError(f"{Path(tool).name} failed to {action} {safe_url_text(url)}: {detail}")


@functools.lru_cache(maxsize=8)
def tool_version(tool: str) -> str:
    """The first line ``tool --version`` prints (empty when it cannot run)."""
    try:
        output = subprocess.run(
            [tool, "--version"],
            capture_output=True,
            check=False,
            timeout=30,
            env=child_environment(),
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = output.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else ""


def is_oracle_mysqldump(tool: str) -> bool:
    version = tool_version(tool)
    return bool(version) and "MariaDB" not in version


def oracle_options(tool: str) -> list[str]:
    if not is_oracle_mysqldump(tool):
        return []
    # GTID_PURGED would fail a restore into a server with its own GTIDs;
    # column statistics do not exist on MariaDB servers.
    return ["--set-gtid-purged=OFF", "--column-statistics=0"]


@contextlib.contextmanager
def tool_process(
    command: list[str],
    url: URL | PlainURL,
    action: str,
    *,
    stdin: int,
    stdout: int,
    output_buffer: bool = False,
    input_buffer: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running with stderr collected; killed if the body raises.

    After the body the process is waited for; a non-zero exit becomes the error
    :func:`tool_error` makes of it (``action``: "back up", "restore into").
    ``output_buffer`` gives the tool a large stdout buffer (:func:`with_output_buffer`),
    ``input_buffer`` a large stdin buffer (:func:`with_input_buffer`);
    ``extra_env`` is added to the allow-listed environment (:func:`child_environment`).
    """
    argv = command
    # Under stdbuf a missing tool would only show as stdbuf's exit status 127.
    if (output_buffer or input_buffer) and shutil.which(command[0]) is None:
        raise ToolMissingError(f"cannot run {command[0]}: no such program; {INSTALL_HINT}")
    if output_buffer:
        argv = with_output_buffer(argv)
    if input_buffer:
        argv = with_input_buffer(argv)
    try:
        process = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=child_environment(extra=extra_env),
        )
    except OSError as exc:
        raise ToolMissingError(f"cannot run {command[0]}: {exc}; {INSTALL_HINT}") from None
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            widen_pipe(pipe.fileno())
    assert process.stderr is not None
    stderr = _StderrCollector(process.stderr)
    stderr.start()
    try:
        yield process
    except BaseException:
        process.kill()
        process.wait()
        raise
    returncode = process.wait()
    stderr.join()
    if returncode != 0:
        raise tool_error(command[0], action, url, returncode, stderr.text(url))


#: A pipe of this size lets the dump tool run ahead while a chunk is compressed.
_PIPE_SIZE = 1024 * 1024


def widen_pipe(descriptor: int) -> None:
    """Grow a pipe's buffer (Linux); elsewhere, or above the user's limit, keep it."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(descriptor, set_size, _PIPE_SIZE)


#: The dump tool's stdio output buffer when ``stdbuf`` can set it.
_DUMP_OUTPUT_BUFFER = "1M"


def with_output_buffer(command: list[str]) -> list[str]:
    """``command`` run under coreutils' ``stdbuf`` with a large stdout buffer, if present.

    ``mariadb-dump`` writes through stdio in 4 KiB pieces, each write waking the
    reader; a large buffer means far fewer wake-ups and less CPU time for the
    dump itself (measured in docs/performance.md). Without ``stdbuf`` (not
    Linux) nothing changes.
    """
    stdbuf = shutil.which("stdbuf")
    if stdbuf is None:
        return command
    return [stdbuf, f"--output={_DUMP_OUTPUT_BUFFER}", *command]


def with_input_buffer(command: list[str]) -> list[str]:
    """``command`` run under coreutils' ``stdbuf`` with a 1 MiB stdin buffer, if present.

    ``pg_restore`` reads an archive from its stdin through stdio in 4 KiB pieces;
    from a full pipe each read wakes the writer. With one read per MiB the
    context switches drop about eightfold (measured in docs/performance.md).
    """
    stdbuf = shutil.which("stdbuf")
    if stdbuf is None:
        return command
    return [stdbuf, f"--input={_DUMP_OUTPUT_BUFFER}", *command]


def run_dump(
    command: list[str],
    url: URL,
    sink: Sink,
    progress: ByteCounter | None,
    scanner: DumpScanner | None = None,
    *,
    output_buffer: bool = True,
    extra_env: Mapping[str, str] | None = None,
) -> None:
    """Stream the standard output of the dump tool ``command`` into ``sink`` (through
    ``scanner`` when given); the tool's failure is raised as by :func:`tool_process`."""
    with tool_process(
        command,
        url,
        "back up",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        output_buffer=output_buffer,
        extra_env=extra_env,
    ) as process:
        assert process.stdout is not None
        stdout = process.stdout
        chunks = read_chunks(stdout)
        with stdout:
            yielding_to(
                process,
                lambda: write_chunks(
                    chunks if scanner is None else scanned(chunks, scanner), sink, progress
                ),
            )


#: How much lower than the caller's the CPU priority of the thread that digests,
#: compresses and encrypts the dump is (``nice``; Linux and other POSIX systems).
CONSUMER_NICENESS = 10


def _lower_own_priority(by: int) -> None:
    """Lower the calling thread's CPU priority (never raises; a no-op where unsupported)."""
    if not hasattr(os, "setpriority"):
        return
    with contextlib.suppress(OSError, AttributeError):
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + by))


def yielding_to(process: subprocess.Popen[bytes], work: Callable[[], None]) -> None:
    """Run ``work`` (reading ``process``'s output) on a thread of lower CPU priority.

    On a busy machine the dump tool and the server are the critical path: when
    they want a core they get it before our compression does, and the pipe
    and the dump tool's buffer absorb the difference. zstd's worker threads,
    started by the first write, inherit the lower priority. It also means a
    backup yields to the application's own work. The caller's thread keeps its
    priority. If the caller is interrupted, the dump tool is killed first, so
    the thread ends before anything else is torn down.
    """
    failure: list[BaseException] = []

    def run() -> None:
        _lower_own_priority(CONSUMER_NICENESS)
        try:
            work()
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="migration-guard-dump-reader", daemon=True)
    worker.start()
    try:
        worker.join()
    except BaseException:
        process.kill()
        worker.join()
        raise
    if failure:
        raise failure[0]


def run_restore(command: list[str], url: URL, chunks: Iterable[bytes]) -> None:
    with tool_process(
        command, url, "restore into", stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    ) as process:
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(RESTORE_PROLOGUE)
            for chunk in chunks:
                process.stdin.write(chunk)
            process.stdin.write(RESTORE_EPILOGUE)
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
