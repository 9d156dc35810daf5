"""Attention over one packed row: the masked path against ways that stay inside each sequence.

SmolLM2-135M's attention shape (9 query heads, 3 key/value heads, head_dim 64), one row of
~1,600 tokens holding 8 sequences, forward + backward of attention alone. Candidates run
interleaved in one process, several rounds, and the median per candidate is printed with the
load average (timings on a shared machine are only comparable within one run).

    python benchmarks/packed_attention.py [--rounds 5] [--dtype bf16|fp32] [--tokens 1600 --sequences 8]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

import torch
import torch.nn.functional as F
from transformers.integrations.sdpa_attention import sdpa_attention_forward

HEADS, KV_HEADS, HEAD_DIM = 9, 3, 64


class _Module(torch.nn.Module):
    """What transformers' sdpa_attention_forward reads from an attention layer."""
    num_key_value_groups = HEADS // KV_HEADS
    is_causal = True


MODULE = _Module()


def lengths_for(tokens: int, sequences: int, seed: int = 0) -> list[int]:
    """`sequences` lengths between 0.4x and 1.6x the mean, summing to `tokens`."""
    rng = random.Random(seed)
    weights = [rng.uniform(0.4, 1.6) for _ in range(sequences)]
    lengths = [max(1, int(tokens * w / sum(weights))) for w in weights]
    lengths[-1] += tokens - sum(lengths)
    return lengths


def masked(q, k, v, lengths):
    """What transformers does for a packed row: a (L, L) block-diagonal causal bool mask."""
    seg = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    pos = torch.arange(len(seg))
    mask = ((seg[:, None] == seg[None, :]) & (pos[:, None] >= pos[None, :]))[None, None]
    return sdpa_attention_forward(MODULE, q, k, v, mask, scaling=HEAD_DIM ** -0.5)[0].transpose(1, 2)


def per_sequence(q, k, v, lengths):
    """One causal SDPA call per sequence, outputs concatenated."""
    outs = [sdpa_attention_forward(MODULE, qs, ks, vs, None, scaling=HEAD_DIM ** -0.5)[0].transpose(1, 2)
            for qs, ks, vs in zip(q.split(lengths, 2), k.split(lengths, 2), v.split(lengths, 2))]
    return torch.cat(outs, 2)


def padded_batch(q, k, v, lengths):
    """Sequences padded into a batch (sequences, H, longest, D), one causal SDPA call."""
    longest = max(lengths)

    def batch(x):
        return torch.stack([F.pad(s, (0, 0, 0, longest - s.shape[2])) for s in x.split(lengths, 2)]).squeeze(1)

    out = F.scaled_dot_product_attention(batch(q), batch(k), batch(v), is_causal=True, enable_gqa=True)
    return torch.cat([o[:, :n] for o, n in zip(out, lengths)], 1).unsqueeze(0)


def nested(q, k, v, lengths):
    """Nested (jagged) tensors, one SDPA call."""
    def jag(x):
        return torch.nested.nested_tensor([s.squeeze(0).transpose(0, 1) for s in x.split(lengths, 2)],
                                          layout=torch.jagged).transpose(1, 2)
    kr = k.repeat_interleave(HEADS // KV_HEADS, 1)
    vr = v.repeat_interleave(HEADS // KV_HEADS, 1)
    out = F.scaled_dot_product_attention(jag(q), jag(kr), jag(vr), is_causal=True)
    return torch.cat([o.transpose(0, 1) for o in out.transpose(1, 2).unbind()], 1).unsqueeze(0)


def flex(lengths):
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    seg = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    block_mask = create_block_mask(lambda b, h, q_idx, kv_idx: (seg[q_idx] == seg[kv_idx]) & (q_idx >= kv_idx),
                                   None, None, len(seg), len(seg), device="cpu")
    compiled = torch.compile(flex_attention, dynamic=False)

    def run(q, k, v, _lengths):
        return compiled(q, k, v, block_mask=block_mask, enable_gqa=True)
    return run


def step(fn, q, k, v, lengths, grad):
    q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
    out = fn(q, k, v, lengths)
    out.backward(grad)
    return out.detach(), q.grad


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--tokens", type=int, default=1600)
    p.add_argument("--sequences", type=int, default=8)
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--skip", nargs="*", default=[], help="candidate names to leave out")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    lengths = lengths_for(a.tokens, a.sequences)
    torch.manual_seed(0)
    q = torch.randn(1, HEADS, a.tokens, HEAD_DIM, dtype=dtype)
    k = torch.randn(1, KV_HEADS, a.tokens, HEAD_DIM, dtype=dtype)
    v = torch.randn(1, KV_HEADS, a.tokens, HEAD_DIM, dtype=dtype)
    grad = torch.randn_like(q)
    candidates = {"masked": masked, "per_sequence": per_sequence, "padded_batch": padded_batch,
                  "nested": nested}
    if "flex" not in a.skip:
        candidates["flex"] = flex(lengths)
    candidates = {n: f for n, f in candidates.items() if n not in a.skip}
    reference = step(masked, q, k, v, lengths, grad)
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
    for name, fn in list(candidates.items()):
        try:
            out, dq = step(fn, q, k, v, lengths, grad)  # warm-up (and compile) + correctness
            err = max((out.float() - reference[0].float()).abs().max().item(),
                      (dq.float() - reference[1].float()).abs().max().item())
            print(f"{name}: max |diff| vs masked {err:.2e}" + ("" if err < tol else "  (WRONG)"))
        except Exception as e:  # a candidate this torch/CPU cannot run is reported, not fatal
            print(f"{name}: unavailable ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
            del candidates[name]
    times: dict[str, list[float]] = {n: [] for n in candidates}
    cpu: dict[str, list[float]] = {n: [] for n in candidates}
    for _ in range(a.rounds):
        for name, fn in candidates.items():
            t, c = time.perf_counter(), time.process_time()
            step(fn, q, k, v, lengths, grad)
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    base = statistics.median(times["masked"])
    print(f"\n{a.tokens} tokens, {a.sequences} sequences {lengths}, {a.dtype}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print(f"{'candidate':14} {'median ms':>10} {'min ms':>8} {'vs masked':>10} {'CPU ms':>8} {'vs masked':>10}")
    cpu_base = statistics.median(cpu["masked"])
    for name, ts in times.items():
        m, c = statistics.median(ts), statistics.median(cpu[name])
        print(f"{name:14} {m * 1e3:10.1f} {min(ts) * 1e3:8.1f} {base / m:9.2f}x {c * 1e3:8.1f} {cpu_base / c:9.2f}x")


if __name__ == "__main__":
    main()
