"""A decoder layer's small jobs, one Triton kernel each on CUDA, computed as transformers does elsewhere.

A graphed decode step at batch 1 is bound by kernel count rather than arithmetic: each kernel
costs a few microseconds even inside a graph, and transformers' modules spend ~8 kernels on an
RMSNorm and ~10 on rotary embeddings. Each function here does one such job in one kernel
(Triton) or a few (torch), with transformers' roundings: statistics in float32, results cast
back to the model dtype where transformers casts, and every product and sum rounded separately
(FMA contraction is off), so results differ from transformers' only in summation order.
Every device runs the same forward (runner.py) through these functions: a tensor on a CUDA
device gets the Triton kernel, any other (or every one, with `SPECLSP_FUSED=0`, or where Triton
is missing) the torch fallback, which is transformers' own computation.
"""

from __future__ import annotations

import os
import weakref

import torch

try:
    import triton
    import triton.language as tl
    from triton.language.extra import libdevice
except ImportError:  # pragma: no cover - CUDA builds of torch ship Triton
    triton = None

USE_TRITON = triton is not None and os.environ.get("SPECLSP_FUSED", "1") != "0"

# first Linear -> (fused weight, fused bias): a second runner over the same model reuses them
_CONCATENATED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def concat_linears(*linears: torch.nn.Linear) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One weight (and bias) for Linear layers that read the same input, so that one GEMV computes
    all their outputs. The layers' own parameters become row views of it: memory does not grow,
    and transformers' forward (the reference path) reads the very same values."""
    done = _CONCATENATED.get(linears[0])
    if done is not None and _views_of(done[0], [m.weight for m in linears]):
        return done
    # the views must be of the kind the parameters are (inference tensors if loaded under inference_mode)
    with torch.inference_mode(linears[0].weight.is_inference()), torch.no_grad():
        weight = torch.cat([m.weight for m in linears])
        bias = None
        if any(m.bias is not None for m in linears):  # (Qwen2's q/k/v); a missing one adds zeros
            bias = torch.cat([m.bias if m.bias is not None else weight.new_zeros(m.out_features) for m in linears])
        row = 0
        for m in linears:
            rows = m.weight.shape[0]
            m.weight.data = weight[row:row + rows]  # frees the layer's old storage
            if m.bias is not None:
                m.bias.data = bias[row:row + rows]
            row += rows
    _CONCATENATED[linears[0]] = (weight, bias)
    return weight, bias


def _views_of(weight: torch.Tensor, parts: list[torch.Tensor]) -> bool:
    row_bytes = weight.stride(0) * weight.element_size()
    offsets = [p.data_ptr() - weight.data_ptr() for p in parts]
    return offsets == [row_bytes * sum(p.shape[0] for p in parts[:j]) for j in range(len(parts))]


