#!/usr/bin/env python3
"""task_bench's workloads on CPython asyncio and uvloop.

Prints "RESULT <workload> <loop> <ns per operation>" lines (median of --reps runs).
"""
import argparse
import asyncio
import statistics
import time


async def trivial(i):
    return i


async def spawn_and_join(loop, n):
    tasks = [loop.create_task(trivial(i)) for i in range(n)]
    total = 0
    for t in tasks:
        total += await t
    return total


async def await_done_future(fut, n):
    total = 0
    for _ in range(n):
        total += await fut
    return total


def measure(new_loop, workload, n):
    loop = new_loop()
    try:
        if workload == "tasks":
            start = time.perf_counter_ns()
            total = loop.run_until_complete(spawn_and_join(loop, n))
            elapsed = time.perf_counter_ns() - start
            assert total == n * (n - 1) // 2
        else:
            fut = loop.create_future()
            fut.set_result(2)
            start = time.perf_counter_ns()
            total = loop.run_until_complete(await_done_future(fut, n))
            elapsed = time.perf_counter_ns() - start
            assert total == 2 * n
        return elapsed / n
    finally:
        loop.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    loops = [("asyncio", asyncio.new_event_loop)]
    try:
        import uvloop

        loops.append(("uvloop", uvloop.new_event_loop))
    except ImportError:
        pass
    for workload in ("tasks", "await_done"):
        for name, factory in loops:
            runs = [measure(factory, workload, args.n) for _ in range(args.reps)]
            print(f"RESULT {workload} {name} {statistics.median(runs):.2f}", flush=True)


if __name__ == "__main__":
    main()
