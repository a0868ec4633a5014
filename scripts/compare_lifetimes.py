"""Times the PyPI package `lifetimes` fitting BG/NBD and Gamma-Gamma on the CDNOW sample, the
same data `cargo bench -p regard-models --bench fit` uses, so BENCHMARKS.md can state the ratio
measured in one run.

    python3 -m venv /tmp/lt && /tmp/lt/bin/pip install lifetimes
    /tmp/lt/bin/python scripts/compare_lifetimes.py
"""
import time
from pathlib import Path

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

DATA = Path(__file__).resolve().parent.parent / "crates/regard-models/tests/data"


def best_of(n, fn):
    best = float("inf")
    for _ in range(n):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


summary = pd.read_csv(DATA / "cdnow_customers_summary.csv")
bg = BetaGeoFitter(penalizer_coef=0.0)
bg_seconds = best_of(5, lambda: bg.fit(summary["frequency"], summary["recency"], summary["T"]))
print(f"lifetimes BetaGeoFitter on {len(summary)} customers: {bg_seconds * 1e3:.1f} ms (best of 5); "
      f"r={bg.params_['r']:.6f} alpha={bg.params_['alpha']:.4f} a={bg.params_['a']:.5f} b={bg.params_['b']:.5f}")

spend = pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv")
repeat = spend[spend["x"] > 0]
gg = GammaGammaFitter(penalizer_coef=0.0)
gg_seconds = best_of(5, lambda: gg.fit(repeat["x"], repeat["zbar"]))
print(f"lifetimes GammaGammaFitter on {len(repeat)} repeat buyers: {gg_seconds * 1e3:.1f} ms (best of 5); "
      f"p={gg.params_['p']:.4f} q={gg.params_['q']:.4f} v={gg.params_['v']:.4f}")

predict_seconds = best_of(5, lambda: (bg.conditional_expected_number_of_purchases_up_to_time(
    39, summary["frequency"], summary["recency"], summary["T"]),
    bg.conditional_probability_alive(summary["frequency"], summary["recency"], summary["T"])))
print(f"lifetimes E[Y(39)] + P(alive) for {len(summary)} customers: {predict_seconds * 1e3:.2f} ms (best of 5)")
