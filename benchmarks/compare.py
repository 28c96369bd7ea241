"""Side by side: our sample path against PyTorch, same precision, threads, data and weights.

    python benchmarks/compare.py [--threads 2] [--repeats 5] [--cases toy-relu-late,...]
                                 [--dtypes float64,float32] [--no-torch]

For every case and dtype each side runs in its own process (no thread pool of one side
spins during the other's timing), on the same data and the same initial weights, both
written once by this process. Each side is timed at two run lengths e1 < e2 (median over
``repeats``): per-epoch cost = (t(e2) − t(e1)) / (e2 − e1), per-call overhead = t(e1) −
e1 x per-epoch (ours: ``linfusion.train`` with its checks and setup; PyTorch: building the
modules and tensors). Before timing, both sides train 3 epochs from the same weights and the
table reports how far apart their losses and final weights are (float64: rounding ~1e-15;
float32: ~1e-6). The machine's matrix-product rate (numpy matmul of the cases' product
shapes and of a 2048-square product, 1 and ``threads`` threads, in a subprocess each) and
the GFlop/s our sample path achieves are printed after the table, and the load average
before and after.

Flops per epoch count every weight block's products (forward, weight gradient and, unless
its source is an input, the error sent down: 2 n rows cols each), not the elementwise work.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))      # this checkout's linfusion

CASES = {   # name: net (in_dims, out, width, depth, fuse, slope), data, n, run lengths, lr
    "toy-relu-late": dict(in_dims=(1, 1), out=1, width=100, depth=2, fuse=2, data="toy", n=8192,
                          epochs=(20, 220), lr=0.04),
    "deep-relu-L4-Lf2": dict(in_dims=(1, 1), out=1, width=100, depth=4, fuse=2, data="toy", n=8192,
                             epochs=(5, 45), lr=0.01),
    "784+784-relu-w100": dict(in_dims=(784, 784), out=10, width=100, depth=2, fuse=2, data="gauss",
                              n=5000, epochs=(2, 12), lr=0.01),
    "784+784-relu-w500": dict(in_dims=(784, 784), out=10, width=500, depth=2, fuse=2, data="gauss",
                              n=5000, epochs=(1, 5), lr=0.01),
}
CHECK_EPOCHS = 3


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def make_inputs(name, path):
    """Data and initial weights of a case, written to ``path`` (.npz) for both sides."""
    import linfusion as lf
    c = CASES[name]
    net = lf.FusionNet(c["in_dims"], c["out"], c["width"], c["depth"], c["fuse"], slope=0.0)
    if c["data"] == "toy":
        ds = lf.data.toy(rho=0.0, ratio=2.0, n=c["n"], rng=0)
        xs, y = list(ds.xs), ds.y
    else:                       # Gaussian inputs, a random linear teacher of 10 outputs, noise
        rng = np.random.default_rng(0)
        xs = [rng.standard_normal((c["n"], d)) for d in c["in_dims"]]
        x = np.concatenate(xs, axis=1)
        y = x @ (rng.standard_normal((c["out"], x.shape[1])) / np.sqrt(x.shape[1])).T
        y += 0.1 * rng.standard_normal(y.shape)
    w0 = net.init("layer", 1.0, 1)
    np.savez(path, w0=w0, y=y, **{f"x{k}": x for k, x in enumerate(xs)})


# ---------------------------------------------------------------------- the two sides (worker processes)
def ours(case, dtype, inputs, threads, repeats):
    """Our sample path. Per-epoch cost timed through ``linfusion._engine.fit`` (what ``train``
    calls after its checks); per-call overhead reported for both ``fit`` and ``train`` (which
    today also computes Σxx, a least-squares fit and an eigenvalue bound for its stability
    warning: seconds at D = 1568)."""
    import linfusion as lf
    from linfusion import _engine
    from linfusion.data import from_arrays
    lf.set_threads(threads)
    c = CASES[case]
    z = np.load(inputs)
    xs = [z[f"x{k}"] for k in range(len(c["in_dims"]))]
    data = from_arrays(xs, z["y"])
    net = lf.FusionNet(c["in_dims"], c["out"], c["width"], c["depth"], c["fuse"], slope=0.0)
    dt = np.dtype(dtype)
    first = lf.train(net, data, lr=c["lr"], epochs=CHECK_EPOCHS, w0=z["w0"], path="sample", dtype=dt)

    def run(e):
        _engine.fit(net, "sample", z["w0"][None].copy(), datas=[data], lrs=c["lr"], wds=0.0, loss="mse",
                    epochs=e, record_every=e, tol=0.0, dtype=dt)

    def train_call():
        t = time.perf_counter()
        lf.train(net, data, lr=c["lr"], epochs=1, w0=z["w0"], path="sample", dtype=dt)
        return time.perf_counter() - t
    run.train_call = train_call
    return first.loss.tolist(), first.w, run


def torch_side(case, dtype, inputs, threads, repeats):
    import torch
    torch.set_num_threads(threads)
    c = CASES[case]
    tdt = {"float64": torch.float64, "float32": torch.float32}[dtype]
    z = np.load(inputs)
    K, L, Lf, h, out = len(c["in_dims"]), c["depth"], c["fuse"], c["width"], c["out"]
    import linfusion as lf
    net = lf.FusionNet(c["in_dims"], out, h, L, Lf, slope=0.0)
    blocks = net.unpack(z["w0"])

    def linear(name, fan_in, fan_out):
        lin = torch.nn.Linear(fan_in, fan_out, bias=False, dtype=tdt)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(blocks[name])))
        return lin

    class Fusion(torch.nn.Module):
        """The FusionNet family in PyTorch: encoders per modality, fusion blocks summed, shared layers."""

        def __init__(self):
            super().__init__()
            self.enc = torch.nn.ModuleList(torch.nn.ModuleList(
                linear(f"W{l}_{k}", c["in_dims"][k] if l == 1 else h, h) for l in range(1, Lf))
                for k in range(K))
            fuse_out = out if Lf == L else h
            self.fuse = torch.nn.ModuleList(linear(f"W{Lf}_{k}", c["in_dims"][k] if Lf == 1 else h, fuse_out)
                                            for k in range(K))
            self.post = torch.nn.ModuleList(linear(f"W{l}", h, out if l == L else h)
                                            for l in range(Lf + 1, L + 1))

        def forward(self, xs):
            zsum = 0
            for k in range(K):
                a = xs[k]
                for layer in self.enc[k]:
                    a = torch.relu(layer(a))
                zsum = zsum + self.fuse[k](a)
            for layer in self.post:
                zsum = layer(torch.relu(zsum))
            return zsum

    def build():
        xs = [torch.from_numpy(np.ascontiguousarray(z[f"x{k}"], dtype=dtype)) for k in range(K)]
        y = torch.from_numpy(np.ascontiguousarray(z["y"], dtype=dtype))
        model = Fusion()
        return model, xs, y, torch.optim.SGD(model.parameters(), lr=c["lr"])

    def step(model, xs, y, opt):
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * ((model(xs) - y) ** 2).sum() / y.shape[0]       # ½ <|y − ŷ|²>, as ours
        loss.backward()
        opt.step()
        return float(loss.detach())

    def run(e):
        model, xs, y, opt = build()
        for _ in range(e):
            step(model, xs, y, opt)

    model, xs, y, opt = build()
    losses = [step(model, xs, y, opt) for _ in range(CHECK_EPOCHS)]
    with torch.no_grad():
        losses.append(float(0.5 * ((model(xs) - y) ** 2).sum() / y.shape[0]))
        w = np.zeros(net.n_params)
        final = {}
        for k in range(K):
            for i, layer in enumerate(model.enc[k]):
                final[f"W{i + 1}_{k}"] = layer.weight.double().numpy()
            final[f"W{Lf}_{k}"] = model.fuse[k].weight.double().numpy()
        for i, layer in enumerate(model.post):
            final[f"W{Lf + 1 + i}"] = layer.weight.double().numpy()
        view = net.unpack(w)
        for name, value in final.items():
            view[name][:] = value
    return losses, w, run


def worker(args):
    side = {"ours": ours, "torch": torch_side}[args.side]
    losses, w, run = side(args.case, args.dtype, args.inputs, args.threads, args.repeats)
    e1, e2 = CASES[args.case]["epochs"]
    per_epoch, overhead = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        run(e1)
        t1 = time.perf_counter()
        run(e2)
        t2 = time.perf_counter()
        pe = ((t2 - t1) - (t1 - t0)) / (e2 - e1)
        per_epoch.append(pe)
        overhead.append((t1 - t0) - e1 * pe)
    out = dict(per_epoch=per_epoch, overhead=overhead, losses=losses)
    if hasattr(run, "train_call"):
        pe = statistics.median(per_epoch)
        out["train_overhead"] = [run.train_call() - pe for _ in range(args.repeats)]
    np.save(args.inputs + f".{args.side}.{args.dtype}.w.npy", w)
    print(json.dumps(out))


# ---------------------------------------------------------------------- machine rate
_RATE = """
import json, sys, time
import numpy as np
shapes, dtype = json.loads(sys.argv[1]), sys.argv[2]
out = []
for m, k, n in shapes:
    a = np.random.default_rng(0).standard_normal((m, k)).astype(dtype)
    b = np.random.default_rng(1).standard_normal((k, n)).astype(dtype)
    c = a @ b
    ts = []
    for _ in range(5):
        t = time.perf_counter(); np.matmul(a, b, out=c); ts.append(time.perf_counter() - t)
    out.append(2 * m * k * n / sorted(ts)[len(ts) // 2] / 1e9)
print(json.dumps(out))
"""


def matmul_rates(shapes, dtype, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", _RATE, json.dumps(shapes), dtype], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def case_flops(name):
    """Flops of one epoch's matrix products (forward, weight gradients, errors sent down)."""
    c = CASES[name]
    n, h, L, Lf, out = c["n"], c["width"], c["depth"], c["fuse"], c["out"]
    total = 0
    for d in c["in_dims"]:
        for layer in range(1, Lf):
            fan_in = d if layer == 1 else h
            total += 2 * n * h * fan_in * (2 + (layer > 1))
        total += 2 * n * (out if Lf == L else h) * (d if Lf == 1 else h) * (2 + (Lf > 1))
    for layer in range(Lf + 1, L + 1):
        total += 2 * n * (out if layer == L else h) * h * 3
    return total


def case_shapes(name):
    """The largest forward product of the case, as numpy matmul shapes (m, k, n)."""
    c = CASES[name]
    d = max(c["in_dims"])
    if d >= 16:
        return [c["n"], d, c["width"]]
    return [c["n"], c["width"], c["width"]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--worker", nargs=3, metavar=("SIDE", "CASE", "DTYPE"), help=argparse.SUPPRESS)
    ap.add_argument("--inputs", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        args.side, args.case, args.dtype = args.worker
        worker(args)
        return 0
    cases, dtypes = args.cases.split(","), args.dtypes.split(",")
    sides = ["ours"] + ([] if args.no_torch else ["torch"])
    print(f"load average before: {load()} ({os.cpu_count()} cores); {args.threads} threads per side; "
          f"medians of {args.repeats}")
    print("| case | dtype | ours ms/epoch | PyTorch ms/epoch | speed-up | ours overhead ms (engine / train) "
          "| PyTorch overhead ms | ours GFlop/s | loss agreement | weight agreement |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    achieved = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            inputs = os.path.join(tmp, f"{case}.npz")
            make_inputs(case, inputs)
            for dtype in dtypes:
                res = {}
                for side in sides:
                    cmd = [sys.executable, __file__, "--worker", side, case, dtype, "--inputs", inputs,
                           "--threads", str(args.threads), "--repeats", str(args.repeats)]
                    p = subprocess.run(cmd, capture_output=True, text=True)
                    if p.returncode:
                        raise RuntimeError(f"{side} {case} {dtype} failed:\n{p.stderr}")
                    res[side] = json.loads(p.stdout.strip().splitlines()[-1])
                    res[side]["w"] = np.load(inputs + f".{side}.{dtype}.w.npy")
                o = res["ours"]
                pe = statistics.median(o["per_epoch"])
                gf = case_flops(case) / pe / 1e9
                achieved[(case, dtype)] = gf
                row = f"| {case} | {dtype} | {pe * 1e3:.3g} | "
                ovh = (f"{statistics.median(o['overhead']) * 1e3:.3g} / "
                       f"{statistics.median(o['train_overhead']) * 1e3:.3g}")
                if "torch" in res:
                    t = res["torch"]
                    tpe = statistics.median(t["per_epoch"])
                    dl = max(abs(a - b) / abs(b) for a, b in zip(o["losses"], t["losses"]))
                    dw = float(np.max(np.abs(o["w"] - t["w"])) / np.max(np.abs(t["w"])))
                    row += (f"{tpe * 1e3:.3g} | {tpe / pe:.2f}x | {ovh} | "
                            f"{statistics.median(t['overhead']) * 1e3:.3g} | {gf:.3g} | {dl:.1e} | {dw:.1e} |")
                else:
                    row += f"n/a | n/a | {ovh} | n/a | {gf:.3g} | n/a | n/a |"
                print(row, flush=True)
    print(f"\nload average after the table: {load()}")
    print("\nmachine matrix-product rate (numpy matmul, median of 5) and what our sample path reaches:")
    print("| product (m, k, n) | dtype | 1 thread GFlop/s | "
          f"{args.threads} threads GFlop/s |")
    print("|---|---|---|---|")
    shapes = []
    for s in [case_shapes(c) for c in cases] + [[2048, 2048, 2048]]:
        if s not in shapes:
            shapes.append(s)
    rates = {}
    for dtype in dtypes:
        r1 = matmul_rates(shapes, dtype, 1)
        rt = matmul_rates(shapes, dtype, args.threads)
        for s, a, b in zip(shapes, r1, rt):
            rates[(tuple(s), dtype)] = b
            print(f"| {tuple(s)} | {dtype} | {a:.3g} | {b:.3g} |")
    print("\n| case | dtype | ours GFlop/s | % of the machine's rate on its largest product "
          "| % of the 2048-square rate |")
    print("|---|---|---|---|---|")
    for (case, dtype), gf in achieved.items():
        own = rates[(tuple(case_shapes(case)), dtype)]
        sq = rates[((2048, 2048, 2048), dtype)]
        print(f"| {case} | {dtype} | {gf:.3g} | {100 * gf / own:.0f} % | {100 * gf / sq:.0f} % |")
    print(f"\nload average at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
