"""Runs the `regard eval recs` protocol with the PyPI package `implicit` (ALS, tuned on a small
grid, and its item-kNN recommenders) and, in the same run, Regard itself with its defaults and
tuned on the same ALS grid, so BENCHMARKS.md can state quality and time ratios measured together.

    python3 -m venv /tmp/recs-venv && /tmp/recs-venv/bin/pip install implicit pandas
    cargo build --release -p regard-cli
    /tmp/recs-venv/bin/python scripts/compare_implicit.py --movielens-100k --regard target/release/regard

The protocol (crates/regard-recs/src/eval.rs): distinct (user, item) pairs keep their first event;
users with >= 5 distinct items hold out their latest pair (ties: the later line); every strategy
ranks the whole catalogue minus the user's training items, ties broken by the smaller item id
(ids compare as numbers when all are integers); HR@10, NDCG@10 and MRR (untruncated).

`--movielens-100k` fetches MovieLens 100K as the PyPI package `recbole` 1.2.1 ships it
(`recbole/dataset_example/ml-100k/ml-100k.inter`, 100,000 ratings) with `pip download`, into
`--cache` (default `target/movielens`), and converts it to `ml-100k.csv`
(`user_id,item_id,timestamp,rating`). MovieLens is GroupLens's data: research use with
acknowledgement, no redistribution (F. M. Harper and J. A. Konstan, "The MovieLens Datasets:
History and Context", ACM TiiS 5(4), 2015), which is why the file stays out of git.

Output: the implicit report as JSON on stdout (the same shape as `regard eval recs`); the grid,
Regard's reports and the ratio table on stderr.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
THREADS = int(os.environ.get("RECS_THREADS", "2"))

# implicit's confidence is alpha * r, Regard's 1 + alpha * r: with r = 1 (every pair counts
# once under the protocol) implicit's alpha a is Regard's alpha a - 1.
ALS_GRID = {
    "factors": [32, 64, 128],
    "regularization": [0.01, 0.05, 0.1],
    "alpha": [1.0, 5.0, 10.0, 20.0, 40.0],
    "iterations": [15, 30],
}
KNN_GRID = [20, 50, 100, 200]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def fetch_movielens_100k(cache: Path) -> Path:
    target = cache / "ml-100k.csv"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, "recbole==1.2.1"],
            check=True,
        )
        wheel = next(Path(tmp).glob("recbole-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            raw = archive.read("recbole/dataset_example/ml-100k/ml-100k.inter").decode()
    lines = raw.splitlines()
    assert lines[0].startswith("user_id:token"), lines[0]
    with open(target, "w") as out:
        out.write("user_id,item_id,timestamp,rating\n")
        for line in lines[1:]:
            user, item, rating, timestamp = line.split("\t")
            out.write(f"{user},{item},{int(float(timestamp))},{rating}\n")
    return target


def to_seconds(column: pd.Series) -> np.ndarray:
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all():
        return np.floor(numeric.to_numpy(dtype=float)).astype(np.int64)
    parsed = pd.to_datetime(column, utc=True, format="ISO8601")
    return (parsed.astype("int64") // 10**9).to_numpy()


def prepare(path: Path, catalog: Path | None):
    df = pd.read_csv(path, dtype=str, usecols=["user_id", "item_id", "timestamp"], skipinitialspace=True)
    df["ts"] = to_seconds(df["timestamp"])
    df["line"] = np.arange(len(df))
    items = set(df["item_id"])
    if catalog is not None:
        cat = pd.read_csv(catalog, dtype=str)
        id_col = next(c for c in cat.columns if c.lower() in ("id", "item_id", "product_id"))
        items |= set(cat[id_col].str.strip())
    items = list(items)
    if all(i.isdigit() for i in items):
        items.sort(key=lambda i: (int(i), i))
    else:
        items.sort()
    item_index = {item: idx for idx, item in enumerate(items)}
    df["item"] = df["item_id"].map(item_index)
    users = {user: idx for idx, user in enumerate(dict.fromkeys(df["user_id"]))}
    df["user"] = df["user_id"].map(users)

    first = df.sort_values(["user", "item", "ts", "line"]).drop_duplicates(["user", "item"], keep="first")
    first = first.sort_values(["user", "ts", "line"])
    sizes = first.groupby("user")["item"].transform("size")
    is_last = ~first.duplicated("user", keep="last")
    held = first[is_last & (sizes >= 5)]
    train = first.drop(held.index)
    matrix = sp.csr_matrix(
        (np.ones(len(train), dtype=np.float32), (train["user"].to_numpy(), train["item"].to_numpy())),
        shape=(len(users), len(items)),
    )
    return matrix, held["user"].to_numpy(), held["item"].to_numpy(), len(items)


def metrics(score_batch, matrix, held_users, held_items, batch=512):
    """HR@10, NDCG@10, MRR for users scored by `score_batch(users) -> (len, items) array`."""
    hits = gains = reciprocal = 0.0
    for start in range(0, len(held_users), batch):
        users = held_users[start:start + batch]
        targets = held_items[start:start + batch]
        scores = np.asarray(score_batch(users), dtype=np.float64)
        scores = np.nan_to_num(scores, nan=-np.inf)
        seen = matrix[users]
        rows = np.repeat(np.arange(len(users)), np.diff(seen.indptr))
        scores[rows, seen.indices] = np.nan  # excluded: NaN compares false both ways
        target_scores = scores[np.arange(len(users)), targets][:, None]
        item_ids = np.arange(scores.shape[1])[None, :]
        higher = (scores > target_scores).sum(axis=1)
        tied = ((scores == target_scores) & (item_ids < targets[:, None])).sum(axis=1)
        ranks = higher + tied
        hits += (ranks < 10).sum()
        gains += np.where(ranks < 10, 1.0 / np.log2(ranks + 2.0), 0.0).sum()
        reciprocal += (1.0 / (ranks + 1.0)).sum()
    n = max(len(held_users), 1)
    return hits / n, gains / n, reciprocal / n


def result(name, quality, fit_seconds, eval_seconds):
    hr, ndcg, mrr = quality
    return {"name": name, "hr_at_10": hr, "ndcg_at_10": ndcg, "mrr": mrr,
            "fit_seconds": fit_seconds, "eval_seconds": eval_seconds}


def run_als(matrix, held_users, held_items, params):
    from implicit.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(factors=params["factors"], regularization=params["regularization"],
                                    alpha=params["alpha"], iterations=params["iterations"],
                                    num_threads=THREADS, random_state=42)
    started = time.perf_counter()
    model.fit(matrix, show_progress=False)
    fit = time.perf_counter() - started
    user_factors, item_factors = model.user_factors, model.item_factors
    started = time.perf_counter()
    quality = metrics(lambda users: user_factors[users] @ item_factors.T, matrix, held_users, held_items)
    return quality, fit, time.perf_counter() - started


def run_knn(kind, matrix, held_users, held_items, k):
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, ItemItemRecommender

    model = {"item_item": ItemItemRecommender, "cosine": CosineRecommender, "bm25": BM25Recommender}[kind](
        K=k, num_threads=THREADS)
    started = time.perf_counter()
    model.fit(matrix.astype(np.float64), show_progress=False)
    fit = time.perf_counter() - started
    similarity = model.similarity.tocsr()
    started = time.perf_counter()
    quality = metrics(lambda users: (matrix[users] @ similarity).toarray(), matrix, held_users, held_items)
    return quality, fit, time.perf_counter() - started


def grid(params):
    keys = list(params)
    combos = [[]]
    for key in keys:
        combos = [c + [v] for c in combos for v in params[key]]
    return [dict(zip(keys, c)) for c in combos]


def best_by_ndcg(rows):
    return max(rows, key=lambda r: (r[1][1], r[1][0]))


def regard_eval(binary, path, catalog, extra=()):
    command = [binary, "eval", "recs", "--interactions", str(path), *extra]
    if catalog:
        command += ["--catalog", str(catalog)]
    output = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(output.stdout)


def main():
    # implicit asks for a single-threaded BLAS (its own threads do the work); scoring uses it too.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interactions", type=Path)
    parser.add_argument("--catalog", type=Path)
    parser.add_argument("--movielens-100k", action="store_true", help="fetch MovieLens 100K from recbole's wheel")
    parser.add_argument("--cache", type=Path, default=ROOT / "target" / "movielens")
    parser.add_argument("--regard", help="path of the regard binary, to run it in the same session")
    parser.add_argument("--quick", action="store_true", help="a 2-point ALS grid (for tests)")
    args = parser.parse_args()
    path = fetch_movielens_100k(args.cache) if args.movielens_100k else args.interactions
    if path is None:
        parser.error("give --interactions FILE.csv or --movielens-100k")

    matrix, held_users, held_items, n_items = prepare(path, args.catalog)
    log(f"{path}: {matrix.shape[0]} users, {n_items} items, {matrix.nnz} training pairs, "
        f"{len(held_users)} users evaluated")
    started = time.perf_counter()
    fit = time.perf_counter() - started
    popularity = np.asarray(matrix.sum(axis=0)).ravel()
    started = time.perf_counter()
    popular = result("popular", metrics(lambda users: np.tile(popularity, (len(users), 1)), matrix, held_users,
                                        held_items), fit, time.perf_counter() - started)

    als_grid = grid(ALS_GRID)
    if args.quick:
        als_grid = als_grid[:2]
    als_rows = []
    for params in als_grid:
        quality, fit, evaluation = run_als(matrix, held_users, held_items, params)
        als_rows.append((params, quality, fit, evaluation))
        log(f"implicit ALS {params}: HR@10 {quality[0]:.4f} NDCG@10 {quality[1]:.4f} fit {fit:.2f}s")
    best_params, best_quality, best_fit, best_eval = best_by_ndcg(als_rows)
    log(f"best implicit ALS: {best_params}")
    strategies = [popular, result("implicit_als", best_quality, best_fit, best_eval)]
    for kind in ["item_item", "cosine", "bm25"]:
        rows = []
        for k in KNN_GRID:
            quality, fit, evaluation = run_knn(kind, matrix, held_users, held_items, k)
            rows.append(({"K": k}, quality, fit, evaluation))
        params, quality, fit, evaluation = best_by_ndcg(rows)
        log(f"best implicit {kind}: {params} HR@10 {quality[0]:.4f} NDCG@10 {quality[1]:.4f}")
        strategies.append(result(f"implicit_{kind}", quality, fit, evaluation))
    report = {"users_evaluated": int(len(held_users)), "items": int(n_items), "strategies": strategies}
    print(json.dumps(report, indent=2))

    if not args.regard:
        return
    default = regard_eval(args.regard, path, args.catalog)
    log("regard eval recs (defaults):\n" + json.dumps(default, indent=2))
    # Regard on the same ALS grid (alpha shifted by one, see ALS_GRID).
    tuned_rows = []
    for params in als_grid:
        flags = ["--factors", str(params["factors"]), "--regularization", str(params["regularization"]),
                 "--alpha", str(params["alpha"] - 1.0), "--iterations", str(params["iterations"])]
        run = regard_eval(args.regard, path, args.catalog, flags)
        for line in run["strategies"]:
            tuned_rows.append((params, line))
    log("best Regard per strategy on the ALS grid:")
    best_regard = {}
    for params, line in tuned_rows:
        current = best_regard.get(line["name"])
        if current is None or (line["ndcg_at_10"], line["hr_at_10"]) > (current[1]["ndcg_at_10"], current[1]["hr_at_10"]):
            best_regard[line["name"]] = (params, line)
    for name, (params, line) in best_regard.items():
        log(f"  {name}: HR@10 {line['hr_at_10']:.4f} NDCG@10 {line['ndcg_at_10']:.4f} fit {line['fit_seconds']:.3f}s {params}")

    reference = strategies[1]
    log("\n| Regard strategy | HR@10 | NDCG@10 | MRR | fit s | HR / implicit ALS | NDCG / implicit ALS | fit time / implicit ALS |")
    log("|---|---|---|---|---|---|---|---|")
    for label, line in [(f"{l['name']} (defaults)", l) for l in default["strategies"]] + \
                       [(f"{n} (tuned on the grid)", p[1]) for n, p in best_regard.items()]:
        log(f"| {label} | {line['hr_at_10']:.4f} | {line['ndcg_at_10']:.4f} | {line['mrr']:.4f} | "
            f"{line['fit_seconds']:.3f} | {line['hr_at_10'] / reference['hr_at_10']:.3f} | "
            f"{line['ndcg_at_10'] / reference['ndcg_at_10']:.3f} | {line['fit_seconds'] / reference['fit_seconds']:.2f} |")


if __name__ == "__main__":
    main()
