"""Per-epoch cost and per-call overhead of the engine's paths; the Gram-path toy sweep; dispatch.

    python benchmarks/bench_engine.py [--repeats 5] [--threads 2] [--dispatch] [--no-sweep]

Every case is timed at two run lengths e1 < e2 (median over ``repeats``): per-epoch cost =
(t(e2) − t(e1)) / (e2 − e1), per-call overhead = t(e1) − e1 x per-epoch (``linfusion.train``:
checks, moments, least-squares fit, stability warning, kernel call). Records every epoch,
as the experiments do. CPU time of the process is printed beside wall time for the serial
kernels (one thread: it is the better estimate on a shared machine). The load average is
printed before and after.

``--dispatch`` measures the sample path's dispatch rule (which weight blocks use BLAS):
one thread, CPU time of one sample-path epoch (forward, backward, update) over 4096 samples, for nets
with inputs (d, d), a shared hidden layer of width h and blocks h x d, h x h, 1 x h, with
every threshold t of the rule "BLAS iff rows >= t and cols >= t".
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import linfusion as lf  # noqa: E402
from linfusion import _engine  # noqa: E402
from linfusion.data import from_arrays  # noqa: E402


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def timed(fn, e1, e2, repeats):
    """(per-epoch wall, per-call overhead wall, per-epoch CPU), medians over repeats."""
    fn(2)
    pe, oh, cpu = [], [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(e1)
        t1, c1 = time.perf_counter(), time.process_time()
        fn(e2)
        t2, c2 = time.perf_counter(), time.process_time()
        p = ((t2 - t1) - (t1 - t0)) / (e2 - e1)
        pe.append(p)
        oh.append((t1 - t0) - e1 * p)
        cpu.append(((c2 - c1) - (c1 - c0)) / (e2 - e1))
    return statistics.median(pe), statistics.median(oh), statistics.median(cpu)


def exact_cases():
    toy = lf.data.toy(rho=0.0, ratio=2.0, n=8192, rng=0)
    multi = lf.data.multi(dim=100, n=700, noise=0.5, rng=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 200))
    y = x @ rng.standard_normal((200, 1)) / 14 + 0.1 * rng.standard_normal((1000, 1))
    d200 = from_arrays([x[:, :100], x[:, 100:]], y)
    late = lf.FusionNet.late((1, 1), width=100)
    return [  # (name, net, data, path, init, e1, e2, target µs)
        ("toy late fusion, moment", late, toy, "moment", "entry", 20000, 220000, 0.9),
        ("toy early fusion, moment", lf.FusionNet.early((1, 1), width=100), toy, "moment", "entry", 20000, 220000, None),
        ("multi D=100 late, moment", lf.FusionNet.late((50, 50), width=100), multi, "moment", "entry",
         2000, 22000, 10),
        ("multi D=100 early, moment", lf.FusionNet.early((50, 50), width=100), multi, "moment", "entry",
         2000, 22000, 10),
        ("D=200 late w100, moment", lf.FusionNet.late((100, 100), width=100), d200, "moment", "entry",
         1000, 11000, 50),
        ("deep L=4 L_f=2 toy, moment", lf.FusionNet.deep((1, 1), width=100, depth=4, fuse_depth=2), toy, "moment",
         "layer", 2000, 22000, None),
        ("toy late fusion, gram", late, toy, "gram", "entry", 200000, 2200000, 0.05),
        ("D=200 late w100, gram", lf.FusionNet.late((100, 100), width=100), d200, "gram", "entry", 1000, 11000, None),
        ("toy ReLU late fusion, feature", lf.FusionNet.late((1, 1), width=100, slope=0.0), toy, "feature", "entry",
         20000, 220000, 2),
    ]


def exact_table(repeats):
    print("| case | path | µs / epoch (wall) | µs / epoch (CPU) | target µs | per-call overhead ms |")
    print("|---|---|---|---|---|---|")
    for name, net, data, path, init, e1, e2, target in exact_cases():
        def fn(e, net=net, data=data, path=path, init=init):
            lf.train(net, data, lr=0.01, epochs=e, init=init, rng=0, path=path, final_weights=path != "gram")
        pe, oh, cpu = timed(fn, e1, e2, repeats)
        tg = "" if target is None else f"{target:g}"
        print(f"| {name} | {path} | {pe * 1e6:.3g} | {cpu * 1e6:.3g} | {tg} | {oh * 1e3:.3g} |", flush=True)


def gram_sweep():
    """The linear half of the faithful toy sweep: 180 runs on the Gram path in one train_many."""
    datas, seeds = [], []
    for r in (3.0, 2.0, 1.5, 1.0):
        for rho in np.linspace(-0.9, 0.9, 9):
            for rep in range(5):
                datas.append(lf.data.toy(rho=float(rho), ratio=r, n=8192, rng=1000 * rep + int(10 * rho) + int(10 * r)))
                seeds.append(rep)
    net = lf.FusionNet.late((1, 1), width=100)
    t0 = time.perf_counter()
    res = lf.train_many(net, datas, lr=0.04, epochs=40000, init="entry", scale=1e-9, rng=list(range(180)),
                        tol=1e-4, final_weights=False)
    total = time.perf_counter() - t0
    mos = [d.moments() for d in datas]                 # what train_many spends before training
    fits = [_engine.least_squares(m.sxx, m.syx, m.syy) for m in mos]
    W = np.stack([net.init("entry", 1e-9, s) for s in range(180)])
    t1 = time.perf_counter()
    _engine.fit(net, "gram", W, moments=mos, fits=fits, lrs=0.04, wds=0.0, loss="mse", epochs=40000,
                record_every=1, tol=1e-4)
    kernel = time.perf_counter() - t1
    epochs = sum(r.final_epoch for r in res)
    status = {s: sum(r.status == s for r in res) for s in {r.status for r in res}}
    print(f"\ntoy sweep, linear half: 180 runs (r in 3, 2, 1.5, 1; 9 rho; 5 repeats; width 100; init 1e-9; "
          f"lr 0.04; cap 40000; tol 1e-4) on the Gram path: {epochs} epochs in total, statuses {status}; "
          f"train_many {total:.2f} s wall (of which _engine.fit: {kernel:.2f} s, the rest is data checks, "
          f"moments and initial weights); target: under 2 s of training.")


def feature_sweep():
    """The ReLU half of the faithful toy sweep on the feature path (same grid, ReLU late fusion)."""
    datas = [lf.data.toy(rho=float(rho), ratio=r, n=8192, rng=1000 * rep + int(10 * rho) + int(10 * r))
             for r in (3.0, 2.0, 1.5, 1.0) for rho in np.linspace(-0.9, 0.9, 9) for rep in range(5)]
    net = lf.FusionNet.late((1, 1), width=100, slope=0.0)
    t0 = time.perf_counter()
    res = lf.train_many(net, datas, lr=0.04, epochs=40000, init="entry", scale=1e-9, rng=list(range(180)),
                        tol=1e-4)
    total = time.perf_counter() - t0
    epochs = sum(r.final_epoch for r in res)
    print(f"toy sweep, ReLU half: 180 runs on the {res[0].path} path: {epochs} epochs in total, "
          f"{total:.2f} s wall (train_many).")


def many_table(repeats, threads):
    toy = lf.data.toy(rho=0.0, ratio=2.0, n=1024, rng=0)
    print("\n| train_many, 64 runs | path | threads | runs x epochs / s | speed-up |")
    print("|---|---|---|---|---|")
    for label, net, path, e1, e2 in [
            ("ReLU toy late fusion, 1024 samples", lf.FusionNet.late((1, 1), width=100, slope=0.0), "sample", 5, 25),
            ("deep L=4 L_f=2", lf.FusionNet.deep((1, 1), width=100, depth=4, fuse_depth=2), "moment", 100, 600)]:
        rates = {}
        for t in sorted({1, threads}):
            lf.set_threads(t)

            def fn(e, net=net, path=path):
                lf.train_many(net, toy, lr=0.01, epochs=e, rng=list(range(64)), path=path,
                              init="layer" if net.depth > 2 else "entry", record_every=e)
            rates[t] = 64 / timed(fn, e1, e2, repeats)[0]
            print(f"| {label} | {path} | {t} | {rates[t]:.4g} | {rates[t] / rates[1]:.2f}x |", flush=True)
    lf.set_threads(threads)


def dispatch_table():
    def cpu_pass(net, ds, dt, blas_min):
        """CPU ms of one sample-path epoch (forward, backward, update) with the rule at ``blas_min``."""
        old = _engine._BLAS_MIN
        _engine._BLAS_MIN = blas_min
        try:
            def fn(e):
                lf.train(net, ds, lr=1e-6, epochs=e, init="layer", scale=1.0, rng=0, path="sample", dtype=dt,
                         record_every=e)
            return timed(fn, 2, 8, 3)[2] * 1e3
        finally:
            _engine._BLAS_MIN = old

    rng = np.random.default_rng(0)
    ts = (1, 4, 8, 16, 32, 64, 10 ** 9)
    lf.set_threads(1)
    print("\ndispatch rule: BLAS iff rows >= t and cols >= t; ms per epoch (1 thread, CPU time, 4096 samples)")
    print("| in_dims | width | dtype | " + " | ".join(f"t={t if t < 10 ** 9 else 'inf'}" for t in ts) + " |")
    print("|---|---|---|" + "---|" * len(ts))
    total = dict.fromkeys(ts, 0.0)
    for d in (1, 4, 16, 64):
        xs = [rng.standard_normal((4096, d)) for _ in range(2)]
        ds = from_arrays(xs, rng.standard_normal((4096, 1)))
        for h in (8, 16, 32, 100):
            net = lf.FusionNet((d, d), 1, h, 3, 2, slope=0.0)
            for dt in (np.float64, np.float32):
                row = [cpu_pass(net, ds, dt, t) for t in ts]
                for t, v in zip(ts, row):
                    total[t] += v / min(row)
                print(f"| ({d}, {d}) | {h} | {np.dtype(dt).name} | " + " | ".join(f"{v:.3f}" for v in row) + " |",
                      flush=True)
    print("sum over cases of time / best time: " + ", ".join(
        f"t={t if t < 10 ** 9 else 'inf'}: {v:.2f}" for t, v in total.items()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dispatch", action="store_true", help="measure the sample path's dispatch rule")
    ap.add_argument("--no-sweep", action="store_true")
    args = ap.parse_args(argv)
    lf.set_threads(args.threads)
    print(f"load average before: {load()} ({os.cpu_count()} cores); numba threads {_engine.get_threads()}; "
          f"numpy {np.__version__}; medians of {args.repeats}")
    if args.dispatch:
        dispatch_table()
        print(f"\nload average after: {load()}")
        return 0
    exact_table(args.repeats)
    if not args.no_sweep:
        gram_sweep()
        feature_sweep()
    many_table(args.repeats, args.threads)
    print(f"\nload average after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
