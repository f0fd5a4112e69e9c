#!/usr/bin/env python3
"""scripts/soak and bench/fp-overhead import bench/run as a module and call
its functions as `bench.<name>`. Nothing but a 30-minute run reaches most of
those calls, so a rename in bench/run broke the soak unnoticed once
(bench.cpu_ticks, removed in 969ba52, found when the soak was next run).
This check loads each script's bench/run the way the scripts do, collects
every `bench.<name>` the script uses and fails for a name bench/run does not
define; it also byte-compiles each script."""
import importlib.machinery
import importlib.util
import os
import re
import sys

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USERS = ["scripts/soak", "bench/fp-overhead"]


def load(path, name):
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def main():
    sys.dont_write_bytecode = True
    bench = load(os.path.join(SRC, "bench", "run"), "huginn_bench_run")
    failures = []
    for rel in USERS:
        path = os.path.join(SRC, rel)
        text = open(path).read()
        try:
            compile(text, path, "exec")
        except SyntaxError as e:
            failures.append(f"{rel}: {e}")
            continue
        names = sorted(set(re.findall(r"\bbench\.([A-Za-z_][A-Za-z0-9_]*)", text)))
        if not names:
            failures.append(f"{rel}: no use of bench.<name> found (has the import changed?)")
        missing = [n for n in names if not hasattr(bench, n)]
        for n in missing:
            failures.append(f"{rel}: bench.{n} is not defined in bench/run")
        print(f"{rel}: {len(names)} names from bench/run, {len(missing)} missing")
    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
