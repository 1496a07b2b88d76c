"""Start and stop the real local services (Kafka, Triton, Prometheus) by PID."""
