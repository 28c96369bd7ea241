"""Argument checks: the message names the parameter, its value and the rule (DESIGN.md)."""
import numpy as np
import pytest

from linfusion.validation import check_array, check_choice, check_covariance, check_int, check_scalar


def test_check_scalar_accepts_and_converts():
    assert check_scalar("x", 3) == 3.0 and isinstance(check_scalar("x", 3), float)
    assert check_scalar("x", np.float32(0.5)) == 0.5
    assert check_scalar("x", np.int64(2), lo=2) == 2.0                 # closed bound
    assert check_scalar("x", 1.0, lo=0.0, hi=1.0) == 1.0
    assert check_scalar("x", None, allow_none=True) is None


@pytest.mark.parametrize("kwargs,value,message", [
    (dict(lo=0.0, lo_open=True), 0.0, r"^lr == 0\.0, must be > 0\.0\.$"),
    (dict(lo=0.0), -1.5, r"^lr == -1\.5, must be >= 0\.0\.$"),
    (dict(hi=1.0, hi_open=True), 1.0, r"^lr == 1\.0, must be < 1\.0\.$"),
    (dict(hi=1.0), 2.0, r"^lr == 2\.0, must be <= 1\.0\.$"),
    (dict(), float("inf"), r"^lr == inf, must be finite\.$"),
    (dict(), float("nan"), r"^lr == nan, must be finite\.$"),
    (dict(lo=0.0), -3, r"^lr == -3, must be >= 0\.0\.$"),
])
def test_check_scalar_value_errors(kwargs, value, message):
    with pytest.raises(ValueError, match=message):
        check_scalar("lr", value, **kwargs)


@pytest.mark.parametrize("value", ["0.1", True, np.bool_(False), None, [1.0], 1 + 2j])
def test_check_scalar_type_errors(value):
    with pytest.raises(TypeError, match=r"^lr == .*, must be a real number\.$"):
        check_scalar("lr", value)


def test_check_int():
    assert check_int("n", np.int32(4), lo=1) == 4 and type(check_int("n", np.int32(4))) is int
    assert check_int("n", None, allow_none=True) is None
    with pytest.raises(ValueError, match=r"^fuse_depth == 5, must be <= depth \(4\)\.$"):
        check_int("fuse_depth", 5, lo=1, hi=4, hi_name="depth")
    with pytest.raises(ValueError, match=r"^n == 5, must be <= 4\.$"):
        check_int("n", 5, hi=4)
    with pytest.raises(ValueError, match=r"^n == 0, must be >= 1\.$"):
        check_int("n", 0, lo=1)
    for bad in (2.0, "2", True, None):
        with pytest.raises(TypeError, match=r"^n == .*, must be an integer\.$"):
            check_int("n", bad)


def test_check_choice():
    assert check_choice("loss", "mse", ("mse", "logistic")) == "mse"
    with pytest.raises(ValueError, match=r"^loss == 'l1', must be one of 'mse', 'logistic'\.$"):
        check_choice("loss", "l1", ("mse", "logistic"))


