"""The plain-language report of a :class:`theory.diagnosis.Diagnosis` (private)."""
from __future__ import annotations

import numpy as np

__all__ = []


def _t(x):
    return "never" if not np.isfinite(x) else f"{x:.0f}"


def _pct(x, signed=False):
    if not np.isfinite(x):
        return "n/a"
    return f"{x:+.1%}" if signed else f"{x:.1%}"


def _dev(sim, pred):
    if not (np.isfinite(sim) and np.isfinite(pred)) or pred == 0:
        return "n/a"
    return f"{(sim - pred) / pred:+.1%}"


def _table(rows, indent="  "):
    widths = [max(len(str(r[j])) for r in rows) for j in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [str(c).ljust(widths[0]) if j == 0 else str(c).rjust(widths[j]) for j, c in enumerate(r)]
        out.append(indent + "  ".join(cells).rstrip())
    return out


def _names(d, idx):
    return ", ".join(d.names[k] for k in idx)


def render(d):
    """The report as text (see :meth:`theory.diagnosis.Diagnosis.text`)."""
    late = d.late
    n_mod = len(d.names)
    held = f", {d.held_out.n} held out" if d.held_out is not None else ""
    loss = "squared loss" if d.loss == "mse" else "±1 labels, logistic loss"
    lines = [f"Diagnosis of {n_mod} modalities on {d.n_samples} training samples{held}: {d.task} ({loss}).",
             f"Preprocessing: {d.preprocess}.", ""]
    rows = [("modality", "inputs", "‖Σyx‖", "alone", "removal")]
    for s in d.strengths:
        rows.append((s.name, s.dim, f"{s.corr:.3g}", _pct(s.alone), _pct(s.removal)))
    lines += _table(rows)
    lines.append("  ‖Σyx‖: phase-1 growth rate; alone: loss removed on its own; removal: loss added by leaving it "
                 "out of the full fit (both in % of L(0) = ½⟨y²⟩)")
    lines.append("")
    order = late.order
    lines.append(f"Two-layer late fusion (width {late.width}, per-entry init {late.scale:g}, effective u0 = "
                 f"{late.u0:.3g}, lr {late.lr:g}) learns {' → '.join(d.names[k] for k in order)}:")
    rows = [("", *[d.names[k] for k in order])]
    rows.append(("closed form [epochs]", *[_t(late.t[k]) for k in order]))
    rows.append((f"map at lr {late.lr:g} [epochs]", *[_t(late.t_map[k]) for k in order]))
    lines += _table(rows)
    lines.append("  closed form: leading order in u0, gradient flow (theory.md §6.3); map: exact for the balanced "
                 "rank-one net of that scale at this learning rate (§6.10)")
    if late.order_map != late.order and all(np.isfinite(late.t_map)):
        lines.append(f"  (the map learns them in the order {' → '.join(d.names[k] for k in late.order_map)})")
    for p in late.plateaus:
        if np.isfinite(p.start_map):
            span = (f"epochs {_t(p.start_map)}–{_t(p.end_map)}" if np.isfinite(p.end_map)
                    else f"from epoch {_t(p.start_map)}")
        else:
            span = f"epochs {_t(p.start)}–{_t(p.end)} (closed form)"
        test = f", held-out loss {p.test_loss:.1%} of its L(0)" if np.isfinite(p.test_loss) else ""
        acc = f", held-out accuracy {p.test_accuracy:.1%}" if np.isfinite(p.test_accuracy) else ""
        lines.append(f"  plateau with {_names(d, p.learned)}: {span}, loss {p.loss:.1%} of L(0){test}{acc}")
    lines.append(f"  two-layer early fusion: one transition at about epoch {_t(late.early)} (heuristic, §6.2)")
    lines.append("")
    lines.append("Misattribution on each plateau (learned weight minus its final value, along the final weight, "
                 "relative; exact, §6.4):")
    for p in late.plateaus:
        parts = ", ".join(f"{d.names[k]} {_pct(p.misattribution[k], True)}" for k in p.learned)
        lines.append(f"  with {_names(d, p.learned)} learned: {parts}")
    lines.append("")
    lines.append(f"Fusion depth (depth {d.depth}, balanced start {d.deep_scale:g}, lr {late.lr:g}; the aligned-chain "
                 "map, exact for that start; §12.3):")
    head = ("L_f", *[d.names[k] for k in order], "t_last/t_first")
    if n_mod == 2:
        head = head + ("closed form",)
    rows = [head]
    for dt in d.depths:
        kind = " (early)" if dt.fuse_depth == 1 else " (late)" if dt.fuse_depth == d.depth else ""
        label = f"{dt.fuse_depth}{kind}"
        row = (label, *[_t(dt.t[k]) for k in order], f"{dt.ratio:.2f}" if np.isfinite(dt.ratio) else "n/a")
        if n_mod == 2:
            row = row + (f"{dt.ratio_closed:.2f}" if np.isfinite(dt.ratio_closed) else "n/a",)
        rows.append(row)
    lines += _table(rows)
    if n_mod == 2:
        lines.append("  closed form: the scalar chain's vector version (heuristic, §6.6)")
    else:
        lines.append("  (no closed form for K > 2 modalities)")
    lines.append("")
    pref = d.preference
    first = d.names[pref.first]
    if pref.superficial:
        lines.append(f"Superficial preference: yes. {first} is learned first, but {d.names[pref.best_alone]} removes "
                     f"more loss on its own ({_pct(d.strengths[pref.best_alone].alone)} against "
                     f"{_pct(d.strengths[pref.first].alone)}; §6.5, §12.4).")
    else:
        lines.append(f"Superficial preference: no. {first} is learned first and removes the most loss on its own "
                     f"({_pct(d.strengths[pref.first].alone)}).")
    if pref.superficial_removal != pref.superficial:
        lines.append(f"  By the loss added on leaving a modality out, the most useful one is "
                     f"{d.names[pref.best_removal]} "
                     f"({'superficial' if pref.superficial_removal else 'not superficial'} by that reading).")
    if d.held_out is not None:
        h = d.held_out
        acc = f", accuracy {h.accuracy_end:.1%}" if np.isfinite(h.accuracy_end) else ""
        what = "squared loss on the labels" if d.task == "classification" else "loss"
        lines.append(f"Held-out split ({h.n} samples): {what} {h.loss_end:.1%} of its L(0) where training ends{acc} "
                     f"(early and late fusion end at the same point: Σ is non-singular); stopping on the worst "
                     f"plateau costs {h.deficit:+.1%} of L(0) (§12.5).")
    lines.append("")
    lines.append("Recommendation:")
    lines += [f"  - {line}" for line in d.advice.lines]
    lines.append("")
    lines.append("Notes:")
    lines += [f"  - {note}" for note in d.notes]
    if d.confirmation is not None:
        lines.append("")
        lines += _confirmation(d)
    return "\n".join(lines)


def _confirmation(d):
    c = d.confirmation
    late = d.late
    order = late.order
    r = c.late
    lines = [f"Confirmed by training ({c.seconds:.1f} s):"]
    status = f"{r.status}, {r.epochs[-1]:.0f} epochs"
    lines.append(f"  two-layer late fusion, per-entry init ({status}, {r.seconds:.1f} s):")
    rows = [("", *[d.names[k] for k in order])]
    rows.append(("simulation [epochs]", *[_t(r.t[k]) for k in order]))
    if np.any(np.isfinite(r.t_exact)):
        rows.append(("exact map, own weights", *[_t(r.t_exact[k]) for k in order]))
    rows.append((f"map at lr {late.lr:g}", *[_t(late.t_map[k]) for k in order]))
    rows.append(("  deviation", *[_dev(r.t[k], late.t_map[k]) for k in order]))
    rows.append(("closed form", *[_t(late.t[k]) for k in order]))
    rows.append(("  deviation", *[_dev(r.t[k], late.t[k]) for k in order]))
    lines += _table(rows, indent="    ")
    sim_order = tuple(int(k) for k in np.argsort(np.where(np.isfinite(r.t), r.t, np.inf), kind="stable"))
    same = sim_order == order and np.all(np.isfinite(r.t))
    if np.all(np.isfinite(r.t)):
        lines.append(f"    learning order in the simulation: {' → '.join(d.names[k] for k in sim_order)} "
                     f"({'as predicted' if same else 'differs from the prediction'})")
    else:
        lines.append("    learning order in the simulation: not every modality was learned in the run")
    if not r.usable:
        lines.append(f"    {r.message}")
    if c.depths:
        lines.append(f"  depth {d.depth}, balanced start {d.deep_scale:g} (simulation / aligned-chain map, epochs):")
        rows = [("L_f", *[d.names[k] for k in order], "status")]
        for run in c.depths:
            rows.append((str(run.fuse_depth), *[f"{_t(run.t[k])} / {_t(run.t_exact[k])}" for k in order], run.status))
        lines += _table(rows, indent="    ")
    elif d.task == "classification":
        lines.append("  (the depth-L networks are trained only for the squared loss)")
    return lines
