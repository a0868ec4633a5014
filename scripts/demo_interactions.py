"""Turns the demo shop's export into the CSVs `regard eval recs` reads.

    cargo run --release -- demo --data /tmp/demo-data --no-serve --export /tmp/demo-exp
    python3 scripts/demo_interactions.py /tmp/demo-exp /tmp/demo-recs [--users N]

Writes `interactions.csv` (`user_id,item_id,timestamp,kind,country`) from the Product Viewed
(view), Product Added (cart) and Order Completed (purchase, one row per product) events, keyed by
userId or else anonymousId, with the country taken from the locale's region (`en-AU` -> AU); and
`catalog.csv` (`id,name,category,price,in_stock,durability,brand`) from catalog.jsonl. With
`--users N` only the N people with the smallest ids are kept (the committed test sample in
crates/regard-recs/tests/data is made this way).
"""
import argparse
import csv
import json
from pathlib import Path

KINDS = {"Product Viewed": "view", "Product Added": "cart", "Order Completed": "purchase"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("export", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--users", type=int)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    rows = []
    with open(args.export / "events.jsonl") as events:
        for line in events:
            if '"track"' not in line:
                continue
            message = json.loads(line)
            kind = KINDS.get(message.get("event"))
            if kind is None:
                continue
            user = message.get("userId") or message.get("anonymousId")
            locale = message.get("context", {}).get("locale", "")
            country = locale.split("-")[-1].upper() if "-" in locale else ""
            properties = message.get("properties", {})
            products = properties.get("products", []) if kind == "purchase" else [properties]
            for product in products:
                if product.get("product_id"):
                    rows.append((user, product["product_id"], message["timestamp"], kind, country))
    if args.users:
        keep = set(sorted({row[0] for row in rows})[: args.users])
        rows = [row for row in rows if row[0] in keep]
    with open(args.out / "interactions.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["user_id", "item_id", "timestamp", "kind", "country"])
        writer.writerows(rows)

    with open(args.export / "catalog.jsonl") as catalog, open(args.out / "catalog.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "name", "category", "price", "in_stock", "durability", "brand"])
        for line in catalog:
            product = json.loads(line)
            writer.writerow([product["id"], product["name"], " > ".join(product["category_path"]), product.get("price", ""),
                             str(product.get("in_stock", True)).lower(), product.get("durability", "unknown"),
                             product.get("attributes", {}).get("brand", "")])
    print(f"{len(rows)} interactions of {len({r[0] for r in rows})} people -> {args.out}")


if __name__ == "__main__":
    main()
