"""Side-by-side speed: our two paths, plain NumPy, and a PyTorch loop like the original code's.

    python benchmarks/compare.py [--repeats 5] [--no-sweep] [--no-memory]

For each case every implementation trains the same network on the same data by full-batch
gradient descent, in the same run; the table gives median microseconds per epoch and the
speed-up of our fastest applicable path over each other implementation. PyTorch is
optional (``pip install torch==2.13.0`` gives a CPU build here); its loop is written the
way the original code trains: ``nn.Linear`` layers, autograd, ``torch.optim.SGD``, float32
(torch's default, as in the original). Then the toy late-fusion sweep end to end on 1 and
2 workers, and the peak memory of a 10 000-point sweep with trajectories off.
"""
import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import linfusion as lf
from linfusion import sweep


# ------------------------------------------------------------------ plain NumPy training
def numpy_trainer(net, data, lr):
    """A plain NumPy full-batch GD loop for ``net`` (matrix products, hand-written backward)."""
    xs, y = data.xs, data.y
    n = y.shape[0]
    L, Lf, s = net.depth, net.fuse_depth, net.slope
    w = net.init("entry", 0.1, 0)               # the initial weights ours() draws
    mats = net.unpack(w)                       # views into w, updated in place
    enc = [[mats[f"W{l}_{k}"] for l in range(1, Lf + 1)] for k in range(net.n_modalities)]
    post = [mats[f"W{l}"] for l in range(Lf + 1, L + 1)]

    def act(z, last):
        return z if last or s == 1.0 else np.where(z > 0, z, s * z)

    def epoch():
        hs = []                                # per modality: activations entering each layer
        z_fuse = 0.0
        for k in range(net.n_modalities):
            h = [xs[k]]
            for l, W in enumerate(enc[k]):
                z = h[-1] @ W.T
                if l < Lf - 1:
                    h.append(act(z, False))
                else:
                    z_fuse = z_fuse + z
            hs.append(h)
        a = [act(z_fuse, Lf == L)]
        for l, W in enumerate(post):
            a.append(act(a[-1] @ W.T, Lf + l + 1 == L))
        d = (a[-1] - y) / n
        grads = []
        for l in range(len(post) - 1, -1, -1):
            grads.append((post[l], d.T @ a[l]))
            d = d @ post[l]
            d = d * np.where(a[l] > 0, 1.0, s) if s != 1.0 else d
        for k in range(net.n_modalities):
            dk = d
            for l in range(Lf - 1, -1, -1):
                W = enc[k][l]
                grads.append((W, dk.T @ hs[k][l]))
                if l > 0:
                    dk = dk @ W
                    dk = dk * np.where(hs[k][l] > 0, 1.0, s) if s != 1.0 else dk
        for W, g in grads:
            W -= lr * g
    epoch.w = w
    return epoch


