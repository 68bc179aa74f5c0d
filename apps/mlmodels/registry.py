"""Read and change the MLflow model registry: the one place Flowgate talks to MLflow.

MLflow is the single source of truth for which models and versions exist and which version
each alias (``production``, ``canary``) points at. Every call goes to the tracking server at
``FLOWGATE["MLFLOW_TRACKING_URI"]``; when it is unreachable callers get
``RegistryUnavailable`` and say so instead of failing.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from .training import (
    CANARY_SHARE_TAG,
    OWNER_TAG,
    SHA256_TAG,
    THRESHOLDS_TAG,
    artifact_sha256,
    canary_share_of,
)

ALIASES = ("production", "canary")

# MLflow's client retries a refused connection seven times with backoff (minutes); a page
# must say "unavailable" in seconds instead. Operators can still set these themselves.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


class RegistryUnavailable(Exception):
    """MLflow cannot be reached (or answered with a server error)."""


class RegistryNotFound(Exception):
    """No such model or version."""


@dataclass
class VersionInfo:
    name: str
    version: str
    aliases: list[str]
    status: str
    run_id: str
    created_at: int
    description: str
    tags: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    signature: dict[str, Any] | None = None

    @property
    def sha256(self) -> str:
        return self.tags.get(SHA256_TAG, "")

    @property
    def created(self) -> Any:
        from datetime import UTC, datetime

        return datetime.fromtimestamp(self.created_at / 1000, tz=UTC) if self.created_at else None


@dataclass
class ModelInfo:
    name: str
    description: str
    aliases: dict[str, str]
    tags: dict[str, str]
    versions: list[VersionInfo] = field(default_factory=list)

    @property
    def thresholds(self) -> dict[str, float]:
        try:
            value = json.loads(self.tags.get(THRESHOLDS_TAG, "") or "{}")
        except ValueError:
            return {}
        return {str(k): float(v) for k, v in value.items()} if isinstance(value, dict) else {}

    @property
    def canary_share(self) -> int:
        """Percent of ``production`` calls the canary serves (the model service reads the
        same tag); 0 without a canary."""
        return canary_share_of(self.tags) if "canary" in self.aliases else 0

    @property
    def latest(self) -> VersionInfo | None:
        return self.versions[0] if self.versions else None

    @property
    def owner(self) -> str:
        """The slug of the workspace that manages this model; "" when unowned."""
        return self.tags.get(OWNER_TAG, "")

    def managed_by(self, workspace: Any) -> bool:
        """Whether ``workspace``'s admins may move this model's aliases. The registry is
        shared: an owned model is managed by its workspace only, an unowned one by any."""
        return not self.owner or self.owner == workspace.slug


def tracking_uri() -> str:
    return settings.FLOWGATE["MLFLOW_TRACKING_URI"]


def _client() -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri(), registry_uri=tracking_uri())


def _use_registry() -> None:
    """``models:/`` URIs resolve through MLflow's process-wide registry URI."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_registry_uri(tracking_uri())


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    from mlflow.exceptions import MlflowException, RestException

    try:
        return function(*args, **kwargs)
    except RestException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise RegistryNotFound(error.message) from None
        raise RegistryUnavailable(error.message) from None
    except MlflowException as error:
        raise RegistryUnavailable(_short(error.message)) from None
    except OSError as error:
        raise RegistryUnavailable(str(error)) from None


def _short(message: str) -> str:
    if "Connection refused" in message or "Max retries exceeded" in message:
        return f"the MLflow registry at {tracking_uri()} is not answering"
    return message[:300]


def _version(mv: Any, *, with_run: bool = False) -> VersionInfo:
    info = VersionInfo(
        name=mv.name,
        version=str(mv.version),
        aliases=list(mv.aliases or []),
        status=str(mv.status),
        run_id=mv.run_id or "",
        created_at=int(mv.creation_timestamp or 0),
        description=mv.description or "",
        tags=dict(mv.tags or {}),
    )
    if with_run and info.run_id:
        run = _call(_client().get_run, info.run_id)
        info.metrics = dict(run.data.metrics)
        info.params = dict(run.data.params)
    return info


