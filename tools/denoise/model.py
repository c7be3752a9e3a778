"""Causal FRCRN-style complex UNet denoiser ("oscine denoise").

Every block is something the C side can run one frame at a time with explicit state:

  * complex conv2d over (frequency, time): kernel (KF, 2), stride 2 along frequency,
    zero padding KF//2 on both frequency edges, causal in time (the kernel sees frames
    t-1 and t; at t = 0 the previous frame is zeros).
  * complex transposed conv2d: kernel (KF, 2), stride 2 along frequency, frequency
    padding KF//2 (output F_out = 2 F_in - 1), causal in time (frames t and t-1).
  * complex batch norm with ONE scale per complex channel (shared by real and
    imaginary part) and a complex bias, so it folds exactly into the complex conv
    before it: W' = g W, b' = g (b - mean) + beta.
  * LeakyReLU(0.2) on real and imaginary parts separately.
  * complex FSMN along FREQUENCY (per frame, looks both ways along frequency) after
    encoder layers 1..N-1 and decoder layers 1..N-1.
  * two complex FSMN layers along TIME in the bottleneck, past frames only.
  * skip connections (concatenation, as FRCRN), complex ratio mask tanh(re) + j tanh(im)
    applied to the noisy spectrum.

Tensor layout: a complex tensor with C channels is a real tensor (B, 2C, F, T): channels
0..C-1 are the real parts, C..2C-1 the imaginary parts. A complex kernel is stored as a
pair of real tensors Wr, Wi; y_r = Wr*x_r - Wi*x_i, y_i = Wr*x_i + Wi*x_r (as FRCRN's
complex_nn.py), computed here as one real conv with the block kernel [[Wr,-Wi],[Wi,Wr]].

Run `python3 tools/denoise/model.py` to print the layer table, parameters, MACs per
second of audio, and a causality check.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    from . import stft as S
except ImportError:  # run as a script
    import stft as S

FRAMES_PER_S = S.SR / S.HOP  # 100


def _split(x):
    c = x.shape[1] // 2
    return x[:, :c], x[:, c:]


def cat_complex(*xs):
    """Concatenate complex tensors along channels, keeping the [real | imag] layout."""
    rs, is_ = zip(*[_split(x) for x in xs])
    return torch.cat(list(rs) + list(is_), dim=1)


def _block_conv_weight(wr, wi):
    # conv weight (Cout, Cin, ...): out_r = Wr x_r - Wi x_i ; out_i = Wi x_r + Wr x_i
    top = torch.cat([wr, -wi], dim=1)
    bot = torch.cat([wi, wr], dim=1)
    return torch.cat([top, bot], dim=0)


def _block_tconv_weight(wr, wi):
    # transposed conv weight (Cin, Cout, ...): rows are inputs [r; i], columns outputs [r, i]
    top = torch.cat([wr, wi], dim=1)   # input real -> (out_r: Wr, out_i: Wi)
    bot = torch.cat([-wi, wr], dim=1)  # input imag -> (out_r: -Wi, out_i: Wr)
    return torch.cat([top, bot], dim=0)


class ComplexConv2d(nn.Module):
    """Complex conv, kernel (kf, kt), stride (sf, 1); causal in time; bias complex."""

    def __init__(self, cin, cout, kf, kt=2, sf=2):
        super().__init__()
        self.cin, self.cout, self.kf, self.kt, self.sf = cin, cout, kf, kt, sf
        bound = 1.0 / math.sqrt(2 * cin * kf * kt)
        self.wr = nn.Parameter(torch.empty(cout, cin, kf, kt).uniform_(-bound, bound))
        self.wi = nn.Parameter(torch.empty(cout, cin, kf, kt).uniform_(-bound, bound))
        self.br = nn.Parameter(torch.zeros(cout))
        self.bi = nn.Parameter(torch.zeros(cout))

    def out_f(self, f):
        p = self.kf // 2
        return (f + 2 * p - self.kf) // self.sf + 1

    def forward(self, x):
        p = self.kf // 2
        x = F.pad(x, (self.kt - 1, 0, p, p))  # (time left, time right, freq lo, freq hi)
        w = _block_conv_weight(self.wr, self.wi)
        b = torch.cat([self.br, self.bi])
        return F.conv2d(x, w, b, stride=(self.sf, 1))

    def macs_per_frame(self, f_in):
        return 4 * self.out_f(f_in) * self.cin * self.cout * self.kf * self.kt


class ComplexConvTranspose2d(nn.Module):
    """Complex transposed conv, kernel (kf, kt), stride (sf, 1); causal in time:
    y[t] = W[..., 0] x[t] + W[..., 1] x[t-1] (torch's convention, last frame dropped)."""

    def __init__(self, cin, cout, kf, kt=2, sf=2):
        super().__init__()
        self.cin, self.cout, self.kf, self.kt, self.sf = cin, cout, kf, kt, sf
        bound = 1.0 / math.sqrt(2 * cin * kf * kt / sf)
        self.wr = nn.Parameter(torch.empty(cin, cout, kf, kt).uniform_(-bound, bound))
        self.wi = nn.Parameter(torch.empty(cin, cout, kf, kt).uniform_(-bound, bound))
        self.br = nn.Parameter(torch.zeros(cout))
        self.bi = nn.Parameter(torch.zeros(cout))

    def out_f(self, f):
        return (f - 1) * self.sf - 2 * (self.kf // 2) + self.kf

    def forward(self, x):
        T = x.shape[-1]
        w = _block_tconv_weight(self.wr, self.wi)
        b = torch.cat([self.br, self.bi])
        y = F.conv_transpose2d(x, w, b, stride=(self.sf, 1), padding=(self.kf // 2, 0))
        return y[..., :T]

    def macs_per_frame(self, f_in):
        return 4 * f_in * self.cin * self.cout * self.kf * self.kt


class ComplexBatchNorm(nn.Module):
    """Per complex channel: subtract the complex mean, divide by the RMS of the complex
    deviation (one scale for real and imaginary parts), then gamma * x + (beta_r + j beta_i).
    Folds exactly into a preceding complex conv (see export.py)."""

    def __init__(self, c, momentum=0.05, eps=1e-5):
        super().__init__()
        self.c, self.momentum, self.eps = c, momentum, eps
        self.gamma = nn.Parameter(torch.ones(c))
        self.beta_r = nn.Parameter(torch.zeros(c))
        self.beta_i = nn.Parameter(torch.zeros(c))
        self.register_buffer("mean_r", torch.zeros(c))
        self.register_buffer("mean_i", torch.zeros(c))
        self.register_buffer("var", torch.ones(c))
        self.frozen = False  # True: the running statistics in training too (train.py --freeze-bn)

    def forward(self, x):
        xr, xi = _split(x)
        if self.training and not self.frozen:
            mr = xr.mean(dim=(0, 2, 3))
            mi = xi.mean(dim=(0, 2, 3))
            dr = xr - mr[None, :, None, None]
            di = xi - mi[None, :, None, None]
            var = 0.5 * (dr.pow(2) + di.pow(2)).mean(dim=(0, 2, 3))
            with torch.no_grad():
                m = self.momentum
                self.mean_r.mul_(1 - m).add_(m * mr)
                self.mean_i.mul_(1 - m).add_(m * mi)
                self.var.mul_(1 - m).add_(m * var)
        else:
            mr, mi, var = self.mean_r, self.mean_i, self.var
            dr = xr - mr[None, :, None, None]
            di = xi - mi[None, :, None, None]
        s = (self.gamma / torch.sqrt(var + self.eps))[None, :, None, None]
        yr = dr * s + self.beta_r[None, :, None, None]
        yi = di * s + self.beta_i[None, :, None, None]
        return torch.cat([yr, yi], dim=1)

    def fold_scale_bias(self):
        """(scale, bias_r, bias_i) such that bn(x) = scale * x + bias."""
        s = self.gamma / torch.sqrt(self.var + self.eps)
        return s, self.beta_r - s * self.mean_r, self.beta_i - s * self.mean_i


class ComplexLinear(nn.Module):
    """Complex dense layer applied over channel dim 1 of (B, 2Cin, ...)."""

    def __init__(self, cin, cout, bias=True):
        super().__init__()
        self.cin, self.cout = cin, cout
        bound = 1.0 / math.sqrt(2 * cin)
        self.wr = nn.Parameter(torch.empty(cout, cin).uniform_(-bound, bound))
        self.wi = nn.Parameter(torch.empty(cout, cin).uniform_(-bound, bound))
        if bias:
            self.br = nn.Parameter(torch.zeros(cout))
            self.bi = nn.Parameter(torch.zeros(cout))
        else:
            self.br = self.bi = None

    def forward(self, x):
        w = _block_conv_weight(self.wr, self.wi)
        b = None if self.br is None else torch.cat([self.br, self.bi])
        shape = x.shape
        y = F.conv1d(x.reshape(shape[0], shape[1], -1), w[:, :, None], b)
        return y.reshape(shape[0], 2 * self.cout, *shape[2:])

    def macs(self):
        return 4 * self.cin * self.cout


class ComplexFSMN(nn.Module):
    """Complex FSMN block (FRCRN's UniDeepFsmn, complex):
        h = ReLU(Linear(x))            (ReLU on real and imaginary parts)
        p = Projection(h)              (no bias)
        y = x + p + memory(p)
    memory: depthwise filter per complex channel (one real kernel shared by real and
    imaginary parts) along one axis.
      axis='freq':  kernel 2*order+1 taps centred on the bin (looks both ways in frequency).
      axis='time':  `order` taps over frames t, t-d, ..., t-(order-1)d (past only), d = dilation.
    Input (B, 2C, F, T) for axis='freq' (features = channels, per bin per frame), and
    (B, 2D, T) for axis='time' (features = channels*bins flattened by the caller)."""

    def __init__(self, c, hidden, order, axis, dilation=1):
        super().__init__()
        assert axis in ("freq", "time")
        self.c, self.hidden, self.order, self.axis, self.dilation = c, hidden, order, axis, dilation
        self.linear = ComplexLinear(c, hidden, bias=True)
        self.project = ComplexLinear(hidden, c, bias=False)
        k = 2 * order + 1 if axis == "freq" else order
        self.mem = nn.Parameter(torch.zeros(c, k))  # zero init: memory starts switched off

    def forward(self, x):
        h = F.relu(self.linear(x))
        p = self.project(h)
        w = torch.cat([self.mem, self.mem], dim=0)  # (2C, K): same kernel for re and im
        if self.axis == "freq":
            B, C2, Fq, T = p.shape
            m = F.conv2d(p, w[:, None, :, None], padding=(self.order, 0), groups=C2)
        else:
            pad = (self.order - 1) * self.dilation
            m = F.conv1d(F.pad(p, (pad, 0)), w[:, None, :], dilation=self.dilation, groups=p.shape[1])
        return x + p + m

    def macs_per_step(self):
        k = self.mem.shape[1]
        return self.linear.macs() + self.project.macs() + 2 * self.c * k


class Denoiser(nn.Module):
    def __init__(self, channels=(8, 16, 24, 32, 32), kf=3, fsmn_freq_hidden=None, fsmn_freq_order=6,
                 time_hidden=128, time_order=20, time_dilations=(1, 2), compress=0.3, mask_bias=1.5,
                 slope=0.2):
        super().__init__()
        self.cfg = dict(channels=list(channels), kf=kf, fsmn_freq_hidden=fsmn_freq_hidden,
                        fsmn_freq_order=fsmn_freq_order, time_hidden=time_hidden, time_order=time_order,
                        time_dilations=list(time_dilations), compress=compress, mask_bias=mask_bias,
                        slope=slope)
        self.compress, self.slope = compress, slope
        n = len(channels)
        chans = [1] + list(channels)
        self.enc, self.enc_bn, self.enc_fsmn = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.fdims = [S.N_BINS]
        for i in range(n):
            conv = ComplexConv2d(chans[i], chans[i + 1], kf)
            self.enc.append(conv)
            self.enc_bn.append(ComplexBatchNorm(chans[i + 1]))
            self.fdims.append(conv.out_f(self.fdims[-1]))
            if i < n - 1:  # FRCRN: frequency FSMN before encoders 1..n-1
                h = fsmn_freq_hidden or chans[i + 1]
                self.enc_fsmn.append(ComplexFSMN(chans[i + 1], h, fsmn_freq_order, "freq"))
        fb = self.fdims[-1]
        d = chans[-1] * fb
        self.time_fsmn = nn.ModuleList(
            [ComplexFSMN(d, time_hidden, time_order, "time", dilation=dl) for dl in time_dilations])
        self.dec, self.dec_bn, self.dec_fsmn = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for j, i in enumerate(reversed(range(n))):  # decoder j undoes encoder i
            cin = 2 * chans[i + 1]
            cout = chans[i] if i > 0 else 1
            conv = ComplexConvTranspose2d(cin, cout, kf)
            assert conv.out_f(self.fdims[i + 1]) == self.fdims[i], (self.fdims, i)
            self.dec.append(conv)
            if i > 0:
                self.dec_bn.append(ComplexBatchNorm(cout))
                h = fsmn_freq_hidden or cout
                self.dec_fsmn.append(ComplexFSMN(cout, h, fsmn_freq_order, "freq"))
        last = self.dec[-1]
        with torch.no_grad():  # start near the identity mask: output ~ tanh(mask_bias) * noisy
            last.wr.mul_(0.1)
            last.wi.mul_(0.1)
            last.br.fill_(mask_bias)

    # -- features ---------------------------------------------------------------------
    def features(self, X):
        """X: (B, T, 161) complex noisy spectrum -> (B, 2, 161, T) power-law compressed
        complex spectrum |X|^c e^{j angle X} (c = 0.3)."""
        mag2 = X.real.pow(2) + X.imag.pow(2)
        g = (mag2 + 1e-12).pow((self.compress - 1) / 2)
        return torch.stack([X.real * g, X.imag * g], dim=1).transpose(2, 3)

    def forward_mask(self, X):
        """X: (B, T, 161) complex -> mask (B, T, 161) complex."""
        x = self.features(X)
        skips = []
        for i, conv in enumerate(self.enc):
            x = F.leaky_relu(self.enc_bn[i](conv(x)), self.slope)
            if i < len(self.enc_fsmn):
                x = self.enc_fsmn[i](x)
            skips.append(x)
        B, C2, Fb, T = x.shape
        y = x.reshape(B, C2 * Fb, T)  # [re(c0 f0..), ..., im(...)] keeps the [real | imag] layout
        for layer in self.time_fsmn:
            y = layer(y)
        x = y.reshape(B, C2, Fb, T)
        for j, conv in enumerate(self.dec):
            x = conv(cat_complex(x, skips[-1 - j]))
            if j < len(self.dec_bn):
                x = F.leaky_relu(self.dec_bn[j](x), self.slope)
                x = self.dec_fsmn[j](x)
        m = torch.tanh(x)  # (B, 2, 161, T)
        return torch.complex(m[:, 0], m[:, 1]).transpose(1, 2)

    def forward(self, X):
        """Noisy spectrum (B, T, 161) complex -> enhanced spectrum, mask."""
        M = self.forward_mask(X)
        return M * X, M

    def enhance(self, wav):
        """(B, N) waveform -> (B, N) enhanced waveform (aligned, no delay)."""
        n = wav.shape[-1]
        X = S.stft(F.pad(wav, (0, S.WIN)))  # extra frames so the last input samples come out
        Y, _ = self.forward(X)
        return S.istft(Y, length=n)

    # -- bookkeeping -------------------------------------------------------------------
    def export_params(self):
        """Weights-file tensor name -> the parameter it comes from, in file order; every
        tensor but batch norm's, which export.py folds into the conv before it."""
        p = {}

        def fsmn(prefix, f):
            p.update({f"{prefix}.l1.wr": f.linear.wr, f"{prefix}.l1.wi": f.linear.wi,
                      f"{prefix}.l1.br": f.linear.br, f"{prefix}.l1.bi": f.linear.bi,
                      f"{prefix}.l2.wr": f.project.wr, f"{prefix}.l2.wi": f.project.wi, f"{prefix}.mem": f.mem})

        for i, conv in enumerate(self.enc):
            for k in ("wr", "wi", "br", "bi"):
                p[f"enc{i}.{k}"] = getattr(conv, k)
            if i < len(self.enc_fsmn):
                fsmn(f"enc{i}.fsmn", self.enc_fsmn[i])
        for j, f in enumerate(self.time_fsmn):
            fsmn(f"tfsmn{j}", f)
        for j, conv in enumerate(self.dec):
            for k in ("wr", "wi", "br", "bi"):
                p[f"dec{j}.{k}"] = getattr(conv, k)
            if j < len(self.dec_fsmn):
                fsmn(f"dec{j}.fsmn", self.dec_fsmn[j])
        return p

    def n_params(self):
        return sum(p.numel() for p in self.parameters())

    def layer_table(self):
        """Rows (name, in shape, out shape, params, MACs/frame) for one frame, complex
        channels x bins (after batch-norm folding, so BN has no cost)."""
        rows = []
        chans = [1] + self.cfg["channels"]
        nparam = lambda m: sum(p.numel() for p in m.parameters())
        f = S.N_BINS
        for i, conv in enumerate(self.enc):
            fo = conv.out_f(f)
            rows.append((f"enc{i} cconv k({self.cfg['kf']},2) s(2,1) +BN+LReLU", f"{chans[i]}x{f}",
                         f"{chans[i+1]}x{fo}", nparam(conv) + nparam(self.enc_bn[i]), conv.macs_per_frame(f)))
            if i < len(self.enc_fsmn):
                fs = self.enc_fsmn[i]
                rows.append((f"enc{i} fsmn-freq h{fs.hidden} mem{2*fs.order+1}", f"{chans[i+1]}x{fo}",
                             f"{chans[i+1]}x{fo}", nparam(fs), fs.macs_per_step() * fo))
            f = fo
        d = chans[-1] * f
        for k, fs in enumerate(self.time_fsmn):
            rows.append((f"bottleneck fsmn-time{k} h{fs.hidden} mem{fs.order} d{fs.dilation}", f"{d}",
                         f"{d}", nparam(fs), fs.macs_per_step()))
        for j, conv in enumerate(self.dec):
            fo = conv.out_f(f)
            has_bn = j < len(self.dec_bn)
            extra = nparam(self.dec_bn[j]) if has_bn else 0
            name = f"dec{j} ctconv k({self.cfg['kf']},2) s(2,1)" + (" +BN+LReLU" if has_bn else " -> tanh mask")
            rows.append((name, f"{conv.cin}x{f} (skip cat)", f"{conv.cout}x{fo}", nparam(conv) + extra,
                         conv.macs_per_frame(f)))
            if has_bn:
                fs = self.dec_fsmn[j]
                rows.append((f"dec{j} fsmn-freq h{fs.hidden} mem{2*fs.order+1}", f"{conv.cout}x{fo}",
                             f"{conv.cout}x{fo}", nparam(fs), fs.macs_per_step() * fo))
            f = fo
        return rows

    def macs_per_second(self):
        return sum(r[4] for r in self.layer_table()) * FRAMES_PER_S


def build(cfg=None):
    return Denoiser(**(cfg or {}))


def print_summary(model, file=None):
    rows = model.layer_table()
    print(f"{'layer':48s} {'in (cch x bins)':>20s} {'out':>10s} {'params':>8s} {'MAC/frame':>10s}", file=file)
    for r in rows:
        print(f"{r[0]:48s} {r[1]:>20s} {r[2]:>10s} {r[3]:8d} {r[4]:10d}", file=file)
    print(f"params {model.n_params()} ({model.n_params()/1e6:.3f} M), "
          f"MACs/s {model.macs_per_second()/1e6:.1f} M (100 frames/s)", file=file)


def _causality_check(model):
    model.eval()
    torch.manual_seed(1)
    x = torch.randn(1, 16000) * 0.1
    x2 = x.clone()
    x2[:, 8000:] += torch.randn(1, 8000)
    with torch.no_grad():
        m1 = model.forward_mask(S.stft(x))
        m2 = model.forward_mask(S.stft(x2))
    # frames 0..49 end at or before sample 8000: they must not change
    d_past = (m1[:, :50] - m2[:, :50]).abs().max().item()
    d_fut = (m1[:, 50:] - m2[:, 50:]).abs().max().item()
    assert d_past == 0.0 and d_fut > 0, (d_past, d_fut)
    print(f"causality OK (past frames unchanged, later frames differ by {d_fut:.3g})")


if __name__ == "__main__":
    m = build()
    print_summary(m)
    _causality_check(m)
