"""Batch handlers that tie the domain logic to topics and tables.

Each flow is a callable ``flow(ctx, records)`` for
:class:`ecomstream.processing.BatchProcessor`: it reads one partition's batch,
calls the plain functions of ``events``/``ingest``/``profiles``/``recommend``/
``alerts``, changes state only through ``ctx.table`` and writes only through
``ctx.send`` — so a flow is tested with an in-memory context, without a broker
(see ``tests/unit/dataflows``), and runs exactly-once inside the worker.
"""

from ecomstream.dataflows.behaviour import BehaviourFlow
from ecomstream.dataflows.items import ItemFlow, ItemReplica
from ecomstream.dataflows.names import TopicNames

__all__ = ["BehaviourFlow", "ItemFlow", "ItemReplica", "TopicNames"]
