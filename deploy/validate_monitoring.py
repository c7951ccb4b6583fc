"""Checks of the chart's Grafana dashboard and PrometheusRule beyond their schemas.

deploy/validate.py calls these on every rendered dashboard ConfigMap and PrometheusRule:

- the dashboard's JSON parses, its panels have unique ids, fit the 24-column grid without
  overlapping, and every variable it uses is defined;
- every PromQL expression (panel targets, variable queries, alert rules) parses, with the
  `promql-parser` package (the Rust PromQL parser), and names only metrics listed in
  helm/mcpbus/ci/metric-names.txt, with labels those metrics have; counters and histogram
  series appear only inside rate()/increase(), gauges never;
- `promtool check rules` accepts the rendered rule group, and, for the chart's default
  thresholds, `promtool test rules` runs deploy/alerts-test.yaml (each alert against made-up
  series: it fires when it should, and not when it should not), which must test every alert.

promtool comes from Debian's `prometheus` package, extracted by scripts/test.sh into
.tools/promtool (or name another with PROMTOOL).
"""

import json
import os
import re
import shutil
import subprocess
import tempfile

import promql_parser as pp
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRIC_NAMES = os.path.join(ROOT, "deploy", "helm", "mcpbus", "ci", "metric-names.txt")
ALERTS_TEST = os.path.join(ROOT, "deploy", "alerts-test.yaml")
PROMTOOL = os.environ.get("PROMTOOL", os.path.join(ROOT, ".tools", "promtool"))

# Labels the scrape adds (ServiceMonitor or pod annotations), not the gateways.
TARGET_LABELS = {"namespace", "job", "instance", "pod", "service", "endpoint", "container", "cluster"}
# Functions that take a counter (or a histogram's _bucket/_sum/_count) range.
COUNTER_FUNCTIONS = {"rate", "irate", "increase", "resets"}
# Grafana's interval variables, replaced by a duration before parsing.
GRAFANA_INTERVALS = re.compile(r"\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}")
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__all"}
LABEL_VALUES = re.compile(r"^\s*label_values\((?:(.*),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$", re.S)


def load_metrics(path=METRIC_NAMES):
    """Series name -> (kind, labels): a histogram gives its _bucket, _sum and _count."""
    series = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, kind, labels = line.split()
            labels = set() if labels == "-" else set(labels.split(","))
            if kind == "histogram":
                series[f"{name}_bucket"] = ("histogram", labels | {"le"})
                series[f"{name}_sum"] = ("histogram", labels)
                series[f"{name}_count"] = ("histogram", labels)
            elif kind in ("counter", "gauge"):
                series[name] = (kind, labels)
            else:
                raise ValueError(f"{path}: {name}: unknown type {kind!r}")
    return series


METRICS = load_metrics()


def _selectors(expr):
    found = []
    pp.walk(expr, lambda n: found.append(n) if isinstance(n, pp.VectorSelector) else None)
    return found


def _labels_of(expr):
    """Every label the series under `expr` can carry (unknown metrics add nothing)."""
    labels = set(TARGET_LABELS)
    for sel in _selectors(expr):
        labels |= METRICS.get(sel.name, (None, set()))[1]
    return labels


def promql_problems(expr_text):
    """What is wrong with one PromQL expression, as a list of sentences (empty: fine)."""
    try:
        expr = pp.parse(expr_text)
    except ValueError as e:
        return [f"does not parse ({e}): {expr_text!r}"]
    problems = []
    stack = []

    def pre(node):
        if isinstance(node, pp.VectorSelector):
            problems.extend(_selector_problems(node, stack))
        elif isinstance(node, pp.AggregateExpr) and node.modifier is not None:
            if node.modifier.type == pp.AggModifierType.By:
                unknown = set(node.modifier.labels) - _labels_of(node.expr)
                if unknown:
                    problems.append(f"{node.op} by {sorted(unknown)}: no such label on {node.expr}")
        elif isinstance(node, pp.BinaryExpr) and node.modifier is not None and node.modifier.matching is not None:
            unknown = set(node.modifier.matching.labels) - (_labels_of(node.lhs) | _labels_of(node.rhs))
            if unknown:
                problems.append(f"matching on {sorted(unknown)}: no such label in {node}")
        stack.append(node)

    def post(node):
        stack.pop()

    pp.walk(expr, pre, post)
    return problems


def _selector_problems(sel, stack):
    name = sel.name
    if name not in METRICS:
        return [f"metric {name!r} is not in {os.path.relpath(METRIC_NAMES, ROOT)}"]
    kind, labels = METRICS[name]
    problems = []
    for m in sel.matchers.matchers:
        if m.name != "__name__" and m.name not in labels | TARGET_LABELS:
            problems.append(f"{name} has no label {m.name!r}")
    in_counter_fn = (
        len(stack) >= 2
        and isinstance(stack[-1], pp.MatrixSelector)
        and isinstance(stack[-2], pp.Call)
        and stack[-2].func.name in COUNTER_FUNCTIONS
    )
    if kind in ("counter", "histogram") and not in_counter_fn:
        problems.append(f"{name} is a {kind} series: use it inside rate() or increase()")
    if kind == "gauge" and in_counter_fn:
        problems.append(f"{name} is a gauge: {stack[-2].func.name}() is for counters")
    return problems


