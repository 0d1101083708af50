"""Attack cost on CPU for WRN-16-1 (32x32x3, 10 classes): PGD-20 throughput and AutoAttack (standard) time.

Run: ``pytest verification/benchmarks/test_bench_attacks.py --benchmark-enable -s`` (skipped without
--benchmark-enable so the default test run stays fast). One torch thread. Short by design, so the AutoAttack numbers
are EXTRAPOLATIONS, stated in the printed lines and in ``benchmark.extra_info``. AutoAttack attacks a point only
while it is still robust, so a non-robust model costs far less; the number below is the cost of robust points:

* "robust" upper bound: eps = 1e-6 so no point is ever broken and all four attacks run to the end (the cost for a
  truly robust point). Each part runs with 1/10 of its iterations (APGD, APGD-T, FAB-T: 10 instead of 100; Square:
  500 instead of 5000 queries) on 4 images; their cost is linear in the iterations when nothing breaks, so each part's
  time is x 10, then x 100/4. Per-image cost falls with larger batches, so this overestimates a batched run.
"""
from __future__ import annotations

import time

import pytest
import torch

from mixacm.attacks import PGD_STEP_SIZE, pgd_restarts
from mixacm.autoattack_runner import STANDARD_PARTS, run_autoattack

EPS = 8 / 255


@pytest.fixture(scope="module")
def wrn():
    torch.set_num_threads(1)
    models = pytest.importorskip("mixacm.models")
    torch.manual_seed(0)
    return models.build_model("wrn-16-1").eval()




def _inputs(model, n, seed=0):
    x = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y = model(x).argmax(1)
    return x, y


def test_pgd20_throughput(benchmark, wrn):
    x, y = _inputs(wrn, 32)

    def run():
        return pgd_restarts(wrn, x, y, eps=EPS, step_size=PGD_STEP_SIZE, steps=20,
                            generator=torch.Generator().manual_seed(0))

    x_adv = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    assert (x_adv - x).abs().max() <= EPS + 1e-6
    seconds = benchmark.stats.stats.mean
    ips = len(x) / seconds
    benchmark.extra_info.update({"images": len(x), "images_per_s": ips, "threads": torch.get_num_threads()})
    print(f"\nPGD-20 WRN-16-1 CPU (1 thread, batch {len(x)}): {ips:.1f} images/s ({seconds:.2f} s per batch)")


def test_autoattack_standard_time_per_100(benchmark, wrn):
    # robust upper bound: nothing breaks at eps=1e-6; 1/10 of the iterations per part, scaled back
    xr, yr = _inputs(wrn, 4, seed=2)
    per_part = {}

    def run():
        for part in STANDARD_PARTS:
            t = time.perf_counter()
            r = run_autoattack(wrn, xr, yr, eps=1e-6, parts=(part,), seed=0, batch_size=len(xr), n_iter=10,
                               square_queries=500)
            per_part[part] = (time.perf_counter() - t) * 10 * 100 / len(xr)
            assert bool((r.y_adv == yr).all()), f"{part} broke a point at eps=1e-6; the upper-bound premise fails"

    benchmark.pedantic(run, rounds=1, iterations=1)
    robust_s = sum(per_part.values())
    benchmark.extra_info.update({"robust_upper_bound_s_per_100": robust_s,
                                 "robust_upper_bound_per_part_s_per_100": per_part,
                                 "method": "extrapolated from 1/10 iterations on 4 images, see module docstring"})
    print(f"\nAutoAttack standard WRN-16-1 CPU (1 thread): upper bound for robust points {robust_s:.0f} s per 100 "
          f"images (= {robust_s / 60:.1f} min; per part " + ", ".join(f"{k} {v:.0f} s" for k, v in per_part.items())
          + "; measured with 1/10 iterations on 4 images, x10 x25)")