# ------------------------------------------------------------------ PyTorch, as the original trains
def torch_trainer(net, data, lr):
    """autograd + torch.optim.SGD on nn.Linear layers (float32), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    K, L, Lf, h = net.n_modalities, net.depth, net.fuse_depth, net.width
    fuse_out = net.out_dim if Lf == L else h
    act = torch.nn.LeakyReLU(net.slope) if net.slope != 1.0 else torch.nn.Identity()

    class Fusion(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.nn.ModuleList(torch.nn.ModuleList(
                torch.nn.Linear(d if l == 0 else h, h, bias=net.bias) for l in range(Lf - 1))
                for d in net.in_dims)
            self.fuse = torch.nn.ModuleList(torch.nn.Linear(d if Lf == 1 else h, fuse_out, bias=False)
                                            for d in net.in_dims)
            self.post = torch.nn.ModuleList(torch.nn.Linear(h, net.out_dim if l == L else h, bias=net.bias)
                                            for l in range(Lf + 1, L + 1))

        def forward(self, xs):
            z = 0
            for k in range(K):
                hk = xs[k]
                for layer in self.enc[k]:
                    hk = act(layer(hk))
                z = z + self.fuse[k](hk)
            for layer in self.post:
                z = layer(act(z))
            return z

    model = Fusion()
    xs = [torch.tensor(x, dtype=torch.float32) for x in data.xs]
    y = torch.tensor(data.y, dtype=torch.float32)
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def epoch():
        opt.zero_grad()
        loss = 0.5 * ((model(xs) - y) ** 2).mean()
        loss.backward()
        opt.step()
    return epoch


# ------------------------------------------------------------------ timing
def median_per_epoch(run, epochs, repeats):
    run(2)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(epochs)
        times.append((time.perf_counter() - t0) / epochs)
    return statistics.median(times)


def loop(epoch_fn):
    def run(e):
        for _ in range(e):
            epoch_fn()
    return run


def ours(net, data, path):
    def run(e):
        lf.train(net, data, lr=0.001, epochs=e, init="entry", scale=0.1, rng=0, path=path)
    return run


def cases():
    toy = lf.data.toy(rho=0.0, ratio=2.0, n=8192, rng=0)
    multi = lf.data.multi(dim=100, n=700, noise=0.5, rng=0)
    return [
        ("toy late fusion, linear", lf.FusionNet.late((1, 1), width=100), toy),
        ("toy early fusion, linear", lf.FusionNet.early((1, 1), width=100), toy),
        ("toy late fusion, ReLU", lf.FusionNet.late((1, 1), width=100, slope=0.0), toy),
        ("multi D=100 n=700, late", lf.FusionNet.late((50, 50), width=100), multi),
        ("multi D=100 n=700, early", lf.FusionNet.early((50, 50), width=100), multi),
        ("deep L=4 L_f=2, linear", lf.FusionNet.deep((1, 1), width=100, depth=4, fuse_depth=2), toy),
        ("deep L=4 L_f=4, linear", lf.FusionNet.deep((1, 1), width=100, depth=4, fuse_depth=4), toy),
    ]


def check_same(net, data, epochs=3):
    """Relative difference between the NumPy loop and ours after a few epochs (same w0)."""
    step = numpy_trainer(net, data, 0.001)
    for _ in range(epochs):
        step()
    r = lf.train(net, data, lr=0.001, epochs=epochs, init="entry", scale=0.1, rng=0, path="sample")
    return float(np.max(np.abs(step.w - r.w)) / np.max(np.abs(r.w)))


def speed_table(repeats):
    print("| case | moment path | sample path | NumPy | PyTorch (float32) | speed-up vs NumPy | "
          "speed-up vs PyTorch |")
    print("|---|---|---|---|---|---|---|")
    for name, net, data in cases():
        t = {}
        linear = net.slope == 1.0
        if linear:
            t["moment"] = median_per_epoch(ours(net, data, "moment"), 20000 if net.depth == 2 and net.in_dim < 10 else 2000, repeats)
        t["sample"] = median_per_epoch(ours(net, data, "sample"), 20, repeats)
        diff = check_same(net, data)
        if diff > 1e-10:
            raise RuntimeError(f"{name}: the NumPy loop and ours differ by {diff:.2g}; not the same training")
        t["numpy"] = median_per_epoch(loop(numpy_trainer(net, data, 0.001)), 10, repeats)
        tt = torch_trainer(net, data, 0.001)
        t["torch"] = median_per_epoch(loop(tt), 10, repeats) if tt else None
        best = min(v for k, v in t.items() if k in ("moment", "sample"))

        def us(v):
            return "n/a" if v is None else f"{v * 1e6:,.3g} µs"

        def ratio(v):
            return "n/a" if v is None else f"{v / best:,.0f}×"
        print(f"| {name} | {us(t.get('moment'))} | {us(t['sample'])} | {us(t['numpy'])} | "
              f"{us(t['torch'])} | {ratio(t['numpy'])} | {ratio(t['torch'])} |", flush=True)


# ------------------------------------------------------------------ sweeps
def toy_sweep_configs():
    return sweep.grid(arch="late", data="toy", ratio=[3.0, 2.0, 1.5, 1.0],
                      rho=list(np.linspace(-0.9, 0.9, 9)), repeat=list(range(5)),
                      epochs=40000, tol=1e-4, lr=0.04, scale=1e-9, width=100, n=8192)


def sweep_table():
    configs = toy_sweep_configs()
    print(f"\n| toy late-fusion sweep ({len(configs)} runs, linear, <= 40 000 epochs, tol 1e-4) | wall time |")
    print("|---|---|")
    for workers in (1, 2):
        t0 = time.perf_counter()
        sweep.run_sweep(configs, seed=0, workers=workers, progress=False)
        print(f"| {workers} worker{'s' if workers > 1 else ''} | {time.perf_counter() - t0:.1f} s |", flush=True)


_MEMORY_CHILD = """
import resource, sys
import linfusion.sweep as sw
cfg = sw.grid(arch="late", data="toy", n=256, width=20, epochs=200, repeat=list(range(10000)))
res = sw.run_sweep(cfg, seed=0, workers=1, progress=False, cache_dir=sys.argv[1])
print(len(res.table), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def memory_line():
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, cache], capture_output=True, text=True,
                             check=True).stdout.split()
    print(f"\nsweep of {out[0]} points, trajectories off, cache on: peak resident memory "
          f"{int(out[1]) / 1024:.0f} MiB")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args(argv)
    speed_table(args.repeats)
    if not args.no_sweep:
        sweep_table()
    if not args.no_memory:
        memory_line()
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
