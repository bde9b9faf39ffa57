"""deploy/ is checked offline: schemas, references between the manifests, and the commands.

What is validated (honestly):
- Kubernetes and KubeRay manifests against the schema subset in `k8s_schema.py` (written for
  this project; the fields deploy/ uses, every other field rejected), not the upstream OpenAPI
  documents, which cannot be fetched at test time;
- the Ray cluster-launcher YAML against Ray's own `ray-schema.json`, shipped in the installed
  `ray` package (no download);
- that the manifests agree with each other and with wanhe: every ConfigMap, Secret and volume
  claim a pod names exists; Services select pods that exist; the head runs `wanhe serve`
  against its own Ray with arguments the real CLI accepts; the readiness probe's path is a
  route of the app; both worker groups are autoscaled from zero and only the GPU group asks
  for `nvidia.com/gpu`; the settings parse as wanhe's Settings; storage is an S3 URL.
Not validated: that a real API server, KubeRay operator or AWS account accepts them.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.k8s_schema import schema_for

ROOT = Path(__file__).resolve().parents[2]
KUBERAY = ROOT / "deploy" / "kuberay"
LAUNCHER = ROOT / "deploy" / "cluster-launcher" / "aws.yaml"


def _docs() -> list[dict[str, Any]]:
    out = []
    for path in sorted(KUBERAY.glob("*.yaml")):
        out += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return out


DOCS = _docs()


def _named(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in DOCS if d["kind"] == kind}


def _templates() -> list[dict[str, Any]]:
    """Every pod template: the Deployments', the RayCluster head's and worker groups'."""
    out = [d["spec"]["template"] for d in DOCS if d["kind"] == "Deployment"]
    for rc in _named("RayCluster").values():
        out.append(rc["spec"]["headGroupSpec"]["template"])
        out += [g["template"] for g in rc["spec"]["workerGroupSpecs"]]
    return out


def _cluster() -> dict[str, Any]:
    (rc,) = _named("RayCluster").values()
    return rc


@pytest.mark.parametrize("doc", DOCS, ids=[f"{d['kind']}/{d['metadata']['name']}" for d in DOCS])
def test_every_manifest_fits_its_schema(doc: dict[str, Any]) -> None:
    jsonschema.validate(doc, schema_for(doc))


def test_the_schema_subset_catches_mistakes() -> None:
    rc = json.loads(json.dumps(_cluster()))
    rc["spec"]["workerGroupSpecs"][0]["maxReplica"] = 3  # a typo
    with pytest.raises(jsonschema.ValidationError, match="maxReplica"):
        jsonschema.validate(rc, schema_for(rc))
    rc = json.loads(json.dumps(_cluster()))
    rc["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0  # must be a string
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rc, schema_for(rc))
    limits = rc["spec"]["workerGroupSpecs"][1]["template"]["spec"]["containers"][0]
    limits["resources"]["limits"]["memory"] = "32 GB"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rc, schema_for(rc))


def test_pods_name_only_what_exists() -> None:
    maps, secrets, claims = _named("ConfigMap"), _named("Secret"), _named("PersistentVolumeClaim")
    for template in _templates():
        spec = template["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for v in volumes.values():
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims
        for c in spec["containers"]:
            for ref in c.get("envFrom", []):
                if "configMapRef" in ref:
                    assert ref["configMapRef"]["name"] in maps
                if "secretRef" in ref:
                    assert ref["secretRef"]["name"] in secrets
            for e in c.get("env", []):
                key = e.get("valueFrom", {}).get("secretKeyRef")
                if key:
                    assert key["key"] in secrets[key["name"]]["stringData"]
            for m in c.get("volumeMounts", []):
                assert m["name"] in volumes
    labels = [t.get("metadata", {}).get("labels", {}) for t in _templates()]
    for svc in _named("Service").values():
        sel = svc["spec"]["selector"]
        assert any(sel.items() <= lab.items() for lab in labels), svc["metadata"]["name"]


def _serve_command() -> list[str]:
    head = _cluster()["spec"]["headGroupSpec"]["template"]["spec"]
    (serve,) = [c for c in head["containers"] if c.get("command", [])[:2] == ["wanhe", "serve"]]
    assert head["containers"][0] is not serve  # KubeRay starts Ray in the first container
    return [*serve["command"], *serve["args"]]


def _parse_serve(argv: list[str]) -> dict[str, Any]:
    """The arguments as the real `wanhe serve` parses them (nothing is started)."""
    import typer

    from wanhe.cli import app

    group = typer.main.get_command(app)
    serve = group.commands["serve"]  # type: ignore[attr-defined]
    ctx = serve.make_context("serve", list(argv[2:]))
    return dict(ctx.params)


def test_the_head_runs_wanhe_serve_on_its_own_ray_and_the_probe_exists() -> None:
    params = _parse_serve(_serve_command())
    assert params["ray_address"] == "127.0.0.1:6379" and params["host"] == "0.0.0.0"
    head = _cluster()["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # renders go to workers
    (serve,) = [c for c in head["template"]["spec"]["containers"] if c["name"] == "wanhe"]
    path = serve["readinessProbe"]["httpGet"]["path"]
    assert f'@app.get("{path}"' in (ROOT / "src" / "wanhe" / "api" / "app.py").read_text()


def test_worker_groups_autoscale_from_zero_and_only_gpus_ask_for_gpus() -> None:
    rc = _cluster()["spec"]
    assert rc["enableInTreeAutoscaling"] is True
    groups = {g["groupName"]: g for g in rc["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    for g in groups.values():
        assert g["minReplicas"] == 0 and g["replicas"] == 0 and g["maxReplicas"] >= 1
    for name, g in groups.items():
        (c,) = g["template"]["spec"]["containers"]
        asks = {**c["resources"]["requests"], **c["resources"]["limits"]}
        assert ("nvidia.com/gpu" in asks) == (name == "gpu")
    gpu = groups["gpu"]["template"]["spec"]["containers"][0]["resources"]
    assert gpu["limits"]["nvidia.com/gpu"] == gpu["requests"]["nvidia.com/gpu"]  # k8s rule


def test_settings_parse_and_every_node_shares_the_work_area(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wanhe.config import Settings
    from wanhe.storage import is_url

    (config,) = _named("ConfigMap").values()
    (secret,) = _named("Secret").values()
    for k, v in {**config["data"], **secret["stringData"]}.items():
        monkeypatch.setenv(k, v)
    settings = Settings()
    assert is_url(settings.storage_location) and settings.storage_location.startswith("s3://")
    assert settings.db_url.startswith("postgresql+psycopg://")
    assert settings.max_cores and settings.max_gpus is not None
    work = str(settings.work_root)
    for template in _templates()[1:]:  # the head's containers and every worker
        for c in template["spec"]["containers"]:
            assert work in {m["mountPath"] for m in c["volumeMounts"]}, c["name"]
    claims = _named("PersistentVolumeClaim")
    assert claims["wanhe-work"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_cluster_launcher_yaml_fits_rays_own_schema() -> None:
    import ray

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load(LAUNCHER.read_text())
    jsonschema.validate(config, schema)
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"] == {"CPU": 0}
    assert {"cpu", "gpu"} <= set(types)
    assert all(types[t]["min_workers"] == 0 for t in ("cpu", "gpu"))
    serve = [c for c in config["head_start_ray_commands"] if "wanhe serve" in c]
    assert len(serve) == 1
    words = shlex.split(serve[0].split("&&")[-1].split(">")[0])
    params = _parse_serve(words[words.index("wanhe"):])
    assert params["ray_address"] == "127.0.0.1:6379"
