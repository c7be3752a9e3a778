"""A light APNet-style vocoder: log-mel frames -> log-amplitude and phase spectra.

Two predictors read the same mel frames (APNet, Ai and Ling 2023): the amplitude
predictor outputs the log-amplitude spectrum, the phase predictor two parallel
outputs R and I with phase = atan2(I, R). Both are ConvNeXt stacks over frames
(APNet2 / Vocos style, ConvNeXt v1 blocks: GRN would normalise over the whole
utterance and cannot stream). Everything runs at frame rate (5 ms hops); the
waveform is the inverse STFT on the grid of audio.py.

Predictor (dim C, hidden H, N blocks), on x = (logmel - ln 1e-5) * 0.2 (so the
log floor, i.e. digital silence, is 0 and zero padding means silence):
  in_conv   Conv1d(80 -> C, k_in), frames t-(k_in-1-L) .. t+L   (the only lookahead)
  in_norm   LayerNorm(C)
  N x block y = dw(x)          depthwise Conv1d(C, k_dw), causal: frames t-k_dw+1 .. t
              y = LayerNorm(y)
              y = pw2(GELU(pw1(y)))   Linear C -> H -> C
              x = x + gamma * y        (gamma is folded into pw2 on export)
  out_norm  LayerNorm(C)
  heads     amplitude: Linear(C -> 161) = log|X|
            phase:     Linear(C -> 161) = R, Linear(C -> 161) = I, phase = atan2(I, R)
            or (cfg phase "diff") four: R_t, I_t, R_f, I_f, the phase's time and
            frequency differences as atan2 around their nominal values (diffs),
            integrated frame by frame (integrate_phase; tolerance tol_db)
Lookahead: L frames (4 = 20 ms by default), all in in_conv; every other layer is
causal, so streaming inference returns frame t after mel frame t + L.

`python3 tools/vocoder/model.py` prints the layer table, parameters, MACs/s, and
checks that the whole-sequence forward equals a frame-prefix forward (streaming).
"""
import json
import math
import sys

import numpy as np

import torch
import torch.nn as nn
import torch.nn.functional as F

import audio as A

DEFAULT_CFG = dict(
    n_mels=A.N_MELS, bins=A.N_BINS,
    dim=160, hidden=480, amp_blocks=3, pha_blocks=4,
    k_in=9, k_dw=7, lookahead=4,
    ln_eps=1e-6, in_offset=-math.log(A.LOG_FLOOR), in_scale=0.2,
    logamp_max=8.0,
    phase="atan2", tol_db=50.0,
    rtisi_lookahead=0, rtisi_iters=0,
    mel_fix_db=0.0,
)


class Block(nn.Module):
    def __init__(self, dim, hidden, k, eps, scale):
        super().__init__()
        self.k = k
        self.dw = nn.Conv1d(dim, dim, k, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.pw1 = nn.Linear(dim, hidden)
        self.pw2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), scale))

    def forward(self, x):  # x [B, T, C]
        y = self.dw(F.pad(x.transpose(1, 2), (self.k - 1, 0))).transpose(1, 2)
        y = self.pw2(F.gelu(self.pw1(self.norm(y))))
        return x + self.gamma * y


class Predictor(nn.Module):
    def __init__(self, cfg, blocks, heads):
        super().__init__()
        c = cfg
        self.left = c["k_in"] - 1 - c["lookahead"]
        self.right = c["lookahead"]
        assert self.left >= 0, "k_in must exceed the lookahead"
        self.in_conv = nn.Conv1d(c["n_mels"], c["dim"], c["k_in"])
        self.in_norm = nn.LayerNorm(c["dim"], eps=c["ln_eps"])
        self.blocks = nn.ModuleList(Block(c["dim"], c["hidden"], c["k_dw"], c["ln_eps"], 1.0 / blocks)
                                    for _ in range(blocks))
        self.out_norm = nn.LayerNorm(c["dim"], eps=c["ln_eps"])
        self.heads = nn.ModuleList(nn.Linear(c["dim"], c["bins"]) for _ in range(heads))

    def forward(self, x):  # x [B, 80, T] (scaled mel) -> list of [B, T, bins]
        h = self.in_conv(F.pad(x, (self.left, self.right))).transpose(1, 2)
        h = self.in_norm(h)
        for b in self.blocks:
            h = b(h)
        h = self.out_norm(h)
        return [head(h) for head in self.heads]


