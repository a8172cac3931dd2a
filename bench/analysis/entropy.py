#!/usr/bin/python3
"""Empirical entropies of candidate KV codec models on ../shared/kv FP16 dumps.

Every figure is bits per element *including* model cost: adaptive models pay their learning
cost (ideal arithmetic coding of count-based estimates), static models pay an estimated table.
Ratios are 16 / bits. Usage: /usr/bin/python3 bench/analysis/entropy.py [/work/shared/kv]
"""
import sys, os
import numpy as np

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '../../../shared/kv')
RUNS = ['story_prose', 'technical_prose', 'mmlu_fewshot_q1', 'generated_greedy']


def load():
    out = []
    for run in RUNS:
        z = np.load(os.path.join(ROOT, run + '.fp16.npz'))
        for L in range(5):
            for kind in 'kv':
                a = z[f'layer{L}_{kind}']
                out.append((run, L, kind, a.view(np.uint16).copy()))
    return out


def adaptive_bits(sym, ctx, K, alpha):
    """Ideal code length of `sym` (ints < K) under per-context adaptive counts:
    p = (n[ctx,sym] + alpha) / (N[ctx] + alpha*K), updated after each symbol."""
    sym = np.asarray(sym, np.int64).ravel()
    ctx = np.asarray(ctx, np.int64).ravel()
    n = len(sym)
    if n == 0:
        return 0.0
    idx = np.arange(n)

    def rank_in_group(key):
        order = np.argsort(key, kind='stable')
        k = key[order]
        start = np.r_[0, np.flatnonzero(k[1:] != k[:-1]) + 1]
        grp_start = np.repeat(start, np.diff(np.r_[start, n]))
        r = np.empty(n, np.int64)
        r[order] = idx - grp_start
        return r
    nsym = rank_in_group(ctx * K + sym)
    nctx = rank_in_group(ctx)
    return float(-np.log2((nsym + alpha) / (nctx + alpha * K)).sum())


def binary_adaptive_bits(sym, ctx, nbits, alpha=0.4):
    """sym coded MSB first as a binary tree; each node (ctx, prefix) an adaptive bit."""
    sym = np.asarray(sym, np.int64).ravel()
    ctx = np.asarray(ctx, np.int64).ravel()
    total = 0.0
    for b in range(nbits - 1, -1, -1):
        prefix = (sym >> (b + 1)) | (1 << (nbits - 1 - b))  # unique node id
        bit = (sym >> b) & 1
        total += adaptive_bits(bit, ctx * (1 << nbits) + prefix, 2, alpha)
    return total


def static_bits(sym, ctx, K, table_bits_per_used=6.0):
    """Static per-context table: empirical entropy + (K-bit presence map + bits per used symbol)."""
    sym = np.asarray(sym, np.int64).ravel()
    ctx = np.asarray(ctx, np.int64).ravel()
    total = 0.0
    for c in np.unique(ctx):
        s = sym[ctx == c]
        cnt = np.bincount(s, minlength=K)
        p = cnt[cnt > 0] / len(s)
        total += -(cnt[cnt > 0] * np.log2(p)).sum() + min(K, 8 * (cnt > 0).sum()) + table_bits_per_used * (cnt > 0).sum()
    return total


def channels(a):
    H, T, D = a.shape
    return np.broadcast_to((np.arange(H)[:, None, None] * D + np.arange(D)[None, None, :]), (H, T, D))


def prev_tok(x, fill=0):
    p = np.empty_like(x)
    p[:, 1:, :] = x[:, :-1, :]
    p[:, 0, :] = fill
    return p


def dedupe_rows(a):
    """Token rows (all heads) equal to an earlier token row: returns (mask of dup tokens, ref cost bits)."""
    H, T, D = a.shape
    rows = a.transpose(1, 0, 2).reshape(T, H * D)
    seen = {}
    dup = np.zeros(T, bool)
    cost = 0.0
    for t in range(T):
        key = rows[t].tobytes()
        if key in seen:
            dup[t] = True
            cost += np.log2(max(len(seen), 2))  # index among distinct rows so far
        else:
            seen[key] = t
    # one adaptive flag per token
    cost += adaptive_bits(dup.astype(np.int64), np.zeros(T, np.int64), 2, 0.5)
    return dup, cost


