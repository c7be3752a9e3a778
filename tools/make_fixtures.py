#!/usr/bin/python3
"""make_fixtures.py - golden-test fixtures for the nn layers (tests/test_nn.c).

    /usr/bin/python3 tools/make_fixtures.py        (or: make fixtures)

For every layer type this builds a small PyTorch module with random weights,
runs it on a random input over the whole sequence, checks in Python that the
module is causal in the way the C streaming contract assumes (computing each
output from a prefix of the input gives the same value as the whole-sequence
run), and writes tests/fixtures/nn/<name>.osw holding:

  - the module's tensors under their state_dict names (prefix "layer"),
  - "input" (and "input_im") and "output" (and "output_im") in the C layout
    (time-major: [T][C] for 1-D layers, [T][C][F] for 2-D layers),
  - metadata: "type" (which C layer), the C config fields by name, "frames".

References are computed in float64 from the float32 weights, so they are
PyTorch's exact answer for the stored weights. Each fixture's seed comes from
its name: the files only change when this script does. Needs torch (Debian python3-torch) and numpy.
"""

import os
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import osw  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "nn")
MAX_TOTAL = 2 * 1024 * 1024

torch.set_default_dtype(torch.float64)


# ------------------------------------------------------------------ helpers

def r32(t):
    """Round to float32 values (kept as float64): what the file stores."""
    return t.float().double()


def rnd(*shape, scale=1.0):
    return r32(torch.randn(*shape) * scale)


def randomize(module, scale=0.5):
    """Random weights (not PyTorch's init: bigger biases, all signs), rounded
    to float32 so the float64 reference uses exactly the stored values."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * scale)
        for name, b in module.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand_like(b) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn_like(b) * 0.3)
        for p in list(module.parameters()) + list(module.buffers()):
            if p.is_floating_point():
                p.copy_(p.float().double())
    return module


def f32(t):
    return np.ascontiguousarray(t.detach().float().numpy())


def close(a, b, what):
    a = a.detach().double()
    b = b.detach().double()
    if a.shape != b.shape:
        raise SystemExit(f"{what}: shapes {tuple(a.shape)} vs {tuple(b.shape)}")
    err = float(((a - b) ** 2).sum() / max(float((b ** 2).sum()), 1e-300))
    if err > 1e-20:
        raise SystemExit(f"{what}: streaming check failed (nmse {err:.3g})")


def check_prefix(run, x, avail, steps, what):
    """The causality the C streaming contract relies on: after the first m
    input frames (time = last axis of x), the first avail(m) output frames of
    run(x[..., :m]) equal those of run(x) (time = last axis too)."""
    whole = run(x)
    T = x.shape[-1]
    for m in steps(T):
        k = avail(m)
        if k <= 0:
            continue
        part = run(x[..., :m])
        close(part[..., :k], whole[..., :k], f"{what}: prefix {m}")
    return whole


def all_steps(T):
    return range(1, T + 1)


def tmajor1(x):
    """[1, C, T] -> [T][C]"""
    return f32(x[0].transpose(0, 1))


def tmajor2(x):
    """[1, C, F, T] -> [T][C][F]"""
    return f32(x[0].permute(2, 0, 1))


FIXTURES = {}


def fixture(fn):
    FIXTURES[fn.__name__] = fn
    return fn


def meta_of(kind, cfg, frames):
    m = {"type": kind, "frames": str(frames)}
    for k, v in cfg.items():
        m[k] = str(v)
    return m


def state(module, prefix="layer"):
    """The module's tensors under prefix, without the ".layer" level that the
    Conv/ConvT wrappers add: the names FRCRN's own modules would have."""
    sd = osw.state_dict_to_tensors(module.state_dict())
    out = {}
    for k, v in sd.items():
        k = ("." + k).replace(".layer.", ".")
        out[prefix + k] = v
    return out


# --------------------------------------------------------------- convolution

