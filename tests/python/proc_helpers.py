"""Helpers of the reliability tests (RELIABILITY.md T1, T3, T5, T7, T8): child processes
with a line-by-line stdout, test sizes read from the environment (so the long tier runs
the same code with bigger numbers), the process's resident memory, and surgery on
RocksDB's write-ahead log (to make a foreign or future-version database the way a real
one would look, with valid checksums) and the format markers written to it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Optional, Tuple

__all__ = [
    "Child",
    "crc32c",
    "env_float",
    "env_int",
    "patch_wal",
    "rss_mb",
    "trimmed_rss_mb",
    "wal_format_markers",
]


# ------------------------------------------------------------------ sizes from the environment


def env_int(name: str, default: int) -> int:
    """The integer in environment variable ``name`` (the long tier's figure), else
    ``default`` (the CI tier's)."""
    raw = os.environ.get(name, "").strip()
    return int(raw, 0) if raw else default


def env_float(name: str, default: float) -> float:
    """Like :func:`env_int`, for a float."""
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def rss_mb() -> float:
    """This process's resident set size in MiB, from ``/proc/self/status``."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS line in /proc/self/status")


def trimmed_rss_mb() -> float:
    """:func:`rss_mb` after glibc's ``malloc_trim(0)`` has handed free heap pages back to
    the kernel: what is left is memory in use, not the allocator's high-water mark (which
    grows with the largest allocation peak so far, leak or not)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: plain RSS
    return rss_mb()


# ------------------------------------------------------------------ child processes


class Child:
    """A child interpreter (``python -c script`` or ``python file.py``) whose stdout
    lines arrive on a queue (read by a thread, so the parent never blocks on it) and
    whose stderr goes to a file."""

    def __init__(
        self,
        script: str,
        *args: str,
        stdin: bool = False,
        is_file: bool = False,
        env: Optional[dict[str, str]] = None,
    ) -> None:
        # Closed by stderr() once the child has exited.
        self._err = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self._err_text = ""
        argv = [sys.executable, script] if is_file else [sys.executable, "-c", script]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*argv, *args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            bufsize=1,
            env=env,
        )
        self.lines: queue.Queue[Optional[str]] = queue.Queue()
        self.seen: List[str] = []
        self.eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float = 60.0) -> str:
        """The next line starting with ``prefix`` (earlier lines are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError(
                    f"no {prefix!r} line within {timeout}s; saw {self.seen[-20:]}; "
                    f"stderr: {self.stderr()}"
                ) from None
            if line is None:
                rc, err = self.finish()
                raise AssertionError(
                    f"child exited ({rc}) before {prefix!r}; saw {self.seen[-20:]}; stderr: {err}"
                )
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def next_line(self, timeout: float) -> Optional[str]:
        """The next stdout line, or None if none came within ``timeout`` or the child
        closed its stdout (then ``eof`` is set)."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        if line is None:
            self.eof = True
            return None
        self.seen.append(line)
        return line

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def _drain(self) -> None:
        self._reader.join(timeout=30)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()

    def kill(self) -> List[str]:
        """SIGKILLs the child (if still running); returns every stdout line it wrote."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._drain()
        self.stderr()
        return self.seen

    def finish(self, timeout: float = 60.0) -> Tuple[int, str]:
        """Closes the child's stdin, waits for it to exit; returns (exit code, stderr)."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        rc = self.proc.wait(timeout=timeout)
        self._drain()
        return rc, self.stderr()

    def stderr(self) -> str:
        """What the child wrote to stderr (so far, while it runs)."""
        if self._err.closed:
            return self._err_text
        self._err.seek(0)
        self._err_text = self._err.read()
        if self.proc.poll() is not None:
            self._err.close()
        return self._err_text


# ------------------------------------------------------------------ write-ahead-log surgery


def _crc32c_table() -> List[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of RocksDB's log records."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    # RocksDB stores log checksums masked (util/crc32c.h: Mask).
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


_BLOCK = 32768
_LEGACY_HEADER = 7  # checksum u32, length u16, type u8
_RECYCLABLE_HEADER = 11  # + log number u32


def patch_wal(db_dir: Path, old: bytes, new: bytes) -> str:
    """Replaces the first occurrence of ``old`` by ``new`` (same length) inside one
    record of a write-ahead log (``*.log``) in ``db_dir``, and recomputes that record's
    checksum, so RocksDB replays the changed write as if it had been written so.
    Returns the patched file's name.

    Log layout (RocksDB ``db/log_format.h``): 32 KiB blocks of records, each a header
    (masked CRC-32C of type + payload, payload length, type; recyclable types 5-8 add
    a 4-byte log number, covered by the checksum) and the payload.
    """
    if len(old) != len(new):
        raise ValueError("old and new must have the same length")
    for log in sorted(db_dir.glob("*.log")):
        data = bytearray(log.read_bytes())
        pos = 0
        while pos + _LEGACY_HEADER <= len(data):
            left_in_block = _BLOCK - pos % _BLOCK
            if left_in_block < _LEGACY_HEADER:
                pos += left_in_block  # trailer padding
                continue
            _crc, length, rtype = struct.unpack_from("<IHB", data, pos)
            if rtype == 0 and length == 0:
                break  # preallocated zeros: the end of the log
            header = _RECYCLABLE_HEADER if 5 <= rtype <= 8 else _LEGACY_HEADER
            start, end = pos + header, pos + header + length
            found = data.find(old, start, end)
            if found >= 0:
                data[found : found + len(old)] = new
                covered = bytes(data[pos + 6 : end])  # type (+ log number) + payload
                struct.pack_into("<I", data, pos, _masked(crc32c(covered)))
                log.write_bytes(bytes(data))
                return log.name
            pos = end
    raise ValueError(f"{old!r} is in no log record under {db_dir}")


#: A write batch's put of the format marker (RocksDB ``db/write_batch.cc``: type 1 =
#: value of the default column family, varint key length, key, varint value length,
#: value): key ``b"\x00format"``, value ``b"NUSTERDB"`` + the version as u32 LE
#: (``storage/keys.rs``, ``storage/codec.rs``).
_MARKER_PUT = re.compile(rb"\x01\x07\x00format\x0cNUSTERDB(.{4})", re.S)


def wal_format_markers(log: Path) -> List[int]:
    """The format versions of every format-marker write in the write-ahead log ``log``,
    in log order. Records are checked (masked CRC-32C) and fragments reassembled, so a
    marker split across a 32 KiB block is found too; a damaged record fails."""
    data = log.read_bytes()
    out: List[int] = []
    pos = 0
    pending = b""
    while pos + _LEGACY_HEADER <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _LEGACY_HEADER:
            pos += left_in_block  # trailer padding
            continue
        crc, length, rtype = struct.unpack_from("<IHB", data, pos)
        if rtype == 0 and length == 0:
            break  # preallocated zeros: the end of the log
        header = _RECYCLABLE_HEADER if 5 <= rtype <= 8 else _LEGACY_HEADER
        start, end = pos + header, pos + header + length
        if end > len(data) or _masked(crc32c(bytes(data[pos + 6 : end]))) != crc:
            raise ValueError(f"{log.name}: damaged record at byte {pos}")
        kind = rtype - 4 if rtype >= 5 else rtype  # 1 full, 2 first, 3 middle, 4 last
        pending = data[start:end] if kind in (1, 2) else pending + data[start:end]
        if kind in (1, 4):
            out += [int.from_bytes(m.group(1), "little") for m in _MARKER_PUT.finditer(pending)]
            pending = b""
        pos = end
    return out
