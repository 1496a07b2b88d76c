"""Profile ⇄ bytes (orjson, compact keys) for a Faust table with a changelog.

Why lossless: the replay evaluator keeps profiles in memory while the stream
decodes and re-encodes them every batch; both must compute the same thing, so
floats are written with their full (shortest round-trip) repr and times exactly.
Compactness comes from short keys, omitted defaults, times of recent items stored
as ages relative to the profile clock, and window counters without trailing zeros.

Layout (``v`` = 1)::

    {"v":1, "u":user_id, "t":clock_ms, "l":interest_landmark_ms,
     "c":{category: stored_interest},            # forward-decayed against "l"
     "s":[[item, age_ms, strength], ...],        # recent seen, oldest first; ts = t - age
     "b":[[item, age_ms], ...],                  # recent bought, oldest first
     "ss":session_id, "si":[item, ...], "st":ms,  # current session (co-visitation), newest click
     "w":{"1h":[[bucket, n_view, n_click, ...], ...], "24h":[...]},
     "o":[orders, lines, spend, first_ts, last_ts, last_order_id],
     "p":[mu_log_price, var_log_price, n],
     "r":[rating_sum, rating_n, sentiment_sum, sentiment_n],
     "e":[emit_ts, [top cats], [items], pending],  # pending: 1 purchase | 2 cart change
     "k":{topic: [partition, offset]}}

>>> from ecomstream.profiles.profile import UserProfile
>>> p = UserProfile("u1")
>>> p.ts, p.seen, p.cats, p.lm = 10_000, {"i1": [9_000, 1]}, {"books": 1.5}, 9_000
>>> blob = encode_profile(p)
>>> blob
b'{"v":1,"u":"u1","t":10000,"l":9000,"c":{"books":1.5},"s":[["i1",1000,1]]}'
>>> decode_profile(blob) == p
True
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from ecomstream.profiles.config import DEFAULT_PROFILE_CONFIG, N_ACTIONS, ProfileConfig
from ecomstream.profiles.profile import UserProfile

VERSION: Final = 1


def _row(bucket: int, counts: list[int]) -> list[int]:
    """``[bucket, *counts]`` without trailing zeros (most buckets hold views and clicks only)."""
    if counts[-1]:
        return [bucket, *counts]
    end = len(counts) - 1
    while end and not counts[end - 1]:
        end -= 1
    return [bucket, *counts[:end]]


def profile_to_dict(
    p: UserProfile, config: ProfileConfig = DEFAULT_PROFILE_CONFIG
) -> dict[str, Any]:
    t = p.ts
    out: dict[str, Any] = {"v": VERSION, "u": p.user_id, "t": t, "l": p.lm}
    if p.cats:
        out["c"] = p.cats
    if p.seen:
        out["s"] = [[item, t - e[0], e[1]] for item, e in p.seen.items()]
    if p.bought:
        out["b"] = [[item, t - ts] for item, ts in p.bought.items()]
    if p.sess:
        out["ss"] = p.sess
        out["si"] = p.sess_items
        out["st"] = p.sess_ts
    windows = {}
    for spec, buckets in zip(config.windows, p.win, strict=True):
        if buckets:
            windows[spec.name] = [_row(b, buckets[b]) for b in sorted(buckets)]  # canonical
    if windows:
        out["w"] = windows
    if p.n_lines:
        out["o"] = [p.n_orders, p.n_lines, p.spend, p.first_buy, p.last_buy, p.last_order]
    if p.price_n:
        out["p"] = [p.price_mu, p.price_var, p.price_n]
    if p.rating_n or p.sent_n:
        out["r"] = [p.rating_sum, p.rating_n, p.sent_sum, p.sent_n]
    if p.emit_ts >= 0 or p.pending_buy or p.pending_cart:
        sig = p.emit_sig or ((), ())
        out["e"] = [p.emit_ts, sig[0], sig[1], p.pending_buy | p.pending_cart << 1]
    if p.offsets:
        out["k"] = p.offsets
    return out


def encode_profile(p: UserProfile, config: ProfileConfig = DEFAULT_PROFILE_CONFIG) -> bytes:
    return orjson.dumps(profile_to_dict(p, config))


def profile_from_dict(
    d: dict[str, Any], config: ProfileConfig = DEFAULT_PROFILE_CONFIG
) -> UserProfile:
    if d.get("v") != VERSION:
        raise ValueError(f"unknown profile version {d.get('v')!r}")
    p = UserProfile(d["u"], config)
    t = p.ts = d["t"]
    p.lm = d["l"]
    p.cats = d.get("c") or {}
    if "s" in d:
        p.seen = {item: [t - age, strength] for item, age, strength in d["s"]}
    if "b" in d:
        p.bought = {item: t - age for item, age in d["b"]}
    if "ss" in d:
        p.sess = d["ss"]
        p.sess_items = d["si"]
        p.sess_ts = d.get("st", p.ts)
    windows = d.get("w")
    if windows:
        pad = [0] * N_ACTIONS
        for i, spec in enumerate(config.windows):
            rows = windows.get(spec.name)
            if rows:
                p.win[i] = {row[0]: (row[1:] + pad)[:N_ACTIONS] for row in rows}
    if "o" in d:
        p.n_orders, p.n_lines, p.spend, p.first_buy, p.last_buy, p.last_order = d["o"]
        p.spend = float(p.spend)
    if "p" in d:
        p.price_mu, p.price_var, p.price_n = d["p"]
    if "r" in d:
        p.rating_sum, p.rating_n, p.sent_sum, p.sent_n = d["r"]
        p.sent_sum = float(p.sent_sum)
    if "e" in d:
        emit_ts, cats, items, pending = d["e"]
        p.emit_ts = emit_ts
        p.emit_sig = (tuple(cats), tuple(items)) if emit_ts >= 0 else None
        p.pending_buy, p.pending_cart = bool(pending & 1), bool(pending & 2)
    if "k" in d:
        p.offsets = d["k"]
    return p


def decode_profile(raw: bytes, config: ProfileConfig = DEFAULT_PROFILE_CONFIG) -> UserProfile:
    return profile_from_dict(orjson.loads(raw), config)
