"""Baseline for dm-codegen's corpus bench: Python's xml.etree.ElementTree
parsing the same DDF files (bytes already in memory), best of N runs.

usage: python3 etree.py DIR [RUNS]   -> prints "<files> <seconds>"
"""
import glob
import os
import sys
import time
import xml.etree.ElementTree as ET


def main():
    directory = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    paths = sorted(p for p in glob.glob(os.path.join(directory, "*.xml"))
                   if not os.path.basename(p).startswith("DDFv2"))
    data = [open(p, "rb").read() for p in paths]
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for d in data:
            ET.fromstring(d)
        best = min(best, time.perf_counter() - start)
    print(len(data), best)


if __name__ == "__main__":
    main()
