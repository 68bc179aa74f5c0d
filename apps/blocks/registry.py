"""The block registry: one frozen map from (key, version) to block class.

Each app registers its blocks in ``AppConfig.ready()`` with ``@register_block`` (or
``register_block(cls)``). The registry freezes the first time it is read, so a late or
duplicate registration is a start-up error rather than a surprise at run time.

A block keeps every version it ever published registered: a published flow names the
version each node was built with and runs that one until the flow is republished with the
node upgraded. ``upgrade_config`` walks a node's config up through each version's
``upgrade_config`` (the migration from the version before it).

Services that blocks reach through ``ctx.service(name)`` are registered the same way, with
``register_service(name, factory)``; ``factory(workspace_id)`` returns the object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .base import Block

BlockClass = TypeVar("BlockClass", bound=type[Block])


class RegistryError(Exception):
    pass


class _Registry:
    def __init__(self) -> None:
        self._blocks: dict[str, dict[int, type[Block]]] = {}
        self._services: dict[str, Callable[[str], Any]] = {}
        self._frozen = False

    def register_block(self, block: BlockClass) -> BlockClass:
        if self._frozen:
            raise RegistryError(f"block {block.key!r} registered after start-up")
        for attribute in ("key", "title", "category"):
            if not getattr(block, attribute, None):
                raise RegistryError(f"{block.__name__} has no {attribute}")
        versions = self._blocks.setdefault(block.key, {})
        if not isinstance(block.version, int) or block.version < 1:
            raise RegistryError(f"block {block.key!r} has version {block.version!r}, not 1, 2, …")
        if block.version in versions:
            raise RegistryError(f"block {block.key!r} v{block.version} is already registered")
        versions[block.version] = block
        return block

    def register_service(self, name: str, factory: Callable[[str], Any]) -> None:
        if self._frozen:
            raise RegistryError(f"service {name!r} registered after start-up")
        if name in self._services:
            raise RegistryError(f"service {name!r} is already registered")
        self._services[name] = factory

    def get(self, key: str, version: int | None = None) -> type[Block] | None:
        """The block ``key`` at ``version``; its latest version when ``version`` is None."""
        self._frozen = True
        versions = self._blocks.get(key)
        if not versions:
            return None
        return versions.get(max(versions) if version is None else version)

    def versions(self, key: str) -> list[int]:
        self._frozen = True
        return sorted(self._blocks.get(key, {}))

    def all(self) -> list[type[Block]]:
        """The latest version of every block: what the palette offers."""
        self._frozen = True
        latest = [versions[max(versions)] for versions in self._blocks.values()]
        return sorted(latest, key=lambda block: (block.category, block.key))

    def all_versions(self) -> list[type[Block]]:
        """Every registered (key, version), oldest version of a key first."""
        self._frozen = True
        every = [block for versions in self._blocks.values() for block in versions.values()]
        return sorted(every, key=lambda block: (block.category, block.key, block.version))

    def upgrade_config(
        self, key: str, version: int, config: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """``config`` of ``key`` v``version`` migrated to the latest version, one version's
        ``upgrade_config`` at a time. Raises ``RegistryError`` for an unknown key/version."""
        versions = self.versions(key)
        if version not in versions:
            raise RegistryError(f"{key!r} has no version {version}")
        for newer in versions[versions.index(version) + 1 :]:
            config = self._blocks[key][newer].upgrade_config(dict(config))
            version = newer
        return version, config

    def service_factory(self, name: str) -> Callable[[str], Any] | None:
        self._frozen = True
        return self._services.get(name)


registry = _Registry()
register_block = registry.register_block
register_service = registry.register_service
