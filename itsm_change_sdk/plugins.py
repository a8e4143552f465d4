"""Finding plugins, registering platforms, and calling a hook on exactly one platform."""

from __future__ import annotations

import difflib
import importlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import Distribution, entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .config import platform_settings
from .errors import ConfigurationError, PluginError
from .model import Addressing, ChannelSpec
from .settings import PluginSettings

if TYPE_CHECKING:
    from .hookspecs import ChannelDelivery

__all__ = [
    "ENTRY_POINT_GROUP",
    "ChannelRegistry",
    "MetricRegistry",
    "PlatformFactory",
    "PlatformRegistry",
    "Platforms",
    "PluginManager",
    "get_plugin_manager",
    "implemented_hooks",
    "register_checked",
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
    declared: PluginSettings | None = None
    """The settings' declaration (types, defaults, help), when the plugin gives one."""

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
        settings: Iterable[str] | PluginSettings = (),
        secrets: Iterable[str] = (),
    ) -> None:
        """Register a platform; ``settings`` is best its :class:`PluginSettings`, which
        carries the secret flags too (plain names and ``secrets`` still work)."""
        if name in self.specs:
            raise PluginError(f"platform {name!r} is registered twice; uninstall one of them")
        if isinstance(settings, PluginSettings):
            self.specs[name] = PlatformSpec(name, factory, settings.names,
                                            tuple(dict.fromkeys((*settings.secrets, *secrets))),
                                            settings)
            return
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


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus the installed plugins that were skipped and why."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.skipped: dict[str, str] = {}
        """Entry-point name -> why it was not loaded (shown by ``itsm-change plugins``)."""
        self.dists: dict[str, Distribution] = {}
        """Entry-point name -> the installed distribution that provides it."""


