"""Offline validation of every Kubernetes artefact mcpbus ships.

1. Lints the Helm chart strictly and renders it (both the install dry-run, which parses the
   YAML and checks values.schema.json, and the raw render, which includes hooks) with each
   values file in deploy/helm/mcpbus/ci/ plus the defaults.
2. Renders every kustomize overlay in k8s/overlays/ with `kubectl kustomize`.
3. Validates every rendered object strictly against the Kubernetes schemas
   (kubernetes-validate), and custom resources against the CRD schemas kept in
   deploy/crds/. A kind with no schema fails.
4. Checks bus-schema naming: KEDA triggers name the stream and consumer mcpbus creates.
   Checks the Grafana dashboard and the PrometheusRule further (validate_monitoring.py):
   JSON, PromQL, metric names against the chart's list, promtool on the rules and their
   unit tests (deploy/alerts-test.yaml).
5. Runs the checkov security lint on everything rendered. Accepted exceptions, each with
   its reason, are in deploy/SECURITY-EXCEPTIONS.md; the cluster-wide ones are skipped
   here, the per-resource ones are annotations on the resources themselves.

Needs no cluster and no network. Writes the rendered YAML to the directory given as the
first argument (default: a temporary directory). Exit code 0 only if everything passes.
"""

import glob
import os
import re
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml
from helm_python import Chart, Config, lint

import validate_monitoring

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = os.path.join(ROOT, "deploy", "helm", "mcpbus")
KUBE_VERSION = "1.30.0"
failures = []


def fail(what, why):
    failures.append(f"{what}: {why}")
    print(f"FAIL {what}: {why}")


def crd_schemas():
    """(apiVersion, kind) -> openAPIV3Schema, from the CRDs kept in the repo."""
    schemas = {}
    for path in glob.glob(os.path.join(ROOT, "deploy", "crds", "*.yaml")):
        with open(path) as f:
            for crd in yaml.safe_load_all(f):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group = crd["spec"]["group"]
                kind = crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    schema = version.get("schema", {}).get("openAPIV3Schema")
                    if schema:
                        schemas[(f"{group}/{version['name']}", kind)] = python_patterns(schema)
    return schemas


