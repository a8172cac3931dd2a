#!/usr/bin/python3
"""Every metric a Grafana panel query (and an alert rule) names must exist in a live scrape.

usage: dashboard-metrics.py DASHBOARD.json ALERTS.yml METRICS_URL
The scrape's sample names count (so histogram _bucket/_sum/_count do), plus the family names
of its # TYPE lines.
"""
import json
import re
import sys
import urllib.request

import yaml

FUNCS_AND_KEYWORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "rate", "irate", "increase", "delta", "idelta",
    "histogram_quantile", "abs", "clamp_min", "clamp_max", "label_replace", "vector", "scalar",
    "time", "sum_over_time", "avg_over_time", "max_over_time", "min_over_time", "absent", "inf", "nan",
}


def metric_names(expr):
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)                      # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                     # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        followed_by_paren = expr[m.end():].lstrip().startswith("(")
        if m.group(0) not in FUNCS_AND_KEYWORDS and not followed_by_paren:
            names.add(m.group(0))
    return names


def main():
    dash_path, alerts_path, url = sys.argv[1:4]
    dash = json.load(open(dash_path))
    queries = []
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            queries.append((f"panel '{p.get('title')}'", t["expr"]))
    for g in yaml.safe_load(open(alerts_path))["groups"]:
        for r in g["rules"]:
            queries.append((f"alert {r.get('alert', r.get('record'))}", r["expr"]))
    scrape = urllib.request.urlopen(url, timeout=10).read().decode()
    exported = set()
    for line in scrape.splitlines():
        if line.startswith("# TYPE "):
            exported.add(line.split()[2])
        elif line and not line.startswith("#"):
            exported.add(re.split(r"[{ ]", line, 1)[0])
    missing = []
    used = set()
    for where, expr in queries:
        names = metric_names(expr)
        if not names:
            missing.append(f"{where}: no metric found in {expr!r}")
        for n in names:
            used.add(n)
            if n not in exported:
                missing.append(f"{where}: {n} is not exported by the server")
    if missing:
        print("dashboard-metrics: FAILED:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    print(f"dashboard-metrics: {len(queries)} queries; all {len(used)} metrics they name are in "
          f"the live scrape: {', '.join(sorted(used))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
