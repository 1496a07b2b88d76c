from __future__ import annotations

from ecomstream.model.batching import collate, length_grouped_batches, sorted_batches


def test_length_grouped_batches_cover_all_and_are_seeded() -> None:
    lengths = [(i * 37) % 50 + 1 for i in range(500)]
    a = length_grouped_batches(lengths, 16, seed=1, epoch=0)
    assert sorted(i for b in a for i in b) == list(range(500))
    assert a == length_grouped_batches(lengths, 16, seed=1, epoch=0)
    assert a != length_grouped_batches(lengths, 16, seed=1, epoch=1)
    assert a != length_grouped_batches(lengths, 16, seed=2, epoch=0)
    # grouping: padding waste far below random batching
    waste = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in a)
    assert waste < 0.2 * sum(lengths)


def test_sorted_batches_and_collate() -> None:
    assert sorted_batches([5, 2, 9, 1], 3) == [[3, 1, 0], [2]]
    batch = collate([[1, 2, 3], [4]], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert str(batch["input_ids"].dtype) == "torch.int64"
