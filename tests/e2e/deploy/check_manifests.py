#!/usr/bin/python3
"""Offline consistency checks of pushgate's deployment files.

  check_manifests.py k8s FILE            FILE: `kubectl kustomize deploy/k8s` output
  check_manifests.py compose FILE        FILE: `docker-compose config` output
  check_manifests.py config TOML DEFAULT every section.key of TOML exists in DEFAULT
                                         (the service's --dump-default)

kubectl cannot validate without an API server (even `create --dry-run=client` asks it for the
resource mapping), so these checks cover what a cluster would reject or silently get wrong:
kinds and API versions, selectors that match no pod, ports and volumes named but not defined,
an HPA whose target is missing or would fight a fixed replica count, a probe on a port the
container does not expose, a config file the ConfigMap does not hold, TOML that does not parse.
Prints one line per problem and exits 1 if there is any.
"""
import os
import sys
import tomllib

import yaml

problems = []


def problem(msg):
    problems.append(msg)


KNOWN_KINDS = {
    ("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"), ("apps/v1", "Deployment"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"), ("policy/v1", "PodDisruptionBudget"),
}


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_k8s(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if not docs:
        problem(f"{path}: no objects")
        return
    objs = {}
    for d in docs:
        kind, api = d.get("kind"), d.get("apiVersion")
        name = (d.get("metadata") or {}).get("name")
        if not name:
            problem(f"{kind} without metadata.name")
            continue
        if (api, kind) not in KNOWN_KINDS:
            problem(f"{kind}/{name}: unexpected apiVersion/kind {api} {kind}")
        if (kind, name) in objs:
            problem(f"{kind}/{name} defined twice")
        objs[(kind, name)] = d

    deployments = {n: d for (k, n), d in objs.items() if k == "Deployment"}
    hpa_targets = set()
    for (k, n), d in objs.items():
        if k == "HorizontalPodAutoscaler":
            ref = d["spec"]["scaleTargetRef"]
            if ref.get("kind") != "Deployment" or ref.get("name") not in deployments:
                problem(f"HPA {n}: target {ref} does not exist")
                continue
            hpa_targets.add(ref["name"])
            if not 0 < d["spec"].get("minReplicas", 1) <= d["spec"]["maxReplicas"]:
                problem(f"HPA {n}: minReplicas/maxReplicas out of order")
            for m in d["spec"].get("metrics", []):
                if m.get("type") == "Resource":
                    res = m["resource"]["name"]
                    for c in deployments[ref["name"]]["spec"]["template"]["spec"]["containers"]:
                        if res not in (c.get("resources") or {}).get("requests", {}):
                            problem(f"HPA {n}: container {c['name']} has no {res} request "
                                    "(Utilization targets need one)")

    pod_labels = {}
    for n, d in deployments.items():
        spec = d["spec"]
        sel = spec.get("selector", {}).get("matchLabels", {})
        labels = spec["template"]["metadata"].get("labels", {})
        if not matches(sel, labels):
            problem(f"Deployment {n}: selector {sel} does not match its pod labels {labels}")
        pod_labels[n] = labels
        if n in hpa_targets and "replicas" in spec:
            problem(f"Deployment {n}: fixed replicas fights its HorizontalPodAutoscaler")
        pod = spec["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for v in volumes.values():
            if "configMap" in v and ("ConfigMap", v["configMap"]["name"]) not in objs:
                problem(f"Deployment {n}: ConfigMap {v['configMap']['name']} missing")
            if "secret" in v and ("Secret", v["secret"]["secretName"]) not in objs:
                problem(f"Deployment {n}: Secret {v['secret']['secretName']} missing")
            if ("persistentVolumeClaim" in v and
                    ("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]) not in objs):
                problem(f"Deployment {n}: PVC {v['persistentVolumeClaim']['claimName']} missing")
        for c in pod["containers"]:
            if not c.get("image"):
                problem(f"Deployment {n}/{c['name']}: no image")
            ports = {p.get("name"): p for p in c.get("ports", [])}
            numbers = {p["containerPort"] for p in c.get("ports", [])}
            mounts = {}
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes:
                    problem(f"Deployment {n}/{c['name']}: mounts undefined volume {m['name']}")
                mounts[m["mountPath"]] = volumes.get(m["name"], {})
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                p = c.get(probe)
                if not p:
                    continue
                for how in ("httpGet", "tcpSocket", "grpc"):
                    if how in p:
                        port = p[how]["port"]
                        if (isinstance(port, str) and port not in ports) or \
                                (isinstance(port, int) and port not in numbers):
                            problem(f"Deployment {n}/{c['name']}: {probe} uses port {port} "
                                    "the container does not expose")
            if n in ("pushgate-proxy", "pushgate-pusher") and not c.get("readinessProbe"):
                problem(f"Deployment {n}: no readinessProbe")
            # --config FILE must be a key of the mounted ConfigMap.
            args = c.get("args", [])
            if "--config" in args:
                cfg = args[args.index("--config") + 1]
                directory, _, key = cfg.rpartition("/")
                vol = mounts.get(directory)
                if not vol or "configMap" not in vol:
                    problem(f"Deployment {n}: --config {cfg} is not in a mounted ConfigMap")
                else:
                    cm = objs.get(("ConfigMap", vol["configMap"]["name"]))
                    if cm and key not in cm.get("data", {}):
                        problem(f"Deployment {n}: ConfigMap {cm['metadata']['name']} has no {key}")

    for (k, n), d in objs.items():
        if k == "Service":
            sel = d["spec"].get("selector", {})
            owners = [dn for dn, labels in pod_labels.items() if matches(sel, labels)]
            if not owners:
                problem(f"Service {n}: selector {sel} matches no Deployment")
                continue
            ports = {}
            for c in deployments[owners[0]]["spec"]["template"]["spec"]["containers"]:
                for p in c.get("ports", []):
                    ports[p.get("name")] = p.get("protocol", "TCP")
            for p in d["spec"]["ports"]:
                t = p.get("targetPort", p["port"])
                if isinstance(t, str):
                    if t not in ports:
                        problem(f"Service {n}: targetPort {t} not a port of {owners[0]}")
                    elif ports[t] != p.get("protocol", "TCP"):
                        problem(f"Service {n}: port {p['name']} protocol differs from {t}")
        if k == "PodDisruptionBudget":
            sel = d["spec"]["selector"]["matchLabels"]
            if not any(matches(sel, labels) for labels in pod_labels.values()):
                problem(f"PodDisruptionBudget {n}: selector matches no Deployment")
        if k == "ConfigMap":
            for key, text in d.get("data", {}).items():
                if key.endswith(".toml"):
                    try:
                        tomllib.loads(text)
                    except tomllib.TOMLDecodeError as e:
                        problem(f"ConfigMap {n}/{key}: {e}")
                        continue
                    # PUSHGATE_DEFAULTS_DIR/<key>: that service's --dump-default.
                    default = os.path.join(os.environ.get("PUSHGATE_DEFAULTS_DIR", ""), key)
                    if os.environ.get("PUSHGATE_DEFAULTS_DIR") and os.path.exists(default):
                        with open(default) as f:
                            known = toml_keys(f.read())
                        for bad in sorted(toml_keys(text) - known):
                            problem(f"ConfigMap {n}/{key}: key {bad} is not in the service's "
                                    "--dump-default")

    pusher_svc = objs.get(("Service", "pushgate-pusher"))
    if not pusher_svc or pusher_svc["spec"].get("clusterIP") != "None":
        problem("Service pushgate-pusher must be headless (clusterIP: None) for client-side "
                "gRPC balancing")
    if not any(k == "HorizontalPodAutoscaler" for k, _ in objs):
        problem("no HorizontalPodAutoscaler")


def check_compose(path):
    with open(path) as f:
        c = yaml.safe_load(f)
    services = c.get("services", {})
    for name in ("proxy", "pusher", "redis", "emulator", "kamailio"):
        if name not in services:
            problem(f"compose: no service {name}")
    pusher = services.get("pusher", {})
    if "container_name" in pusher:
        problem("compose: pusher has container_name (cannot scale)")
    if pusher.get("ports"):
        problem("compose: pusher publishes host ports (cannot scale)")
    for name in ("emulator", "kamailio"):
        if "demo" not in services.get(name, {}).get("profiles", []):
            problem(f"compose: {name} is not in the demo profile")
    for name in ("proxy", "pusher", "redis"):
        if services.get(name, {}).get("profiles"):
            problem(f"compose: {name} must run without a profile")
    declared = c.get("secrets", {})
    for name, s in services.items():
        for sec in s.get("secrets", []):
            src = sec if isinstance(sec, str) else sec.get("source")
            if src not in declared:
                problem(f"compose: {name} uses undeclared secret {src}")
        if s.get("stop_signal", "SIGTERM") != "SIGTERM":
            problem(f"compose: {name} stop_signal is not SIGTERM")


def toml_keys(text):
    out = set()
    for section, table in tomllib.loads(text).items():
        if isinstance(table, dict):
            out |= {f"{section}.{k}" for k in table}
        else:
            out.add(section)
    return out


def check_config(path, default_path):
    with open(path) as f:
        have = toml_keys(f.read())
    with open(default_path) as f:
        known = toml_keys(f.read())
    for key in sorted(have - known):
        problem(f"{path}: key {key} is not in the service's --dump-default")


def main(argv):
    if len(argv) >= 3 and argv[1] == "k8s":
        check_k8s(argv[2])
    elif len(argv) >= 3 and argv[1] == "compose":
        check_compose(argv[2])
    elif len(argv) >= 4 and argv[1] == "config":
        check_config(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
