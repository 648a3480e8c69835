"""A stand-in for the Nginx master for tests/unit/test_lbscripts.py.

A real process, so the script's ``kill -HUP PID`` reaches it; its /proc entry and its workers live in
a fake tree (the scripts read it through BG_PROC). Each SIGHUP is counted in PROC/PID/hups and, by
``--on-hup``:

    reload   new workers appear, then the old ones read 'nginx: worker process is shutting down'
    emerg    an '[emerg]' line is appended to --error-log (Nginx refused the new config)
    ignore   nothing changes

It prints 'ready' once the handler is in place, and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path


def set_title(proc: Path, pid: int, title: str, parent: int) -> None:
    """Write a process title as Linux shows a renamed process: NUL-padded, no newline; by rename.
    Its stat line names its parent (the scripts count only the master's children)."""
    entry = proc / str(pid)
    entry.mkdir(exist_ok=True)
    (entry / "stat").write_text(f"{pid} (nginx) S {parent} {pid} {pid} 0 -1\n")
    temporary = entry / ".cmdline"
    temporary.write_bytes(title.encode() + b"\0" * 8)
    temporary.replace(entry / "cmdline")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--proc", type=Path, required=True)
    parser.add_argument("--old", type=int, nargs="*", default=[])
    parser.add_argument("--new", type=int, nargs="*", default=[])
    parser.add_argument("--on-hup", choices=["reload", "emerg", "ignore"], default="reload")
    parser.add_argument("--error-log", type=Path)
    parser.add_argument("--pid-file", type=Path, help="written with this process's pid, as Nginx does")
    args = parser.parse_args()
    me = os.getpid()
    hups = args.proc / str(me) / "hups"

    def on_hup(signum: int, frame: object) -> None:
        count = int(hups.read_text()) + 1 if hups.exists() else 1
        hups.write_text(str(count))
        if args.on_hup == "reload":
            for pid in args.new:
                set_title(args.proc, pid, "nginx: worker process", me)
            for pid in args.old:
                set_title(args.proc, pid, "nginx: worker process is shutting down", me)
        elif args.on_hup == "emerg":
            with args.error_log.open("a") as log:
                log.write('2024/01/01 00:00:00 [emerg] 1#1: unknown directive "bogus" in /etc/nginx/x.conf:1\n')

    signal.signal(signal.SIGHUP, on_hup)
    set_title(args.proc, me, "nginx: master process /usr/sbin/nginx -g daemon off;", os.getppid())
    for pid in args.old:
        set_title(args.proc, pid, "nginx: worker process", me)
    if args.pid_file:
        args.pid_file.write_text(f"{me}\n")
    print("ready", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
