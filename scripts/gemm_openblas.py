"""The matrix products of `recurrent bench --mode gemm`, timed with NumPy (OpenBLAS) on the same machine.

    OPENBLAS_NUM_THREADS=2 python3 scripts/gemm_openblas.py [seconds-per-repeat] [repeats]

Prints one line per shape: median GFLOP/s over the repeats (each repeat: median time of the calls
made in `seconds`), min and max, and NumPy's BLAS.
"""
import sys, time
import numpy as np

SHAPES = [  # name, m, n, k, transA, transB (as Bench+GEMM.swift)
    ("x·W_ihᵀ (input projection)", 6400, 2048, 512, False, True),
    ("dPreᵀ·x (weight gradient)", 2048, 512, 6400, True, False),
    ("dPre·W_ih (input gradient)", 6400, 512, 2048, False, False),
    ("square 2048", 2048, 2048, 2048, False, False),
]

def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rng = np.random.default_rng(1234)
    cfg = np.show_config(mode="dicts") if "mode" in np.show_config.__code__.co_varnames else {}
    blas = cfg.get("Build Dependencies", {}).get("blas", {}).get("name", "?") if cfg else "?"
    print(f"numpy {np.__version__}, BLAS {blas}")
    for name, m, n, k, ta, tb in SHAPES:
        a = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(np.float32)
        b = rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(np.float32)
        A, B = (a.T if ta else a), (b.T if tb else b)
        c = np.empty((m, n), np.float32)
        np.matmul(A, B, out=c)
        rates = []
        for _ in range(repeats):
            times, end = [], time.perf_counter() + seconds
            while len(times) < 3 or time.perf_counter() < end:
                t0 = time.perf_counter(); np.matmul(A, B, out=c); times.append(time.perf_counter() - t0)
            times.sort()
            rates.append(2 * m * n * k / times[len(times) // 2] / 1e9)
        rates.sort()
        print(f"{name} {m}×{n}×{k}: {rates[len(rates)//2]:.0f} GFLOP/s (min {rates[0]:.0f}, max {rates[-1]:.0f})")

if __name__ == "__main__":
    main()
