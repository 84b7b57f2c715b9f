"""Kafka client concerns: what the broker can do, and how our clients are tuned for it."""
