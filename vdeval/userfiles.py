"""Reading files a user names (suites, includes, prompts files, sidecars, rules files, results.json):
one way, so each kind of hostile file fails the same clear way everywhere.

- Regular files only: a FIFO would block forever and /dev/zero never ends, so both are refused
  before a byte is read (the file is opened non-blocking and checked with fstat on the open
  descriptor, so it cannot be swapped in between).
- Size-capped while reading, never by st_size (0 for devices and /proc files): at most `limit`
  bytes are read, one more tells the file is too large.
- Text is UTF-8 (a leading BOM is dropped); anything else is one line naming the file.
- JSON is refused past MAX_JSON_DEPTH nesting levels before it is parsed (the parser would
  recurse once per level).

Every failure raises `error` (a VdevalError subclass the caller picks: SuiteError, RulesError,
ResultsError, ...) with one line that names the file and what it is (`what`).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from vdeval.errors import VdevalError

MAX_JSON_DEPTH = 100  # results.json nests about 6 deep; 100 leaves room and stays far from recursion limits
_CHUNK = 1 << 20


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _size(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n:,} bytes"


def read_bytes(path: str | os.PathLike, limit: int, what: str = "file",
               error: type[VdevalError] = VdevalError) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{p}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{p}: is a folder, not a {what}") from None
    except (OSError, ValueError) as e:  # permission, a name too long, a NUL byte
        raise error(f"{p}: cannot read the {what} ({getattr(e, 'strerror', None) or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{p}: is {_kind(mode)}, not a regular file; a {what} must be a file",
                        "give the path of an ordinary file")
        chunks, n = [], 0
        while n <= limit:
            block = os.read(fd, min(_CHUNK, limit + 1 - n))
            if not block:
                break
            chunks.append(block)
            n += len(block)
        if n > limit:
            raise error(f"{p}: larger than {_size(limit)}, too large for a {what}")
        return b"".join(chunks)
    except OSError as e:
        raise error(f"{p}: cannot read the {what} ({e.strerror or e})") from None
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike, limit: int, what: str = "file",
              error: type[VdevalError] = VdevalError) -> str:
    """The file as UTF-8 text (a leading byte-order mark dropped)."""
    data = read_bytes(path, limit, what, error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise error(f"{Path(path)}: not UTF-8 text (byte {e.start} on line {line}); a {what} must be UTF-8",
                    "save it as UTF-8") from None


def json_depth(text: str) -> int:
    """The deepest nesting of [ and { in a JSON text, not counting brackets inside strings."""
    import re

    import numpy as np

    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", text)  # strings out: their brackets are not structure
    if len(bare) == 0:
        return 0
    codes = np.frombuffer(bare.encode("utf-8", "surrogatepass"), np.uint8)
    steps = np.zeros(len(codes), np.int64)
    steps[(codes == ord("[")) | (codes == ord("{"))] = 1
    steps[(codes == ord("]")) | (codes == ord("}"))] = -1
    return int(np.cumsum(steps).max(initial=0))


def read_json(path: str | os.PathLike, limit: int, what: str = "JSON file",
              error: type[VdevalError] = VdevalError, max_depth: int = MAX_JSON_DEPTH):
    """The file parsed as JSON; refused past `max_depth` nesting levels."""
    import json

    text = read_text(path, limit, what, error)
    depth = json_depth(text)
    if depth > max_depth:
        raise error(f"{Path(path)}: JSON nested {depth:,} levels deep (limit {max_depth}); not a {what}")
    try:
        return json.loads(text)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise error(f"{Path(path)}: JSON nested too deeply; not a {what}") from None
    except ValueError as e:
        raise error(f"{Path(path)}: not valid JSON ({e}); not a {what}") from None