class Conv(nn.Module):
    """Conv1d/Conv2d with the C layer's padding: time padded with zeros
    (pt_left, pt_right), frequency by pad_mode (pf_lo, pf_hi)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        if c["dims"] == 1:
            self.layer = nn.Conv1d(c["in_ch"], c["out_ch"], c["kt"], stride=c["st"],
                                   dilation=c["dt"], groups=c["groups"], bias=bool(c["bias"]))
        else:
            self.layer = nn.Conv2d(c["in_ch"], c["out_ch"], (c["kf"], c["kt"]),
                                   stride=(c["sf"], c["st"]), dilation=(c["df"], c["dt"]),
                                   groups=c["groups"], bias=bool(c["bias"]))

    def forward(self, x):
        c = self.c
        x = F.pad(x, (c["pt_left"], c["pt_right"]))
        if c["dims"] == 2 and (c["pf_lo"] or c["pf_hi"]):
            mode = ["constant", "reflect", "replicate", "circular"][c["pad_mode"]]
            x = F.pad(x, (0, 0, c["pf_lo"], c["pf_hi"]), mode=mode)
        return self.layer(x)


class ComplexConv(nn.Module):
    """FRCRN's ComplexConv2d arithmetic on (real, imag) pairs."""

    def __init__(self, c):
        super().__init__()
        self.conv_re = Conv(c)
        self.conv_im = Conv(c)

    def forward(self, x):
        xr, xi = x
        return (self.conv_re(xr) - self.conv_im(xi), self.conv_re(xi) + self.conv_im(xr))


def conv_defaults(**kw):
    c = dict(dims=2, in_ch=1, out_ch=1, groups=1, freq=1, kf=1, sf=1, df=1, pf_lo=0, pf_hi=0,
             pad_mode=0, kt=1, st=1, dt=1, pt_left=0, pt_right=0, bias=1)
    c.update(kw)
    if c["dims"] == 1:
        c["freq"] = 1
    return c


def conv_avail(c):
    span = (c["kt"] - 1) * c["dt"]
    return lambda m: (c["pt_left"] + m - 1 - span) // c["st"] + 1


def conv_fixture(name, T, **kw):
    c = conv_defaults(**kw)
    m = randomize(Conv(c))
    shape = (1, c["in_ch"], T) if c["dims"] == 1 else (1, c["in_ch"], c["freq"], T)
    x = rnd(*shape)
    y = check_prefix(m, x, conv_avail(c), all_steps, name)
    tm = tmajor1 if c["dims"] == 1 else tmajor2
    tensors = {"layer.weight": f32(m.layer.weight)}
    if c["bias"]:
        tensors["layer.bias"] = f32(m.layer.bias)
    tensors["input"] = tm(x)
    tensors["output"] = tm(y)
    return tensors, meta_of("conv", c, T)


@fixture
def conv1d_causal():
    return conv_fixture("conv1d_causal", 20, dims=1, in_ch=4, out_ch=6, kt=3, dt=2, pt_left=4)


@fixture
def conv1d_same_grouped():
    return conv_fixture("conv1d_same_grouped", 17, dims=1, in_ch=6, out_ch=4, groups=2, kt=5,
                        pt_left=2, pt_right=2)


@fixture
def conv1d_stride():
    return conv_fixture("conv1d_stride", 19, dims=1, in_ch=3, out_ch=5, kt=4, st=2, pt_left=3,
                        pt_right=1, bias=0)


@fixture
def conv1d_depthwise():
    return conv_fixture("conv1d_depthwise", 16, dims=1, in_ch=5, out_ch=5, groups=5, kt=3, dt=3,
                        pt_left=6)


@fixture
def conv1d_wide():
    # long rows (kc = 40*3 = 120 > the dot product's lanes) and 48 outputs
    return conv_fixture("conv1d_wide", 12, dims=1, in_ch=40, out_ch=48, kt=3, pt_left=2)


@fixture
def conv2d_frcrn():
    return conv_fixture("conv2d_frcrn", 10, in_ch=3, out_ch=4, freq=16, kf=5, sf=2, pf_lo=2,
                        pf_hi=2, kt=2, pt_left=1)


@fixture
def conv2d_reflect_dil():
    return conv_fixture("conv2d_reflect_dil", 9, in_ch=2, out_ch=3, freq=11, kf=3, df=2,
                        pf_lo=2, pf_hi=3, pad_mode=1, kt=3, dt=2, pt_left=2, pt_right=2)


