"""The deployment files (deploy/): the structural facts an operator relies on. Reads files only."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from shared.messaging import definitions
from shared.settings import SERVICES, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SETTING_VARS = {f"PIAOJUE_{name.upper()}" for name in Settings.model_fields}
PORTS = {name: Settings.model_fields["base_port"].default + 1 + i for i, name in enumerate(SERVICES)}
PROXY = "ballot-proxy"


@pytest.fixture
def default_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings from their defaults only: a PIAOJUE_* variable in the test's environment must not leak in."""
    for var in list(os.environ):
        if var.upper().startswith("PIAOJUE_"):
            monkeypatch.delenv(var)
    return Settings()


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":  # kustomize's own file, not a resource
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    return docs


def k8s(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in k8s_docs() if d["kind"] == kind}


def depends(service: dict) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):  # the short form means "service_started"
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def env_names(env: dict | list | None) -> set[str]:
    if env is None:
        return set()
    if isinstance(env, dict):
        return set(env)
    return {item.split("=", 1)[0] for item in env}


def env_value(env: dict | list, name: str) -> str | None:
    if isinstance(env, dict):
        return None if env.get(name) is None else str(env[name])
    for item in env:
        key, _, value = item.partition("=")
        if key == name:
            return value
    return None


# ---------------------------------------------------------------- compose


def test_compose_has_the_backing_services_the_four_services_the_migration_and_the_proxy() -> None:
    services = compose()["services"]
    assert {"postgres", "rabbitmq", "migrate", PROXY, *SERVICES} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:15")
    assert re.match(r"rabbitmq:3\.1[23]-management", services["rabbitmq"]["image"])


def test_every_long_running_compose_service_has_a_healthcheck() -> None:
    for name, service in compose()["services"].items():
        if name == "migrate":  # one-shot: its dependents wait for it to exit 0 instead
            assert service.get("restart", "no") == "no"
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_compose_service_healthchecks_ask_readiness_on_the_services_own_port() -> None:
    services = compose()["services"]
    for name in SERVICES:
        test = " ".join(services[name]["healthcheck"]["test"])
        # python:3.11-slim has no curl: the check is Python's urllib.
        assert test.startswith("CMD python -c"), name
        assert f"http://127.0.0.1:{PORTS[name]}/health/ready" in test, name


def test_compose_depends_on_only_existing_services_and_gates_on_health_and_the_migration() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dep, condition in depends(service).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert condition in ("service_started", "service_healthy", "service_completed_successfully")
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy but it has no healthcheck"
    assert depends(services["migrate"]) == {"postgres": "service_healthy"}
    assert services["migrate"]["entrypoint"] == ["piaojue"] and services["migrate"]["command"] == ["migrate"]
    for name in SERVICES:
        deps = depends(services[name])
        assert deps["migrate"] == "service_completed_successfully", name
        assert deps["rabbitmq"] == "service_healthy", name


def test_compose_services_run_their_own_module_and_publish_their_settings_port() -> None:
    services = compose()["services"]
    for name in SERVICES:
        assert services[name]["command"] == [f"services.{name}"]
        if name == "ballot":
            continue
        assert services[name]["ports"] == [f"{PORTS[name]}:{PORTS[name]}"], name


def test_ballot_is_scalable_behind_a_proxy_with_a_fixed_port() -> None:
    services = compose()["services"]
    ballot = services["ballot"]
    # N replicas cannot all bind one host port, and a fixed name would allow only one.
    assert "ports" not in ballot
    assert "container_name" not in ballot
    assert ballot.get("deploy", {}).get("replicas", 1) >= 1
    proxy = services[PROXY]
    assert proxy["ports"] == [f"{PORTS['ballot']}:8080"]
    assert depends(proxy) == {"ballot": "service_healthy"}
    mounts = [v.split(":") for v in proxy["volumes"]]
    (conf,) = [DEPLOY / src for src, dst, *_ in mounts if dst == "/etc/nginx/conf.d/default.conf"]
    text = conf.read_text(encoding="utf-8")
    assert "listen 8080;" in text
    # Resolved per request through Docker's DNS, so replicas added by --scale are found.
    assert re.search(r"^resolver 127\.0\.0\.11\b", text, re.M)
    assert re.search(rf"set \$(\w+) http://ballot:{PORTS['ballot']};\s+proxy_pass \$\1;", text)
    assert "location = /proxy/health" in text and "/proxy/health" in " ".join(proxy["healthcheck"]["test"])


