"""PyTorch figures for tiller-bench's GPU suite, measured on the same GPU in the same run.

Writes JSON that `tiller-bench --backend vulkan --torch FILE` reads to print ratios:
cuBLAS sgemm with TF32 off, fp16 matmul (tensor cores), causal SDPA with grouped-query heads,
and a device-to-device copy. Shapes match Benchmarks/TillerBench/GPUBench.swift.
Usage: python3 gpu_reference.py OUT.json
"""
import json
import sys

import torch

SIZE = 4096
T, HQ, HKV, D = 4096, 32, 8, 128
PSR_ROWS, PSR_DIM = 16384, 4096


def median_seconds(fn, repeats=20, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    times.sort()
    return times[len(times) // 2]


def main(path):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(0)}

    x = torch.randn(SIZE, SIZE, device=dev)
    w = torch.randn(SIZE, SIZE, device=dev)
    out["sgemm_f32_gflops"] = 2 * SIZE**3 / median_seconds(lambda: x @ w.T) / 1e9
    xh, wh = x.half(), w.half()
    out["matmul_f16_gflops"] = 2 * SIZE**3 / median_seconds(lambda: xh @ wh.T) / 1e9

    q = torch.randn(1, HQ, T, D, device=dev)
    k = torch.randn(1, HKV, T, D, device=dev)
    v = torch.randn(1, HKV, T, D, device=dev)
    # f32, like tiller's attention; the key/value heads are shared by groups of query heads.
    sdpa = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    out["sdpa_gflops"] = 4 * HQ * D * T * (T + 1) / 2 / median_seconds(sdpa) / 1e9

    h = torch.randn(PSR_ROWS, PSR_DIM, device=dev)
    dst = torch.empty_like(h)
    out["copy_gbps"] = 2 * h.numel() * 4 / median_seconds(lambda: dst.copy_(h)) / 1e9

    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
