"""Finding plugins, registering platforms, and calling a hook on exactly one platform."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .config import platform_settings
from .errors import ConfigurationError, PluginError
from .model import Addressing, ChannelSpec

if TYPE_CHECKING:
    from .hookspecs import ChannelDelivery

__all__ = [
    "ENTRY_POINT_GROUP",
    "ChannelRegistry",
    "MetricRegistry",
    "PlatformFactory",
    "PlatformRegistry",
    "Platforms",
    "get_plugin_manager",
    "implemented_hooks",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "itsm_change"
DEFAULT_PLUGINS = ("itsm_change_sdk.sandbox.hooks", "itsm_change_sdk.metrics",
                   "itsm_change_sdk.channels")

PlatformFactory = Callable[[Mapping[str, Any]], object]


@dataclass(frozen=True)
class PlatformSpec:
    name: str
    factory: PlatformFactory
    settings: tuple[str, ...] = ()
    """Setting names the platform reads; used by ``itsm-change plugins`` and config errors."""
    secrets: tuple[str, ...] = ()
    """Settings that are secrets: never printed, logged or stored."""

    def hooks(self) -> list[str]:
        """The platform hooks its instances implement (read from the class, unbuilt)."""
        owner = getattr(self.factory, "__self__", self.factory)
        return implemented_hooks(owner if isinstance(owner, type) else type(owner))


@dataclass
class PlatformRegistry:
    """Collects platform factories from ``itsm_change_register_platforms``."""

    specs: dict[str, PlatformSpec] = field(default_factory=dict)

    def add(
        self,
        name: str,
        factory: PlatformFactory,
        *,
        settings: Iterable[str] = (),
        secrets: Iterable[str] = (),
    ) -> None:
        if name in self.specs:
            raise PluginError(f"platform {name!r} is registered twice; uninstall one of them")
        self.specs[name] = PlatformSpec(name, factory, tuple(settings), tuple(secrets))


ChannelFactory = Callable[[Mapping[str, Any]], "ChannelDelivery"]


@dataclass(frozen=True)
class RegisteredChannel:
    spec: ChannelSpec
    factory: ChannelFactory | None = None
    """Builds the delivery of an ``AUDIENCE`` channel; None for channels platforms deliver."""
    settings: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()


@dataclass
class ChannelRegistry:
    """Collects channels from ``itsm_change_register_channels``."""

    channels: dict[str, RegisteredChannel] = field(default_factory=dict)

    def add(
        self,
        name: str,
        addressing: Addressing,
        description: str,
        *,
        factory: ChannelFactory | None = None,
        settings: Iterable[str] = (),
        secrets: Iterable[str] = (),
    ) -> None:
        if name in self.channels:
            raise PluginError(f"channel {name!r} is registered twice; uninstall one of them")
        addressing = Addressing(addressing)
        if (factory is None) != (addressing is not Addressing.AUDIENCE):
            raise PluginError(
                f"channel {name!r}: a channel with {addressing.value!r} addressing "
                + ("is delivered by the platforms and takes no factory"
                   if factory is not None else "delivers itself and needs a factory"))
        self.channels[name] = RegisteredChannel(ChannelSpec(name, addressing, description),
                                                factory, tuple(settings), tuple(secrets))

    def specs(self) -> dict[str, ChannelSpec]:
        return {name: entry.spec for name, entry in self.channels.items()}


@dataclass
class MetricRegistry:
    """Collects metric kinds from ``itsm_change_register_metric_kinds``."""

    kinds: dict[str, Any] = field(default_factory=dict)

    def add(self, kind: Any) -> None:
        name = kind.name
        if name in self.kinds:
            raise PluginError(f"metric kind {name!r} is registered twice")
        self.kinds[name] = kind


def implemented_hooks(plugin: object) -> list[str]:
    """The hooks ``plugin`` (an object, class or module) marks with ``@hookimpl``."""
    marker = f"{hookspecs.PROJECT_NAME}_impl"
    return sorted(name for name in dir(plugin) if name.startswith("itsm_change_")
                  and hasattr(getattr(plugin, name, None), marker))


def _env_list(name: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


def get_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the built-in plugins and the installed ones.

    ``ITSM_CHANGE_LOAD_PLUGINS`` (comma-separated entry-point names) limits which installed
    plugins load; ``ITSM_CHANGE_DISABLED_PLUGINS`` blocks some.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for blocked in _env_list("ITSM_CHANGE_DISABLED_PLUGINS"):
        pm.set_blocked(blocked)
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        if not pm.is_blocked(module_name):
            pm.register(module, name=module_name)
    if load_entry_points:
        only = set(_env_list("ITSM_CHANGE_LOAD_PLUGINS"))
        if only:
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                if ep.name not in only:
                    pm.set_blocked(ep.name)
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken plugin must not show a traceback
            raise PluginError(
                f"an installed itsm_change plugin failed to load: {exc!r}; reinstall it, or "
                "block it with ITSM_CHANGE_DISABLED_PLUGINS=<name>"
            ) from exc
    pm.check_pending()
    return pm


def platform_registry(pm: pluggy.PluginManager) -> PlatformRegistry:
    registry = PlatformRegistry()
    pm.hook.itsm_change_register_platforms(register=registry)
    return registry


def platform_spec(pm: pluggy.PluginManager, name: str) -> PlatformSpec:
    """The installed platform ``name``, or an error that says how to install it."""
    registry = platform_registry(pm)
    spec = registry.specs.get(name)
    if spec is None:
        known = ", ".join(sorted(registry.specs)) or "none"
        raise ConfigurationError(
            f"no platform named {name!r} is installed (installed: {known}); "
            f"install it with: pip install itsm-change-{name}"
        )
    return spec


def channel_registry(pm: pluggy.PluginManager) -> ChannelRegistry:
    registry = ChannelRegistry()
    pm.hook.itsm_change_register_channels(register=registry)
    return registry


def metric_registry(pm: pluggy.PluginManager) -> MetricRegistry:
    registry = MetricRegistry()
    pm.hook.itsm_change_register_metric_kinds(register=registry)
    return registry


class Platforms:
    """The enabled platform instances, each registered with the plugin manager.

    ``call(name, hook, ...)`` reaches only the named platform; ``each(hook, ...)`` calls every
    enabled platform in turn and yields ``(name, result)``.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.instances: dict[str, object] = {}
        self.registered_channels = channel_registry(pm)
        self.deliveries: dict[str, ChannelDelivery] = {}

    @property
    def channels(self) -> dict[str, ChannelSpec]:
        """Every registered channel, by name."""
        return self.registered_channels.specs()

    def channel(self, name: str) -> ChannelDelivery:
        """The delivery of the self-delivering channel ``name``, built on first use from its
        settings (explicit values are not taken: a channel is configured, not scripted)."""
        if name not in self.deliveries:
            entry = self.registered_channels.channels.get(name)
            if entry is None or entry.factory is None:
                raise ConfigurationError(f"{name!r} is not a channel that delivers itself")
            settings = platform_settings(name, entry.settings, entry.secrets)
            self.deliveries[name] = entry.factory(settings)
        return self.deliveries[name]

    @staticmethod
    def plugin_name(platform: str) -> str:
        return f"platform:{platform}"

    def enable(self, name: str, explicit: Mapping[str, Any] | None = None) -> object:
        """Build the platform ``name`` from its resolved settings and register it.

        Settings come from ``explicit`` values, the config file and the environment
        (see :mod:`itsm_change_sdk.config`).
        """
        if name in self.instances:
            return self.instances[name]
        spec = platform_spec(self.pm, name)
        settings = platform_settings(name, spec.settings, spec.secrets, explicit=explicit)
        instance = spec.factory(settings)
        self.add(name, instance)
        return instance

    def add(self, name: str, instance: object) -> None:
        """Register an already built platform instance (tests, scripts).

        :raises PluginError: the instance lacks a required platform hook (a method missing its
            ``@hookimpl`` would otherwise answer nothing, which the core reads as "none").
        """
        missing = sorted(hookspecs.REQUIRED_PLATFORM_HOOKS - set(implemented_hooks(instance)))
        if missing:
            raise PluginError(
                f"platform {name!r} ({type(instance).__qualname__}) does not implement the "
                f"required hook(s) {', '.join(missing)}; mark each method with @hookimpl "
                "(from itsm_change_sdk.hookspecs)"
            )
        self.pm.register(instance, name=self.plugin_name(name))
        self.pm.check_pending()
        self.instances[name] = instance

    def call(self, platform: str, hook: str, **kwargs: Any) -> Any:
        if platform not in self.instances:
            raise ConfigurationError(
                f"platform {platform!r} is not enabled; add it to the program's 'platforms' "
                f"and configure it (enabled: {', '.join(self.instances) or 'none'})"
            )
        others = [inst for name, inst in self.instances.items() if name != platform]
        caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
        return caller(**kwargs)

    def implements(self, platform: str, hook: str) -> bool:
        instance = self.instances.get(platform)
        if instance is None:
            return False
        return any(impl.plugin is instance for impl in getattr(self.pm.hook, hook).get_hookimpls())

    def close(self) -> None:
        for name, instance in list(self.instances.items()):
            self.pm.unregister(instance, name=self.plugin_name(name))
            close = getattr(instance, "close", None)
            if callable(close):
                close()
        self.instances.clear()
        for delivery in self.deliveries.values():
            delivery.close()
        self.deliveries.clear()
