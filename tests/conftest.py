pytest_plugins = [
    "ecomstream.testing.kafka",
    "ecomstream.testing.triton",
    "ecomstream.testing.worker",
    "ecomstream.testing.prometheus",
]
