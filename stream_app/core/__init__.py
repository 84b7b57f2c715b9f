"""The functional core: pure metric math, sketches, windows and state machines.

Nothing in this package imports Faust or Kafka, so every rule here is unit- and
property-testable without a broker.
"""
