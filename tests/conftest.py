pytest_plugins = [
    "ecomstream.testing.kafka",
    "ecomstream.testing.triton",
]
