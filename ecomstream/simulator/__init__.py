"""A deterministic synthetic shop: users, items, sessions, purchases, reviews, incidents.

Why synthetic: the pipeline's recommendations and alerts can only be scored
against a ground truth, and only a simulator knows it (hidden quality, tastes,
incident times). Same seed and config → byte-identical events and truth.
"""

from ecomstream.simulator.config import Behaviour, IncidentSpec, SimConfig
from ecomstream.simulator.groundtruth import load_truth, next_purchase_after
from ecomstream.simulator.runner import RunSummary, run_to_jsonl, run_to_kafka
from ecomstream.simulator.shop import Shop, SimEvent, generate
from ecomstream.simulator.sinks import read_jsonl

__all__ = [
    "Behaviour",
    "IncidentSpec",
    "RunSummary",
    "Shop",
    "SimConfig",
    "SimEvent",
    "generate",
    "load_truth",
    "next_purchase_after",
    "read_jsonl",
    "run_to_jsonl",
    "run_to_kafka",
]
