"""Seeded, stable choices for the generator: the order of an item's answer choices and the
distractors drawn for it. Everything is a hash of (seed, item key, candidate), so the same
KB gives the same choices on every machine, and one edit moves only the choices near it."""

from __future__ import annotations

import hashlib
import struct
from array import array
from bisect import bisect_left


def _digests(seed: int, key: str, candidates: list[str]) -> list[bytes]:
    """sha256(f"{seed}\0{key}\0{c}") of each candidate: the sort key of `rank`."""
    prefix, sha256 = f"{seed}\0{key}\0".encode(), hashlib.sha256
    return [sha256(prefix + c.encode()).digest() for c in candidates]


def rank(seed: int, key: str, candidates) -> list[str]:
    """A deterministic pseudo-random order of `candidates`, different per item key."""
    candidates = list(candidates)
    digests = _digests(seed, key, candidates)
    return [candidates[i] for i in sorted(range(len(candidates)), key=digests.__getitem__)]


class Ring:
    """Consistent-hash ring over a pool of candidates: each candidate sits at VNODES seeded
    pseudo-random points. An item draws a point per distractor slot (from its own key) and
    takes the first candidate clockwise that is allowed and not yet taken.

    O(log n) per draw instead of hashing the whole pool per item, and local: adding or
    removing one candidate changes only the draws that land next to its points (about
    VNODES/n of the items using the pool), never the rest of the type's items. Each
    candidate's chance is proportional to the arcs before its points (VNODES of them keep
    it within a small factor of uniform)."""

    VNODES = 8
    __slots__ = ("bits", "candidates", "mask", "points")

    def __init__(self, seed: int, candidates: list[str]):
        self.candidates = candidates
        self.bits = bits = max(1, len(candidates).bit_length())
        self.mask = mask = (1 << bits) - 1
        prefix, sha512, unpack = f"{seed}\0ring\0".encode(), hashlib.sha512, struct.Struct(">8Q").unpack
        points = []
        for index, c in enumerate(candidates):  # a point: the top 64 - bits bits of a hash, then the index
            points.extend((h & ~mask) | index for h in unpack(sha512(prefix + c.encode()).digest()))
        points.sort()
        self.points = array("Q", points)  # contiguous: draws into many rings stay cache-friendly

    def pick(self, draws: tuple[int, ...], k: int, skip) -> list[str]:
        """Up to k distinct candidates that `skip` does not reject, one per draw."""
        out: list[str] = []
        points, n = self.points, len(self.points)
        if not n:
            return out
        candidates, mask, high = self.candidates, self.mask, ~self.mask
        for draw in draws[:k]:
            i = bisect_left(points, draw & high)
            c = candidates[points[i if i < n else 0] & mask]
            if c in out or (skip is not None and skip(c)):  # taken or rejected: walk on clockwise
                for step in range(1, n):
                    c = candidates[points[(i + step) % n] & mask]
                    if c not in out and (skip is None or not skip(c)):
                        break
                else:
                    return out  # every candidate is rejected or taken
            out.append(c)
        return out


def draws_for(seed: int, key: str) -> tuple[int, ...]:
    """Four independent 64-bit ring positions for the item `key`."""
    return struct.unpack(">4Q", hashlib.sha256(f"{seed}\0{key}".encode()).digest())
