"""``python -m streams worker``: run a Faust worker configured by ``ECOMSTREAM_*``."""

from streams.app import create_app

create_app().main()