def test_the_proxy_passes_the_live_view_through_unbuffered() -> None:
    text = (DEPLOY / "nginx" / "ballot.conf").read_text(encoding="utf-8")
    head = "location ~ ^/sessions/[^/]+/live$ {"
    assert head in text, "no location for /sessions/{id}/live"
    live = text.split(head, 1)[1].split("location ", 1)[0]
    assert "proxy_buffering off;" in live and "proxy_cache off;" in live
    assert re.search(r"proxy_read_timeout \d+[hm];", live)  # far longer than the 15 s heartbeat
    assert re.match(r"^/sessions/[^/]+/live$", "/sessions/6f1c/live") and not re.match(r"^/sessions/[^/]+/live$", "/sessions/6f1c")


def test_compose_environment_uses_only_settings_and_points_at_the_compose_hosts() -> None:
    services = compose()["services"]
    for name in ("migrate", *SERVICES):
        env = services[name]["environment"]
        names = {n for n in env_names(env) if n.startswith("PIAOJUE_")}
        assert names <= SETTING_VARS, f"{name}: unknown settings {names - SETTING_VARS}"
        assert env_value(env, "PIAOJUE_HTTP_HOST") == "0.0.0.0", name
        assert "@postgres:5432/" in env_value(env, "PIAOJUE_DATABASE_URL"), name
        assert "@rabbitmq:5672/" in env_value(env, "PIAOJUE_AMQP_URL"), name
        assert env_value(env, "PIAOJUE_ENV") == "production", name  # the keys are required there
        assert env_value(env, "PIAOJUE_AUTH_JWKS"), name
        # Only identity holds the private key that signs tokens.
        assert (env_value(env, "PIAOJUE_AUTH_SIGNING_KEY") is not None) == (name == "identity"), name
        base = env_value(env, "PIAOJUE_BASE_PORT")
        assert base is None or int(base) == Settings.model_fields["base_port"].default, name
    # ${PIAOJUE_...} interpolated from deploy/.env are settings too, and so documented there.
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    for var in set(re.findall(r"\$\{(PIAOJUE_[A-Z_]+)", text)):
        assert var in SETTING_VARS and var in example, var


def test_compose_builds_from_the_repository_with_the_dockerfile() -> None:
    services = compose()["services"]
    for name in ("migrate", *SERVICES):
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (DEPLOY / "Dockerfile").resolve()
        assert (DEPLOY / build["context"] / "pyproject.toml").is_file()
    assert len({services[name]["image"] for name in ("migrate", *SERVICES)}) == 1


# ---------------------------------------------------------------- image


def test_dockerfile_installs_the_project_on_python_311_slim_as_a_non_root_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert "python:3.11-slim" in text
    assert re.search(r"pip install '?\.(\[otel\])?'?", text)  # with the optional traces
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["python", "-m"\]', text, re.M)
    assert re.search(r'^CMD \["services\.(intake|ballot|supervision|scoring)"\]', text, re.M)
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / source).exists(), source


def test_dockerignore_keeps_the_virtualenv_git_and_caches_out_of_the_context() -> None:
    lines = {line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()}
    assert {".venv", ".git", ".pytest_cache", ".hypothesis", "**/__pycache__"} <= lines
    # ...but not what the image is built from.
    assert not lines & {"pyproject.toml", "piaojue", "shared", "services"}


# ---------------------------------------------------------------- kubernetes


