"""The theory document is the one the code cites, and the repository reads nothing outside itself.

- Every section citation (a section sign followed by a number such as 6.3, 3a or 9.4, optionally
  after "theory.md") in the package sources, benchmarks, tests, the README and docs/ resolves to a
  numbered heading of docs/theory.md (ranges such as "6.6-6.7" resolve at both ends, "§10 item 12"
  to an item of the figure list), and no citation names another document (an upper-case name
  before the section sign: a document that is not in the repository).
- docs/theory.md follows the heading markup it documents: every level-2 and level-3 heading starts
  with its number, level 2 a section ("6"), level 3 a subsection of an existing section ("6.3",
  "3a"), no number twice.
- No source or test file reads a path outside the repository (a sibling "shared" folder, this
  machine's absolute paths, or a path climbing above the repository root).
- The value tables of docs/theory.md (§8 and §9.3) equal the toolkit's functions to the printed
  digits, so the document cannot drift from the code.
- Every ``theory.*`` / ``linfusion.*`` name and every ``sims.*`` module the document names exists,
  except in sections and lines marked "implementation in progress".
"""
from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from theory.deep import deep_t_a, deep_time_ratio
from theory.dynamics import flow, rank_one_map
from theory.fixed_points import late_fixed_points
from theory.two_layer import time_ratio_toy, toy_stats

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "theory.md"

# Where citations are looked for, and which files count as text.
CITING_DIRS = ("linfusion", "theory", "sims", "benchmarks", "tests", "docs")
CITING_FILES = ("README.md",)
TEXT_SUFFIXES = {".py", ".md", ".rst", ".txt", ".ipynb", ".toml", ".cfg", ".mplstyle"}
# Source and test files checked for paths outside the repository.
CODE_DIRS = ("linfusion", "theory", "sims", "benchmarks", "tests", "docs")
CODE_FILES = ("setup.cfg", "pyproject.toml", "setup.py", "conftest.py", "noxfile.py")
SKIP_DIRS = {"__pycache__", ".git", ".venv", "results", "cache", ".pytest_cache", ".hypothesis"}

HEADING = re.compile(r"^(#{2,})\s+(.*)$")
NUMBER = re.compile(r"^(\d+(?:\.\d+)?[a-z]?)\s+\S")
SECTION = r"\d+(?:\.\d+)?[a-z]?"
CITATION = re.compile(rf"§§?\s?({SECTION})(?:\s?[-–]\s?({SECTION}))?(?:\s+items?\s+(\d+)(?:\s?[-–]\s?(\d+))?)?")
OTHER_DOC = re.compile(r"\b([A-Z][A-Z_]+(?:[.]md)?)\s?§")
FIGURE_ITEM = re.compile(r"^(\d+)\.\s")
IN_PROGRESS = re.compile(r"implementation in progress", re.IGNORECASE)


# ---------------------------------------------------------------------- reading the document
def _doc_lines():
    return DOC.read_text(encoding="utf-8").splitlines()


def _headings(lines):
    """[(line index, level, number or None, text)] for every heading of level >= 2."""
    out = []
    for i, line in enumerate(lines):
        m = HEADING.match(line)
        if m:
            num = NUMBER.match(m.group(2))
            out.append((i, len(m.group(1)), num.group(1) if num else None, m.group(2)))
    return out


def _section_span(lines, number):
    """(first, last) line indices of the body of the heading with this number (to the next heading)."""
    heads = _headings(lines)
    for j, (i, _, num, _) in enumerate(heads):
        if num == number:
            end = heads[j + 1][0] if j + 1 < len(heads) else len(lines)
            return i + 1, end
    raise AssertionError(f"docs/theory.md has no heading numbered {number!r}")


def _figure_items(lines):
    """Item numbers of the figure list (§10)."""
    first, last = _section_span(lines, "10")
    return {int(m.group(1)) for m in (FIGURE_ITEM.match(line) for line in lines[first:last]) if m}


