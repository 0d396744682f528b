#!/usr/bin/env python3
"""Loads the demo todos into MongoDB once: test.todos, {id: "<n>", name, description}.

Usage: demo_data.py MONGO_URI [COUNT]. Skips the load when the collection already holds COUNT
documents, so `make run` is fast the second time.
"""
import sys
import time

from pymongo import MongoClient

BATCH = 5000


def progress(done, total, started):
    width = 40
    filled = width * done // total
    rate = done / max(time.time() - started, 1e-6)
    sys.stdout.write(
        f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} docs, {rate:,.0f}/s"
    )
    sys.stdout.flush()


def main():
    uri = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    todos = MongoClient(uri, serverSelectionTimeoutMS=30_000).test.todos
    have = todos.estimated_document_count()
    if have == total:
        print(f"demo data: test.todos already holds {total} documents")
        return
    if have:
        todos.drop()
    print(f"demo data: loading {total} todos into test.todos")
    started = time.time()
    for start in range(1, total + 1, BATCH):
        end = min(start + BATCH, total + 1)
        todos.insert_many(
            [
                {
                    "id": str(n),
                    "name": f"Todo {n}",
                    "description": f"Description of todo number {n}: read through from MongoDB.",
                }
                for n in range(start, end)
            ],
            ordered=False,
        )
        progress(end - 1, total, started)
    todos.create_index("id", unique=True)
    print(f"\ndemo data: done in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