def _versions(name: str, *, with_runs: bool) -> list[VersionInfo]:
    found = _call(_client().search_model_versions, f"name='{name}'")
    versions = [_version(mv, with_run=with_runs) for mv in found]
    return sorted(versions, key=lambda v: int(v.version), reverse=True)


def _model(rm: Any, *, with_runs: bool) -> ModelInfo:
    aliases = {alias: str(version) for alias, version in (rm.aliases or {}).items()}
    versions = _versions(rm.name, with_runs=with_runs)
    for version in versions:  # a version search does not return aliases: the model does
        version.aliases = sorted(a for a, number in aliases.items() if number == version.version)
    return ModelInfo(
        name=rm.name,
        description=rm.description or "",
        aliases=aliases,
        tags=dict(rm.tags or {}),
        versions=versions,
    )


def list_models() -> list[ModelInfo]:
    """Every registered model with its versions, their metrics and aliases."""
    registered = _call(_client().search_registered_models, max_results=200)
    return sorted((_model(rm, with_runs=True) for rm in registered), key=lambda m: m.name)


def get_model(name: str, *, with_runs: bool = True) -> ModelInfo:
    """The model, its aliases, tags and versions; ``with_runs`` also reads each version's
    run (metrics, parameters): one more registry call per version, for pages only."""
    return _model(_call(_client().get_registered_model, name), with_runs=with_runs)


def get_version(name: str, version: str) -> VersionInfo:
    info = _version(_call(_client().get_model_version, name, version), with_run=True)
    info.signature = _signature(name, version)
    return info


def type_name(data_type: Any) -> str:
    """A signature column's type as people read it: ``double``, not ``DataType.double``."""
    return str(getattr(data_type, "name", "") or data_type)


def _signature(name: str, version: str) -> dict[str, Any] | None:
    from mlflow.models import get_model_info

    _use_registry()
    model = _call(get_model_info, f"models:/{name}/{version}")
    signature = model.signature
    if signature is None:
        return None
    return {
        "inputs": [
            {"name": spec.name, "type": type_name(spec.type)} for spec in signature.inputs.inputs
        ],
        "outputs": str(signature.outputs) if signature.outputs else "",
    }


def computed_sha256(name: str, version: str) -> str:
    """Download the version's artifacts and hash them as training did."""
    import mlflow.artifacts

    _use_registry()
    with tempfile.TemporaryDirectory(prefix="flowgate-model-") as scratch:
        local = _call(
            mlflow.artifacts.download_artifacts,
            artifact_uri=f"models:/{name}/{version}",
            dst_path=scratch,
        )
        return artifact_sha256(Path(local))


def set_alias(name: str, alias: str, version: str) -> None:
    _call(_client().set_registered_model_alias, name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    _call(_client().delete_registered_model_alias, name, alias)


def set_canary_share(name: str, share: int) -> None:
    _call(_client().set_registered_model_tag, name, CANARY_SHARE_TAG, str(share))


def record_previous(name: str, alias: str, version: str) -> None:
    """Remember which version ``alias`` pointed at before, for rollback."""
    _call(_client().set_registered_model_tag, name, f"flowgate.previous.{alias}", version)


def previous_version(model: ModelInfo, alias: str) -> str:
    return model.tags.get(f"flowgate.previous.{alias}", "")


def reference_profile(name: str, version: str) -> dict[str, Any] | None:
    """The training data's profile logged with the version's run (``log_reference_profile``);
    None when the run logged none."""
    import mlflow.artifacts

    from .training import REFERENCE_PROFILE

    run_id = _call(_client().get_model_version, name, version).run_id
    if not run_id:
        return None
    _use_registry()
    try:
        return _call(mlflow.artifacts.load_dict, f"runs:/{run_id}/{REFERENCE_PROFILE}")
    except (RegistryNotFound, RegistryUnavailable) as error:
        if "No such file" in str(error) or "does not exist" in str(error).lower():
            return None
        raise
