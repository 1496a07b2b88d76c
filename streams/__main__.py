"""``python -m streams worker``: run a Faust worker configured by ``ECOMSTREAM_*``."""

import asyncio
import sys

from ecomstream.config import Settings
from ecomstream.topics import ensure_contract_topics
from streams.app import create_app

settings = Settings()
if "worker" in sys.argv[1:]:
    asyncio.run(ensure_contract_topics(settings))
create_app(settings).main()
