"""What the broker can do: the answers of a start-up probe (stream_app/kafka/probe.py).

Kafka-compatible brokers differ in ways that change how the worker must run:

- transactions (exactly-once intake): Apache Kafka has them; the embedded broker
  (tansu), Azure Event Hubs' Kafka endpoint and others do not, or answer
  `InitProducerId` with an error;
- idempotent producers (the same request, without a transactional id);
- exact end offsets: a record batch of n records moves the partition's end offset
  by n (tansu reports the batch's base offset + 1, which makes a changelog restore
  stop early unless every batch holds one record);
- short group sessions: Apache Kafka refuses sessions under
  `group.min.session.timeout.ms` (6 s by default) and gets 10 s; a broker that
  accepts 2 s (tansu, which holds each JoinGroup for half the session timeout)
  gets 6 s: joins take ~3 s there instead of 5, and a loaded machine does not miss
  a session (2 s sessions expired under CPU load in our tests: a needless
  rebalance, and with at-least-once a batch counted twice).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The session the probe asks for (JoinGroup), and the one a broker that grants it gets.
SHORT_SESSION_MS = 2000
SHORTER_SESSION_MS = 6000


@dataclass(frozen=True)
class BrokerCapabilities:
    """The answers of one probe (see the module docstring)."""

    transactions: bool
    idempotence: bool
    exact_end_offsets: bool
    short_sessions: bool
    #: Why transactions are not available (the broker's error), for the start-up log.
    no_transactions_because: str = ""

    @property
    def session_timeout_ms(self) -> int:
        return SHORTER_SESSION_MS if self.short_sessions else 10_000

    @property
    def heartbeat_interval_ms(self) -> int:
        return 1500 if self.short_sessions else 3000

    @property
    def producer_max_batch_size(self) -> int:
        """Faust's producer batch size (bytes): one record per batch where end offsets are off."""
        return 16384 if self.exact_end_offsets else 1

    def describe(self) -> str:
        yes = {True: "yes", False: "no"}
        return (
            f"transactions {yes[self.transactions]}, idempotent producers {yes[self.idempotence]},"
            f" exact end offsets {yes[self.exact_end_offsets]},"
            f" sessions of {self.session_timeout_ms / 1000:g} s"
        )


#: What a worker that was never probed assumes (unit tests, `Replay`): Apache Kafka.
KAFKA = BrokerCapabilities(transactions=True, idempotence=True, exact_end_offsets=True, short_sessions=False)