@fixture
def conv2d_depthwise_replicate():
    return conv_fixture("conv2d_depthwise_replicate", 8, in_ch=4, out_ch=4, groups=4, freq=8,
                        kf=3, pf_lo=1, pf_hi=1, pad_mode=2, kt=2, pt_left=1)


@fixture
def conv2d_grouped_circular():
    return conv_fixture("conv2d_grouped_circular", 12, in_ch=4, out_ch=6, groups=2, freq=7,
                        kf=3, sf=2, pf_lo=1, pf_hi=2, pad_mode=3, kt=3, st=2, pt_left=2,
                        bias=0)


@fixture
def conv1d_bnfold():
    """Conv1d + BatchNorm1d (eval) folded at export: the C conv with the
    folded weights must give the conv+bn output."""
    c = conv_defaults(dims=1, in_ch=4, out_ch=5, kt=3, pt_left=2)
    conv = randomize(Conv(c))
    bn = randomize(nn.BatchNorm1d(5)).eval()
    T = 11
    x = rnd(1, 4, T)
    y = check_prefix(lambda v: bn(conv(v)), x, conv_avail(c), all_steps, "conv1d_bnfold")
    w, b = osw.fold_batchnorm(f32(conv.layer.weight), f32(conv.layer.bias), f32(bn.weight),
                              f32(bn.bias), f32(bn.running_mean), f32(bn.running_var),
                              eps=bn.eps)
    return ({"layer.weight": w, "layer.bias": b, "input": tmajor1(x), "output": tmajor1(y)},
            meta_of("conv", c, T))


def cconv_fixture(name, T, **kw):
    c = conv_defaults(**kw)
    m = randomize(ComplexConv(c))
    shape = (1, c["in_ch"], T) if c["dims"] == 1 else (1, c["in_ch"], c["freq"], T)
    xr, xi = rnd(*shape), rnd(*shape)

    avail = conv_avail(c)
    whole_r, whole_i = m((xr, xi))
    for t in range(1, T + 1):
        k = avail(t)
        if k > 0:
            pr, pi = m((xr[..., :t], xi[..., :t]))
            close(pr[..., :k], whole_r[..., :k], f"{name}: prefix {t} re")
            close(pi[..., :k], whole_i[..., :k], f"{name}: prefix {t} im")
    tm = tmajor1 if c["dims"] == 1 else tmajor2
    tensors = state(m)
    tensors.update({"input": tm(xr), "input_im": tm(xi), "output": tm(whole_r),
                    "output_im": tm(whole_i)})
    return tensors, meta_of("cconv", c, T)


@fixture
def cconv2d_frcrn():
    return cconv_fixture("cconv2d_frcrn", 8, in_ch=2, out_ch=3, freq=12, kf=5, sf=2, pf_lo=2,
                         pf_hi=2, kt=2, pt_left=1)


@fixture
def cconv2d_grouped_lookahead():
    return cconv_fixture("cconv2d_grouped_lookahead", 9, in_ch=4, out_ch=4, groups=2, freq=6,
                         kf=3, pf_lo=1, pf_hi=1, kt=3, pt_left=1, pt_right=1)


@fixture
def cconv1d_causal():
    return cconv_fixture("cconv1d_causal", 10, dims=1, in_ch=3, out_ch=2, kt=3, pt_left=2)


# ---------------------------------------------------- transposed convolution

class ConvT(nn.Module):
    def __init__(self, c):
        super().__init__()
        if c["dims"] == 1:
            self.layer = nn.ConvTranspose1d(c["in_ch"], c["out_ch"], c["kt"], stride=c["st"],
                                            padding=c["pt"], output_padding=c["opt"],
                                            groups=c["groups"], bias=bool(c["bias"]),
                                            dilation=c["dt"])
        else:
            self.layer = nn.ConvTranspose2d(c["in_ch"], c["out_ch"], (c["kf"], c["kt"]),
                                            stride=(c["sf"], c["st"]),
                                            padding=(c["pf"], c["pt"]),
                                            output_padding=(c["opf"], c["opt"]),
                                            groups=c["groups"], bias=bool(c["bias"]),
                                            dilation=(c["df"], c["dt"]))

    def forward(self, x):
        return self.layer(x)