def test_check_array():
    f = np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3))
    a = check_array("a", f, ndim=2, shape=(None, 3))
    assert a.dtype == np.float64 and a.flags.c_contiguous and np.array_equal(a, f)
    assert check_array("a", [1.0, 2.0], ndim=(1, 2)).shape == (2,)
    assert np.isnan(check_array("a", [np.nan], finite=False)[0])
    assert check_array("a", np.zeros((0, 3))).shape == (0, 3)            # empty is finite
    with pytest.raises(ValueError, match=r"^a has 1 dimensions \(shape \(3,\)\), must have 2\.$"):
        check_array("a", [1, 2, 3], ndim=2)
    with pytest.raises(ValueError, match=r"^a has 3 dimensions \(shape \(1, 1, 1\)\), must have 1 or 2\.$"):
        check_array("a", np.zeros((1, 1, 1)), ndim=(1, 2))
    with pytest.raises(ValueError, match=r"^a has shape \(2, 3\), must have shape \(any, 4\)\.$"):
        check_array("a", np.zeros((2, 3)), shape=(None, 4))
    with pytest.raises(ValueError, match=r"^a has shape \(2, 3\), must have shape \(2, 3, any\)\.$"):
        check_array("a", np.zeros((2, 3)), shape=(2, 3, None))
    with pytest.raises(ValueError, match=r"^a has 2 non-finite entries, must be all finite\.$"):
        check_array("a", [np.inf, 1.0, -np.inf])
    with pytest.raises(TypeError, match=r"^a could not be converted to an array of float64"):
        check_array("a", ["x"])
    with pytest.raises(TypeError, match=r"^a could not be converted"):
        check_array("a", [[1.0], [1.0, 2.0]])                            # ragged


def test_check_covariance():
    s = check_covariance("sigma", [[2.0, 0.5], [0.5, 1.0]], dim=2)
    assert s.shape == (2, 2)
    assert check_covariance("sigma", 3.0).shape == (1, 1)               # a scalar is a 1x1 covariance
    with pytest.raises(ValueError, match=r"^sigma has shape \(2, 3\), must be square\.$"):
        check_covariance("sigma", np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"^sigma has shape \(2, 2\), must have shape \(3, 3\)\.$"):
        check_covariance("sigma", np.eye(2), dim=3)
    with pytest.raises(ValueError, match=r"^sigma is not symmetric"):
        check_covariance("sigma", [[1.0, 0.1], [0.0, 1.0]])
    # asymmetry below the 1e-10 relative tolerance is accepted (rounding of Σ computed as XᵀX/n)
    check_covariance("sigma", [[1.0, 1e-12], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"^sigma has smallest eigenvalue -1, must be positive definite\.$"):
        check_covariance("sigma", [[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match=r"^sigma has smallest eigenvalue 0, must be positive definite"):
        check_covariance("sigma", np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"^sigma has 1 non-finite entries"):
        check_covariance("sigma", np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_check_array_one_dimensional_shape_message():
    with pytest.raises(ValueError, match=r"^w has shape \(9,\), must have shape \(8,\)\.$"):
        check_array("w", np.zeros(9), shape=(8,))


def test_check_array_refuses_complex_and_non_numeric():
    """Complex input is an error, not a ComplexWarning that drops the imaginary part (issue 11.4)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match=r"^x has complex dtype complex128, must be real"):
            check_array("x", np.array([1.0 + 0j, 2.0]))
        with pytest.raises(TypeError, match=r"^x could not be converted to an array of float64: it has dtype <U3"):
            check_array("x", ["0.1", "0.2"])             # strings are not silently parsed
        with pytest.raises(TypeError, match=r"^x could not be converted"):
            check_array("x", np.array([1 + 2j], dtype=object))
    a = check_array("x", np.array([[1, 0], [0, 1]], dtype=bool))
    assert a.dtype == np.float64 and a.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert check_array("x", np.arange(3, dtype=np.float32)).dtype == np.float64


def test_check_rng():
    from linfusion.validation import check_rng
    g = np.random.default_rng(0)
    ss = np.random.SeedSequence(1)
    for ok in (None, 0, np.int64(7), [1, 2, 3], g, ss, np.random.PCG64(2)):
        assert check_rng("rng", ok) is ok
    with pytest.raises(ValueError, match=r"^rng == -1, must be >= 0"):
        check_rng("rng", -1)
    with pytest.raises(ValueError, match=r"^rng == \[1, -2\], must hold integers >= 0"):
        check_rng("rng", [1, -2])
    for bad in ("0", 1.0, True, [], [1.5], {"seed": 1}):
        with pytest.raises(TypeError, match=r"^rng == .*, must be None, a non-negative integer"):
            check_rng("rng", bad)