def python_patterns(schema):
    """Go (RE2) patterns may set flags after `^`, e.g. PrometheusRule's `^(?i)(abort|warn)?$`;
    Python wants them first, with the same meaning."""
    if isinstance(schema, dict):
        return {k: (re.sub(r"^\^\(\?([a-zA-Z]+)\)", r"(?\1)^", v) if k == "pattern" and isinstance(v, str)
                    else python_patterns(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [python_patterns(v) for v in schema]
    return schema


CRDS = crd_schemas()


def validate_objects(source, text):
    objects = [o for o in yaml.safe_load_all(text) if o]
    if not objects:
        fail(source, "rendered no objects")
    for obj in objects:
        name = f"{source}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        key = (obj.get("apiVersion"), obj.get("kind"))
        try:
            if key in CRDS:
                jsonschema.validate(obj, CRDS[key])
                if obj["kind"] == "ScaledObject":
                    check_keda_names(name, obj)
                if obj["kind"] == "PrometheusRule":
                    # The promtool unit tests assume the default thresholds: the monitoring case.
                    validate_monitoring.check_rules(name, obj, fail, unit_tests=source == "helm monitoring")
            else:
                kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
                if obj.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component") == "grafana-dashboard":
                    for entry, text in obj.get("data", {}).items():
                        validate_monitoring.check_dashboard(f"{name} {entry}", text, fail)
        except kubernetes_validate.SchemaNotFoundError:
            fail(name, f"no schema for {key[0]} {key[1]} (add its CRD to deploy/crds/)")
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as e:
            fail(name, e.message)
    return len(objects)


def check_keda_names(name, obj):
    """The trigger must name bus-schema's stream and the pool's consumer."""
    pool = obj["metadata"].get("labels", {}).get("mcpbus.io/pool") or obj["spec"]["scaleTargetRef"]["name"].rsplit("worker-", 1)[-1]
    for trigger in obj["spec"]["triggers"]:
        meta = trigger["metadata"]
        if meta.get("stream") != "MCPBUS_CALLS":
            fail(name, f"KEDA stream {meta.get('stream')!r} is not MCPBUS_CALLS")
        if meta.get("consumer") != f"mcpbus-pool-{pool}":
            fail(name, f"KEDA consumer {meta.get('consumer')!r} is not mcpbus-pool-{pool}")


def check_monitoring_rendered(case, values, manifest):
    """What monitoring.* turns on must render (the checks above only see what did)."""
    monitoring = values.get("monitoring", {})
    kinds = {(o["kind"], o["metadata"].get("labels", {}).get("app.kubernetes.io/component"))
             for o in yaml.safe_load_all(manifest) if o}
    wanted = {
        ("ConfigMap", "grafana-dashboard"): monitoring.get("grafanaDashboard", {}).get("enabled", False),
        ("PrometheusRule", "monitoring"): monitoring.get("prometheusRule", {}).get("enabled", False),
    }
    for kind, on in wanted.items():
        if on != (kind in kinds):
            fail(f"helm {case}", f"{kind[0]} ({kind[1]}) {'missing' if on else 'rendered though off'}")


def auth_choice_required(chart):
    """The defaults alone must not render: the schema asks for gateway.auth.mode (ADR 0009)."""
    try:
        Config(storage_driver="memory").install(chart, "mcpbus", {}, namespace="mcpbus", dry_run="client")
    except Exception as e:
        if "mode" not in str(e):
            fail("helm defaults", f"refused, but not for gateway.auth.mode: {e}")
        return
    fail("helm defaults", "rendered without a choice of gateway.auth.mode")


def helm(out):
    # The defaults plus the one choice the schema requires.
    cases = [("defaults", {"gateway": {"auth": {"mode": "none"}}})]
    for path in sorted(glob.glob(os.path.join(CHART, "ci", "*.yaml"))):
        with open(path) as f:
            cases.append((os.path.basename(path)[:-5], yaml.safe_load(f) or {}))
    total = 0
    chart = Chart.load(CHART)  # keep the reference: the handle is freed with the object
    auth_choice_required(chart)
    for case, values in cases:
        report = lint(CHART, values, strict=True, with_subcharts=True, kube_version=f"v{KUBE_VERSION}")
        problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + report.get("errors", [])
        if problems:
            fail(f"helm lint ({case})", problems)
        try:
            release = Config(storage_driver="memory").install(chart, "mcpbus", values, namespace="mcpbus", dry_run="client")
            manifest = release["manifest"] if isinstance(release, dict) else release.manifest
            raw = chart.render(values, name="mcpbus", namespace="mcpbus", is_install=True)
        except Exception as e:  # the SDK's errors carry Helm's full message
            fail(f"helm render ({case})", e)
            continue
        if "NOTES.txt" not in "".join(raw):
            fail(f"helm render ({case})", "NOTES.txt did not render")
        with open(os.path.join(out, f"helm-{case}.yaml"), "w") as f:
            f.write(manifest)
        total += validate_objects(f"helm {case}", manifest)
        check_monitoring_rendered(case, values, manifest)
    return total


def kustomize(out):
    total = 0
    for overlay in sorted(glob.glob(os.path.join(ROOT, "k8s", "overlays", "*"))):
        name = os.path.basename(overlay)
        result = subprocess.run(["kubectl", "kustomize", overlay], capture_output=True, text=True)
        if result.returncode != 0:
            fail(f"kustomize {name}", result.stderr.strip())
            continue
        with open(os.path.join(out, f"kustomize-{name}.yaml"), "w") as f:
            f.write(result.stdout)
        total += validate_objects(f"kustomize {name}", result.stdout)
    return total


# Accepted cluster-wide exceptions; reasons in deploy/SECURITY-EXCEPTIONS.md.
CHECKOV_SKIPS = ["CKV_K8S_11", "CKV_K8S_15", "CKV_K8S_35", "CKV_K8S_43"]


def security_lint(out):
    checkov = os.environ.get("CHECKOV", os.path.join(ROOT, ".venv-checkov", "bin", "checkov"))
    result = subprocess.run(
        [checkov, "-d", out, "--framework", "kubernetes", "--compact", "--quiet",
         "--skip-download", "--skip-check", ",".join(CHECKOV_SKIPS)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        fail("checkov", "\n" + (result.stdout + result.stderr).strip())
    else:
        print("checkov: no findings beyond the documented exceptions")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="mcpbus-k8s-")
    os.makedirs(out, exist_ok=True)
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        os.environ.setdefault(var, os.path.join(out, ".helm", var.lower()))
    n = helm(out) + kustomize(out)
    security_lint(out)
    if failures:
        print(f"\n{len(failures)} problem(s) in {n} objects; rendered YAML in {out}")
        sys.exit(1)
    print(f"all {n} rendered objects valid (Kubernetes {KUBE_VERSION}, CRDs from deploy/crds); YAML in {out}")


if __name__ == "__main__":
    main()
