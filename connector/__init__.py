"""Virtuous Loop: closes the customer-experience loop for IT service desks."""

__version__ = "0.1.0"
__all__ = ["__version__"]
