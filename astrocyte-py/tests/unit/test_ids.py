"""Ids sort in creation order and never repeat."""

from __future__ import annotations

import threading

from astrocyte.ids import new_id


def test_ids_sort_in_creation_order_and_are_unique() -> None:
    ids = [new_id("mem") for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("mem_") and len(i) == 4 + 22 for i in ids)


def test_ids_are_unique_across_threads() -> None:
    out: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        local = [new_id("x") for _ in range(2000)]
        with lock:
            out.extend(local)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 8000
