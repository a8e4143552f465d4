"""Reusable test support for platform plugins: the contract suite and its double protocol."""

from .double import Capabilities, PlatformDouble, RemoteRecord

__all__ = ["Capabilities", "PlatformDouble", "RemoteRecord"]
