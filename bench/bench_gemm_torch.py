#!/usr/bin/env python3
"""PyTorch's SGEMM at the shapes bench_gemm lists, for its comparison column.

Reads "name ta tb M N K beta" lines (bench_gemm --list) on stdin and prints
"name threads gflops" for 1 and 2 threads. Operands are laid out as
bench_gemm's (row-major, a transposed operand is a transposed view, as
F.linear and autograd see them); beta 0 runs torch.mm into a preallocated
output, beta 1 runs addmm_ (accumulate). Each figure is the best of several
samples of at least 20 ms, as in bench_gemm.
"""
import sys
import time

import torch


def operand(rows, cols, trans):
    """A (rows, cols) operand stored row-major, or as the transpose of (cols, rows)."""
    if trans:
        return torch.rand(cols, rows) * 2 - 1, True
    return torch.rand(rows, cols) * 2 - 1, False


def gflops(ta, tb, m, n, k, beta):
    a, at = operand(m, k, ta)
    b, bt = operand(k, n, tb)
    a = a.t() if at else a
    b = b.t() if bt else b
    c = torch.zeros(m, n)

    def run():
        if beta == 0:
            torch.mm(a, b, out=c)
        else:
            c.addmm_(a, b)

    run()
    t = time.perf_counter()
    run()
    t = time.perf_counter() - t
    iters = int(0.02 / max(t, 1e-7)) + 1 if t < 0.02 else 1
    best = float("inf")
    for _ in range(3 if t > 0.5 else 7 if t > 0.1 else 15):
        t0 = time.perf_counter()
        for _ in range(iters):
            run()
        best = min(best, (time.perf_counter() - t0) / iters)
    return 2.0 * m * n * k / best * 1e-9


def main():
    shapes = [line.split() for line in sys.stdin if line.strip()]
    torch.manual_seed(0)
    with torch.inference_mode():
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for name, ta, tb, m, n, k, beta in shapes:
                g = gflops(ta == "1", tb == "1", int(m), int(n), int(k), float(beta))
                print(f"{name} {threads} {g:.1f}", flush=True)


if __name__ == "__main__":
    main()
