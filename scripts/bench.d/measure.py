#!/usr/bin/env python3
"""Runs one measured command (or pipeline, or sequence of pipelines) and reports on it.

Usage: measure.py SPEC_JSON

SPEC_JSON is an object, never a shell string:
  {"steps": [{"pipeline": [["pg_dump", "-d", "db"], ["gzip", "-6"]],
              "stdin": null | "path",
              "stdout": null | "path" | "capture"}, ...]}
Steps run one after another; the processes of a step are connected by pipes. The first
failing step ends the run. Prints one JSON object on stdout:
  wall        seconds from the first spawn to the last exit (python start-up excluded)
  maxrss_kib  ru_maxrss of RUSAGE_CHILDREN: the largest single process among everything
              this wrapper ran and everything those processes waited for (pg_dump, psql)
  own_hwm_kib the VmHWM of the first process of each step (e.g. pgsnap itself), sampled
              from /proc every 20 ms (max over steps); None when never sampled
  cpu_user, cpu_sys  CPU seconds of the same process tree (server backends not included)
  rcs         exit statuses, one list per step that ran
  stdout      captured stdout of the last step with "stdout": "capture" (small output only)
  stderr_tail last 4 KiB of stderr of the first failing step

Run every measured command in a fresh process of this script: ru_maxrss of the children
is a maximum over the process's lifetime and can never be reset.
"""
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time


class Terminated(Exception):
    pass


def on_term(signum, _frame):
    raise Terminated(signum)


def read_hwm(pid):
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def main():
    spec = json.loads(sys.argv[1])
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    procs = []
    result = {"rcs": [], "stdout": None, "stderr_tail": None, "own_hwm_kib": None}
    hwm = {"value": None}
    watched = {"pid": None}
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            pid = watched["pid"]
            if pid is not None:
                v = read_hwm(pid)
                if v is not None and (hwm["value"] is None or v > hwm["value"]):
                    hwm["value"] = v
            stop.wait(0.02)

    t = threading.Thread(target=sampler, daemon=True)
    t.start()
    start = time.monotonic()
    try:
        for step in spec["steps"]:
            pipeline = step["pipeline"]
            err = tempfile.TemporaryFile()
            out_path = step.get("stdout")
            capture = None
            if out_path == "capture":
                capture = tempfile.TemporaryFile()
                final_out = capture
            elif out_path:
                final_out = open(out_path, "wb")
            else:
                final_out = subprocess.DEVNULL
            stdin = open(step["stdin"], "rb") if step.get("stdin") else subprocess.DEVNULL
            procs = []
            prev = stdin
            for i, argv in enumerate(pipeline):
                last = i == len(pipeline) - 1
                p = subprocess.Popen(argv, stdin=prev, stdout=final_out if last else subprocess.PIPE,
                                     stderr=err, close_fds=True)
                if i > 0:
                    prev.close()  # only the reader holds the pipe now: SIGPIPE works as in a shell
                prev = p.stdout
                procs.append(p)
                if i == 0:
                    watched["pid"] = p.pid
            rcs = [p.wait() for p in procs]
            watched["pid"] = None
            if stdin is not subprocess.DEVNULL:
                stdin.close()
            if final_out not in (subprocess.DEVNULL, capture):
                final_out.close()
            result["rcs"].append(rcs)
            if capture is not None:
                capture.seek(0)
                result["stdout"] = capture.read(1 << 20).decode("utf-8", "replace")
                capture.close()
            if any(rc != 0 for rc in rcs):
                err.seek(0, os.SEEK_END)
                size = err.tell()
                err.seek(max(0, size - 4096))
                result["stderr_tail"] = err.read().decode("utf-8", "replace")
                err.close()
                break
            err.close()
        wall = time.monotonic() - start
    except Terminated:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        sys.exit(143)
    finally:
        stop.set()
    t.join()
    result["wall"] = wall
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["maxrss_kib"] = ru.ru_maxrss
    result["cpu_user"] = ru.ru_utime
    result["cpu_sys"] = ru.ru_stime
    result["own_hwm_kib"] = hwm["value"]
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
