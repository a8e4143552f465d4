"""The built-in channels, registered through the same hook a channel plugin uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .hookspecs import hookimpl
from .model import BUILTIN_CHANNELS

if TYPE_CHECKING:
    from .plugins import ChannelRegistry


@hookimpl
def itsm_change_register_channels(register: ChannelRegistry) -> None:
    for spec in BUILTIN_CHANNELS:
        register.add(spec.name, spec.addressing, spec.description)