def _table(lines, number):
    """The first markdown table under heading ``number``: (header cells, rows of cells)."""
    first, last = _section_span(lines, number)
    rows = []
    for line in lines[first:last]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    assert len(rows) >= 3, f"§{number} of docs/theory.md has no table"
    return rows[0], rows[2:]          # rows[1] is the |---| separator


def _num(cell):
    """A table cell as a float and its number of decimals ('−0.45' -> (-0.45, 2))."""
    text = cell.replace("−", "-").strip()
    decimals = len(text.split(".")[1]) if "." in text else 0
    return float(text), decimals


def _close(cell, value, where):
    """The printed cell equals ``value`` rounded to the cell's digits."""
    printed, decimals = _num(cell)
    tol = 0.5 * 10.0 ** (-decimals) + 1e-9
    return None if abs(printed - value) <= tol else f"{where}: printed {cell}, toolkit gives {value:.6g}"


def _check_cells(problems):
    problems = [p for p in problems if p]
    assert not problems, "docs/theory.md tables differ from the toolkit:\n" + "\n".join(problems)


# ---------------------------------------------------------------------- files of the repository
def _files(dirs, names, suffixes=None):
    out = []
    for d in dirs:
        base = ROOT / d
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if any(part in SKIP_DIRS for part in path.relative_to(ROOT).parts) or not path.is_file():
                continue
            if suffixes is None or path.suffix in suffixes:
                out.append(path)
    out += [ROOT / n for n in names if (ROOT / n).is_file()]
    return out


# ---------------------------------------------------------------------- 1. citations resolve
def test_theory_headings_follow_the_documented_markup():
    lines = _doc_lines()
    problems, seen = [], {}
    for i, level, num, text in _headings(lines):
        where = f"docs/theory.md:{i + 1}: {'#' * level} {text}"
        if level > 3:
            problems.append(f"{where}: only levels 2 and 3 are used")
        elif num is None:
            problems.append(f"{where}: a level-{level} heading must start with its number")
        elif level == 2 and not num.isdigit():
            problems.append(f"{where}: a section (level 2) is numbered N")
        elif level == 3 and (num.isdigit() or re.match(r"\d+", num).group(0) not in seen):
            problems.append(f"{where}: a subsection (level 3) is numbered N.M or Na under an existing section N")
        if num is not None:
            if num in seen:
                problems.append(f"{where}: number {num} already used at line {seen[num] + 1}")
            seen[num] = i
    assert not problems, "\n".join(problems)
    for required in ["1", "2", "3", "3a", "3b", "3c", "3d", "3e", "4", "5", "6"] + [f"6.{k}" for k in range(1, 12)] \
            + ["7", "8", "9"] + [f"9.{k}" for k in range(1, 10)] + ["10"]:
        assert required in seen, f"docs/theory.md lacks §{required}, which the code's numbering relies on"


def test_every_section_citation_resolves():
    lines = _doc_lines()
    numbers = {num for _, _, num, _ in _headings(lines) if num}
    items = _figure_items(lines)
    unresolved, n_cited = [], 0
    for path in _files(CITING_DIRS, CITING_FILES, TEXT_SUFFIXES):
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for m in OTHER_DOC.finditer(line):
                unresolved.append(f"{path.relative_to(ROOT)}:{lineno}: '{m.group(0)}' cites {m.group(1)}, "
                                  "not docs/theory.md")
            for m in CITATION.finditer(line):
                n_cited += 1
                missing = [s for s in (m.group(1), m.group(2)) if s and s not in numbers]
                lo, hi = m.group(3), m.group(4) or m.group(3)
                if lo and m.group(1) == "10":
                    missing += [f"10 item {k}" for k in range(int(lo), int(hi) + 1) if k not in items]
                if missing:
                    unresolved.append(f"{path.relative_to(ROOT)}:{lineno}: '{m.group(0)}' "
                                      f"(no heading {', '.join(missing)} in docs/theory.md)")
    assert n_cited > 0, "no section citation found at all: the search is broken"
    assert not unresolved, (f"{len(unresolved)} section citation(s) do not resolve to a heading of "
                            "docs/theory.md:\n" + "\n".join(unresolved))


