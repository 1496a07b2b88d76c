"""ecomstream: real-time e-commerce behaviour analytics on Kafka, Faust and Triton."""

__version__ = "0.1.0"
