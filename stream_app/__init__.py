"""CX stream: real-time customer-experience metrics for contact centers."""

__version__ = "0.1.0"


def compiled_modules() -> list[str]:
    """The modules of this package running as mypyc-compiled extensions (empty: the
    pure-Python build). See `scripts/build-compiled` and docs/performance.md."""
    import sys

    return sorted(
        name
        for name, module in list(sys.modules.items())
        if name.startswith("stream_app.")
        and getattr(module, "__file__", None)
        and str(module.__file__).endswith((".so", ".pyd"))
    )