class Vocoder(nn.Module):
    def __init__(self, cfg=None):
        super().__init__()
        c = dict(DEFAULT_CFG)
        c.update(cfg or {})
        self.cfg = c
        self.amp = Predictor(c, c["amp_blocks"], 1)
        assert c["phase"] in ("atan2", "diff"), c["phase"]
        self.diff = c["phase"] == "diff"
        self.pha = Predictor(c, c["pha_blocks"], 4 if self.diff else 2)
        with torch.no_grad():  # speech's mean log-amplitude: training starts near it
            self.amp.heads[0].bias.fill_(-5.0)
        if self.diff:
            self.init_diff_heads()

    def init_diff_heads(self):
        """Differences start at the phase vocoder's: each bin advances by its
        centre frequency, neighbours differ by pi (no deviation)."""
        with torch.no_grad():
            for j, h in enumerate(self.pha.heads):
                nn.init.normal_(h.weight, std=0.02)
                h.bias.fill_(1.0 if j % 2 == 0 else 0.0)

    def features(self, mel):
        """mel [B, T, 80] (natural-log mel) -> [B, 80, T] network input."""
        return ((mel + self.cfg["in_offset"]) * self.cfg["in_scale"]).transpose(1, 2)

    def forward(self, mel):
        """mel [B, T, 80] -> logamp [B, T, 161], phase [B, T, 161], aux.
        atan2: aux = (R, I). diff: aux = (dt, df), the phase's differences
        (differentiable), and phase is their integration (integrate_phase; no
        gradient)."""
        x = self.features(mel)
        (logamp,) = self.amp(x)
        if self.cfg["mel_fix_db"] > 0 and not self.training:
            logamp = self.mel_fix(logamp, mel)
        if self.diff:
            dt, df = self.diffs(x)
            ph = integrate_phase(logamp.detach().double().cpu().numpy(), dt.detach().double().cpu().numpy(),
                                 df.detach().double().cpu().numpy(), self.cfg["tol_db"])
            return logamp, torch.from_numpy(ph).to(logamp), (dt, df)
        r, i = self.pha(x)
        return logamp, torch.atan2(i, r), (r, i)

    def mel_fix(self, logamp, mel):
        """The predicted log-amplitude with its mel bands pulled onto the input mel
        (cfg mel_fix_db > 0; inference only). A network trained with a log-amplitude
        loss predicts the mean of log|X|, which for noise-like bins lies 1.5 dB below
        log E|X| (Rayleigh: E ln|X| = ln sigma - gamma/2): fricatives and the top
        octave come out too quiet, and so does every mel band the front end sums.
        Per frame: the amplitude interpolated onto the mel front end's 512-point
        grid (audio.synth_to_mel_grid), its log mel m; the error per band
        r = clamp(mel - m, +-mel_fix_db) (in nepers), interpolated back over the
        bins by band centre (audio.bands_to_synth_grid) and added. One pass; the
        harmonic fine structure stays the network's."""
        c = self.cfg
        a = torch.exp(torch.clamp(logamp, max=c["logamp_max"]))
        g = A._const("syn2mel", A.synth_to_mel_grid, a.device, a.dtype)
        fb = A._const("mel", A.mel_bank, a.device, a.dtype)
        m = torch.log(torch.clamp(torch.matmul(torch.matmul(a, g), fb.t()), min=A.LOG_FLOOR))
        lim = c["mel_fix_db"] * math.log(10.0) / 20.0
        r = torch.clamp(mel.to(a.dtype) - m, -lim, lim)
        return logamp + torch.matmul(r, A._const("band2syn", A.bands_to_synth_grid, a.device, a.dtype))

    def diffs(self, x):
        """x [B, 80, T] (features) -> dt, df [B, T, 161]: the phase's advance
        from frame t-1 to t in each bin, and from bin k to k+1 in frame t,
        each the nominal value plus atan2 of two outputs:
          dt = pi k / 2 + atan2(I_t, R_t)   (a bin-centre sinusoid advances
               2 pi k / 320 rad per sample, 80 samples per hop; taken as
               pi (k mod 4) / 2, the same angle, to keep float precision)
          df = pi + atan2(I_f, R_f)         (the window sits at the frame's
               start: a partial's neighbouring bins differ by pi)."""
        rt, it, rf, i_f = self.pha(x)
        k = torch.arange(rt.shape[-1], device=rt.device) % 4
        return 0.5 * math.pi * k.to(rt.dtype) + torch.atan2(it, rt), math.pi + torch.atan2(i_f, rf)

    def spectrum(self, logamp, phase):
        """Complex spectrum for synthesis (log-amplitude clamped as in C)."""
        amp = torch.exp(torch.clamp(logamp, max=self.cfg["logamp_max"]))
        return torch.polar(amp, phase) if amp.dtype != torch.float16 else None

    def synth(self, logamp, phase, mel=None):
        """The waveform as C synthesises it (vocoder_syn): audio.istft, after
        the RTISI-LA refinement when the configuration asks for it (numpy,
        float64; no gradient), which with mel_fix_db > 0 and the input mel
        [B, T, 80] also pulls each finished frame onto its mel."""
        X = self.spectrum(logamp, phase)
        L, n = self.cfg["rtisi_lookahead"], self.cfg["rtisi_iters"]
        if L or n:
            fix = self.cfg["mel_fix_db"] if mel is not None else 0.0
            X = torch.stack([torch.from_numpy(A.rtisi_la(
                x.detach().cpu().numpy(), L, n, None if mel is None else mel[b].detach().cpu().numpy(), fix))
                for b, x in enumerate(X)]).to(X.device)
        return A.istft(X)

    def vocode(self, mel):
        """mel [B, T, 80] -> waveform [B, T*80 - 240] (synth)."""
        logamp, phase, _ = self(mel)
        return self.synth(logamp, phase, mel if self.cfg["mel_fix_db"] > 0 else None)

    def n_params(self):
        return sum(p.numel() for p in self.parameters())