# ---------------------------------------------------------------------- 2. nothing outside the repository
OUTSIDE = [
    (re.compile(r"/work/"), "an absolute path of this machine (/work/...)"),
    (re.compile(r"""\.\.["')\s]*[/\\,]\s*\(?["']?shared"""), "a sibling 'shared' folder outside the repository"),
    (re.compile(r"""["'](?:/home/|/root/|/mnt/|/Users/|/tmp/|[A-Za-z]:\\\\)"""), "an absolute path of one machine"),
]


def _climbs_out(path, line):
    """True if a path built from __file__ on this line climbs above the repository root."""
    if "__file__" not in line:
        return False
    depth = len(path.relative_to(ROOT).parts) - 1           # folders between the root and the file
    m = re.search(r"parents\[(\d+)\]", line)
    if m:
        level = int(m.group(1))
    elif "dirname(" in line:
        level = line.count("dirname(") - 1
    else:
        level = line.split("__file__", 1)[1].count(".parent") - 1
    level += len(re.findall(r"""["']\.\.["']""", line))
    return level > depth


def test_no_file_reads_outside_the_repository():
    offending = []
    for path in _files(CODE_DIRS, CODE_FILES, {".py", ".cfg", ".toml", ".ini", ".ipynb"}):
        if path == Path(__file__).resolve():
            continue                                # this file names the patterns it looks for
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            why = [reason for pattern, reason in OUTSIDE if pattern.search(line)]
            if path.suffix == ".py" and _climbs_out(path, line):
                why.append("a path built from __file__ that climbs above the repository root")
            if why:
                offending.append(f"{path.relative_to(ROOT)}:{lineno}: {'; '.join(why)}: {line.strip()}")
    assert not offending, "files refer to paths outside the repository:\n" + "\n".join(offending)


def test_other_document_citation_detector_fires():
    """A citation of a document outside the repository is recognised; ours is not."""
    outside = "THE" + "ORY"                                 # spelled apart so this file cites nothing
    assert OTHER_DOC.search(f"see {outside}.md §6.3") and OTHER_DOC.search(f"({outside} §9.4)")
    assert not OTHER_DOC.search("see theory.md §6.3") and not OTHER_DOC.search("(§9.4)")


def test_outside_path_detector_fires():
    """The detector of the previous test recognises what it must refuse (so it can fail)."""
    tests_file = ROOT / "tests" / "test_x.py"
    assert _climbs_out(tests_file, 'README = Path(__file__).resolve().parents[1] / ".." / "shared" / "x.md"')
    assert not _climbs_out(tests_file, 'DOC = Path(__file__).resolve().parents[1] / "docs" / "theory.md"')
    assert _climbs_out(ROOT / "sims" / "x.py", 'p = os.path.join(os.path.dirname(__file__), "..", "..")')
    assert any(p.search('open("/work/shared/notes.md")') for p, _ in OUTSIDE)
    assert any(p.search("Path('..') / 'shared'") for p, _ in OUTSIDE)


# ---------------------------------------------------------------------- 3. tables against the toolkit
RHO_GRID = np.linspace(-0.9, 0.9, 9)


def test_table_two_layer_time_ratio():
    header, rows = _table(_doc_lines(), "8.1")
    rhos = [_num(c)[0] for c in header[1:]]
    np.testing.assert_allclose(rhos, RHO_GRID, atol=1e-12)
    assert [_num(r[0])[0] for r in rows] == [3.0, 2.0, 1.5, 1.0]
    _check_cells([_close(cell, time_ratio_toy(rho, _num(row[0])[0]), f"§8.1 r={row[0]} ρ={rho:g}")
                  for row in rows for rho, cell in zip(rhos, row[1:])])


