"""itsm-change-sdk: run the people side of an IT change inside the ticketing tools in use."""

from .hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
