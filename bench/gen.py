#!/usr/bin/env python3
"""Benchmark input generator for bench/ scripts.

  gen.py text SIZE OUT [--seed N]
      SIZE bytes of text-like data: lines of pseudo-words drawn with Zipf-like weights
      from a 4096-word vocabulary. zstd -3 compresses it about 3.3x. It never repeats
      at chunk scale (every word is an independent draw), so content-defined chunking
      finds no duplicate chunks inside one file.

  gen.py smallfiles COUNT MIN MAX DIR LIST [--seed N]
      COUNT files of random bytes, sizes log-uniform between MIN and MAX bytes, spread
      over DIR/dNNN/ (1000 files per directory); sizes follow the seed, contents come
      from os.urandom. Writes their paths, one per line, to
      LIST and prints the total byte count on stdout.
"""
import argparse
import math
import os
import random
import sys


def text(size: int, out: str, seed: int) -> None:
    rnd = random.Random(seed)
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    weights = range(26, 0, -1)
    words = ["".join(rnd.choices(letters, weights=weights, k=rnd.randint(2, 11))) for _ in range(4096)]
    words = [w.encode() + (b".\n" if i % 23 == 0 else b"," if i % 11 == 0 else b"") for i, w in enumerate(words)]
    # Repeat each word by a Zipf-like weight so a plain uniform choice is weighted (fast).
    pop = []
    for i, w in enumerate(words):
        pop += [w] * max(1, int(4000 / (i + 8)))
    n = 0
    with open(out, "wb", buffering=1 << 20) as f:
        while n < size:
            blk = b" ".join(rnd.choices(pop, k=100_000)) + b"\n"
            if n + len(blk) > size:
                blk = blk[: size - n]
            f.write(blk)
            n += len(blk)


def smallfiles(count: int, lo: int, hi: int, root: str, listfile: str, seed: int) -> None:
    rnd = random.Random(seed)
    llo, lhi = math.log(lo), math.log(hi)
    total = 0
    paths = []
    for i in range(count):
        d = os.path.join(root, "d%03d" % (i // 1000))
        if i % 1000 == 0:
            os.makedirs(d, exist_ok=True)
        size = min(hi, max(lo, int(math.exp(rnd.uniform(llo, lhi)))))
        p = os.path.join(d, "f%06d" % i)
        with open(p, "wb") as f:
            f.write(os.urandom(size))
        paths.append(p)
        total += size
    with open(listfile, "w") as f:
        f.write("\n".join(paths) + "\n")
    print(total)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("text")
    t.add_argument("size", type=int)
    t.add_argument("out")
    t.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("smallfiles")
    s.add_argument("count", type=int)
    s.add_argument("min", type=int)
    s.add_argument("max", type=int)
    s.add_argument("dir")
    s.add_argument("list")
    s.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.cmd == "text":
        text(a.size, a.out, a.seed)
    else:
        smallfiles(a.count, a.min, a.max, a.dir, a.list, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