def wrap(p):
    """Angles to [-pi, pi)."""
    return p - 2 * math.pi * np.floor((p + math.pi) / (2 * math.pi))


def integrate_phase(logamp, dt, df, tol_db):
    """Phase [B, T, K] from its predicted differences (numpy, float64), frame by
    frame as the C code does (src/models/vocoder.c, phase_integrate), in the
    order of RTPGHI (Prusa and Holighaus 2017): a max-heap of coefficients by
    log-amplitude, seeded with the previous frame's significant ones; popping
    one of the previous frame carries its phase forward in time (+dt) to the
    same bin of this frame, popping one of this frame carries it along
    frequency (+-df) to its neighbours. Significant: within tol_db of the
    frame's maximum. A significant coefficient the heap cannot reach starts
    again from the previous frame (or 0 in the first frame); the others just
    advance by dt. Ties go to the lower bin, then to the previous frame."""
    import heapq
    B, T, K = logamp.shape
    thr = tol_db * math.log(10.0) / 20.0
    out = np.zeros((B, T, K))
    for b in range(B):
        prev = np.zeros(K)
        prev_big = np.zeros(K, dtype=bool)
        prev_s = np.zeros(K)
        for t in range(T):
            s = logamp[b, t]
            big = s >= s.max() - thr
            cur = wrap(prev + dt[b, t]) if t > 0 else np.zeros(K)
            done = ~big
            heap = [(-prev_s[k], k, 0) for k in range(K) if prev_big[k]] if t > 0 else []
            heapq.heapify(heap)
            while True:
                while heap:
                    _, k, fr = heapq.heappop(heap)
                    if fr == 0:
                        if not done[k]:
                            done[k] = True  # cur[k] already holds prev + dt
                            heapq.heappush(heap, (-s[k], k, 1))
                        continue
                    if k + 1 < K and not done[k + 1]:
                        cur[k + 1] = wrap(cur[k] + df[b, t, k])
                        done[k + 1] = True
                        heapq.heappush(heap, (-s[k + 1], k + 1, 1))
                    if k > 0 and not done[k - 1]:
                        cur[k - 1] = wrap(cur[k] - df[b, t, k - 1])
                        done[k - 1] = True
                        heapq.heappush(heap, (-s[k - 1], k - 1, 1))
                if done.all():
                    break
                k0 = int(np.argmax(np.where(done, -np.inf, s)))  # lowest bin of the largest left
                done[k0] = True
                heapq.heappush(heap, (-s[k0], k0, 1))
            out[b, t] = cur
            prev, prev_big, prev_s = cur, big, s
    return out


