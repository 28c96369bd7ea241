"""The fusion-network family: depth L, fusion layer L_f, K modalities.

Layers 1 .. L_f-1 are per-modality encoders of width ``width``; layer L_f (the fusion
layer) sees the concatenation of the encoders' outputs (the raw inputs when L_f = 1);
layers L_f+1 .. L are shared, and the last one has ``out_dim`` units. A leaky ReLU of
negative slope ``slope`` (1 = linear, 0 = ReLU) follows every layer but the last.

All weights of one network live in one flat float64 vector. ``FusionNet.layout`` is the
table that says where each block sits:

======  ======  ======  ========  =====  ====
offset  rows    cols    modality  layer  kind
======  ======  ======  ========  =====  ====

``modality`` is the index of the modality whose path the block lies on, or -1 for a shared
block; ``layer`` is 1-based; ``kind`` is 0 for a weight matrix (rows x cols, row-major,
``rows`` output units) and 1 for a bias (rows x 1). The fusion layer has one weight block
per modality (the column block F_k of the fusion matrix) and one shared bias.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .validation import check_array, check_choice, check_int, check_rng, check_scalar

__all__ = ["FusionNet", "INIT_SCHEMES", "default_scale"]

INIT_SCHEMES = ("entry", "layer", "balanced")


def default_scale(scheme):
    """The initialisation scale a scheme uses when none is given.

    1e-9 for ``entry`` (the paper's two-layer nets), 0.1 for ``layer`` and ``balanced`` (its
    deep nets).
    """
    check_choice("scheme", scheme, INIT_SCHEMES)
    return 1e-9 if scheme == "entry" else 0.1


def _std(scale, num, den):
    """√(num · scale² / den), also for scales whose square under- or overflows float64."""
    with np.errstate(over="ignore", under="ignore"):
        sq = float(np.float64(scale) ** 2)
    if np.isfinite(sq) and sq >= np.finfo(np.float64).tiny:
        return float(np.sqrt(num * sq / den))
    return float(scale * np.sqrt(num / den))


@dataclass(frozen=True)
class FusionNet:
    """A fusion network of depth L with fusion at layer L_f.

    Parameters
    ----------
    in_dims : tuple of int
        Input dimension of each modality (K >= 1 entries). By the toolkit's convention
        modality 0 is A, the first-learned, larger-variance one.
    out_dim : int
        Output dimension.
    width : int
        Width h of every hidden layer (per modality in the encoders).
    depth : int
        Total number of weight layers L >= 1.
    fuse_depth : int
        Index L_f of the fusion layer, 1 <= L_f <= L (1: early, L: late fusion).
    slope : float
        Leaky-ReLU negative slope in [0, 1]; 1 is linear, 0 is ReLU.
    bias : bool
        Whether every layer has a bias.
    """

    in_dims: tuple
    out_dim: int = 1
    width: int = 100
    depth: int = 2
    fuse_depth: int = 2
    slope: float = 1.0
    bias: bool = False
    layout: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        dims = self.in_dims
        if isinstance(dims, (int, np.integer)):
            dims = (dims,)
        try:
            dims = tuple(dims)
        except TypeError:
            raise TypeError(f"in_dims == {self.in_dims!r}, must be a tuple of positive integers.") from None
        if len(dims) < 1:
            raise ValueError("in_dims == (), must name at least one modality.")
        dims = tuple(check_int(f"in_dims[{k}]", d, lo=1) for k, d in enumerate(dims))
        object.__setattr__(self, "in_dims", dims)
        object.__setattr__(self, "out_dim", check_int("out_dim", self.out_dim, lo=1))
        object.__setattr__(self, "width", check_int("width", self.width, lo=1))
        object.__setattr__(self, "depth", check_int("depth", self.depth, lo=1))
        object.__setattr__(self, "fuse_depth",
                           check_int("fuse_depth", self.fuse_depth, lo=1, hi=self.depth, hi_name="depth"))
        object.__setattr__(self, "slope", check_scalar("slope", self.slope, lo=0.0, hi=1.0))
        object.__setattr__(self, "bias", bool(self.bias))
        object.__setattr__(self, "layout", self._build_layout())

    # ------------------------------------------------------------------ constructors
    @classmethod
    def shallow(cls, in_dims=(1, 1), out_dim=1, **kw):
        """A single linear layer, ŷ = W x (L = L_f = 1)."""
        return cls(in_dims, out_dim, depth=1, fuse_depth=1, **kw)

    @classmethod
    def early(cls, in_dims=(1, 1), out_dim=1, width=100, depth=2, **kw):
        """Early fusion: the first layer sees all modalities (L_f = 1)."""
        return cls(in_dims, out_dim, width, depth, 1, **kw)

    @classmethod
    def late(cls, in_dims=(1, 1), out_dim=1, width=100, depth=2, **kw):
        """Late fusion: one branch per modality, summed at the output (L_f = L)."""
        return cls(in_dims, out_dim, width, depth, depth, **kw)

    @classmethod
    def deep(cls, in_dims=(1, 1), out_dim=1, width=100, depth=4, fuse_depth=2, **kw):
        """Deep fusion network, the paper's L = 4 family with any fusion layer."""
        return cls(in_dims, out_dim, width, depth, fuse_depth, **kw)

    # ------------------------------------------------------------------ layout
    @property
    def n_modalities(self):
        """Number of modalities K."""
        return len(self.in_dims)

    @property
    def in_dim(self):
        """Total input dimension D = sum of ``in_dims``."""
        return int(sum(self.in_dims))

    @property
    def n_params(self):
        """Length of the flat weight vector."""
        last = self.layout[-1]
        return int(last[0] + last[1] * last[2])

    @property
    def in_slices(self):
        """Column slice of each modality in the concatenated input."""
        edges = np.concatenate([[0], np.cumsum(self.in_dims)])
        return tuple(slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]))

    def _build_layout(self):
        h, L, Lf = self.width, self.depth, self.fuse_depth
        rows = []
        off = 0

        def add(r, c, mod, layer, kind):
            nonlocal off
            rows.append((off, r, c, mod, layer, kind))
            off += r * c

        for k, d in enumerate(self.in_dims):
            for layer in range(1, Lf):
                add(h, d if layer == 1 else h, k, layer, 0)
                if self.bias:
                    add(h, 1, k, layer, 1)
        fuse_out = self.out_dim if Lf == L else h
        for k, d in enumerate(self.in_dims):
            add(fuse_out, d if Lf == 1 else h, k, Lf, 0)
        if self.bias:
            add(fuse_out, 1, -1, Lf, 1)
        for layer in range(Lf + 1, L + 1):
            add(self.out_dim if layer == L else h, h, -1, layer, 0)
            if self.bias:
                add(self.out_dim if layer == L else h, 1, -1, layer, 1)
        return np.array(rows, dtype=np.int64)

    def blocks(self, w, *, modality=None, layer=None, kind=0):
        """Views of the blocks of ``w`` selected by modality, layer and kind.

        Parameters
        ----------
        w : ndarray of shape (n_params,)
        modality, layer : int, optional
            Keep only blocks on that modality's path (-1: shared) / in that layer.
        kind : {0, 1}
            0 for weight matrices (rows, cols), 1 for biases (rows,).

        Returns
        -------
        list of ndarray
            Views into ``w`` in layout order.
        """
        out = []
        for off, r, c, m, lay, kd in self.layout:
            if kd != kind or (modality is not None and m != modality) or (layer is not None and lay != layer):
                continue
            blk = w[off:off + r * c]
            out.append(blk.reshape(r, c) if kd == 0 else blk)
        return out

    def unpack(self, w):
        """Dictionary of named views: ``W{layer}_{modality}`` / ``W{layer}`` (shared), ``b...`` for biases."""
        w = self._check_w(w)
        names = {}
        for off, r, c, m, lay, kd in self.layout:
            name = ("W" if kd == 0 else "b") + str(lay) + (f"_{m}" if m >= 0 else "")
            blk = w[off:off + r * c]
            names[name] = blk.reshape(r, c) if kd == 0 else blk
        return names

    def _check_w(self, w):
        return check_array("w", w, ndim=1, shape=(self.n_params,), finite=False)

    # ------------------------------------------------------------------ forward pass
    def _check_inputs(self, xs):
        """Per-modality input matrices (n, d_k) from a sequence of them or one (n, D) array."""
        if isinstance(xs, np.ndarray) or (hasattr(xs, "ndim") and not isinstance(xs, (list, tuple))):
            x = check_array("xs", xs, ndim=2, shape=(None, self.in_dim))
            return tuple(x[:, sl] for sl in self.in_slices)
        if not isinstance(xs, (list, tuple)) or len(xs) != self.n_modalities:
            raise TypeError(f"xs is a {type(xs).__name__}"
                            f"{' of length ' + str(len(xs)) if isinstance(xs, (list, tuple)) else ''}, must be "
                            f"{self.n_modalities} arrays (n, d_k), one per modality, or one array (n, {self.in_dim}).")
        out = tuple(check_array(f"xs[{k}]", x, ndim=2, shape=(None, d))
                    for k, (x, d) in enumerate(zip(xs, self.in_dims)))
        n = {x.shape[0] for x in out}
        if len(n) > 1:
            raise ValueError(f"xs have {sorted(n)} rows, must all have the same number of samples.")
        return out

    def forward(self, w, xs):
        """The network's output on inputs ``xs`` (NumPy, float64).

        Layer by layer: z = W h + b, and the leaky ReLU φ(z) = z (z > 0), slope·z (z <= 0)
        after every layer but the last; the fusion layer sums its column blocks F_k h_k
        (plus its one bias). The loss the engine minimises is ½ <|y − ŷ|²> of this output
        (squared loss).

        Parameters
        ----------
        w : ndarray of shape (n_params,)
            Flat weights (e.g. ``TrainResult.w``).
        xs : sequence of ndarray of shape (n, d_k), or ndarray of shape (n, D)
            Inputs of each modality, or all of them side by side (``Dataset.x``).

        Returns
        -------
        ndarray of shape (n, out_dim)
        """
        w = self._check_w(w)
        xs = self._check_inputs(xs)
        slope = self.slope

        def phi(z):
            return z if slope == 1.0 else np.where(z > 0, z, slope * z)

        def bias(modality, layer):
            return self.blocks(w, modality=modality, layer=layer, kind=1)[0] if self.bias else 0.0

        Lf, L = self.fuse_depth, self.depth
        hs = []
        for k, h in enumerate(xs):
            for layer in range(1, Lf):
                h = phi(h @ self.blocks(w, modality=k, layer=layer)[0].T + bias(k, layer))
            hs.append(h)
        z = sum(h @ self.blocks(w, modality=k, layer=Lf)[0].T for k, h in enumerate(hs)) + bias(-1, Lf)
        for layer in range(Lf + 1, L + 1):
            z = phi(z) @ self.blocks(w, modality=-1, layer=layer)[0].T + bias(-1, layer)
        return np.ascontiguousarray(z)

    # ------------------------------------------------------------------ end-to-end weights
    def w_tot(self, w):
        """End-to-end weights of each modality: the product of the weight matrices on its path.

        Activations and biases are ignored, as the paper measures: for linear nets
        ŷ = sum_k W_k^tot x_k exactly; for ReLU nets W^tot is bookkeeping.

        Returns
        -------
        list of ndarray of shape (out_dim, d_k)
        """
        w = self._check_w(w)
        post = np.eye(self.out_dim)
        for layer in range(self.depth, self.fuse_depth, -1):
            post = post @ self.blocks(w, modality=-1, layer=layer)[0]
        out = []
        for k in range(self.n_modalities):
            m = post
            for layer in range(self.fuse_depth, 0, -1):
                m = m @ self.blocks(w, modality=k, layer=layer)[0]
            out.append(m)
        return out

    # ------------------------------------------------------------------ initialisation
    def init(self, scheme="entry", scale=None, rng=None, *, align=None):
        """Draw an initial flat weight vector.

        Parameters
        ----------
        scheme : {'entry', 'layer', 'balanced'}
            ``entry``: every weight N(0, scale²) (the paper's two-layer nets).
            ``layer``: every weight block has Frobenius norm about ``scale`` before the
            fusion layer and about √2·scale from the fusion layer on, i.e. entries
            N(0, scale²/n) resp. N(0, 2 scale²/n) for a block of n entries (the paper's
            deep nets; each fusion column block F_k then has norm about ``scale``).
            ``balanced``: exactly balanced rank-one weights aligned with ``align``: every
            layer on modality k's path up to the fusion layer is ``u0 · v uᵀ`` with unit
            vectors chained from layer to layer, the first one along ``align``'s block k;
            shared layers have scale √K·u0, so every conserved quantity of theory.md §5 is
            exactly zero and the scalar-chain theory of §6.6 applies from the first step.
        scale : float, optional
            The initialisation scale u0 (> 0); default :func:`default_scale` of the scheme.
        rng : int, Generator or SeedSequence, optional
            Source of randomness (``np.random.default_rng`` accepts it).
        align : ndarray of shape (out_dim, D), optional
            Required by ``balanced``: the end-to-end direction to align with. Pass the
            weights the network should end at (e.g. the least-squares solution Σyx Σ⁻¹, or
            W*): a rank-one balanced chain cannot change the sign of a path, so aligning
            with Σyx fails where a block of Σyx and of the solution have opposite signs
            (toy data with rho < -1/ratio).

        Returns
        -------
        ndarray of shape (n_params,)
            Biases start at zero.
        """
        check_choice("scheme", scheme, INIT_SCHEMES)
        scale = default_scale(scheme) if scale is None else check_scalar("scale", scale, lo=0.0, lo_open=True)
        rng = np.random.default_rng(check_rng("rng", rng))
        w = np.zeros(self.n_params)
        if scheme == "entry":
            for off, r, c, m, lay, kd in self.layout:
                if kd == 0:
                    w[off:off + r * c] = scale * rng.standard_normal(r * c)
            return w
        if scheme == "layer":
            lay_all = self.layout[:, 4]
            weights = self.layout[:, 5] == 0
            fuse = weights & (lay_all == self.fuse_depth)
            n_fuse = int(np.sum(self.layout[fuse, 1] * self.layout[fuse, 2]))   # whole fusion matrix
            for off, r, c, m, lay, kd in self.layout:
                if kd == 0:
                    std = _std(scale, 1.0, r * c) if lay < self.fuse_depth else _std(
                        scale, 2.0, n_fuse if lay == self.fuse_depth else r * c)
                    w[off:off + r * c] = std * rng.standard_normal(r * c)
            return w
        return self._balanced(w, scale, rng, align)

    def _balanced(self, w, u0, rng, align):
        if align is None:
            raise ValueError("align == None, must be given (shape (out_dim, D)) for scheme 'balanced'.")
        align = check_array("align", np.atleast_2d(align), ndim=2, shape=(self.out_dim, self.in_dim))
        h, K = self.width, self.n_modalities
        # Output direction: the top left singular vector of align; input direction per
        # modality: align_k projected on it. Hidden directions are random unit vectors.
        u_out, _, _ = np.linalg.svd(align)
        q = u_out[:, 0]
        if q.sum() < 0:
            q = -q

        def unit(n):
            v = rng.standard_normal(n)
            return v / np.linalg.norm(v)

        Lf, L = self.fuse_depth, self.depth
        hidden_fuse = unit(h) if Lf < L else q       # output of the fusion layer
        for k, sl in enumerate(self.in_slices):
            p = q @ align[:, sl]
            nrm = np.linalg.norm(p)
            if nrm == 0:
                raise ValueError(f"align[:, {sl.start}:{sl.stop}] (modality {k}) is zero, "
                                 "must be nonzero for scheme 'balanced'.")
            prev = p / nrm
            for layer in range(1, Lf + 1):
                nxt = unit(h) if layer < Lf else hidden_fuse
                self.blocks(w, modality=k, layer=layer)[0][:] = u0 * np.outer(nxt, prev)
                prev = nxt
        prev = hidden_fuse
        v = np.sqrt(K) * u0
        for layer in range(Lf + 1, L + 1):
            nxt = q if layer == L else unit(h)
            self.blocks(w, modality=-1, layer=layer)[0][:] = v * np.outer(nxt, prev)
            prev = nxt
        return w
