"""Pieces of the behaviour model that the stream-level tests cannot pin down."""

from __future__ import annotations

import dataclasses

import pytest

from ecomstream.data.corpus import ReviewCorpus
from ecomstream.simulator import Shop, SimConfig

CONFIG = SimConfig(seed=2, users=50, items=40, categories=4, duration_s=600.0)


def test_bad_reviews_lower_the_quality_shoppers_perceive(corpus: ReviewCorpus) -> None:
    shop = Shop(CONFIG, corpus)
    item = max(shop.catalog.items, key=lambda i: i.quality)
    assert shop.model.perceived(item) == pytest.approx(item.quality)
    for _ in range(10):
        shop.model.review_seen(item.index, 1)
    assert shop.model.perceived(item) < 0.5 * item.quality


def test_a_run_of_bad_latest_reviews_puts_shoppers_off(corpus: ReviewCorpus) -> None:
    shop = Shop(CONFIG, corpus)
    item = shop.catalog.items[0]
    assert shop.model.put_off(item) == 0.0  # no reviews yet
    shop.model.review_seen(item.index, 1)  # one bad review of the latest five: usual noise
    assert shop.model.put_off(item) == 0.0
    for _ in range(2):
        shop.model.review_seen(item.index, 1)
    partly = shop.model.put_off(item)
    for _ in range(2):
        shop.model.review_seen(item.index, 2)
    assert 0.0 < partly < shop.model.put_off(item) == 1.0  # all five latest are bad
    for _ in range(5):
        shop.model.review_seen(item.index, 5)  # recovered: only the latest ones count
    assert shop.model.put_off(item) == 0.0


def test_reviews_change_nothing_without_review_influence(corpus: ReviewCorpus) -> None:
    shop = Shop(dataclasses.replace(CONFIG, review_influence=0.0), corpus)
    item = shop.catalog.items[0]
    for _ in range(10):
        shop.model.review_seen(item.index, 1)
    assert shop.model.perceived(item) == pytest.approx(item.quality)
    assert shop.model.put_off(item) == 0.0


def test_item_ids_map_back_to_catalog_indices(corpus: ReviewCorpus) -> None:
    catalog = Shop(CONFIG, corpus).catalog
    assert [catalog.index_of(i.item_id) for i in catalog.items] == list(range(len(catalog.items)))
    for bad in ("i9999", "x0001", "i", "i00001"):
        with pytest.raises(KeyError):
            catalog.index_of(bad)


def test_users_lean_towards_a_few_categories(corpus: ReviewCorpus) -> None:
    users = Shop(dataclasses.replace(CONFIG, users=500), corpus).users
    top_share = sum(max(u.taste) for u in users) / len(users)
    assert top_share > 0.5  # uniform taste over 4 categories would give 0.25


def test_each_shop_iterates_once(corpus: ReviewCorpus) -> None:
    shop = Shop(CONFIG, corpus)
    list(shop.events())
    with pytest.raises(RuntimeError):
        list(shop.events())