def test_every_k8s_document_is_namespaced_in_piaojue_and_listed_in_the_kustomization() -> None:
    docs = k8s_docs()
    assert {d["kind"] for d in docs} >= {
        "Namespace", "ConfigMap", "Secret", "Job", "Deployment", "Service", "HorizontalPodAutoscaler"
    }
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(doc)
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == "piaojue"
        else:
            assert doc["metadata"]["namespace"] == "piaojue", doc["metadata"]["name"]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_each_service_has_a_deployment_with_probes_metrics_and_a_service() -> None:
    deployments, services = k8s("Deployment"), k8s("Service")
    assert set(deployments) == set(SERVICES) == set(services)
    for name, deployment in deployments.items():
        template = deployment["spec"]["template"]
        labels = template["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        (container,) = template["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"services.{name}"]
        (port,) = container["ports"]
        assert port["containerPort"] == PORTS[name], name
        for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{name} {probe}"
            assert get["port"] in (port["name"], port["containerPort"]), f"{name} {probe}"
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        assert int(annotations["prometheus.io/port"]) == PORTS[name]
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True
        service = services[name]
        assert service["spec"]["selector"].items() <= labels.items(), name
        (service_port,) = service["spec"]["ports"]
        assert service_port["targetPort"] in (port["name"], port["containerPort"]), name


def test_k8s_settings_come_from_the_configmap_and_secret_and_are_all_known_settings() -> None:
    (config,) = k8s("ConfigMap").values()
    secrets = k8s("Secret")
    secret, signing = secrets["piaojue-secrets"], secrets["piaojue-signing-key"]
    config_vars, secret_vars = set(config["data"]), set(secret.get("stringData", {})) | set(secret.get("data", {}))
    assert config_vars <= SETTING_VARS, config_vars - SETTING_VARS
    assert secret_vars <= SETTING_VARS, secret_vars - SETTING_VARS
    assert {"PIAOJUE_DATABASE_URL", "PIAOJUE_AMQP_URL"} <= secret_vars
    assert set(signing["stringData"]) == {"PIAOJUE_AUTH_SIGNING_KEY"}
    assert config["data"]["PIAOJUE_ENV"] == "production" and "PIAOJUE_AUTH_JWKS" in config["data"]
    # The private key is mounted into the identity pod only.
    for name, deployment in k8s("Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert ({"secretRef": {"name": "piaojue-signing-key"}} in container["envFrom"]) == (name == "identity"), name
    assert config["data"]["PIAOJUE_HTTP_HOST"] == "0.0.0.0"
    assert int(config["data"]["PIAOJUE_BASE_PORT"]) == Settings.model_fields["base_port"].default
    pods = [d["spec"]["template"]["spec"] for d in [*k8s("Deployment").values(), *k8s("Job").values()]]
    for pod in pods:
        for container in pod["containers"]:
            sources = container["envFrom"]
            assert {"configMapRef": {"name": config["metadata"]["name"]}} in sources
            assert {"secretRef": {"name": secret["metadata"]["name"]}} in sources
            assert {e["name"] for e in container.get("env", []) if e["name"].startswith("PIAOJUE_")} <= SETTING_VARS


def test_the_migrate_job_runs_piaojue_migrate() -> None:
    (job,) = k8s("Job").values()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] + container.get("args", []) == ["piaojue", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


def test_the_hpa_scales_the_ballot_deployment_2_to_10_on_cpu_60() -> None:
    (hpa,) = k8s("HorizontalPodAutoscaler").values()
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", "ballot")
    assert "ballot" in k8s("Deployment")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}
    ballot = k8s("Deployment")["ballot"]
    # The HPA owns the count; a replicas field would reset it on every apply.
    assert "replicas" not in ballot["spec"]
    (container,) = ballot["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["cpu"], "CPU utilization needs a CPU request"


def test_the_readme_tells_an_operator_how_to_scale_ballot_for_a_session_and_back() -> None:
    text = (K8S / "README.md").read_text(encoding="utf-8")
    assert "minReplicas" in text and "kubectl -n piaojue patch hpa ballot" in text
    assert "kubectl -n piaojue scale deployment/ballot" in text
    assert "--scale ballot=" in text
    for var in ("PIAOJUE_DATABASE_URL", "PIAOJUE_AMQP_URL", "PIAOJUE_AUTH_JWKS", "PIAOJUE_AUTH_SIGNING_KEY"):
        assert var in text
    assert set(re.findall(r"\bPIAOJUE_[A-Z_]+", text)) <= SETTING_VARS


# ---------------------------------------------------------------- rabbitmq


def test_rabbitmq_definitions_are_the_generated_topology(default_settings: Settings) -> None:
    stored = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text(encoding="utf-8"))
    assert stored == definitions(default_settings), "regenerate: piaojue topology > deploy/rabbitmq/definitions.json"
