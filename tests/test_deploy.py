"""The deploy files agree with the code (no Docker engine nor cluster here: they are parsed, not run).

Every BPSTREAM_* variable they set is one Settings reads (the list comes from Settings itself) and its
value is accepted; ports, topic names, partition counts and probe paths match the code.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from bpstream.stream.kafka._apache_kafka import KAFKA_VERSION
from bpstream.stream.kafka._probes import DEPLOY_WEB_PORT, PROBE_PATHS
from bpstream.stream.config._settings import Settings
from bpstream.stream.kafka.app import create_app

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
VAR = re.compile(r"\bBPSTREAM_[A-Z0-9_]+")


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _k8s() -> dict[str, dict]:
    docs = [d for p in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    return {d["kind"]: d for d in docs}


def _workers() -> dict[str, dict]:
    return {k: v for k, v in _compose()["services"].items() if k.startswith("worker-")}


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _every_var_set() -> dict[str, set[str]]:
    """file -> BPSTREAM_* variables named anywhere in it (set, commented or referenced)."""
    files = [*DEPLOY.glob("*"), *(DEPLOY / "k8s").glob("*")]
    binary = {".png"}  # the board's screenshot lives in deploy/ too
    return {p.name: set(VAR.findall(p.read_text())) for p in files if p.is_file() and p.suffix not in binary}


def test_every_bpstream_variable_in_deploy_is_a_setting():
    known = set(Settings.env_vars())
    assert {"BPSTREAM_BROKER", "BPSTREAM_WEB_PORT", "BPSTREAM_LOG_FORMAT"} <= known
    found = _every_var_set()
    assert {"compose.yaml", "configmap.yaml", "Dockerfile", "worker.env.example"} <= {f for f, v in found.items() if v}
    unknown = {f: sorted(v - known) for f, v in found.items() if v - known}
    assert not unknown, f"variables no setting reads: {unknown}"


def test_the_deploy_environments_are_accepted_by_settings():
    docker_env = dict(re.findall(r"(BPSTREAM_[A-Z0-9_]+)=(\S+)", (DEPLOY / "Dockerfile").read_text()))
    cm = _k8s()["ConfigMap"]["data"]
    for name, env in [("Dockerfile", docker_env), ("configmap", cm)] + [(k, w["environment"]) for k, w in _workers().items()]:
        env = {k: str(v) for k, v in env.items()}
        s = Settings.from_env(env)  # raises SettingsError on a value the worker would refuse at start
        assert s.to_env().keys() <= env.keys(), name
        assert s.web_port == DEPLOY_WEB_PORT and s.store == "rocksdb://" and s.log_format == "json", name


def test_ports_topics_and_partitions_match_the_code():
    defaults = Settings()
    kafka_port = _port(defaults.bootstrap_servers[0])
    compose = _compose()
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}" == compose["services"]["create-topics"]["image"]
    assert f"PLAINTEXT://:{kafka_port}" in kafka["environment"]["KAFKA_LISTENERS"]
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    topics_env = compose["services"]["create-topics"]["environment"]
    assert _port(topics_env["BOOTSTRAP"]) == kafka_port
    script = (DEPLOY / "create-topics.sh").read_text()
    assert "create-topics.sh" in str(compose["services"]["create-topics"]["volumes"])
    listed = re.search(r'^TOPICS="([^"]+)"', script, re.M).group(1).split()
    assert sorted(listed) == sorted(defaults.topic_names().values())
    fhir = re.search(r'FHIR_OUTPUT:-false}" = "true" \]; then TOPICS="\$TOPICS ([^"]+)"', script).group(1).split()
    assert sorted(listed + fhir) == sorted(defaults.replace(fhir_output=True).topic_names().values())
    for name, w in _workers().items():
        env = Settings.from_env({k: str(v) for k, v in w["environment"].items()})
        assert _port(env.bootstrap_servers[0]) == kafka_port, name
        assert env.topic_names() == defaults.topic_names(), name  # the script's topics
        assert env.partitions == int(topics_env["PARTITIONS"]), name
        assert {str(p).split(":")[1] for p in w["ports"]} == {str(DEPLOY_WEB_PORT)}, name
        assert f":{DEPLOY_WEB_PORT}{PROBE_PATHS['liveness']}" in " ".join(w["healthcheck"]["test"]), name
        assert w["depends_on"]["create-topics"]["condition"] == "service_completed_successfully"
    gate = " ".join(compose["services"]["workers-ready"]["entrypoint"])
    assert all(f"http://{w}:{DEPLOY_WEB_PORT}{PROBE_PATHS['readiness']}" in gate for w in _workers())
    assert len(_workers()) == 2


def test_k8s_statefulset_probes_volume_and_service():
    k8s = _k8s()
    sts, svc, cm = k8s["StatefulSet"], k8s["Service"], k8s["ConfigMap"]
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = Settings.from_env(cm["data"])
    assert [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e] == [cm["metadata"]["name"]]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": env.web_port}
    assert container["livenessProbe"]["httpGet"] == {"path": PROBE_PATHS["liveness"], "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": PROBE_PATHS["readiness"], "port": "metrics"}
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == env.datadir and env.store == "rocksdb://"
    assert pod["terminationGracePeriodSeconds"] > env.stop_timeout_s
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    assert svc["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    (port,) = svc["spec"]["ports"]
    assert port["port"] == env.web_port and port["targetPort"] == "metrics"
    assert svc["metadata"]["annotations"]["prometheus.io/path"] == PROBE_PATHS["metrics"]
    assert sts["spec"]["replicas"] <= env.partitions


def test_probe_paths_are_served_by_the_web_app():
    app = create_app(Settings(methods=("carry_forward",), web_port=DEPLOY_WEB_PORT)).app
    assert set(PROBE_PATHS.values()) <= set(app.web.views)
    assert app.conf.web_port == DEPLOY_WEB_PORT


def test_dockerfile_installs_cpu_torch_at_the_package_pin():
    text = (DEPLOY / "Dockerfile").read_text()
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (torch_pin,) = [d for d in deps if d.startswith("torch")]
    line = next(line for line in text.splitlines() if "pip install torch" in line)
    assert torch_pin in line and "--index-url https://download.pytorch.org/whl/cpu" in line
    assert text.index("pip install torch") < text.index("pip install .")  # torch first: the package keeps it
    assert f"EXPOSE {DEPLOY_WEB_PORT}" in text and f":{DEPLOY_WEB_PORT}{PROBE_PATHS['liveness']}" in text


@pytest.mark.parametrize("path", ["compose.yaml", "k8s/configmap.yaml", "k8s/service.yaml", "k8s/statefulset.yaml",
                                  "k8s/kustomization.yaml"])
def test_deploy_yaml_parses(path):
    docs = list(yaml.safe_load_all((DEPLOY / path).read_text()))
    assert docs and all(isinstance(d, dict) for d in docs)
