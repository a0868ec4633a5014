"""Times the PyPI package `lifetimes` fitting BG/NBD and Gamma-Gamma on the data
`cargo bench -p regard-models --bench fit` uses, so BENCHMARKS.md can state the ratios measured
in one run: the CDNOW sample (2,357 customers), the full CDNOW cohort (23,570 customers) and the
bench's 1,000,000 synthetic customers.

    python3 -m venv /tmp/lt && /tmp/lt/bin/pip install lifetimes==0.11.3
    cargo run --release -p regard-models --example synthetic_customers -- 1000000 > /tmp/synthetic_1m.csv
    /tmp/lt/bin/python scripts/compare_lifetimes.py [--million /tmp/synthetic_1m.csv]

Measured with lifetimes 0.11.3 on numpy 2.4.6, scipy 1.17.1, pandas 3.1.1, autograd 1.9.1
(what `pip install lifetimes` resolved to on Python 3.11; the reference figures in
`../shared/data/cdnow` were made with numpy 1.26.4, scipy 1.11.4, pandas 1.5.3, autograd 1.6.2).

The full cohort is read from the summary in the shared data folder
(`../shared/data/cdnow/reference/cdnow_master_summary_cal39_holdout39.csv`, or the path in
REGARD_CDNOW_MASTER_SUMMARY), the same customers the Rust bench summarises from CDNOW_master.txt;
it is skipped with a message when absent. Without `--million` the million is skipped.
"""
import argparse
import os
import time
from pathlib import Path

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "crates/regard-models/tests/data"
MASTER_SUMMARY = Path(os.environ.get(
    "REGARD_CDNOW_MASTER_SUMMARY",
    ROOT.parent / "shared/data/cdnow/reference/cdnow_master_summary_cal39_holdout39.csv"))


def best_of(n, fn):
    best = float("inf")
    for _ in range(n):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def time_bgnbd(label, frequency, recency, T, repeats, weights=None):
    bg = BetaGeoFitter(penalizer_coef=0.0)
    seconds = best_of(repeats, lambda: bg.fit(frequency, recency, T, weights=weights))
    print(f"lifetimes BetaGeoFitter on {label}: {seconds * 1e3:.1f} ms (best of {repeats}); "
          f"r={bg.params_['r']:.6f} alpha={bg.params_['alpha']:.4f} a={bg.params_['a']:.5f} "
          f"b={bg.params_['b']:.5f}")
    return bg


def time_gamma_gamma(label, frequency, monetary, repeats):
    gg = GammaGammaFitter(penalizer_coef=0.0)
    seconds = best_of(repeats, lambda: gg.fit(frequency, monetary))
    print(f"lifetimes GammaGammaFitter on {label}: {seconds * 1e3:.1f} ms (best of {repeats}); "
          f"p={gg.params_['p']:.4f} q={gg.params_['q']:.4f} v={gg.params_['v']:.4f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--million", type=Path, help="CSV from the synthetic_customers example")
    args = parser.parse_args()

    summary = pd.read_csv(DATA / "cdnow_customers_summary.csv")
    bg = time_bgnbd(f"{len(summary)} customers (CDNOW sample)", summary["frequency"], summary["recency"],
                    summary["T"], 5)
    spend = pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv")
    repeat = spend[spend["x"] > 0]
    time_gamma_gamma(f"{len(repeat)} repeat buyers (CDNOW sample)", repeat["x"], repeat["zbar"], 5)
    predict_seconds = best_of(5, lambda: (bg.conditional_expected_number_of_purchases_up_to_time(
        39, summary["frequency"], summary["recency"], summary["T"]),
        bg.conditional_probability_alive(summary["frequency"], summary["recency"], summary["T"])))
    print(f"lifetimes E[Y(39)] + P(alive) for {len(summary)} customers: {predict_seconds * 1e3:.2f} ms (best of 5)")

    if MASTER_SUMMARY.exists():
        master = pd.read_csv(MASTER_SUMMARY)
        time_bgnbd(f"{len(master)} customers (CDNOW master)", master["x"], master["t_x"], master["T"], 5)
        buyers = master[(master["x"] > 0) & (master["zbar"] > 0)]
        time_gamma_gamma(f"{len(buyers)} repeat buyers (CDNOW master)", buyers["x"], buyers["zbar"], 5)
    else:
        print(f"skipped the CDNOW master: {MASTER_SUMMARY} not found")

    if args.million:
        million = pd.read_csv(args.million)
        time_bgnbd(f"{len(million)} synthetic customers", million["frequency"], million["recency"],
                   million["T"], 1)
        # The same customers grouped into distinct (x, t_x, T) histories with counts as weights,
        # which is what the Regard fit does internally.
        grouped = million.groupby(["frequency", "recency", "T"]).size().reset_index(name="weight")
        time_bgnbd(f"the same, grouped into {len(grouped)} weighted histories", grouped["frequency"],
                   grouped["recency"], grouped["T"], 3, weights=grouped["weight"])
    else:
        print("skipped the 1,000,000 synthetic customers: pass --million CSV")


if __name__ == "__main__":
    main()
