"""Run one command and write its wall time, CPU time and peak RSS as JSON: `launch.py OUT CMD...`.

Why a separate small process: on Linux a child's `ru_maxrss` starts from the memory of the
process it was forked from (the old address space is accounted at exec), so a benchmark driver
holding a large corpus in memory would see it in every child it measures. Forked from this
small launcher instead, the measured command reports only its own peak.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    result_path, argv = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: become the command (stdin/stdout/stderr, cwd and env inherited)
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    with open(result_path, "w", encoding="utf-8") as out:
        json.dump(
            {
                "wall": wall,
                "cpu": usage.ru_utime + usage.ru_stime,
                "maxrss_kib": usage.ru_maxrss,
                "returncode": os.waitstatus_to_exitcode(status),
            },
            out,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