def check_dashboard(what, text, fail):
    """`text` is the dashboard JSON as shipped in the ConfigMap."""
    try:
        dash = json.loads(text)
    except ValueError as e:
        fail(what, f"dashboard JSON does not parse: {e}")
        return
    for key in ("uid", "title", "panels", "templating"):
        if key not in dash:
            fail(what, f"dashboard has no {key!r}")
            return
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    used = set()
    for v in variables.values():
        if v["type"] != "query":
            continue
        query = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        match = LABEL_VALUES.match(query)
        if not match:
            fail(what, f"variable {v['name']}: only label_values(selector, label) is checked, got {query!r}")
            continue
        selector, label = match.groups()
        if selector:
            used |= _variables_in(selector)
            for p in promql_problems(selector):
                fail(what, f"variable {v['name']}: {p}")
            if label not in _labels_of(pp.parse(selector)):
                fail(what, f"variable {v['name']}: no label {label!r} on {selector}")
    ids = set()
    count = 0
    for panel in dash["panels"]:
        title = panel.get("title", "?")
        if panel.get("id") in ids:
            fail(what, f"panel {title!r}: id {panel.get('id')} used twice")
        ids.add(panel.get("id"))
        grid = panel.get("gridPos", {})
        if not (0 <= grid.get("x", -1) and grid.get("w", 0) > 0 and grid["x"] + grid["w"] <= 24 and grid.get("h", 0) > 0):
            fail(what, f"panel {title!r}: gridPos {grid} is outside the 24-column grid")
        if panel["type"] == "row":
            continue
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            fail(what, f"panel {title!r}: datasource is not the $datasource variable")
        targets = panel.get("targets") or []
        if not targets:
            fail(what, f"panel {title!r}: no query")
        if len({t.get("refId") for t in targets}) != len(targets):
            fail(what, f"panel {title!r}: refIds are not unique")
        for t in targets:
            expr = t.get("expr", "")
            used |= _variables_in(expr)
            for p in promql_problems(GRAFANA_INTERVALS.sub("5m", expr)):
                fail(what, f"panel {title!r} {t.get('refId')}: {p}")
            count += 1
    cells = {}
    for panel in dash["panels"]:
        g = panel.get("gridPos", {})
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                if (x, y) in cells:
                    fail(what, f"panels {cells[(x, y)]!r} and {panel.get('title')!r} overlap")
                    break
                cells[(x, y)] = panel.get("title")
            else:
                continue
            break
    for name in sorted(used - set(variables) - GRAFANA_BUILTINS):
        fail(what, f"dashboard uses ${name}, which it does not define")
    return count


def _variables_in(text):
    return {a or b for a, b in re.findall(r"\$\{(\w+)[^}]*\}|\$(\w+)", text)}


def check_rules(what, rule, fail, unit_tests=False):
    """A rendered PrometheusRule: every expression, then promtool on the whole group."""
    groups = rule["spec"]["groups"]
    for group in groups:
        for r in group["rules"]:
            name = r.get("alert") or r.get("record")
            for p in promql_problems(str(r["expr"])):
                fail(what, f"rule {name}: {p}")
            if "alert" in r:
                for key in ("summary", "description"):
                    if not r.get("annotations", {}).get(key):
                        fail(what, f"alert {name} has no {key}")
                if not r.get("labels", {}).get("severity"):
                    fail(what, f"alert {name} has no severity")
    if not os.access(PROMTOOL, os.X_OK):
        fail(what, f"no promtool at {PROMTOOL} (scripts/test.sh extracts it; or set PROMTOOL)")
        return
    with tempfile.TemporaryDirectory(prefix="mcpbus-rules-") as tmp:
        rules_file = os.path.join(tmp, "mcpbus-rules.yaml")
        with open(rules_file, "w") as f:
            yaml.safe_dump({"groups": groups}, f, sort_keys=False)
        _promtool(what, fail, ["check", "rules", rules_file])
        if unit_tests:
            with open(ALERTS_TEST) as f:
                tested = {t["alertname"] for test in yaml.safe_load(f)["tests"] for t in test.get("alert_rule_test", [])}
            for r in (r for g in groups for r in g["rules"] if "alert" in r):
                if r["alert"] not in tested:
                    fail(what, f"alert {r['alert']} has no test in {os.path.relpath(ALERTS_TEST, ROOT)}")
            shutil.copy(ALERTS_TEST, os.path.join(tmp, "alerts-test.yaml"))
            _promtool(what, fail, ["test", "rules", os.path.join(tmp, "alerts-test.yaml")])


def _promtool(what, fail, args):
    result = subprocess.run([PROMTOOL, *args], capture_output=True, text=True)
    if result.returncode != 0:
        fail(what, f"promtool {' '.join(args[:2])}:\n" + (result.stdout + result.stderr).strip())