MODELS = {}


def model(name):
    def deco(f):
        MODELS[name] = f
        return f
    return deco


@model('raw')
def m_raw(a):
    return 16.0 * a.size


@model('order0 hi8 static + lo8 raw')
def m_o0(a):
    hi = a >> 8
    return static_bits(hi, np.zeros_like(hi), 256) + 8 * a.size


@model('order0 (sign+exp) static + mant10 raw')
def m_o0_se(a):
    se = a >> 10
    return static_bits(se, np.zeros_like(se), 64) + 10 * a.size


@model('(sign+exp) adaptive per channel + mant10 raw')
def m_se_ch(a):
    se = a >> 10
    return adaptive_bits(se, channels(a), 64, 0.1) + 10 * a.size


@model('hi8 adaptive per channel + lo8 raw')
def m_hi_ch(a):
    return adaptive_bits(a >> 8, channels(a), 256, 0.05) + 8 * a.size


@model('hi8 binary-adaptive per channel + lo8 raw')
def m_hi_bin(a):
    return binary_adaptive_bits(a >> 8, channels(a), 8) + 8 * a.size


@model('hi8 static per channel (table counted) + lo8 raw')
def m_hi_static_ch(a):
    return static_bits(a >> 8, channels(a), 256) + 8 * a.size


@model('hi8 bin-adaptive ctx(channel, prev-token exp) + lo8 raw')
def m_hi_prev(a):
    hi = a >> 8
    pe = prev_tok((a >> 10) & 31, 31)
    return binary_adaptive_bits(hi, channels(a) * 32 + pe, 8) + 8 * a.size


@model('hi8 bin-adaptive ctx(channel, prev-token hi8) + lo8 raw')
def m_hi_prevhi(a):
    hi = a >> 8
    ph = prev_tok(hi, 0)
    return binary_adaptive_bits(hi, channels(a) * 256 + ph, 8) + 8 * a.size


@model('hi8 bin ctx(ch,prev exp) + lo8 bin ctx(exp) top3 bits, rest raw')
def m_full(a):
    hi = a >> 8
    exp = (a >> 10) & 31
    pe = prev_tok(exp, 31)
    lo = a & 255
    b = binary_adaptive_bits(hi, channels(a) * 32 + pe, 8)
    b += binary_adaptive_bits(lo >> 5, exp, 3) + 5 * a.size
    return b


@model('XOR prev token: hi8 bin ctx(ch) + lo8 raw')
def m_xor(a):
    x = a ^ prev_tok(a, 0)
    return binary_adaptive_bits(x >> 8, channels(a), 8) + 8 * a.size


@model('max: dedupe rows + hi8 bin ctx(ch,prev exp) + lo top3 | exp')
def m_max(a):
    H, T, D = a.shape
    dup, cost = dedupe_rows(a)
    keep = ~dup
    b = a[:, keep, :]
    if b.shape[1] == 0:
        return cost
    return cost + m_full(b)


@model('fast: dedupe rows + hi8 static per ch-group(4) + lo raw')
def m_fast(a):
    dup, cost = dedupe_rows(a)
    b = a[:, ~dup, :]
    H, T, D = b.shape
    ch = channels(b)
    return cost + static_bits(b >> 8, ch, 256) + 8 * b.size


def main():
    data = load()
    print(f'{"model":66s} {"K":>6s} {"V":>6s} {"KV":>6s}')
    for name, f in MODELS.items():
        bits = {'k': 0.0, 'v': 0.0}
        raw = {'k': 0, 'v': 0}
        for run, L, kind, a in data:
            bits[kind] += f(a)
            raw[kind] += 16 * a.size
        rk = raw['k'] / bits['k']
        rv = raw['v'] / bits['v']
        rkv = (raw['k'] + raw['v']) / (bits['k'] + bits['v'])
        print(f'{name:66s} {rk:6.3f} {rv:6.3f} {rkv:6.3f}', flush=True)


if __name__ == '__main__':
    main()