def test_table_norm_form_lists_every_cell_where_it_differs():
    _, rows = _table(_doc_lines(), "8.2")
    listed = {(_num(r[0])[0], round(_num(r[1])[0], 6)) for r in rows}
    differ = {(r, round(float(p), 6)) for r in (3.0, 2.0, 1.5) for p in RHO_GRID
              if abs(time_ratio_toy(p, r) - time_ratio_toy(p, r, form="norm")) > 1e-9}
    assert listed == differ, f"§8.2 lists {sorted(listed)}, the forms differ at {sorted(differ)}"
    _check_cells([_close(row[k], time_ratio_toy(_num(row[1])[0], _num(row[0])[0], form=form),
                         f"§8.2 r={row[0]} ρ={row[1]} {form}")
                  for row in rows for k, form in ((2, "signed"), (3, "norm"))])


def test_table_heatmap_landmarks():
    _, rows = _table(_doc_lines(), "8.3")
    _check_cells([_close(row[2], time_ratio_toy(_num(row[1])[0], _num(row[0])[0]), f"§8.3 r={row[0]} ρ={row[1]}")
                  for row in rows])


def _lf_columns(header):
    return [int(re.search(r"\d+", h).group(0)) for h in header[1:]]


def test_table_deep_fusion_across_rho():
    header, rows = _table(_doc_lines(), "8.4")
    np.testing.assert_allclose([_num(r[0])[0] for r in rows], RHO_GRID, atol=1e-12)
    _check_cells([_close(cell, deep_time_ratio(4, lf, 2.0, _num(row[0])[0], 0.1), f"§8.4 ρ={row[0]} L_f={lf}")
                  for row in rows for lf, cell in zip(_lf_columns(header), row[1:])])


def test_table_deep_fusion_across_ratio():
    header, rows = _table(_doc_lines(), "8.5")
    np.testing.assert_allclose([_num(r[0])[0] for r in rows], np.linspace(1.2, 2.8, 5), atol=1e-12)
    _check_cells([_close(cell, deep_time_ratio(4, lf, _num(row[0])[0], 0.0, 0.1), f"§8.5 r={row[0]} L_f={lf}")
                  for row in rows for lf, cell in zip(_lf_columns(header), row[1:])])


def test_table_deep_fusion_across_init():
    header, rows = _table(_doc_lines(), "8.6")
    inits = [_num(c)[0] for c in header[1:]]
    np.testing.assert_allclose(inits, np.linspace(0.03, 0.18, 5), atol=1e-12)
    _check_cells([_close(cell, deep_time_ratio(4, int(row[0]), 2.0, 0.0, u0), f"§8.6 L_f={row[0]} u0={u0:g}")
                  for row in rows for u0, cell in zip(inits, row[1:])])


def test_table_chain_t_a():
    _, rows = _table(_doc_lines(), "8.7")
    _check_cells([_close(row[1], deep_t_a(4, int(row[0]), 2.0, 0.0, 0.1), f"§8.7 L_f={row[0]}") for row in rows])


def test_table_toy_fixed_points():
    _, rows = _table(_doc_lines(), "8.8")
    problems = []
    for row in rows:
        r, rho = _num(row[0])[0], _num(row[1])[0]
        w_star = tuple(float(x) for x in row[2].strip("()").split(","))
        m0, ma, mb, _ = late_fixed_points(*toy_stats(rho, r, w_star), (1, 1))
        where = f"§8.8 r={row[0]} ρ={row[1]} W*={row[2]}"
        problems += [_close(row[3], ma.loss / m0.loss, where + " L(M_A)/L(M_0)"),
                     _close(row[4], mb.loss / m0.loss, where + " L(M_B)/L(M_0)"),
                     _close(row[5], ma.w_tot[0, 0], where + " W_A(M_A)"),
                     _close(row[6], mb.w_tot[0, 1], where + " W_B(M_B)")]
    _check_cells(problems)


