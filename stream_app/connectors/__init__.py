"""Connectors: real sources' payloads turned into SPEC §3 events (SPEC §7).

One pure mapping module per source (`zendesk`, `intercom`, `amazon_connect`),
with no HTTP or Kafka imports, plus the thin shells that move data: `receiver`
(the `stream-app connect` HTTP server) and `raw_topic` (Amazon Connect records
that the user's own pipeline already delivers to a Kafka topic).
"""
