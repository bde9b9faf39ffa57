"""JSON Schemas for the parts of the Kubernetes and KubeRay APIs that deploy/ uses.

Written for this project from the API reference (apps/v1 Deployment, v1 Service, ConfigMap,
Secret, PersistentVolumeClaim, PodTemplateSpec; KubeRay's ray.io/v1 RayCluster CRD), NOT the
upstream OpenAPI documents (nothing may be downloaded at test time or committed from outside).
They cover only the fields deploy/ uses, and forbid every other field (`additionalProperties:
false`), so a misspelt or misplaced key fails the test; a field the real API accepts but this
subset lacks must be added here before a manifest may use it. Types, required fields, enums and
the Kubernetes quantity and DNS-label formats are checked; defaults, admission webhooks and
cross-field rules of the real API server are not.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
QUANTITY = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
RESOURCE_NAME = r"^([a-z0-9.-]+/)?[a-z0-9A-Z]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$"


def obj(props: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    return {"type": "object", "properties": props, "required": list(required),
            "additionalProperties": False}


def str_map(value: Schema | None = None) -> Schema:
    return {"type": "object", "additionalProperties": value or {"type": "string"}}


STR: Schema = {"type": "string"}
STRS: Schema = {"type": "array", "items": STR}
INT: Schema = {"type": "integer"}
PORT: Schema = {"type": "integer", "minimum": 1, "maximum": 65535}
NAME: Schema = {"type": "string", "pattern": DNS_SUBDOMAIN, "maxLength": 253}
LABEL_NAME: Schema = {"type": "string", "pattern": DNS_LABEL, "maxLength": 63}
QTY: Schema = {"oneOf": [{"type": "string", "pattern": QUANTITY}, {"type": "integer"}]}

METADATA = obj({"name": NAME, "namespace": LABEL_NAME, "labels": str_map(),
                "annotations": str_map()}, ("name",))
TEMPLATE_METADATA = obj({"labels": str_map(), "annotations": str_map()})
RESOURCES = obj({
    "requests": {"type": "object", "propertyNames": {"pattern": RESOURCE_NAME},
                 "additionalProperties": QTY},
    "limits": {"type": "object", "propertyNames": {"pattern": RESOURCE_NAME},
               "additionalProperties": QTY},
})
KEY_REF = obj({"name": NAME, "key": STR, "optional": {"type": "boolean"}}, ("key",))
ENV_VAR = obj({"name": STR, "value": STR,
               "valueFrom": obj({"secretKeyRef": KEY_REF, "configMapKeyRef": KEY_REF})},
              ("name",))
ENV_FROM = obj({"configMapRef": obj({"name": NAME}, ("name",)),
                "secretRef": obj({"name": NAME}, ("name",)), "prefix": STR})
PROBE = obj({
    "httpGet": obj({"path": STR, "port": {"oneOf": [PORT, STR]}, "scheme": STR}, ("port",)),
    "exec": obj({"command": STRS}),
    "tcpSocket": obj({"port": {"oneOf": [PORT, STR]}}, ("port",)),
    "initialDelaySeconds": INT, "periodSeconds": INT, "timeoutSeconds": INT,
    "failureThreshold": INT,
})
CONTAINER = obj({
    "name": LABEL_NAME, "image": STR, "command": STRS, "args": STRS, "workingDir": STR,
    "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
    "ports": {"type": "array", "items": obj({
        "name": {"type": "string", "pattern": DNS_LABEL, "maxLength": 15},
        "containerPort": PORT, "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
    }, ("containerPort",))},
    "env": {"type": "array", "items": ENV_VAR},
    "envFrom": {"type": "array", "items": ENV_FROM},
    "resources": RESOURCES,
    "volumeMounts": {"type": "array", "items": obj(
        {"name": LABEL_NAME, "mountPath": STR, "readOnly": {"type": "boolean"},
         "subPath": STR}, ("name", "mountPath"))},
    "readinessProbe": PROBE, "livenessProbe": PROBE,
}, ("name", "image"))
VOLUME = obj({
    "name": LABEL_NAME,
    "persistentVolumeClaim": obj({"claimName": NAME, "readOnly": {"type": "boolean"}},
                                 ("claimName",)),
    "emptyDir": obj({"medium": STR, "sizeLimit": QTY}),
    "configMap": obj({"name": NAME}, ("name",)),
    "secret": obj({"secretName": NAME}, ("secretName",)),
}, ("name",))
TOLERATION = obj({"key": STR, "operator": {"enum": ["Exists", "Equal"]}, "value": STR,
                  "effect": {"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]}})
POD_SPEC = obj({
    "containers": {"type": "array", "items": CONTAINER, "minItems": 1},
    "initContainers": {"type": "array", "items": CONTAINER},
    "volumes": {"type": "array", "items": VOLUME},
    "tolerations": {"type": "array", "items": TOLERATION},
    "nodeSelector": str_map(), "serviceAccountName": NAME,
    "restartPolicy": {"enum": ["Always", "OnFailure", "Never"]},
}, ("containers",))
POD_TEMPLATE = obj({"metadata": TEMPLATE_METADATA, "spec": POD_SPEC}, ("spec",))
SELECTOR = obj({"matchLabels": str_map()}, ("matchLabels",))


def kind(api_version: str, kind_name: str, spec: Schema | None, *,
         extra: dict[str, Schema] | None = None, spec_required: bool = True) -> Schema:
    props: dict[str, Schema] = {"apiVersion": {"const": api_version},
                                "kind": {"const": kind_name}, "metadata": METADATA}
    if spec is not None:
        props["spec"] = spec
    props.update(extra or {})
    need = ("apiVersion", "kind", "metadata") + (("spec",) if spec and spec_required else ())
    return obj(props, need)


SCHEMAS: dict[tuple[str, str], Schema] = {
    ("v1", "ConfigMap"): kind("v1", "ConfigMap", None, extra={"data": str_map()}),
    ("v1", "Secret"): kind("v1", "Secret", None, extra={
        "type": STR, "stringData": str_map(), "data": str_map()}),
    ("v1", "PersistentVolumeClaim"): kind("v1", "PersistentVolumeClaim", obj({
        "accessModes": {"type": "array", "minItems": 1, "items": {"enum": [
            "ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]}},
        "storageClassName": STR,
        "resources": obj({"requests": obj({"storage": QTY}, ("storage",))}, ("requests",)),
    }, ("accessModes", "resources"))),
    ("v1", "Service"): kind("v1", "Service", obj({
        "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]},
        "selector": str_map(),
        "ports": {"type": "array", "minItems": 1, "items": obj({
            "name": LABEL_NAME, "port": PORT, "targetPort": {"oneOf": [PORT, STR]},
            "protocol": {"enum": ["TCP", "UDP", "SCTP"]}}, ("port",))},
    }, ("ports",))),
    ("apps/v1", "Deployment"): kind("apps/v1", "Deployment", obj({
        "replicas": {"type": "integer", "minimum": 0},
        "strategy": obj({"type": {"enum": ["Recreate", "RollingUpdate"]}}),
        "selector": SELECTOR, "template": POD_TEMPLATE,
    }, ("selector", "template"))),
}

# KubeRay's RayCluster (ray.io/v1), the fields deploy/ uses. rayStartParams values are strings
# in the CRD (`ray start` flags without the dashes).
_GROUP_COMMON: dict[str, Schema] = {
    "rayStartParams": str_map(),
    "template": POD_TEMPLATE,
}
RAY_CLUSTER = kind("ray.io/v1", "RayCluster", obj({
    "rayVersion": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+$"},
    "enableInTreeAutoscaling": {"type": "boolean"},
    "autoscalerOptions": obj({
        "upscalingMode": {"enum": ["Default", "Aggressive", "Conservative"]},
        "idleTimeoutSeconds": {"type": "integer", "minimum": 0},
        "resources": RESOURCES, "image": STR,
        "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
        "env": {"type": "array", "items": ENV_VAR},
    }),
    "headGroupSpec": obj({
        "serviceType": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
        **_GROUP_COMMON,
    }, ("template",)),
    "workerGroupSpecs": {"type": "array", "items": obj({
        "groupName": LABEL_NAME,
        "replicas": {"type": "integer", "minimum": 0},
        "minReplicas": {"type": "integer", "minimum": 0},
        "maxReplicas": {"type": "integer", "minimum": 0},
        **_GROUP_COMMON,
    }, ("groupName", "maxReplicas", "template"))},
}, ("headGroupSpec",)))
SCHEMAS[("ray.io/v1", "RayCluster")] = RAY_CLUSTER


def schema_for(doc: dict[str, Any]) -> Schema:
    key = (str(doc.get("apiVersion")), str(doc.get("kind")))
    if key not in SCHEMAS:
        raise KeyError(f"no schema for {key[0]} {key[1]}: add the subset deploy/ uses to "
                       "tests/deploy/k8s_schema.py")
    return SCHEMAS[key]