class ComplexConvT(nn.Module):
    """FRCRN's ComplexConvTranspose2d arithmetic."""

    def __init__(self, c):
        super().__init__()
        self.tconv_re = ConvT(c)
        self.tconv_im = ConvT(c)

    def forward(self, x):
        xr, xi = x
        return (self.tconv_re(xr) - self.tconv_im(xi), self.tconv_re(xi) + self.tconv_im(xr))


def convt_defaults(**kw):
    c = dict(dims=2, in_ch=1, out_ch=1, groups=1, freq=1, kf=1, sf=1, df=1, pf=0, opf=0,
             kt=1, st=1, dt=1, pt=0, opt=0, bias=1)
    c.update(kw)
    if c["dims"] == 1:
        c["freq"] = 1
    return c


def convt_avail(c):
    # after m inputs the stream has written m*st - pt frames (crop at the start)
    return lambda m: m * c["st"] - c["pt"]


def convt_fixture(name, T, complex_=False, **kw):
    c = convt_defaults(**kw)
    shape = (1, c["in_ch"], T) if c["dims"] == 1 else (1, c["in_ch"], c["freq"], T)
    tm = tmajor1 if c["dims"] == 1 else tmajor2
    avail = convt_avail(c)
    if not complex_:
        m = randomize(ConvT(c))
        x = rnd(*shape)
        y = check_prefix(m, x, avail, all_steps, name)
        tensors = state(m)
        tensors.update({"input": tm(x), "output": tm(y)})
        return tensors, meta_of("convt", c, T)
    m = randomize(ComplexConvT(c))
    xr, xi = rnd(*shape), rnd(*shape)
    yr, yi = m((xr, xi))
    for t in range(1, T + 1):
        k = avail(t)
        if k > 0:
            pr, pi = m((xr[..., :t], xi[..., :t]))
            close(pr[..., :k], yr[..., :k], f"{name}: prefix {t} re")
            close(pi[..., :k], yi[..., :k], f"{name}: prefix {t} im")
    tensors = state(m)
    tensors.update({"input": tm(xr), "input_im": tm(xi), "output": tm(yr), "output_im": tm(yi)})
    return tensors, meta_of("cconvt", c, T)


@fixture
def convt1d_stride():
    return convt_fixture("convt1d_stride", 10, dims=1, in_ch=4, out_ch=3, kt=4, st=2, pt=1)


@fixture
def convt1d_grouped_dil():
    return convt_fixture("convt1d_grouped_dil", 9, dims=1, in_ch=4, out_ch=6, groups=2, kt=3,
                         dt=2, opt=1, bias=0)


@fixture
def convt2d_frcrn():
    return convt_fixture("convt2d_frcrn", 10, in_ch=4, out_ch=3, freq=8, kf=5, sf=2, pf=2,
                         opf=1, kt=2)


@fixture
def convt2d_grouped_stride():
    return convt_fixture("convt2d_grouped_stride", 7, in_ch=4, out_ch=2, groups=2, freq=5,
                         kf=3, df=2, pf=1, kt=3, st=2, pt=1, opt=1)


@fixture
def cconvt2d_frcrn():
    return convt_fixture("cconvt2d_frcrn", 8, complex_=True, in_ch=3, out_ch=2, freq=6, kf=5,
                         sf=2, pf=2, kt=2)


# -------------------------------------------------------------------- linear

def linear_fixture(name, T, i, o, bias):
    m = randomize(nn.Linear(i, o, bias=bool(bias)))
    x = rnd(1, T, i)
    y = m(x)
    for t in range(1, T + 1):  # per frame: trivially causal, checked anyway
        close(m(x[:, :t])[:, :t], y[:, :t], f"{name}: prefix {t}")
    tensors = {f"layer.{k}": v for k, v in osw.state_dict_to_tensors(m.state_dict()).items()}
    tensors.update({"input": f32(x[0]), "output": f32(y[0])})
    return tensors, meta_of("linear", {"in": i, "out": o, "bias": bias}, T)


