"""The quantile sketch: a mergeable log-bucket histogram with a 1% relative-error bound.

This is the DDSketch algorithm (Masson, Rim & Lee, VLDB 2019) with its logarithmic
mapping: a positive value ``v`` is counted in bucket ``ceil(log(v) / log(gamma))``
with ``gamma = (1 + a) / (1 - a)`` and relative accuracy ``a = 0.01``. Quantiles are
nearest-rank (``p_q`` is the value of rank ``ceil(q * n)``, so the p99 of two values
is the larger one), and any quantile read back is within 1% of the true value at
that rank, whatever the distribution,
and two sketches merge exactly by adding bucket counts, so minutes merge into hours,
instances into a service, processes into one report.

We keep our own implementation instead of depending on the ``ddsketch`` package so
that the core needs nothing outside the standard library; the benchmark measures
both side by side (docs/decisions.md). Values are nanoseconds; zero (a duration
clamped because time went backwards) has its own counter.
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Sequence
from itertools import accumulate

__all__ = ["GAMMA", "MULTIPLIER", "RELATIVE_ACCURACY", "Sketch", "bucket_key", "nearest_rank"]

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
#: ``bucket_key(v) == ceil(log(v) * MULTIPLIER)``; inlined by the aggregator.
MULTIPLIER = 1 / math.log(GAMMA)
_LOG_GAMMA = math.log(GAMMA)

# Encoded form (version 2): a flag byte (version, plus 0x80 when the rest is raw
# deflate), then <zero_count:u64><n:u32><first_key:i32><codes:u8> and two arrays of
# n-1 key deltas and n counts, each in the narrowest array type that holds it
# (codes: high nibble the delta type, low nibble the count type, see _TYPECODES).
# Deltas between occupied buckets and per-minute counts are small, so most
# sketches take about one byte a bucket before deflate. Version 1 (int32 deltas,
# int64 counts) is still read.
_FORMAT_V1 = 1
_FORMAT_V2 = 2
_FLAG_DEFLATED = 0x80
_HEADER = struct.Struct("<QI")
_HEADER_V2 = struct.Struct("<QIiB")
_TYPECODES = "BHIQ"  # unsigned 1, 2, 4, 8 bytes
_LIMITS = (1 << 8, 1 << 16, 1 << 32, 1 << 64)
_LITTLE = sys.byteorder == "little"


def _narrowest(values: list[int]) -> int:
    top = max(values, default=0)
    for index, limit in enumerate(_LIMITS):
        if top < limit:
            return index
    raise OverflowError("bucket count beyond 64 bits")


def _pack(values: list[int], code: int) -> bytes:
    packed = array(_TYPECODES[code], values)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        packed.byteswap()
    return packed.tobytes()


def _unpack(data: bytes, code: int) -> array[int]:
    unpacked = array(_TYPECODES[code])
    unpacked.frombytes(data)
    if not _LITTLE:  # pragma: no cover
        unpacked.byteswap()
    return unpacked


def _deflate(data: bytes) -> bytes:
    # Raw deflate (no zlib header or checksum): 6 bytes less per sketch.
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def bucket_key(value: float) -> int:
    """The bucket a positive value falls in."""
    return math.ceil(math.log(value) * MULTIPLIER)


def nearest_rank(q: float, n: int) -> int:
    """The 1-based rank ``ceil(q * n)`` of quantile ``q`` among ``n`` values, in ``1..n``.

    A product that lands a rounding error above a whole number (``0.07 * 100`` is
    ``7.000000000000001``) counts as that number.
    """
    product = min(max(q, 0.0), 1.0) * n
    return min(max(math.ceil(product - 1e-9 * max(product, 1.0)), 1), n)


def _bucket_value(key: int) -> float:
    # The point of bucket (gamma^(k-1), gamma^k] with the same relative error to both ends.
    return 2.0 * math.exp(key * _LOG_GAMMA) / (GAMMA + 1.0)


def _decode(data: bytes) -> tuple[int, int, Sequence[int], Sequence[int]]:
    """``(zero_count, first key, key deltas, counts)`` of an encoded sketch."""
    if not data:
        raise ValueError("empty sketch encoding")
    flag = data[0]
    version = flag & 0x7F
    if version not in (_FORMAT_V1, _FORMAT_V2):
        raise ValueError(f"unknown sketch format {version}")
    payload = data[1:]
    if flag & _FLAG_DEFLATED:
        try:
            payload = zlib.decompress(payload, -15)
        except zlib.error as exc:
            raise ValueError(f"damaged sketch encoding: {exc}") from exc
    try:
        if version == _FORMAT_V1:
            return _decode_v1(payload)
        zero_count, n, first, codes = _HEADER_V2.unpack_from(payload)
        delta_code, count_code = codes >> 4, codes & 0x0F
        delta_size = array(_TYPECODES[delta_code]).itemsize * max(n - 1, 0)
        count_size = array(_TYPECODES[count_code]).itemsize * n
    except (struct.error, IndexError) as exc:
        raise ValueError(f"damaged sketch encoding: {exc}") from exc
    start = _HEADER_V2.size
    if len(payload) != start + delta_size + count_size:
        raise ValueError("truncated sketch encoding")
    deltas = _unpack(payload[start : start + delta_size], delta_code)
    counts = _unpack(payload[start + delta_size :], count_code)
    return zero_count, first, deltas, counts


def _decode_v1(payload: bytes) -> tuple[int, int, Sequence[int], Sequence[int]]:
    # Version 1: int32 keys (first absolute, then deltas) and int64 counts.
    if len(payload) < _HEADER.size:
        raise ValueError("truncated sketch encoding")
    zero_count, n = _HEADER.unpack_from(payload)
    if len(payload) != _HEADER.size + 12 * n:
        raise ValueError("truncated sketch encoding")
    keys = array("i")
    keys.frombytes(payload[_HEADER.size : _HEADER.size + 4 * n])
    counts = array("q")
    counts.frombytes(payload[_HEADER.size + 4 * n :])
    if not _LITTLE:  # pragma: no cover
        keys.byteswap()
        counts.byteswap()
    return zero_count, keys[0] if n else 0, keys[1:], counts


class Sketch:
    """Counts of values in logarithmic buckets; mergeable, serialisable.

    Example::

        s = Sketch()
        for ns in durations: s.add(ns)
        s.quantile(0.99)        # within 1% of the exact p99
        s.merge(other_minute)   # exact merge
    """

    __slots__ = ("bins", "zero_count")

    def __init__(self, bins: dict[int, int] | None = None, zero_count: int = 0) -> None:
        self.bins: dict[int, int] = {} if bins is None else bins
        self.zero_count = zero_count

    @property
    def count(self) -> int:
        """How many values were added."""
        return self.zero_count + sum(self.bins.values())

    def add(self, value: float, count: int = 1) -> None:
        """Count ``value`` (``count`` times); values <= 0 go to the zero bucket."""
        if value > 0:
            key = math.ceil(math.log(value) * MULTIPLIER)
            bins = self.bins
            bins[key] = bins.get(key, 0) + count
        else:
            self.zero_count += count

    def extend(self, values: Iterable[float]) -> None:
        """Add every value of ``values``."""
        for value in values:
            self.add(value)

    def merge(self, other: Sketch) -> None:
        """Add ``other``'s counts to this sketch (exact)."""
        bins = self.bins
        get = bins.get
        for key, n in other.bins.items():
            bins[key] = get(key, 0) + n
        self.zero_count += other.zero_count

    def copy(self) -> Sketch:
        """An independent copy."""
        return Sketch(dict(self.bins), self.zero_count)

    def quantile(self, q: float) -> float | None:
        """The nearest-rank value at quantile ``q`` (0..1), within 1%; ``None`` if empty.

        ``quantile(q)`` estimates the value of rank ``ceil(q * n)`` (1-based, at least 1)
        of the ``n`` values added, so with two values p95 and p99 are the larger one.
        """
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Several nearest-rank quantiles (see :meth:`quantile`) in one pass."""
        qs = list(qs)
        total = self.count
        if total == 0:
            return [None] * len(qs)
        keys = sorted(self.bins)
        bins = self.bins
        out: list[float | None] = []
        for q in qs:
            rank = nearest_rank(q, total)
            if rank <= self.zero_count:
                out.append(0.0)
                continue
            seen = self.zero_count
            value = _bucket_value(keys[-1])
            for key in keys:
                seen += bins[key]
                if seen >= rank:
                    value = _bucket_value(key)
                    break
            out.append(value)
        return out

    def to_bytes(self, *, deflate: bool = True) -> bytes:
        """A compact encoding: narrow delta-coded keys and counts, deflated when smaller.

        ``deflate=False`` skips the deflate step (faster; rows still being merged into).
        """
        bins = self.bins
        keys = sorted(bins)
        deltas = [keys[i] - keys[i - 1] for i in range(1, len(keys))]
        counts = [bins[k] for k in keys]
        delta_code, count_code = _narrowest(deltas), _narrowest(counts)
        payload = (
            _HEADER_V2.pack(
                self.zero_count, len(keys), keys[0] if keys else 0, delta_code << 4 | count_code
            )
            + _pack(deltas, delta_code)
            + _pack(counts, count_code)
        )
        if deflate and len(payload) > 24:
            packed = _deflate(payload)
            if len(packed) < len(payload):
                return bytes((_FORMAT_V2 | _FLAG_DEFLATED,)) + packed
        return bytes((_FORMAT_V2,)) + payload

    @classmethod
    def from_bytes(cls, data: bytes) -> Sketch:
        """Decode :meth:`to_bytes` output; raises ``ValueError`` on damaged input."""
        sketch = cls()
        sketch.merge_bytes(data)
        return sketch

    def merge_bytes(self, data: bytes) -> None:
        """Add an encoded sketch's counts without building it first (a report's inner loop).

        Raises ``ValueError`` on damaged input, leaving this sketch unchanged.
        """
        zero_count, first, deltas, counts = _decode(data)
        bins = self.bins
        # accumulate() yields one key more than there are counts when the sketch is empty.
        pairs = zip(accumulate(deltas, initial=first), counts, strict=False)
        if not bins:  # decoding into an empty sketch (from_bytes): build the dict in C
            bins.update(pairs)
        else:
            get = bins.get
            for key, count in pairs:
                bins[key] = get(key, 0) + count
        self.zero_count += zero_count

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sketch):
            return NotImplemented
        return self.zero_count == other.zero_count and self.bins == other.bins

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Sketch(count={self.count}, buckets={len(self.bins)})"