def test_table_finite_init_and_discrete_steps():
    """§9.3: closed form, flow ODE and exact rank-one maps from u0 = 1e-9·√50 (population statistics)."""
    header, rows = _table(_doc_lines(), "9.3")
    col = {name: k for k, name in enumerate(header)}
    u0 = 1e-9 * np.sqrt(50.0)
    problems = []
    for row in rows:
        r, rho = _num(row[0])[0], _num(row[1])[0]
        sigma, syx, syy = toy_stats(rho, r)
        w_a, w_b, res = syx[0, 0], syx[0, 1], 1.0 - rho * rho
        closed = time_ratio_toy(rho, r)
        where = f"§9.3 r={row[0]} ρ={row[1]}"
        maps = {}
        for lr in (0.04, 0.01):
            # enough epochs for B: A's map time times twice the flow ratio, plus a margin
            n = int(2.2 * closed * np.log(1.0 / u0 ** 2) / (2.0 * np.log1p(lr * w_a))) + 300
            maps[lr] = rank_one_map(sigma, syx, syy, (1, 1), np.arange(n + 1), lr, u0=u0)
            assert maps[lr].ratio is not None, f"{where}: B not learned within {n} epochs at lr {lr}"
        end = maps[0.04].t_b * 1.2 + 50
        ode = flow(sigma, syx, syy, (1, 1), np.array([0.0, end]), 0.04, u0=u0, solver="DOP853", rtol=1e-12)

        def lam(s, eta=0.04):
            return np.log1p(eta * s) / eta
        discrete = 1.0 + (lam(w_a) - lam(w_b)) / lam(res)
        problems += [_close(row[col["closed form"]], closed, where + " closed form"),
                     _close(row[col["flow ODE"]], ode.ratio, where + " flow ODE"),
                     _close(row[col["map, η = 0.04"]], maps[0.04].ratio, where + " map η = 0.04"),
                     _close(row[col["discrete formula, η = 0.04"]], discrete, where + " discrete formula"),
                     _close(row[col["map, η = 0.01"]], maps[0.01].ratio, where + " map η = 0.01")]
    _check_cells(problems)


# ---------------------------------------------------------------------- 4. names the document uses
NAME = re.compile(r"`((?:theory|linfusion|sims)(?:\.[A-Za-z_]\w*)+)")
FILE_SUFFIXES = {"md", "py", "txt", "json", "csv", "npz", "png"}


def _in_progress_lines(lines):
    """Indices of lines inside a section or subsection marked 'Implementation in progress'."""
    heads = _headings(lines)
    marked = set()
    for j, (i, level, num, _) in enumerate(heads):
        end = heads[j + 1][0] if j + 1 < len(heads) else len(lines)
        if any(line.startswith("> **Implementation in progress**") for line in lines[i + 1:end]):
            # the whole subtree: up to the next heading of the same or a higher level
            stop = next((h[0] for h in heads[j + 1:] if h[1] <= level), len(lines))
            marked.update(range(i, stop))
    return marked


def _resolve(name):
    parts = name.split(".")
    if parts[0] == "sims":
        return importlib.util.find_spec(name) is not None
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        try:
            for attr in parts[k:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def test_every_named_function_exists():
    lines = _doc_lines()
    skip = _in_progress_lines(lines)
    missing = []
    for i, line in enumerate(lines):
        if i in skip or IN_PROGRESS.search(line):
            continue
        for name in NAME.findall(line):
            if name.rsplit(".", 1)[-1] in FILE_SUFFIXES:
                continue                            # a file name such as theory.md, not a module
            if not _resolve(name):
                missing.append(f"docs/theory.md:{i + 1}: `{name}`")
    assert not missing, "docs/theory.md names functions or modules that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("name, exists", [("theory.deep.deep_time_ratio", True), ("theory.deep.no_such_thing", False),
                                          ("sims.toy_sweep", True), ("sims.no_such_module", False)])
def test_name_resolution_can_fail(name, exists):
    assert _resolve(name) is exists
