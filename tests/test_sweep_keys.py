"""Cache keys of linfusion.sweep cover the code: the package's source and the build function."""
import functools
import importlib
import os
import subprocess
import sys
import textwrap

import pytest

from linfusion.sweep import keys, point_key, run_sweep
from test_sweep import CFGS, cache_files

MODULE = '''
import numpy as np
from linfusion import sweep


def build(config, rng):
    """A build of a user's own: the default one, for three of its data sets."""
    if config.get("data", "toy") in {"toy", "multi", "xor_linear"}:
        net, ds = sweep.build(config, rng)
        return net, ds
    raise ValueError(config["data"])
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A build function in a module of its own, which the test edits and reloads."""
    name = f"lf_user_build_{os.getpid()}"
    path = tmp_path / f"{name}.py"
    path.write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    mod = importlib.import_module(name)
    yield mod, path
    sys.modules.pop(name, None)


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))   # as an edit 2 s later


def test_editing_the_build_function_changes_the_key(user_module):
    mod, path = user_module
    k0 = point_key(CFGS[0], build=mod.build)
    assert point_key(CFGS[0], build=importlib.reload(mod).build) == k0        # reloading alone: same key
    # a change of behaviour inside the body, same length (so the file's size does not change)
    _edit(path, '"toy", "multi", "xor_linear"', '"toy", "multi", "xor_linean"')
    k1 = point_key(CFGS[0], build=importlib.reload(mod).build)
    assert k1 != k0
    # a change in the body's code only (no new constant, no new name)
    _edit(path, "        return net, ds\n", "        return (net, ds)\n")
    importlib.reload(mod)
    _edit(path, "        net, ds = sweep.build(config, rng)\n        return (net, ds)\n",
          "        net, ds = sweep.build(config, rng)\n        return net, ds\n")
    k2 = point_key(CFGS[0], build=importlib.reload(mod).build)
    assert k2 == k1                            # the same code again gives the same key


def test_key_follows_the_compiled_code_when_the_source_file_is_stale(user_module):
    """inspect.getsource can return stale text (linecache); the code object cannot."""
    mod, path = user_module
    k0 = point_key(CFGS[0], build=mod.build)
    text = path.read_text()
    path.write_text(text.replace('"xor_linear"', '"xor_linean"'))
    st = path.stat()
    new = importlib.reload(mod)
    # the source file now says xor_linear again: getsource would read the old text
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert point_key(CFGS[0], build=new.build) != k0


def test_bound_arguments_and_the_package_enter_the_key(user_module, monkeypatch):
    mod, _ = user_module
    base = point_key(CFGS[0], build=mod.build)
    p1 = point_key(CFGS[0], build=functools.partial(mod.build))
    assert p1 != base
    kw = {k: point_key(CFGS[0], build=functools.partial(_with_offset, offset=v)) for k, v in (("a", 1.0), ("b", 2.0))}
    assert kw["a"] != kw["b"]
    default = point_key(CFGS[0])
    monkeypatch.setattr(keys, "_PACKAGE", ("0" * 64, 0.0))                  # another package source
    assert point_key(CFGS[0]) != default
    assert point_key(CFGS[0], build=mod.build) != base


def _with_offset(config, rng, offset=0.0):
    from linfusion import sweep
    return sweep.build(config, rng)


def test_package_digest_covers_every_source_file_once_per_process(monkeypatch):
    first = keys.package_digest()
    root = keys.Path(keys.__file__).resolve().parent.parent
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py"))
    assert {"sweep/keys.py", "_kernels/sample.py", "_kernels/moment.py", "training.py", "_engine.py"} <= set(files)
    monkeypatch.setattr(keys.Path, "read_bytes", lambda self: pytest.fail("read again"))
    assert keys.package_digest() == first      # computed once per process
    monkeypatch.setattr(keys, "_PACKAGE", None)
    with pytest.raises(pytest.fail.Exception, match="read again"):
        keys.package_digest()


def test_keys_are_the_same_in_every_process(user_module, tmp_path):
    """No part of a key depends on the string hash seed (frozenset constants, dict order)."""
    mod, _ = user_module
    code = textwrap.dedent(f"""
        import sys; sys.path[:0] = [{str(tmp_path)!r}, {os.path.dirname(__file__)!r}]
        import {mod.__name__} as m
        from linfusion.sweep import point_key
        from test_sweep import CFGS
        print(point_key(CFGS[0], build=m.build), point_key(CFGS[0]))
    """)
    outs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join(sys.path)}
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True, timeout=300).stdout)
    assert outs == {f"{point_key(CFGS[0], build=mod.build)} {point_key(CFGS[0])}\n"}


def test_edited_build_recomputes_cached_points(user_module, tmp_path):
    mod, path = user_module
    cache = tmp_path / "cache"
    a = run_sweep(CFGS[:2], build=mod.build, cache_dir=cache, workers=1, progress=False)
    assert a.n_computed == 2
    _edit(path, "        return net, ds\n", "        return net, ds  # same\n")       # comments count too
    b = run_sweep(CFGS[:2], build=importlib.reload(mod).build, cache_dir=cache, workers=1, progress=False)
    assert (b.n_cached, b.n_computed) == (0, 2) and len(cache_files(cache)) == 4
