"""Per-epoch cost of the engine's two paths, and train_many's use of the cores.

    python benchmarks/bench_engine.py [--repeats 7]

Prints a Markdown table of median microseconds per epoch (each case timed ``repeats``
times after a warm-up that compiles the kernels) and the speed-up of train_many over one
core. Times include the recording of loss and W_tot at every epoch.
"""
import argparse
import statistics
import sys
import time

import numpy as np

import linfusion as lf
from linfusion import _kernels


def per_epoch(fn, epochs, repeats):
    fn(2)                                     # compile / warm caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(epochs)
        times.append((time.perf_counter() - t0) / epochs)
    return statistics.median(times)


def engine_cases():
    toy = lf.data.toy(rho=0.0, ratio=2.0, n=8192, rng=0)
    multi = lf.data.multi(dim=100, n=700, noise=0.5, rng=0)
    cases = []
    for name, net in [("toy late fusion", lf.FusionNet.late((1, 1), width=100)),
                      ("toy early fusion", lf.FusionNet.early((1, 1), width=100))]:
        cases.append((f"{name}, moment path", net, toy, "moment", 20000))
        cases.append((f"{name}, sample path, linear", net, toy, "sample", 30))
        relu = lf.FusionNet(net.in_dims, width=100, depth=2, fuse_depth=net.fuse_depth, slope=0.0)
        cases.append((f"{name}, sample path, ReLU", relu, toy, "sample", 30))
    for name, net in [("multi D=100 P=700 late", lf.FusionNet.late((50, 50), width=100)),
                      ("multi D=100 P=700 early", lf.FusionNet.early((50, 50), width=100))]:
        cases.append((f"{name}, moment path", net, multi, "moment", 500))
        cases.append((f"{name}, sample path", net, multi, "sample", 50))
    for lf_ in (1, 2, 3, 4):
        net = lf.FusionNet.deep((1, 1), width=100, depth=4, fuse_depth=lf_)
        cases.append((f"deep L=4 L_f={lf_}, moment path", net, toy, "moment", 3000))
    return cases


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    print(f"{_kernels.max_threads()} threads, numpy {np.__version__}")
    print("| case | path | median µs / epoch |")
    print("|---|---|---|")
    for name, net, data, path, epochs in engine_cases():
        init = "layer" if net.depth > 2 else "entry"

        def fn(e, net=net, data=data, path=path, init=init):
            lf.train(net, data, lr=0.01, epochs=e, init=init, rng=0, path=path)
        us = per_epoch(fn, epochs, args.repeats) * 1e6
        print(f"| {name} | {path} | {us:.3g} |", flush=True)

    # train_many: 64 seeds of toy late fusion on the sample path (ReLU), 1 thread vs all
    toy = lf.data.toy(rho=0.0, ratio=2.0, n=1024, rng=0)
    relu = lf.FusionNet.late((1, 1), width=100, slope=0.0)
    mom = lf.FusionNet.deep((1, 1), width=100, depth=4, fuse_depth=2)
    print()
    print("| train_many, 64 runs | threads | epochs / s (all runs) | speed-up |")
    print("|---|---|---|---|")
    for label, net, epochs, path in [("ReLU toy late fusion, 1024 samples, sample path", relu, 20, "sample"),
                                     ("deep L=4 L_f=2, moment path", mom, 300, "moment")]:
        rates = {}
        for threads in (1, _kernels.max_threads()):
            _kernels.set_threads(threads)

            def fn(e, net=net, path=path):
                lf.train_many(net, toy, lr=0.01, epochs=e, rng=list(range(64)), path=path,
                              init="layer" if net.depth > 2 else "entry")
            rates[threads] = 64 / per_epoch(fn, epochs, args.repeats)
            print(f"| {label} | {threads} | {rates[threads]:.4g} | "
                  f"{rates[threads] / rates[1]:.2f}× |", flush=True)
        _kernels.set_threads(_kernels.max_threads())
    return 0


if __name__ == "__main__":
    sys.exit(main())
