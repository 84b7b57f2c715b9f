"""CX stream: real-time customer-experience metrics for contact centers."""

__version__ = "0.1.0"
