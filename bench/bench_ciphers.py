"""Benchmark: AES-256-GCM vs ChaCha20-Poly1305 for the archive payload (issue 12, age).

age v1 seals its payload with ChaCha20-Poly1305 in 64 KiB chunks; migration-guard
archives use AES-256-GCM in 1 MiB chunks (64 KiB .. 1 MiB allowed). Being
byte-compatible with age would mean ChaCha20-Poly1305 at 64 KiB. This measures,
side by side in one run (round-robin, medians of ``--repeat`` runs):

1. raw AEAD throughput with ``cryptography`` (the library both would use):
   AES-256-GCM and ChaCha20-Poly1305, 64 KiB and 1 MiB chunks, MB/s of plaintext;
2. archive write speed through ``open_writer`` (compression ``none``, so the
   cipher dominates, and the default ``zstd`` level 1 on an SQL-like stream):
   the real GCM codec vs the same writer with ChaCha20-Poly1305 swapped in
   (same nonce rule, so the only difference is the cipher), at 64 KiB and 1 MiB;
3. the cost of wrapping one data key for one X25519 recipient (per archive).

Run: ``python bench/bench_ciphers.py [--mib 256] [--repeat 5]``. Prints JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import __version__ as cryptography_version
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from migration_guard.backup.archive import codecs, open_writer
from migration_guard.backup.keys import generate_key, parse_key
from migration_guard.backup.x25519 import generate_identity, wrap_for

KIB = 1024
MIB = 1024 * KIB
CHUNKS = {"64KiB": 64 * KIB, "1MiB": MIB}
CIPHERS: dict[str, Any] = {"AES-256-GCM": AESGCM, "ChaCha20-Poly1305": ChaCha20Poly1305}


class _Null(io.RawIOBase):
    """A sink that counts bytes (the disk is not what is measured)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        self.count += size
        return size


def sql_like(size: int) -> bytes:
    """An SQL dump's shape: INSERT lines with numbers and short strings (zstd ~4-6x)."""
    lines = []
    total = 0
    i = 0
    rnd = os.urandom(4096).hex()
    while total < size:
        word = rnd[(i * 7) % 8000 :][:24]
        line = f"INSERT INTO `t` VALUES ({i},'name {i % 9973}','{word}',{i * 3.5});\n"
        lines.append(line)
        total += len(line)
        i += 1
    return "".join(lines).encode()[:size]


def time_it(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def raw_aead(total: int, chunk: int, cipher: Any) -> Callable[[], object]:
    aead = cipher(os.urandom(32))
    data = os.urandom(chunk)
    count = total // chunk

    def run() -> None:
        for i in range(count):
            aead.encrypt(i.to_bytes(12, "big"), data, None)

    return run


def archive_write(plain: bytes, chunk: int, cipher: Any, compression: str) -> Callable[[], object]:
    key = parse_key(generate_key())

    def run() -> None:
        original = codecs.AESGCM
        codecs.AESGCM = cipher  # type: ignore[misc]  # same API: key, 12-byte nonce, 16-byte tag
        try:
            with open_writer(
                _Null(), backup_id="bench", key=key, chunk_size=chunk, compression=compression
            ) as writer:  # type: ignore[arg-type]
                view = memoryview(plain)
                for start in range(0, len(plain), MIB):
                    writer.write(view[start : start + MIB])
        finally:
            codecs.AESGCM = original  # type: ignore[misc]

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="MiB per measurement")
    parser.add_argument("--repeat", type=int, default=5)
    args, _ = parser.parse_known_args()  # run.py passes every benchmark the same options
    total = args.mib * MIB
    plain = sql_like(total)

    cases: dict[str, tuple[int, Callable[[], object]]] = {}
    for chunk_name, chunk in CHUNKS.items():
        for cipher_name, cipher in CIPHERS.items():
            cases[f"raw {cipher_name} {chunk_name}"] = (total, raw_aead(total, chunk, cipher))
            for compression in ("none", "zstd"):
                cases[f"archive {compression} {cipher_name} {chunk_name}"] = (
                    total,
                    archive_write(plain, chunk, cipher, compression),
                )
    for _, run in cases.values():  # warm-up, untimed
        run()
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):  # round-robin: background load hits every case alike
        for name, (_, run) in cases.items():
            seconds[name].append(time_it(run))
    mb_s = {
        name: round(cases[name][0] / statistics.median(times) / 1e6, 1)
        for name, times in seconds.items()
    }
    ratios = {}
    for name in mb_s:
        if "AES-256-GCM" in name:
            other = name.replace("AES-256-GCM", "ChaCha20-Poly1305")
            ratios[name.replace("AES-256-GCM ", "")] = round(mb_s[name] / mb_s[other], 2)
    recipient = generate_identity().recipient
    wraps = 200
    wrap_seconds = time_it(lambda: [wrap_for(recipient, os.urandom(32)) for _ in range(wraps)])
    result = {
        "benchmark": "ciphers",
        "mib": args.mib,
        "repeat": args.repeat,
        "mb_per_s": mb_s,
        "aes_gcm_over_chacha20": ratios,
        "x25519_wrap_ms_per_recipient": round(wrap_seconds / wraps * 1000, 3),
        "machine": {
            "python": platform.python_version(),
            "cryptography": cryptography_version,
            "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