@fixture
def linear_small():
    return linear_fixture("linear_small", 6, 7, 5, 1)


@fixture
def linear_nobias():
    return linear_fixture("linear_nobias", 5, 33, 17, 0)


# ----------------------------------------------------------------- recurrent

def rnn_fixture(name, kind, T, inp, hid, layers=1, bias=1):
    cls = nn.GRU if kind == "gru" else nn.LSTM
    m = randomize(cls(inp, hid, num_layers=layers, batch_first=True, bias=bool(bias)))
    x = rnd(1, T, inp)
    y, _ = m(x)
    # frame by frame with the state carried: equals the whole sequence
    state_ = None
    steps = []
    for t in range(T):
        o, state_ = m(x[:, t:t + 1], state_)
        steps.append(o)
    close(torch.cat(steps, 1), y, f"{name}: step by step")
    tensors = state(m)
    tensors.update({"input": f32(x[0]), "output": f32(y[0])})
    return tensors, meta_of(kind, {"input": inp, "hidden": hid, "bias": bias,
                                   "layers": layers}, T)


@fixture
def gru_small():
    return rnn_fixture("gru_small", "gru", 15, 5, 8)


@fixture
def gru_two_layers():
    return rnn_fixture("gru_two_layers", "gru", 9, 4, 6, layers=2)


@fixture
def gru_nobias():
    return rnn_fixture("gru_nobias", "gru", 7, 20, 19, bias=0)


@fixture
def lstm_small():
    return rnn_fixture("lstm_small", "lstm", 12, 6, 7)


# ---------------------------------------------------------------------- FSMN

class Fsmn(nn.Module):
    """FRCRN's UniDeepFsmn (linear, ReLU, projection, depthwise memory over
    lorder past-and-present steps) with rorder future steps and a dilation
    added, on [B, S, dim] sequences."""

    def __init__(self, dim, hidden, lorder, rorder, dilation=1):
        super().__init__()
        self.lorder, self.rorder, self.dilation = lorder, rorder, dilation
        self.linear = nn.Linear(dim, hidden)
        self.project = nn.Linear(hidden, dim, bias=False)
        self.conv1 = nn.Conv2d(dim, dim, (lorder + rorder, 1), groups=dim, bias=False,
                               dilation=(dilation, 1))

    def forward(self, x):
        p = self.project(F.relu(self.linear(x)))           # [B, S, D]
        q = p.unsqueeze(1).permute(0, 3, 2, 1)              # [B, D, S, 1]
        d = self.dilation
        m = self.conv1(F.pad(q, (0, 0, (self.lorder - 1) * d, self.rorder * d)))
        return x + (q + m).permute(0, 3, 2, 1).squeeze(1)


class ComplexFsmn(nn.Module):
    def __init__(self, *a):
        super().__init__()
        self.fsmn_re_L1 = Fsmn(*a)
        self.fsmn_im_L1 = Fsmn(*a)

    def forward(self, x):
        xr, xi = x
        return (self.fsmn_re_L1(xr) - self.fsmn_im_L1(xi),
                self.fsmn_re_L1(xi) + self.fsmn_im_L1(xr))


def fsmn_time_fixture(name, T, dim, hidden, lorder, rorder, complex_=False, dilation=1):
    cfg = {"axis": 0, "dim": dim, "hidden": hidden, "lorder": lorder, "rorder": rorder,
           "dilation": dilation}
    lat = rorder * dilation
    if complex_:
        m = randomize(ComplexFsmn(dim, hidden, lorder, rorder, dilation))
        xr, xi = rnd(1, T, dim), rnd(1, T, dim)
        yr, yi = m((xr, xi))
        for t in range(1, T + 1):
            k = t - lat
            if k > 0:
                pr, pi = m((xr[:, :t], xi[:, :t]))
                close(pr[:, :k], yr[:, :k], f"{name}: prefix {t} re")
                close(pi[:, :k], yi[:, :k], f"{name}: prefix {t} im")
        tensors = state(m)
        tensors.update({"input": f32(xr[0]), "input_im": f32(xi[0]), "output": f32(yr[0]),
                        "output_im": f32(yi[0])})
        return tensors, meta_of("cfsmn", cfg, T)
    m = randomize(Fsmn(dim, hidden, lorder, rorder, dilation))
    x = rnd(1, T, dim)
    y = m(x)
    for t in range(1, T + 1):
        k = t - lat
        if k > 0:
            close(m(x[:, :t])[:, :k], y[:, :k], f"{name}: prefix {t}")
    tensors = state(m)
    tensors.update({"input": f32(x[0]), "output": f32(y[0])})
    return tensors, meta_of("fsmn", cfg, T)


