"""Parse a Prometheus text exposition on stdin with the Prometheus project's Python client
(prometheus_client's text_string_to_metric_families) and print its samples as JSON.

Output: {"families": {NAME: TYPE}, "samples": [{"name", "labels", "value"}]}. A page the parser
refuses exits 1 with its error; exit 3 when the package prometheus_client is missing.
"""

import json
import math
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("the Python package prometheus_client is not installed (pip install prometheus_client)")
    sys.exit(3)


def main():
    text = sys.stdin.read()
    families = {}
    samples = []
    try:
        for family in text_string_to_metric_families(text):
            families[family.name] = family.type
            for s in family.samples:
                value = s.value
                if math.isinf(value):
                    value = "+Inf" if value > 0 else "-Inf"
                elif math.isnan(value):
                    value = "NaN"
                samples.append({"name": s.name, "labels": s.labels, "value": value})
    except Exception as e:  # the parser raises ValueError and others on bad input
        print(f"not Prometheus text: {e!r}")
        sys.exit(1)
    json.dump({"families": families, "samples": samples}, sys.stdout)


main()
