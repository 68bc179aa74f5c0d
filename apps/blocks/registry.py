"""The block registry: one frozen map from key to block class.

Each app registers its blocks in ``AppConfig.ready()`` with ``@register_block`` (or
``register_block(cls)``). The registry freezes the first time it is read, so a late or
duplicate registration is a start-up error rather than a surprise at run time.

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
        self._blocks: dict[str, type[Block]] = {}
        self._services: dict[str, Callable[[str], Any]] = {}
        self._frozen = False

    def register_block(self, block: BlockClass) -> BlockClass:
        if self._frozen:
            raise RegistryError(f"block {block.key!r} registered after start-up")
        if block.key in self._blocks:
            raise RegistryError(f"block key {block.key!r} is already registered")
        for attribute in ("key", "title", "category"):
            if not getattr(block, attribute, None):
                raise RegistryError(f"{block.__name__} has no {attribute}")
        self._blocks[block.key] = block
        return block

    def register_service(self, name: str, factory: Callable[[str], Any]) -> None:
        if self._frozen:
            raise RegistryError(f"service {name!r} registered after start-up")
        if name in self._services:
            raise RegistryError(f"service {name!r} is already registered")
        self._services[name] = factory

    def get(self, key: str) -> type[Block] | None:
        self._frozen = True
        return self._blocks.get(key)

    def all(self) -> list[type[Block]]:
        self._frozen = True
        return sorted(self._blocks.values(), key=lambda block: (block.category, block.key))

    def service_factory(self, name: str) -> Callable[[str], Any] | None:
        self._frozen = True
        return self._services.get(name)


registry = _Registry()
register_block = registry.register_block
register_service = registry.register_service
