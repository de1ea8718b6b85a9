#!/usr/bin/env python3
"""Dask distributed losing its head: the failure row of ragnode's scheduling benchmark.

Run by scenarios/bench (schedkill.go): a scheduler process and W worker
processes with 4 threads each, all on 127.0.0.1, N tasks that each sleep
L submitted at once; once a third have completed, the scheduler process is
killed with SIGKILL (what a dead head node is). The client then waits up to
--grace seconds for anything else to finish. Prints one JSON object with how
many tasks completed in all.

Usage: schedkill.py --workers 3 --tasks 2000 --latency-ms 50
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time


def work(i, latency):
    time.sleep(latency)
    return i


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--tasks", type=int, required=True)
    ap.add_argument("--latency-ms", type=float, required=True)
    ap.add_argument("--kill-at", type=float, default=1.0 / 3)
    ap.add_argument("--grace", type=float, default=30.0)
    a = ap.parse_args()
    try:
        import distributed
        from distributed import Client, as_completed
    except ImportError as e:
        print(json.dumps({"error": "distributed not importable: %s" % e}))
        return 0
    lat = a.latency_ms / 1000.0
    port = free_port()
    addr = "tcp://127.0.0.1:%d" % port
    py = sys.executable
    devnull = subprocess.DEVNULL
    sched = subprocess.Popen([py, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                              "--no-dashboard"], stdout=devnull, stderr=devnull)
    workers = [subprocess.Popen([py, "-m", "distributed.cli.dask_worker", addr, "--nthreads", str(a.threads),
                                 "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                stdout=devnull, stderr=devnull) for _ in range(a.workers)]
    out = {"version": distributed.__version__, "workers": a.workers, "tasks": a.tasks}
    try:
        client = Client(addr, timeout=60)
        client.wait_for_workers(a.workers, timeout=60)
        client.gather(client.map(work, range(a.workers * a.threads), latency=0.0, pure=False))
        futs = client.map(work, range(a.tasks), latency=lat, pure=False)
        done = 0
        killed_at = None
        t0 = time.time()
        ac = as_completed(futs, with_results=False)
        deadline = None
        while True:
            if deadline is not None and time.time() > deadline:
                break
            try:
                batch = ac.next_batch(block=False)
            except StopIteration:
                break
            if not batch:
                if ac.is_empty():
                    break
                time.sleep(0.005)
                continue
            for f in batch:
                if f.status == "finished":
                    done += 1
            if killed_at is None and done >= a.tasks * a.kill_at:
                killed_at = done
                sched.send_signal(signal.SIGKILL)
                deadline = time.time() + a.grace
        # The futures themselves turn "cancelled" once the client loses the
        # scheduler, results already computed included (they lived on the
        # workers, reachable only through it): the count is of completions
        # the client saw.
        out.update({"completed": done, "completed_at_kill": killed_at, "T_s": time.time() - t0})
    except Exception as e:  # noqa: BLE001 - the figure is the point, report the failure
        out["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        for p in workers + [sched]:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