@fixture
def fsmn_time():
    return fsmn_time_fixture("fsmn_time", 14, 6, 10, 4, 0)


@fixture
def fsmn_time_lookahead():
    return fsmn_time_fixture("fsmn_time_lookahead", 13, 5, 8, 3, 2)


@fixture
def fsmn_time_dilated():
    return fsmn_time_fixture("fsmn_time_dilated", 15, 4, 6, 3, 1, dilation=2)


@fixture
def cfsmn_time():
    return fsmn_time_fixture("cfsmn_time", 12, 6, 8, 4, 1, complex_=True)


def fsmn_freq_fixture(name, T, ch, hidden, lorder, freq, complex_):
    """Along frequency, FRCRN's ComplexUniDeepFsmn_L1 layout: x [B, C, F, T]
    is viewed per time frame as a sequence over F of C features."""
    cfg = {"axis": 1, "dim": ch, "hidden": hidden, "lorder": lorder, "rorder": 0, "seq": freq}

    def per_frame(mod, x):  # [1, C, F, T] -> [T, F, C] -> module -> [1, C, F, T]
        return mod(x[0].permute(2, 1, 0)).permute(2, 1, 0).unsqueeze(0)

    if complex_:
        m = randomize(ComplexFsmn(ch, hidden, lorder, 0))
        xr, xi = rnd(1, ch, freq, T), rnd(1, ch, freq, T)
        yr, yi = (t.permute(2, 1, 0).unsqueeze(0)
                  for t in m((xr[0].permute(2, 1, 0), xi[0].permute(2, 1, 0))))
        tensors = state(m)
        tensors.update({"input": tmajor2(xr), "input_im": tmajor2(xi), "output": tmajor2(yr),
                        "output_im": tmajor2(yi)})
        return tensors, meta_of("cfsmn", cfg, T)
    m = randomize(Fsmn(ch, hidden, lorder, 0))
    x = rnd(1, ch, freq, T)
    y = per_frame(m, x)
    tensors = state(m)
    tensors.update({"input": tmajor2(x), "output": tmajor2(y)})
    return tensors, meta_of("fsmn", cfg, T)


@fixture
def fsmn_freq():
    return fsmn_freq_fixture("fsmn_freq", 3, 4, 6, 5, 12, False)


@fixture
def cfsmn_freq():
    return fsmn_freq_fixture("cfsmn_freq", 3, 4, 6, 5, 10, True)


# ------------------------------------- oscine's denoiser convention (stacked)

# tools/denoise/model.py keeps complex channels stacked [real | imaginary] on
# one axis and uses true complex weights (wr + j wi) with a complex bias
# (br to the real part, bi to the imaginary part). Its layers are replicated
# here from that description (no import: the fixtures must not change when
# the training code does); the C test runs them as real layers with block
# weights from nn_complex_block.

def cblock(wr, wi, transposed=False):
    """[[wr, -wi], [wi, wr]] (transposed: [[wr, wi], [-wi, wr]]) over dims 0, 1."""
    if transposed:
        return torch.cat([torch.cat([wr, wi], 1), torch.cat([-wi, wr], 1)], 0)
    return torch.cat([torch.cat([wr, -wi], 1), torch.cat([wi, wr], 1)], 0)


def cparams(*shape):
    return r32(torch.randn(*shape) * 0.4), r32(torch.randn(*shape) * 0.4)


