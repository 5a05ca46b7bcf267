"""chargeback: make the customer-service cost of business decisions visible."""

# The one place the version is written: pyproject.toml reads it from here (hatch's
# version source), so a run need not import importlib.metadata (~20 ms) to know it.
__version__ = "0.1.0"

__all__ = ["__version__"]