def _hook_problems(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """What is wrong with ``plugin``'s hooks: each ``@hookimpl`` that no hook spec knows."""
    problems = []
    known = sorted(name for name in dir(hookspecs) if name.startswith("itsm_change_"))
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.has_spec():
            continue
        if all(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin):
            continue
        close = difflib.get_close_matches(caller.name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else " (see docs/plugin_hooks.md)"
        problems.append(f"{caller.name!r} is not an itsm_change hook{hint}")
    return problems


def register_checked(pm: pluggy.PluginManager, plugin: object, name: str | None = None,
                     *, what: str = "plugin", require_hooks: bool = False) -> None:
    """Register ``plugin`` only if every ``@hookimpl`` it has matches a hook spec.

    pluggy would accept a misspelt hook name and never call it (or fail later, for every
    plugin at once, in ``check_pending``); here it is refused at once with the name.
    """
    label = f"{what} {name!r}" if name else what
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:  # bad arguments, a duplicate
        raise PluginError(f"{label}: {exc}") from exc
    problems = _hook_problems(pm, plugin)
    if require_hooks and not pm.get_hookcallers(plugin):
        problems.append("it has no @hookimpl methods, so it would never be called")
    if problems:
        pm.unregister(plugin)
        raise PluginError(f"{label} was refused: {'; '.join(problems)}")


def _load_entry_points(pm: PluginManager) -> None:
    """Load each installed plugin on its own: a broken one is named and skipped."""
    only = set(_env_list("ITSM_CHANGE_LOAD_PLUGINS"))
    installed = list(entry_points(group=ENTRY_POINT_GROUP))
    _check_named_plugins([ep.name for ep in installed] + list(DEFAULT_PLUGINS))
    for ep in installed:
        if (only and ep.name not in only) or pm.is_blocked(ep.name) or pm.get_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
            register_checked(pm, plugin, ep.name)
        except PluginError as exc:
            pm.skipped[ep.name] = str(exc)
            continue
        except Exception as exc:  # any import-time failure of third-party code
            pm.skipped[ep.name] = f"plugin {ep.name!r} failed to load: {exc!r}"
            continue
        if ep.dist is not None:
            pm.dists[ep.name] = ep.dist
    for name, why in pm.skipped.items():
        _warn_once(f"{why}; it was skipped: upgrade or reinstall it, or block it with "
                   f"ITSM_CHANGE_DISABLED_PLUGINS={name}")


def _check_named_plugins(known: list[str]) -> None:
    """A plugin named in ITSM_CHANGE_LOAD_PLUGINS or ITSM_CHANGE_DISABLED_PLUGINS that is not
    installed is a typo or a leftover: say so, with the name it probably meant."""
    for variable in ("ITSM_CHANGE_LOAD_PLUGINS", "ITSM_CHANGE_DISABLED_PLUGINS"):
        for name in _env_list(variable):
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else \
                    f"installed: {', '.join(sorted(known))}"
                _warn_once(f"{variable} names {name!r}, which is not an installed plugin; "
                           f"{hint}")


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """Each skipped plugin is reported once per process, not once per plugin manager."""
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


def get_plugin_manager(load_entry_points: bool = True) -> PluginManager:
    """A fresh plugin manager with the built-in plugins and the installed ones.

    ``ITSM_CHANGE_LOAD_PLUGINS`` (comma-separated entry-point names) limits which installed
    plugins load; ``ITSM_CHANGE_DISABLED_PLUGINS`` blocks some. An installed plugin that fails
    to import or implements a hook that does not exist is skipped with a warning naming it,
    so the others (and ``--help``) keep working; ``pm.skipped`` says why.
    """
    pm = PluginManager()
    for blocked in _env_list("ITSM_CHANGE_DISABLED_PLUGINS"):
        pm.set_blocked(blocked)
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        if not pm.is_blocked(module_name):
            pm.register(module, name=module_name)
    if load_entry_points:
        _load_entry_points(pm)
    pm.check_pending()
    return pm


def _register_each(pm: pluggy.PluginManager, hook_name: str, register: object,
                   what: str) -> None:
    """Call a registration hook plugin by plugin, as pluggy would (last registered first):
    one that raises is named and left out, and every other plugin still registers."""
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    if any(impl.hookwrapper or impl.wrapper for impl in impls):
        getattr(pm.hook, hook_name)(register=register)
        return
    for impl in reversed(impls):
        try:
            impl.function(*[{"register": register}[arg] for arg in impl.argnames])
        except Exception as exc:  # third-party code: name it, never a traceback
            why = (f"plugin {impl.plugin_name!r} failed in {hook_name} ({exc!r}); its {what} "
                   "are left out until it is fixed or reinstalled")
            if isinstance(pm, PluginManager):
                pm.skipped.setdefault(impl.plugin_name, why)
            _warn_once(why)


def platform_registry(pm: pluggy.PluginManager) -> PlatformRegistry:
    registry = PlatformRegistry()
    _register_each(pm, "itsm_change_register_platforms", registry, "platforms")
    return registry


def platform_spec(pm: pluggy.PluginManager, name: str) -> PlatformSpec:
    """The installed platform ``name``, or an error that says how to install it."""
    registry = platform_registry(pm)
    spec = registry.specs.get(name)
    if spec is None:
        known = ", ".join(sorted(registry.specs)) or "none"
        close = difflib.get_close_matches(name, sorted(registry.specs), n=1)
        fix = (f"did you mean {close[0]!r}?" if close else
               f"if it is a platform plugin, install it (e.g. pip install itsm-change-{name})")
        raise ConfigurationError(
            f"no platform named {name!r} is installed (installed: {known}); {fix}")
    return spec


def channel_registry(pm: pluggy.PluginManager) -> ChannelRegistry:
    registry = ChannelRegistry()
    _register_each(pm, "itsm_change_register_channels", registry, "channels")
    return registry


def metric_registry(pm: pluggy.PluginManager) -> MetricRegistry:
    registry = MetricRegistry()
    _register_each(pm, "itsm_change_register_metric_kinds", registry, "metric kinds")
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

        Settings come from ``explicit`` values, the environment and the config file
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
        register_checked(self.pm, instance, self.plugin_name(name), what="platform")
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
