"""byref on Redis and S3 against the raw clients, on the same servers, in one run.

For each size: redis-py ``SET``/``GET`` of the array's bytes, against byref ``put``/``get``
of the array (pickling, hashing, framing, chunking included); the same for S3 with boto3
``put_object``/``get_object`` on moto's server. Best of three runs each, byref's per-process
cache off. Servers run on loopback, started and stopped here.

Writes the table to benches/RESULTS-backends.md.
Usage: python benches/backends.py [--redis-sizes 10MB,100MB,1GB] [--s3-sizes 10MB,100MB]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import uuid
from pathlib import Path

os.environ["BYREF_CACHE_BYTES"] = "0"  # measure the backend, not the caches
os.environ["BYREF_NODE_CACHE"] = "off"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

import boto3
import numpy as np
import redis

import byref

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import best, fmt_time, publish

from tests.servers import MotoS3, RedisServer

SIZES = {"10MB": 10 << 20, "100MB": 100 << 20, "1GB": 1 << 30}
REPEAT = 3


def gbps(n: int, s: float) -> str:
    return f"{n / s / 1e9:.2f} GB/s"


def measure(label, n, store, raw_put, raw_get):
    array = np.random.default_rng(n).integers(0, 255, n, dtype=np.uint8)
    data = array.tobytes()
    t_raw_put = best(lambda: raw_put(data), REPEAT)
    t_raw_get = best(raw_get, REPEAT)
    key = store.put(array)
    store.evict(key)
    t_put = best(lambda: store.put(array), REPEAT, between=lambda: store.evict(key))
    key = store.put(array)
    got = store.get(key)
    assert np.array_equal(got, array)
    del got
    t_get = best(lambda: store.get(key), REPEAT)
    store.evict(key)
    return (label, n, t_raw_put, t_put, t_raw_get, t_get)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-sizes", default="10MB,100MB,1GB")
    parser.add_argument("--s3-sizes", default="10MB,100MB")
    args = parser.parse_args()

    rows = {"Redis (redis-py SET/GET)": [], "S3 on moto (boto3 put_object/get_object)": []}
    server = RedisServer("--proto-max-bulk-len", "2gb", "--client-query-buffer-limit", "2gb")
    moto = MotoS3()
    try:
        r = redis.Redis(port=server.port)
        store = byref.Store(server.url, prefix=f"{uuid.uuid4().hex}:")
        for label in args.redis_sizes.split(","):
            print(f"Redis {label}...", flush=True)
            rows["Redis (redis-py SET/GET)"].append(
                measure(label, SIZES[label], store, lambda d: r.set("raw", d), lambda: r.get("raw"))
            )
            r.delete("raw")
        s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
        store = byref.Store(moto.url(uuid.uuid4().hex))
        for label in args.s3_sizes.split(","):
            print(f"S3 {label}...", flush=True)
            rows["S3 on moto (boto3 put_object/get_object)"].append(
                measure(
                    label,
                    SIZES[label],
                    store,
                    lambda d: s3.put_object(Bucket=moto.bucket, Key="raw", Body=d),
                    lambda: s3.get_object(Bucket=moto.bucket, Key="raw")["Body"].read(),
                )
            )
    finally:
        server.stop()
        moto.stop()

    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, byref {byref.__version__}; "
        f"servers on loopback; best of {REPEAT}; byref's cache off.",
    ]
    for title, table in rows.items():
        lines += [
            "",
            f"{title}: raw client vs byref (a uint8 array; byref pickles, hashes, frames and "
            "chunks it)",
            "",
            "| size | raw put | byref put | put: byref speed-up | raw get | byref get | "
            "get: byref speed-up |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, n, raw_put, put, raw_get, get in table:
            lines.append(
                f"| {label} | {fmt_time(raw_put)} ({gbps(n, raw_put)}) | "
                f"{fmt_time(put)} ({gbps(n, put)}) "
                f"| {raw_put / put:.2f}x | {fmt_time(raw_get)} ({gbps(n, raw_get)}) | "
                f"{fmt_time(get)} ({gbps(n, get)}) | {raw_get / get:.2f}x |"
            )
    out = publish(
        "\n".join(lines),
        "RESULTS-backends.md",
        "Backend benchmark",
        "`python benches/backends.py` (`make bench`)",
    )
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
