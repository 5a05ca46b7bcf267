"""chargeback: make the customer-service cost of business decisions visible."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("chargeback")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