def add_rms_norm(h: torch.Tensor, delta: torch.Tensor | None, norm: torch.nn.Module):
    """(norm(h + delta), h + delta): the residual add of the previous block and the next RMSNorm
    in one kernel. As transformers' LlamaRMSNorm: float32 statistics, cast back, then the weight."""
    weight, eps = norm.weight, norm.variance_epsilon
    if not _triton(h) or weight.dtype != h.dtype:
        if delta is not None:
            h = h + delta
        return norm(h), h
    n = h.shape[-1]
    h = h.contiguous()
    x = torch.empty_like(h)
    out_h = torch.empty_like(h) if delta is not None else h
    block = triton.next_power_of_2(n)
    _add_rms_norm_kernel[(h.numel() // n,)](h, delta if delta is not None else h, weight, x, out_h, n, eps,
                                            HAS_DELTA=delta is not None, BLOCK=block,
                                            num_warps=max(4, min(16, block // 256)), enable_fp_fusion=False)
    return x, out_h


def rope_to_cache(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
                  k_cache: torch.Tensor, v_cache: torch.Tensor, heads: int, kv_heads: int) -> torch.Tensor:
    """From the fused projection `qkv` [1, T, (heads + 2 kv_heads) * D]: rotate q and k, write k
    and v into the cache [1, kv_heads, capacity, D] at `positions`; returns q [1, heads, T, D].
    cos, sin: [T, D] (row stride free). Rotation as transformers: x*cos + rotate_half(x)*sin."""
    T, D = qkv.shape[1], k_cache.shape[-1]
    if not _triton(qkv):
        qk = qkv[..., :(heads + kv_heads) * D].view(1, T, heads + kv_heads, D)
        c, s = cos.view(1, T, 1, D), sin.view(1, T, 1, D)
        qk = qk * c + torch.cat((-qk[..., D // 2:], qk[..., :D // 2]), dim=-1) * s  # q and k in one pass
        v = qkv[..., (heads + kv_heads) * D:].view(1, T, kv_heads, D)
        k_cache.index_copy_(2, positions, qk[:, :, heads:].transpose(1, 2))
        v_cache.index_copy_(2, positions, v.transpose(1, 2))
        return qk[:, :, :heads].transpose(1, 2)
    assert qkv.is_contiguous() and cos.stride(1) == 1 and sin.stride() == cos.stride() and D % 2 == 0
    assert k_cache.stride() == v_cache.stride() and k_cache.stride(3) == 1 and k_cache.stride(2) == D
    q = torch.empty((1, T, heads, D), dtype=qkv.dtype, device=qkv.device)
    _rope_to_cache_kernel[(T, heads + 2 * kv_heads)](
        qkv, cos, sin, positions, q, k_cache, v_cache, heads, kv_heads, qkv.shape[-1], cos.stride(0),
        k_cache.stride(1), HALF=D // 2, BLOCK=triton.next_power_of_2(D // 2), num_warps=1, enable_fp_fusion=False)
    return q.transpose(1, 2)  # the layout SDPA returns its output in, too


def act_mul(gate_up: torch.Tensor, act: torch.nn.Module, silu: bool) -> torch.Tensor:
    """act(gate) * up from the fused gate/up projection [..., 2F], rounded as transformers' MLP.
    `silu`: whether `act` is SiLU, the one activation with a kernel here."""
    f = gate_up.shape[-1] // 2
    if not (silu and _triton(gate_up)):
        return act(gate_up[..., :f]) * gate_up[..., f:]
    gate_up = gate_up.contiguous()
    out = gate_up.new_empty((*gate_up.shape[:-1], f))
    block = 1024
    _silu_mul_kernel[(gate_up.numel() // (2 * f), triton.cdiv(f, block))](gate_up, out, f, BLOCK=block,
                                                                           num_warps=4, enable_fp_fusion=False)
    return out


def _triton(x: torch.Tensor) -> bool:
    return USE_TRITON and x.is_cuda


if triton is not None:

    @triton.jit
    def _add_rms_norm_kernel(h_ptr, d_ptr, w_ptr, x_ptr, out_h_ptr, n, eps,
                             HAS_DELTA: tl.constexpr, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64) * n
        cols = tl.arange(0, BLOCK)
        m = cols < n
        h = tl.load(h_ptr + row + cols, mask=m, other=0.0)
        if HAS_DELTA:
            h = h + tl.load(d_ptr + row + cols, mask=m, other=0.0)  # in the model dtype, as `h + delta`
            tl.store(out_h_ptr + row + cols, h, mask=m)
        h32 = h.to(tl.float32)
        y = (h32 * tl.math.rsqrt(tl.sum(h32 * h32, axis=0) / n + eps)).to(h.dtype)
        w = tl.load(w_ptr + cols, mask=m, other=0.0)
        tl.store(x_ptr + row + cols, w * y, mask=m)

    @triton.jit
    def _rope_to_cache_kernel(qkv_ptr, cos_ptr, sin_ptr, pos_ptr, q_ptr, k_ptr, v_ptr, heads, kv_heads,
                              qkv_stride, cs_stride, cache_head_stride, HALF: tl.constexpr, BLOCK: tl.constexpr):
        # one program per (token, head); heads are numbered q..., k..., v..., as in the projection
        t = tl.program_id(0)
        head = tl.program_id(1)
        i = tl.arange(0, BLOCK)
        m = i < HALF
        src = qkv_ptr + t.to(tl.int64) * qkv_stride + head * (2 * HALF)
        x1 = tl.load(src + i, mask=m)
        x2 = tl.load(src + HALF + i, mask=m)
        pos = tl.load(pos_ptr + t)
        if head >= heads + kv_heads:  # v: into the cache unchanged
            dst = v_ptr + (head - heads - kv_heads) * cache_head_stride + pos * (2 * HALF)
        else:
            cs = t * cs_stride
            c1 = tl.load(cos_ptr + cs + i, mask=m)
            c2 = tl.load(cos_ptr + cs + HALF + i, mask=m)
            s1 = tl.load(sin_ptr + cs + i, mask=m)
            s2 = tl.load(sin_ptr + cs + HALF + i, mask=m)
            x1, x2 = x1 * c1 + (-x2) * s1, x2 * c2 + x1 * s2  # rotate_half(x) = [-x2, x1]
            if head < heads:
                dst = q_ptr + (t * heads + head) * (2 * HALF)
            else:
                dst = k_ptr + (head - heads) * cache_head_stride + pos * (2 * HALF)
        tl.store(dst + i, x1, mask=m)
        tl.store(dst + HALF + i, x2, mask=m)

    @triton.jit
    def _silu_mul_kernel(gu_ptr, out_ptr, f, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        m = cols < f
        g = tl.load(gu_ptr + row * 2 * f + cols, mask=m, other=0.0)
        u = tl.load(gu_ptr + row * 2 * f + f + cols, mask=m, other=0.0)
        g32 = g.to(tl.float32)
        silu = tl.math.div_rn(g32, 1.0 + libdevice.exp(-g32)).to(g.dtype)  # as torch's silu: float32, exact exp
        tl.store(out_ptr + row * f + cols, silu * u, mask=m)
