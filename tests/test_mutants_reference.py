"""codegen/reference.py against a second, element-by-element implementation of the same
integer semantics (Python ints, plain loops), step kind by step kind.

The generated C is held to the reference bit for bit, so a bug in the reference that the C
shares would pass every C check; this test is the reference's own independent check (written
from its mutation run, docs/testing.md). Shapes are small: the loops are Python.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeae.codegen.program import Buffer, Program, Step
from edgeae.codegen.reference import requantize, run_reference


def _req(acc: int, mult: int, shift: int) -> int:
    """round_half_even(acc * mult / 2^shift), saturated at 65535 in magnitude."""
    p = acc * mult
    q, r = divmod(abs(p), 2**shift)
    if 2 * r > 2**shift or (2 * r == 2**shift and q % 2 == 1):
        q += 1
    q = min(q, 65535)
    return -q if p < 0 else q


def test_requantize_matches_exact_rounding():
    rng = np.random.default_rng(0)
    acc = rng.integers(-2**31, 2**31, 4000)
    mult = rng.integers(2**30, 2**31, 4000)
    shift = rng.integers(20, 45, 4000)
    ties = [(1, 2**30, 31, 0), (3, 2**30, 31, 2), (-1, 2**30, 31, 0), (-3, 2**30, 31, -2), (5, 2**30, 31, 2),
            (7, 2**30, 32, 2), (1, 3 * 2**29, 31, 1), (-1, 3 * 2**29, 31, -1), (2**31 - 1, 2**31 - 1, 31, 65535),
            (-(2**31), 2**31 - 1, 31, -65535), (0, 2**30, 31, 0), (2, 2**30, 1, 65535)]
    acc = np.concatenate([acc, [t[0] for t in ties]])
    mult = np.concatenate([mult, [t[1] for t in ties]])
    shift = np.concatenate([shift, [t[2] for t in ties]])
    got = requantize(acc, mult, shift)
    assert got.dtype == np.int64
    assert got.tolist() == [_req(int(a), int(m), int(s)) for a, m, s in zip(acc, mult, shift, strict=True)]
    assert got[-len(ties):].tolist() == [t[3] for t in ties]
    # int32 inputs are widened before the product (no wrap-around)
    big = requantize(np.array([2**31 - 1], np.int32), np.array([2**31 - 1], np.int32), np.array([40], np.int32))
    assert big.tolist() == [_req(2**31 - 1, 2**31 - 1, 40)]


def _program(kind: str, params: dict, in_dtype: str, n_in: int, out_dtype: str, n_out: int) -> Program:
    bufs = {"x": Buffer("x", in_dtype, (n_in,), "input"), "y": Buffer("y", out_dtype, (n_out,), "output")}
    return Program("int8-static", bufs, [Step(kind, "n0", ["x"], ["y"], params)], ["x"], ["y"])


def _requant_params(rng, m: int) -> dict:
    return {"mult_v": rng.integers(2**30, 2**31, m), "shift_v": rng.integers(36, 42, m), "yzp": 7, "lo": 0, "hi": 255}


def _finish(acc: int, q: dict, c: int) -> int:
    return min(max(q["yzp"] + _req(acc, int(q["mult_v"][c]), int(q["shift_v"][c])), q["lo"]), q["hi"])


def test_dense_step():
    rng = np.random.default_rng(1)
    n, k, m = 3, 11, 5
    q = {"w_v": rng.integers(0, 256, (m, k)).astype(np.uint8), "wzp_v": rng.integers(0, 256, m).astype(np.uint8),
         "xzp": 131, "bias_q_v": rng.integers(-5000, 5000, m), **_requant_params(rng, m)}
    x = rng.integers(0, 256, (n, k)).astype(np.uint8)
    got = run_reference(_program("qdense", q, "uint8", k, "uint8", m), [x])[0]
    want = [[_finish(int(q["bias_q_v"][c]) + sum((int(x[i, j]) - 131) * (int(q["w_v"][c, j]) - int(q["wzp_v"][c]))
                                                 for j in range(k)), q, c) for c in range(m)] for i in range(n)]
    assert got.dtype == np.uint8 and got.tolist() == want
    assert 0 < np.count_nonzero(got == 0) + np.count_nonzero(got == 255) < got.size or len(set(got.ravel())) > 3


_CONV_SHAPES = {  # the general case, and two where padding or the dilated kernel outgrow the input
    "grouped, strided, dilated": {"C": 4, "H": 5, "W": 4, "M": 6, "KH": 3, "KW": 2, "SH": 2, "SW": 1, "PT": 1,
                                  "PL": 1, "DH": 1, "DW": 2, "G": 2},
    "1x1 input, padding 3": {"C": 1, "H": 1, "W": 1, "M": 2, "KH": 1, "KW": 1, "SH": 1, "SW": 1, "PT": 3, "PL": 3,
                             "DH": 1, "DW": 1, "G": 1},
    "2x2 input, 3x3 kernel, dilation 2": {"C": 2, "H": 2, "W": 2, "M": 2, "KH": 3, "KW": 3, "SH": 1, "SW": 1,
                                          "PT": 2, "PL": 2, "DH": 2, "DW": 2, "G": 1},
}


@pytest.mark.parametrize("name", list(_CONV_SHAPES))
def test_conv_step(name):
    rng = np.random.default_rng(2)
    g = dict(_CONV_SHAPES[name])
    g["OH"] = (g["H"] + 2 * g["PT"] - g["DH"] * (g["KH"] - 1) - 1) // g["SH"] + 1
    g["OW"] = (g["W"] + 2 * g["PL"] - g["DW"] * (g["KW"] - 1) - 1) // g["SW"] + 1
    C, H, W, M, OH, OW = (g[k] for k in ("C", "H", "W", "M", "OH", "OW"))
    cg, mg = C // g["G"], M // g["G"]
    q = {**g, "w_v": rng.integers(0, 256, (M, cg, g["KH"], g["KW"])).astype(np.uint8),
         "wzp_v": rng.integers(100, 156, M).astype(np.uint8), "xzp": 120, "bias_q_v": rng.integers(-900, 900, M),
         **_requant_params(rng, M)}
    q["shift_v"] = rng.integers(33, 37, M)
    n = 2
    x = rng.integers(0, 256, (n, C * H * W)).astype(np.uint8)
    got = run_reference(_program("qconv", q, "uint8", C * H * W, "uint8", M * OH * OW), [x])[0]
    xs = x.reshape(n, C, H, W).astype(int)
    want = np.zeros((n, M, OH, OW), int)
    for i in range(n):
        for m in range(M):
            for oy in range(OH):
                for ox in range(OW):
                    acc = int(q["bias_q_v"][m])
                    for c in range((m // mg) * cg, (m // mg + 1) * cg):
                        for ky in range(g["KH"]):
                            for kx in range(g["KW"]):
                                iy, ix = oy * g["SH"] - g["PT"] + ky * g["DH"], ox * g["SW"] - g["PL"] + kx * g["DW"]
                                if 0 <= iy < H and 0 <= ix < W:
                                    w = int(q["w_v"][m, c - (m // mg) * cg, ky, kx]) - int(q["wzp_v"][m])
                                    acc += (xs[i, c, iy, ix] - 120) * w
                    want[i, m, oy, ox] = _finish(acc, q, m)
    assert got.dtype == np.uint8 and got.tolist() == want.reshape(n, -1).tolist()
    assert len(set(got.ravel().tolist())) > 2


_CONVT_SHAPES = {  # the general case, and small ones where the scratch array has no room to spare
    "grouped, strided, dilated": {"C": 4, "H": 5, "W": 4, "M": 6, "KH": 3, "KW": 2, "SH": 2, "SW": 1, "PT": 1,
                                  "PL": 1, "DH": 1, "DW": 2, "G": 2},
    "1x1 input, 3x3 kernel, dilation 2": {"C": 2, "H": 1, "W": 1, "M": 2, "KH": 3, "KW": 3, "SH": 2, "SW": 2,
                                          "PT": 2, "PL": 2, "DH": 2, "DW": 2, "G": 1},
    "stride 1": {"C": 2, "H": 3, "W": 2, "M": 2, "KH": 2, "KW": 2, "SH": 1, "SW": 1, "PT": 0, "PL": 0, "DH": 1,
                 "DW": 1, "G": 1},
    "1x1 input, 1x1 kernel": {"C": 2, "H": 1, "W": 1, "M": 2, "KH": 1, "KW": 1, "SH": 2, "SW": 2, "PT": 0, "PL": 0,
                              "DH": 2, "DW": 2, "G": 1},
}


@pytest.mark.parametrize("name", list(_CONVT_SHAPES))
def test_conv_transpose_step(name):
    rng = np.random.default_rng(3)
    g = dict(_CONVT_SHAPES[name])
    g["OH"] = (g["H"] - 1) * g["SH"] - 2 * g["PT"] + g["DH"] * (g["KH"] - 1) + 1
    g["OW"] = (g["W"] - 1) * g["SW"] - 2 * g["PL"] + g["DW"] * (g["KW"] - 1) + 1
    C, H, W, M, OH, OW = (g[k] for k in ("C", "H", "W", "M", "OH", "OW"))
    cg, mg = C // g["G"], M // g["G"]
    q = {**g, "w_v": rng.integers(-128, 128, (C, mg, g["KH"], g["KW"])).astype(np.int8),
         "wzp_v": rng.integers(-20, 20, M).astype(np.int8), "xzp": -3, "bias_q_v": rng.integers(-900, 900, M),
         **_requant_params(rng, M), "yzp": -5, "lo": -128, "hi": 127}
    q["shift_v"] = rng.integers(33, 37, M)
    n = 2
    x = rng.integers(-128, 128, (n, C * H * W)).astype(np.int8)
    got = run_reference(_program("qconvt", q, "int8", C * H * W, "int8", M * OH * OW), [x])[0]
    xs = x.reshape(n, C, H, W).astype(int)
    acc = np.zeros((n, M, OH, OW), object)
    for m in range(M):
        acc[:, m] = int(q["bias_q_v"][m])
    for i in range(n):
        for c in range(C):
            grp = c // cg
            for j in range(mg):
                m = grp * mg + j
                for iy in range(H):
                    for ix in range(W):
                        for ky in range(g["KH"]):
                            for kx in range(g["KW"]):
                                oy = iy * g["SH"] - g["PT"] + ky * g["DH"]
                                ox = ix * g["SW"] - g["PL"] + kx * g["DW"]
                                if 0 <= oy < OH and 0 <= ox < OW:
                                    acc[i, m, oy, ox] += (xs[i, c, iy, ix] + 3) * (int(q["w_v"][c, j, ky, kx])
                                                                                  - int(q["wzp_v"][m]))
    want = [[_finish(int(acc[i, m, oy, ox]), q, m) for m in range(M) for oy in range(OH) for ox in range(OW)]
            for i in range(n)]
    assert got.dtype == np.int8 and got.tolist() == want


def test_quantize_dequantize_lut_copy_and_a_chain():
    scale = 0.0375
    src = np.array([[0.0, 0.01875, 0.05625, -0.3, 4.0, 1e9, -1e9, np.nan, np.inf, 9.6, 9.5625]], np.float32)
    p = _program("quantize", {"scale": scale, "zp": 3, "lo": 0, "hi": 255}, "float32", src.shape[1], "uint8",
                 src.shape[1])
    got = run_reference(p, [src])[0]
    want = []
    for v in src[0]:
        t = np.float32(v) / np.float32(scale)
        t = -32768.0 if np.isnan(t) else min(max(float(t), -32768.0), 32768.0)
        want.append(min(max(int(np.rint(t)) + 3, 0), 255))
    assert got.dtype == np.uint8 and got.tolist() == [want]
    assert want[:2] == [3, 3] and want[3] == 0 and want[4] == 110 and want[7] == 0 and want[9] == 255

    # the quotient is a float32 division: near half steps float64 would round to the other neighbour
    near = np.array([[-7.481250286102295, -7.443750381469727, -7.331250190734863]], np.float32)
    wide = np.rint(near.astype(np.float64) / np.float64(np.float32(scale))) + 300
    q32 = run_reference(_program("quantize", {"scale": scale, "zp": 300, "lo": 0, "hi": 1000}, "float32", 3,
                                 "int32", 3), [near])[0]
    assert q32.tolist() == [[100, 102, 104]] != wide.tolist()

    s8 = np.array([[-128, -1, 0, 1, 127]], np.int8)
    deq = run_reference(_program("dequantize", {"scale": 0.5, "zp": -2}, "int8", 5, "float32", 5), [s8])[0]
    assert deq.dtype == np.float32 and deq.tolist() == [[-63.0, 0.5, 1.0, 1.5, 64.5]]

    table = np.arange(256, dtype=np.int64)[::-1].astype(np.uint8)
    lut8 = run_reference(_program("lut", {"table_v": table}, "int8", 5, "uint8", 5), [s8])[0]
    assert lut8.dtype == np.uint8 and lut8.tolist() == [[255 - 0, 255 - 127, 255 - 128, 255 - 129, 255 - 255]]
    u8 = np.array([[0, 5, 255, 7]], np.uint8)
    assert run_reference(_program("lut", {"table_v": table}, "uint8", 4, "uint8", 4), [u8])[0].tolist() == \
        [[255, 250, 0, 248]]
    per = np.stack([np.arange(256) % 251, (np.arange(256) * 3) % 256]).astype(np.uint8)  # period 2 along the sample
    got = run_reference(_program("lut", {"table_v": per}, "uint8", 4, "uint8", 4), [u8])[0]
    assert got.dtype == np.uint8 and got.tolist() == [[0, 15, 4, 21]]

    cp = run_reference(_program("copy", {}, "uint8", 4, "int32", 4), [u8])[0]
    assert cp.dtype == np.int32 and cp.tolist() == u8.tolist()

    bufs = {"a": Buffer("a", "float32", (2,), "input"), "b": Buffer("b", "uint8", (2,), "arena"),
            "c": Buffer("c", "float32", (2,), "output"), "d": Buffer("d", "uint8", (2,), "output")}
    chain = Program("int8-static", bufs, [
        Step("quantize", "q", ["a"], ["b"], {"scale": 0.5, "zp": 10, "lo": 0, "hi": 255}),
        Step("dequantize", "dq", ["b"], ["c"], {"scale": 0.5, "zp": 10}),
        Step("copy", "cp", ["b"], ["d"], {})], ["a"], ["d", "c"])
    d, c = run_reference(chain, [np.array([[[1.2, -3.0]]], np.float32)])
    assert d.tolist() == [[12, 4]] and c.tolist() == [[1.0, -3.0]]


def test_unknown_step_is_refused():
    with pytest.raises(ValueError, match="^the int8 reference has no step 'fma'$"):
        run_reference(_program("fma", {}, "uint8", 2, "uint8", 2), [np.zeros((1, 2), np.uint8)])


def test_inputs_must_match_the_program():
    p = _program("copy", {}, "uint8", 2, "uint8", 2)
    x = np.zeros((1, 2), np.uint8)
    with pytest.raises(ValueError):
        run_reference(p, [x, x])