@fixture
def dn_cconv2d():
    cin, cout, kf, Fq, T = 2, 3, 3, 9, 8
    wr, wi = cparams(cout, cin, kf, 2)
    br, bi = cparams(cout)
    x = rnd(1, 2 * cin, Fq, T)

    def run(v):
        v = F.pad(v, (1, 0, kf // 2, kf // 2))
        return F.conv2d(v, cblock(wr, wi), torch.cat([br, bi]), stride=(2, 1))

    c = conv_defaults(in_ch=2 * cin, out_ch=2 * cout, freq=Fq, kf=kf, sf=2, pf_lo=kf // 2,
                      pf_hi=kf // 2, kt=2, pt_left=1)
    y = check_prefix(run, x, conv_avail(c), all_steps, "dn_cconv2d")
    t = {"layer.wr": f32(wr), "layer.wi": f32(wi), "layer.br": f32(br), "layer.bi": f32(bi),
         "input": tmajor2(x), "output": tmajor2(y)}
    c["cin"], c["cout"] = cin, cout
    return t, meta_of("dn_conv", c, T)


@fixture
def dn_cconvt2d():
    cin, cout, kf, Fq, T = 4, 2, 3, 5, 8
    wr, wi = cparams(cin, cout, kf, 2)
    br, bi = cparams(cout)
    x = rnd(1, 2 * cin, Fq, T)

    def run(v):
        y = F.conv_transpose2d(v, cblock(wr, wi, True), torch.cat([br, bi]), stride=(2, 1),
                               padding=(kf // 2, 0))
        return y[..., :v.shape[-1]]

    c = convt_defaults(in_ch=2 * cin, out_ch=2 * cout, freq=Fq, kf=kf, sf=2, pf=kf // 2, kt=2)
    y = check_prefix(run, x, lambda m: m, all_steps, "dn_cconvt2d")
    t = {"layer.wr": f32(wr), "layer.wi": f32(wi), "layer.br": f32(br), "layer.bi": f32(bi),
         "input": tmajor2(x), "output": tmajor2(y)}
    c["cin"], c["cout"] = cin, cout
    return t, meta_of("dn_convt", c, T)


def dn_fsmn_fixture(name, axis, T, C, H, order, dilation, Fq):
    """The denoiser's complex FSMN: h = relu(W1 x + b1) (complex W1, b1; relu on
    real and imaginary parts), p = W2 h, y = x + p + mem(p); mem one real
    kernel per complex channel shared by both parts: along frequency
    2*order+1 taps centred on the bin, along time `order` past taps
    `dilation` frames apart."""
    l1r, l1i = cparams(H, C)
    b1r, b1i = cparams(H)
    l2r, l2i = cparams(C, H)
    mem = r32(torch.randn(C, 2 * order + 1 if axis == "freq" else order) * 0.4)
    W1, W2 = cblock(l1r, l1i), cblock(l2r, l2i)
    b1 = torch.cat([b1r, b1i])
    wm = torch.cat([mem, mem], 0)

    def block(v):  # v [B, S, 2C] -> [B, S, 2C], memory along S
        p = F.linear(F.relu(F.linear(v, W1, b1)), W2)
        q = p.transpose(1, 2)                                   # [B, 2C, S]
        if axis == "freq":
            m = F.conv1d(F.pad(q, (order, order)), wm[:, None, :], groups=2 * C)
        else:
            m = F.conv1d(F.pad(q, ((order - 1) * dilation, 0)), wm[:, None, :],
                         dilation=dilation, groups=2 * C)
        return v + p + m.transpose(1, 2)

    t = {"layer.l1.wr": f32(l1r), "layer.l1.wi": f32(l1i), "layer.l1.br": f32(b1r),
         "layer.l1.bi": f32(b1i), "layer.l2.wr": f32(l2r), "layer.l2.wi": f32(l2i),
         "layer.mem": f32(mem)}
    if axis == "freq":
        # frames [2C][F]: per frame a sequence over F of 2C features
        x = rnd(1, 2 * C, Fq, T)
        y = block(x[0].permute(2, 1, 0)).permute(2, 1, 0).unsqueeze(0)
        t.update({"input": tmajor2(x), "output": tmajor2(y)})
        cfg = {"axis": 1, "dim": 2 * C, "hidden": 2 * H, "lorder": order + 1, "rorder": order,
               "dilation": 1, "seq": Fq}
    else:
        x = rnd(1, T, 2 * C)
        y = block(x)
        for m_ in range(1, T + 1):
            close(block(x[:, :m_]), y[:, :m_], f"{name}: prefix {m_}")
        t.update({"input": f32(x[0]), "output": f32(y[0])})
        cfg = {"axis": 0, "dim": 2 * C, "hidden": 2 * H, "lorder": order, "rorder": 0,
               "dilation": dilation}
    cfg["c"], cfg["h"] = C, H
    return t, meta_of("dn_fsmn", cfg, T)


@fixture
def dn_cfsmn_freq():
    return dn_fsmn_fixture("dn_cfsmn_freq", "freq", 3, 3, 5, 2, 1, 9)


@fixture
def dn_cfsmn_time():
    return dn_fsmn_fixture("dn_cfsmn_time", "time", 14, 4, 6, 3, 2, 0)


# ------------------------------------------------------- norms, activations

@fixture
def layernorm():
    m = randomize(nn.LayerNorm(9, eps=1e-5))
    x = r32(rnd(1, 5, 9) * 3 + 1)
    y = m(x)
    tensors = state(m)
    tensors.update({"input": f32(x[0]), "output": f32(y[0])})
    return tensors, meta_of("layernorm", {"dim": 9, "eps": "1e-05", "affine": 1}, 5)


@fixture
def activations():
    """One input, one output per activation. Values span the ranges where
    the formulas change (softplus thresholds, saturating tanh/sigmoid)."""
    T, C, Fq = 4, 3, 10
    x = r32(torch.cat([torch.linspace(-30, 30, 61), rnd(T * C * Fq - 61, scale=3)]))
    x = x.reshape(T, C, Fq)
    prelu1 = randomize(nn.PReLU(1))
    preluc = randomize(nn.PReLU(C))
    outs = {
        "relu": F.relu(x),
        "leaky_relu": F.leaky_relu(x, 0.2),
        "tanh": torch.tanh(x),
        "sigmoid": torch.sigmoid(x),
        "gelu": F.gelu(x),
        "softplus": F.softplus(x),
        "softplus_b2_t5": F.softplus(x, beta=2, threshold=5),
        "prelu1": prelu1(x),
        # channel axis 1 of [T, C, F]: the 2-D layout (PyTorch [B, C, F])
        "prelu_2d": preluc(x),
        # [T, C] frames: the 1-D layout, channel = last axis
        "prelu_1d": preluc(x.reshape(-1, C)).reshape(x.shape),
    }
    tensors = {"prelu1.weight": f32(prelu1.weight), "prelu_c.weight": f32(preluc.weight),
               "input": f32(x)}
    tensors.update({k: f32(v) for k, v in outs.items()})
    return tensors, meta_of("act", {"channels": C, "inner": Fq}, T)


# ---------------------------------------------------------------------- main

def main():
    os.makedirs(OUT, exist_ok=True)
    names = sys.argv[1:] or list(FIXTURES)
    total = 0
    for i, name in enumerate(names):
        if name not in FIXTURES:
            raise SystemExit(f"unknown fixture {name!r}")
        torch.manual_seed(zlib.crc32(name.encode()))  # stable when fixtures are added
        with torch.no_grad():
            tensors, meta = FIXTURES[name]()
        meta["generator"] = "tools/make_fixtures.py"
        meta["torch"] = torch.__version__
        path = os.path.join(OUT, name + ".osw")
        osw.write_osw(path, tensors, meta)
        size = os.path.getsize(path)
        total += size
        print(f"{path}: {size} bytes")
    known = {n + ".osw" for n in FIXTURES}
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT) if f in known)
    print(f"{len(known)} fixtures, {total} bytes")
    if total > MAX_TOTAL:
        raise SystemExit(f"fixtures total {total} bytes, over the {MAX_TOTAL} budget")


if __name__ == "__main__":
    main()
