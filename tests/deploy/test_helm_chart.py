"""deploy/helm/flowgate rendered by the real helm (`helm lint --strict`, `helm template`)
with each values file of its ci/ folder, every manifest validated against the Kubernetes
schemas (kubernetes-validate, strict: an unknown field fails), then what an operator relies
on: one beat, migrations first, real probes, GPU only when asked, autoscaling on the queue,
and who may reach the model service."""

from __future__ import annotations

import subprocess

import kubernetes_validate
import pytest
import yaml

from tests.support.processes import REPOSITORY_ROOT

CHART = REPOSITORY_ROOT / "deploy" / "helm" / "flowgate"
VARIANTS = sorted(path.name for path in (CHART / "ci").glob("*-values.yaml"))
# The oldest release the chart supports (Chart.yaml kubeVersion) and the newest schemas.
KUBERNETES_VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]
CUSTOM_KINDS = {"ScaledObject", "ServiceMonitor"}


def render(helm, variant: str, *extra: str) -> list[dict]:
    result = subprocess.run(
        [str(helm), "template", "fg", str(CHART), "-f", str(CHART / "ci" / variant), *extra],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def by_kind(documents: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_chart_lints_and_every_manifest_passes_the_kubernetes_schemas(helm, variant):
    lint = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), "-f", str(CHART / "ci" / variant)],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    documents = render(helm, variant)
    for document in documents:
        if document["kind"] in CUSTOM_KINDS:
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)


def test_a_manifest_with_an_unknown_field_fails_the_schema_check(helm):
    web = by_kind(render(helm, "default-values.yaml"), "Deployment")["fg-flowgate-web"]
    web["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_one_beat_replaced_never_doubled_and_migrations_before_the_rollout(helm, variant):
    documents = render(helm, variant)
    deployments = by_kind(documents, "Deployment")
    beat = deployments["fg-flowgate-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    (job,) = by_kind(documents, "Job").values()
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert container(job)["args"] == ["migrate"]
    for name, deployment in deployments.items():
        spec = container(deployment)
        assert spec["resources"]["requests"]["cpu"], name
        assert spec["securityContext"]["readOnlyRootFilesystem"] is True
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert not any("value" in e and e["name"].endswith(("KEY", "TOKEN")) for e in spec["env"])


def test_web_worker_and_model_service_have_real_probes_and_disruption_budgets(helm):
    documents = render(helm, "default-values.yaml")
    deployments = by_kind(documents, "Deployment")
    web = container(deployments["fg-flowgate-web"])
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"name": "Host", "value": "localhost"} in web["readinessProbe"]["httpGet"]["httpHeaders"]
    assert "localhost" in next(e["value"] for e in web["env"] if e["name"] == "ALLOWED_HOSTS")
    # One web process per pod, whatever the node's cores (pods scale by replicas).
    assert {"name": "WEB_PROCESSES", "value": "1"} in web["env"]
    worker = container(deployments["fg-flowgate-worker"])
    assert worker["livenessProbe"]["exec"]["command"] == ["flowgate", "worker-alive"]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["WORKER_HEARTBEAT_PATH"] == "/tmp/worker.alive"
    models = container(deployments["fg-flowgate-models"])
    assert models["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert models["livenessProbe"]["httpGet"]["path"] == "/livez"
    # The model service gets no database or key: it only reads the registry.
    assert [m["name"] for m in models["volumeMounts"]] == ["tmp", "var"]
    assert not any(e["name"].endswith("_FILE") for e in models["env"])
    assert set(by_kind(documents, "PodDisruptionBudget")) == {
        "fg-flowgate-web",
        "fg-flowgate-worker",
        "fg-flowgate-models",
    }


def test_the_gpu_is_requested_and_selected_only_when_enabled(helm):
    plain = container(
        by_kind(render(helm, "default-values.yaml"), "Deployment")["fg-flowgate-models"]
    )
    assert "nvidia.com/gpu" not in str(plain["resources"])
    models = by_kind(render(helm, "production-values.yaml"), "Deployment")["fg-flowgate-models"]
    pod = models["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["containers"][0]["image"] == "flowgate-models-cuda:0.1.0"


def test_workers_scale_on_queue_depth_by_hpa_or_keda_and_otherwise_keep_their_count(helm):
    default = render(helm, "default-values.yaml")
    (hpa,) = by_kind(default, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["metrics"][0]["external"]["metric"]["name"] == "flowgate_queue_depth"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "fg-flowgate-worker"
    assert "replicas" not in by_kind(default, "Deployment")["fg-flowgate-worker"]["spec"]
    production = render(helm, "production-values.yaml")
    assert not by_kind(production, "HorizontalPodAutoscaler")
    (scaled,) = by_kind(production, "ScaledObject").values()
    assert scaled["spec"]["triggers"][0]["metadata"]["query"] == "max(flowgate_queue_depth)"
    minimal = render(helm, "minimal-values.yaml")
    assert by_kind(minimal, "Deployment")["fg-flowgate-worker"]["spec"]["replicas"] == 1
    assert not by_kind(minimal, "HorizontalPodAutoscaler")


def test_only_web_and_workers_reach_the_model_service_and_worker_egress_is_configurable(helm):
    default = render(helm, "default-values.yaml")
    policies = by_kind(default, "NetworkPolicy")
    models = policies["fg-flowgate-models"]["spec"]
    sources = [
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for peer in models["ingress"][0]["from"]
    ]
    assert sources == ["web", "worker"]
    assert "fg-flowgate-worker-egress" not in policies  # all egress, by default
    production = by_kind(render(helm, "production-values.yaml"), "NetworkPolicy")
    egress = production["fg-flowgate-worker-egress"]["spec"]["egress"]
    cidrs = [
        peer["ipBlock"]["cidr"]
        for rule in egress
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    ]
    assert cidrs == ["10.20.0.0/16", "10.30.0.0/16"]
    assert not by_kind(render(helm, "minimal-values.yaml"), "NetworkPolicy")


def test_ingress_keeps_websockets_open_and_prometheus_scrapes_with_the_token(helm):
    documents = render(helm, "production-values.yaml")
    (ingress,) = by_kind(documents, "Ingress").values()
    assert (
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]
        == "3600"
    )
    assert ingress["spec"]["tls"][0]["secretName"] == "flowgate-tls"
    (monitor,) = by_kind(documents, "ServiceMonitor").values()
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"]["credentials"] == {
        "name": "flowgate-secrets",
        "key": "metrics-token",
    }


def test_external_services_come_from_values_and_a_missing_secret_is_refused(helm):
    production = render(helm, "production-values.yaml")
    web = container(by_kind(production, "Deployment")["fg-flowgate-web"])
    env = {e["name"]: e.get("value") for e in web["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "https://mlflow.example.internal"
    assert env["REDIS_URL"] == "rediss://redis.example.internal:6380/0"
    assert "fg-flowgate-mlflow" not in by_kind(production, "Deployment")
    default = render(helm, "default-values.yaml")
    mlflow = container(by_kind(default, "Deployment")["fg-flowgate-mlflow"])
    mlflow_env = {e["name"]: e.get("value") for e in mlflow["env"]}
    assert mlflow_env["MLFLOW_S3_ENDPOINT_URL"] == "http://seaweedfs-s3.storage.svc:8333"
    assert mlflow_env["MLFLOW_BACKEND_STORE_URI_FILE"].endswith("mlflow-database-url")
    refused = subprocess.run(
        [str(helm), "template", "fg", str(CHART)], capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "secrets.create.database-url is required" in refused.stderr
