"""The monitoring checks refuse what they are meant to refuse: a checker that passes
everything would pass the chart too. Run by scripts/test.sh (unittest, in .venv-k8s)."""

import copy
import json
import os
import unittest

import validate_monitoring as vm

DASHBOARD = os.path.join(vm.ROOT, "deploy", "helm", "mcpbus", "dashboards", "mcpbus.json")


def failures(check, *args, **kwargs):
    found = []
    check(*args, lambda what, why: found.append(why), **kwargs)
    return found


class PromQL(unittest.TestCase):
    def test_the_right_use_of_each_kind_of_metric_passes(self):
        for expr in [
            'max by (pool) (mcpbus_pool_workers{namespace="x",pool=~"a|b"})',
            "sum by (pool, outcome) (rate(mcpbus_tool_calls_total[5m]))",
            "histogram_quantile(0.99, sum by (pool, le) (rate(mcpbus_tool_call_queue_seconds_bucket[5m])))",
            "sum(increase(mcpbus_events_expired_total[1h]))",
            "max by (store) (mcpbus_store_bytes) / max by (store) (mcpbus_store_max_bytes > 0)",
            "max by (pool) (deriv(mcpbus_pool_queue_depth[10m])) > 0",
        ]:
            self.assertEqual(vm.promql_problems(expr), [], expr)

    def test_mistakes_are_named(self):
        cases = {
            "sum(rate(mcpbus_tool_calls_total[5m])": "does not parse",
            "mcpbus_pool_worker": "not in",
            'mcpbus_pool_workers{tool="x"}': "no label 'tool'",
            "sum by (kind) (rate(mcpbus_tool_calls_total[5m]))": "no such label",
            "max by (pool) (mcpbus_pool_workers) / on (store) max by (pool) (mcpbus_pool_queue_depth)": "matching on",
            "sum(mcpbus_tool_calls_total)": "inside rate()",
            "sum(mcpbus_tool_call_seconds_count)": "inside rate()",
            "rate(mcpbus_pool_queue_depth[5m])": "is a gauge",
        }
        for expr, why in cases.items():
            problems = vm.promql_problems(expr)
            self.assertTrue(any(why in p for p in problems), f"{expr}: {problems}")


class Dashboard(unittest.TestCase):
    def setUp(self):
        with open(DASHBOARD) as f:
            self.text = f.read()
        self.dash = json.loads(self.text)

    def test_the_shipped_dashboard_passes(self):
        self.assertEqual(failures(vm.check_dashboard, "dashboard", self.text), [])

    def test_broken_json_undefined_variables_duplicate_ids_and_overlaps_are_refused(self):
        self.assertTrue(failures(vm.check_dashboard, "d", self.text[:-2]))
        dash = copy.deepcopy(self.dash)
        dash["templating"]["list"] = [v for v in dash["templating"]["list"] if v["name"] != "pool"]
        self.assertTrue(any("$pool" in f for f in failures(vm.check_dashboard, "d", json.dumps(dash))))
        dash = copy.deepcopy(self.dash)
        dash["panels"][2]["id"] = dash["panels"][1]["id"]
        self.assertTrue(any("used twice" in f for f in failures(vm.check_dashboard, "d", json.dumps(dash))))
        dash = copy.deepcopy(self.dash)
        dash["panels"][3]["gridPos"] = dict(dash["panels"][2]["gridPos"])
        self.assertTrue(any("overlap" in f for f in failures(vm.check_dashboard, "d", json.dumps(dash))))

    def test_a_panel_query_with_an_unlisted_metric_is_refused(self):
        dash = copy.deepcopy(self.dash)
        panel = next(p for p in dash["panels"] if p["type"] == "timeseries")
        panel["targets"][0]["expr"] = "sum(rate(mcpbus_made_up_total[$__rate_interval]))"
        self.assertTrue(any("mcpbus_made_up_total" in f for f in failures(vm.check_dashboard, "d", json.dumps(dash))))


class Rules(unittest.TestCase):
    def rule(self, **fields):
        rule = {"alert": "X", "expr": "mcpbus_nats_connected == 0", "for": "1m",
                "labels": {"severity": "warning"},
                "annotations": {"summary": "s", "description": "d"}}
        rule.update(fields)
        return {"spec": {"groups": [{"name": "g", "rules": [rule]}]}}

    @unittest.skipUnless(os.access(vm.PROMTOOL, os.X_OK), "no promtool (scripts/test.sh extracts it)")
    def test_promtool_and_the_expression_checks_run(self):
        self.assertEqual(failures(vm.check_rules, "r", self.rule()), [])
        self.assertTrue(any("promtool check rules" in f for f in failures(
            vm.check_rules, "r", self.rule(annotations={"summary": "{{ $labels.pool ", "description": "d"}))))
        self.assertTrue(any("not in" in f for f in failures(vm.check_rules, "r", self.rule(expr="mcpbus_nope == 0"))))
        self.assertTrue(any("severity" in f for f in failures(vm.check_rules, "r", self.rule(labels={}))))


if __name__ == "__main__":
    unittest.main()
