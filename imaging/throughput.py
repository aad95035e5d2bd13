"""Quick throughput probe for the image models (the full perf harness lives in perf/).

    python -m imaging.throughput local --model resnet152_pytorch --threads 2 --batch 1 4 8
    python -m imaging.throughput server --url localhost:8000 --model resnet152_pytorch \
        --batch 1 4 8 --concurrency 1 4

``local`` times ONNX Runtime alone on preprocessed photos (one session, ``--threads``
intra-op threads); ``server`` times whole ensemble requests (bytes in, top-5 out) from
``--concurrency`` client threads. Both print images per second; the numbers behind the
instance counts and thread settings in :mod:`imaging.specs` came from here (docs/images.md).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from imaging.samples import sample_bytes

PHOTOS = ("coffee", "chelsea", "rocket", "grace_hopper", "china", "motorcycle", "astronaut", "camera")


def images(batch: int) -> list[bytes]:
    return [sample_bytes(PHOTOS[i % len(PHOTOS)]) for i in range(batch)]


def local(model: str, threads: int, batches: list[int], seconds: float) -> None:
    from imaging.local import LocalClassifier

    classifier = LocalClassifier(model, threads=threads)
    for batch in batches:
        tensor = classifier.preprocess(images(batch))
        classifier.scores(tensor)  # warm-up
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            classifier.scores(tensor)
            count += batch
        rate = count / (time.perf_counter() - start)
        print(f"local  {model:22s} threads={threads} batch={batch}: {rate:6.2f} img/s")


def server(
    url: str, grpc: bool, model: str, batches: list[int], concurrency: list[int], seconds: float
) -> None:
    from imaging.client import infer_batch
    from serving.client import Endpoint

    endpoint = Endpoint(url=url, protocol="grpc" if grpc else "http")
    for batch in batches:
        data = images(batch)
        for workers in concurrency:
            infer_batch(endpoint, model, data)  # warm-up
            deadline = time.perf_counter() + seconds

            def loop(data: list[bytes] = data, deadline: float = deadline) -> tuple[int, float]:
                client, done, latency = endpoint.client(), 0, 0.0
                try:
                    while time.perf_counter() < deadline:
                        t0 = time.perf_counter()
                        infer_batch(endpoint, model, data, client)
                        latency += time.perf_counter() - t0
                        done += 1
                finally:
                    client.close()
                return done, latency

            start = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                results = list(pool.map(lambda _: loop(), range(workers)))
            elapsed = time.perf_counter() - start
            requests = sum(r[0] for r in results)
            mean_ms = 1000 * sum(r[1] for r in results) / max(requests, 1)
            print(
                f"server {model:22s} batch={batch} concurrency={workers}: "
                f"{requests * batch / elapsed:6.2f} img/s, {mean_ms:7.1f} ms/request"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    loc = sub.add_parser("local")
    srv = sub.add_parser("server")
    for p in (loc, srv):
        p.add_argument("--model", default="resnet152_pytorch")
        p.add_argument("--batch", type=int, nargs="+", default=[1, 4, 8])
        p.add_argument("--seconds", type=float, default=10.0)
    loc.add_argument("--threads", type=int, default=2)
    srv.add_argument("--url", default="localhost:8000")
    srv.add_argument("--grpc", action="store_true")
    srv.add_argument("--concurrency", type=int, nargs="+", default=[1])
    args = parser.parse_args(argv)
    if args.mode == "local":
        local(args.model, args.threads, args.batch, args.seconds)
    else:
        server(args.url, args.grpc, args.model, args.batch, args.concurrency, args.seconds)


if __name__ == "__main__":
    main()
