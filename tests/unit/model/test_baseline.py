from __future__ import annotations

import numpy as np

from ecomstream.data.corpus import LabelledText
from ecomstream.model.baseline import baseline_proba, train_baseline


def test_baseline_learns_a_tiny_split() -> None:
    pos = ["很好", "非常好用", "好评", "质量好", "服务很好", "好极了"]
    neg = ["很差", "非常差劲", "差评", "质量差", "服务很差", "差极了"]
    train = [LabelledText(t, 1) for t in pos] + [LabelledText(t, 0) for t in neg]
    pipe = train_baseline(train)
    probs = baseline_proba(pipe, ["好", "差", "真的好", "太差"])
    assert probs.shape == (4, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert probs.argmax(axis=1).tolist() == [1, 0, 1, 0]
