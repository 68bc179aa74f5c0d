"""Child process that evaluates CEL expressions for ``expression_sandbox``.

The CEL library holds the GIL while it evaluates and cannot be interrupted, so expressions
whose cost is not bounded by their size (comprehension macros) are evaluated here, where the
parent can kill them at the deadline. This process caps its own address space; it imports
nothing of Django. Frames: 4-byte big-endian length, then JSON (never pickle: the frames carry
run data, and a result is whatever the expression built).
"""

from __future__ import annotations

import json
import struct
import sys
from typing import IO, Any

import cel

from apps.blocks.expression_helpers import with_helpers
from apps.core.process_limits import cap_address_space

HEADER = struct.Struct(">I")
MAX_RESULT_BYTES = 8 * 1024 * 1024


def read_frame(stream: IO[bytes]) -> Any:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    return json.loads(stream.read(HEADER.unpack(header)[0]))


def encode(value: Any) -> bytes:
    # A CEL-specific value (a timestamp, a duration) travels as the text a template shows.
    return json.dumps(value, default=str, separators=(",", ":")).encode()


def write_frame(stream: IO[bytes], value: Any) -> None:
    body = encode(value)
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def answer(source: str, scope: dict[str, Any]) -> tuple[str, Any]:
    try:
        value = cel.compile(source).execute(with_helpers(scope))
    except KeyError as error:
        return ("missing", str(error.args[0]) if error.args else "")
    except Exception as error:  # the CEL runtime raises several types; all mean "failed"
        return ("error", str(error) or type(error).__name__)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if len(encode(value)) > MAX_RESULT_BYTES:
        # The parent would hold it in memory (a web process), so the child's budget alone
        # does not protect it.
        return ("error", f"its result is larger than the {MAX_RESULT_BYTES >> 20} MiB limit")
    return ("value", value)


def main() -> None:
    cap_address_space(int(sys.argv[1]))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    write_frame(stdout, "ready")
    while (job := read_frame(stdin)) is not None:
        write_frame(stdout, answer(*job))


if __name__ == "__main__":
    main()
