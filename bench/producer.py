#!/usr/bin/env python3
"""Log producer for the dozen benchmark.

usage: producer.py TAG COUNT [SIZE]

Writes COUNT lines of exactly SIZE bytes (newline included, default 100) to
stdout, then one end marker line, then sleeps until it is killed.  Each line is

    @TAG@ 0000001 xxxx...x|

so a reader can count one producer's lines in a mixed stream with a plain
substring count.  Lines are written in batches of whole lines no bigger than
PIPE_BUF (4096 bytes), so that when several producers share one pipe (the
"plain pipe" baseline) each write is atomic and no line is ever torn.

With PRODUCER_TIMING=1 in the environment the end marker says how long the
writes took, from the first write until the last one returned:
`#TAG# done in 0.123456 s`.  A writer blocks while its reader is behind, so
this is what a slow reader costs the app itself.
"""
import os
import signal
import sys
import time


def main() -> None:
    tag = sys.argv[1]
    count = int(sys.argv[2])
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    head = b"@" + tag.encode() + b"@ "
    # head + 7-digit sequence + " " + padding + "|\n"
    pad = size - len(head) - 7 - 1 - 2
    if pad < 1:
        sys.exit("producer.py: SIZE too small")
    tail = b" " + b"x" * pad + b"|\n"
    per_batch = max(1, 4096 // size)
    fd = sys.stdout.fileno()

    def write_all(data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    i = 0
    t0 = time.monotonic()
    while i < count:
        end = min(count, i + per_batch)
        write_all(b"".join(head + b"%07d" % j + tail for j in range(i, end)))
        i = end
    took = time.monotonic() - t0
    timing = b" in %.6f s" % took if os.environ.get("PRODUCER_TIMING") == "1" else b""
    write_all(b"#" + tag.encode() + b"# done" + timing + b"\n")
    # Stay alive so that no runner stops the others because this one ended;
    # the bench stops the runner (and so us) with SIGTERM once it has counted
    # every line.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        signal.pause()


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