def build(cfg=None):
    return Vocoder(cfg)


def layer_table(model):
    """[(name, in, out, params, MACs per frame)] for the exported (folded) network."""
    c = model.cfg
    rows = []
    ph_heads = ["R_t", "I_t", "R_f", "I_f"] if model.diff else ["R", "I"]
    for pname, pred, heads in (("amp", model.amp, ["log|X|"]), ("pha", model.pha, ph_heads)):
        C, H = c["dim"], c["hidden"]
        rows.append((f"{pname}.in_conv Conv1d k{c['k_in']} (L={c['lookahead']})", c["n_mels"], C,
                     c["n_mels"] * C * c["k_in"] + C, c["n_mels"] * C * c["k_in"]))
        rows.append((f"{pname}.in_norm LayerNorm", C, C, 2 * C, 2 * C))
        for i, _ in enumerate(pred.blocks):
            rows.append((f"{pname}.blocks.{i} dw Conv1d k{c['k_dw']} causal", C, C, C * c["k_dw"] + C,
                         C * c["k_dw"]))
            rows.append((f"{pname}.blocks.{i} LayerNorm + pw1 + GELU", C, H, 2 * C + C * H + H, C * H + 2 * C))
            rows.append((f"{pname}.blocks.{i} pw2 (+gamma) + residual", H, C, H * C + C, H * C))
        rows.append((f"{pname}.out_norm LayerNorm", C, C, 2 * C, 2 * C))
        for h in heads:
            rows.append((f"{pname}.head {h} Linear", C, c["bins"], C * c["bins"] + c["bins"], C * c["bins"]))
    return rows


def print_summary(model, file=sys.stdout):
    rows = layer_table(model)
    fps = A.SR / A.HOP
    print("| layer | in | out | params | MACs/frame |", file=file)
    print("|---|---:|---:|---:|---:|", file=file)
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} |", file=file)
    P = sum(r[3] for r in rows)
    M = sum(r[4] for r in rows)
    la = model.cfg["lookahead"]
    print(f"params {P} (training: {model.n_params()}, gamma folded on export); "
          f"{M} MACs/frame = {M * fps / 1e6:.1f} M MAC/s at {fps:.0f} frames/s; "
          f"lookahead {la} frames = {la * A.HOP * 1000 / A.SR:.0f} ms", file=file, flush=True)
    return P, M


def _self_check():
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float64)
    m = build(dict(dim=16, hidden=24, amp_blocks=2, pha_blocks=2))
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.2 * torch.randn_like(p))
    m.eval()
    L = m.cfg["lookahead"]
    mel = torch.randn(1, 30, A.N_MELS) - 4
    with torch.no_grad():
        whole, pw, _ = m(mel)
        # streaming: output frame t from mel frames <= t + L only
        for t in range(0, 30 - L):
            part, pp, _ = m(mel[:, :t + L + 1])
            assert torch.allclose(part[:, t], whole[:, t], atol=1e-12), t
            assert torch.allclose(pp[:, t], pw[:, t], atol=1e-12), t
        # ... and not from frame t + L + 1
        mel2 = mel.clone()
        mel2[:, 10 + L + 1] += 1
        w2, _, _ = m(mel2)
        assert torch.equal(w2[:, :10 + 1], whole[:, :10 + 1]) and not torch.equal(w2[:, 11], whole[:, 11])
    torch.set_default_dtype(torch.float32)
    print("model self-check OK: streaming prefix == whole sequence, lookahead", L, "frames")
    full = build()
    print_summary(full)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print_summary(build(json.loads(sys.argv[1])))
    else:
        _self_check()
