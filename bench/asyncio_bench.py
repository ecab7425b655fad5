#!/usr/bin/env python3
"""The call_soon_bench workloads on CPython asyncio and uvloop.

Prints one line per measurement: "RESULT <workload> <loop> <ns per callback>" (median of
--reps runs). Run by call_soon_bench (see bench/run.sh), or on its own.
"""
import argparse
import asyncio
import statistics
import time


def chained(loop, n):
    done = 0

    def step():
        nonlocal done
        done += 1
        if done < n:
            loop.call_soon(step)
        else:
            loop.stop()

    loop.call_soon(step)
    start = time.perf_counter_ns()
    loop.run_forever()
    elapsed = time.perf_counter_ns() - start
    assert done == n, done
    return elapsed / n


def batch(loop, n, rounds=3):
    done = 0

    def tick():
        nonlocal done
        done += 1

    start = time.perf_counter_ns()
    for _ in range(rounds):
        for _ in range(n):
            loop.call_soon(tick)
        loop.stop()  # before run_forever: run exactly one iteration
        loop.run_forever()
    elapsed = time.perf_counter_ns() - start
    assert done == n * rounds, done
    return elapsed / (n * rounds)


def timer(loop, n):
    fired = 0

    def never():
        nonlocal fired
        fired += 1

    def body():
        for _ in range(n):
            loop.call_later(10.0, never).cancel()
        loop.stop()

    loop.call_soon(body)
    start = time.perf_counter_ns()
    loop.run_forever()
    elapsed = time.perf_counter_ns() - start
    assert fired == 0
    return elapsed / n


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    factories = [("asyncio", asyncio.SelectorEventLoop)]
    try:
        import uvloop

        factories.append(("uvloop", uvloop.new_event_loop))
    except ImportError:
        print("uvloop is not installed; its column stays n/a", flush=True)

    for workload, fn in (("chained", chained), ("batch", batch), ("timer", timer)):
        for name, factory in factories:
            runs = []
            for _ in range(args.reps):
                loop = factory()
                try:
                    runs.append(fn(loop, args.n))
                finally:
                    loop.close()
            print(f"RESULT {workload} {name} {statistics.median(runs):.1f}", flush=True)


if __name__ == "__main__":
    main()
