"""Validate recorded live answers of a dozen server against its /openapi.json.

Usage: openapi_check.py OPENAPI.json CALLS.json

CALLS.json is a list of {"method", "path" (the route's template), "status", "content_type",
"body"}. Each body is checked against the schema the document gives for that route, status and
media type (an NDJSON answer line by line); every operation of the document must have been
called at least once. Exit 0 when all hold, 1 with the failures listed, 3 when the Python
package jsonschema is missing.
"""

import json
import sys

try:
    import jsonschema
except ImportError:
    print("the Python package jsonschema is not installed (pip install jsonschema)")
    sys.exit(3)


def main():
    doc = json.load(open(sys.argv[1]))
    calls = json.load(open(sys.argv[2]))
    components = doc.get("components", {})
    failures = []
    seen = set()
    for call in calls:
        method, path, status = call["method"].lower(), call["path"], str(call["status"])
        where = f"{method.upper()} {path} -> {status}"
        op = doc["paths"].get(path, {}).get(method)
        if op is None:
            failures.append(f"{where}: the route is not in /openapi.json")
            continue
        seen.add((method, path))
        answer = op["responses"].get(status)
        if answer is None:
            failures.append(f"{where}: the status is not documented")
            continue
        media = (call["content_type"] or "").split(";")[0].strip()
        content = answer.get("content", {})
        if media not in content:
            failures.append(f"{where}: answered {media!r}, documented {sorted(content)}")
            continue
        schema = content[media].get("schema")
        if schema is None:
            failures.append(f"{where}: no schema for {media}")
            continue
        if media in ("application/zstd", "application/octet-stream", "application/vnd.dozen.frames"):
            continue
        if media == "text/plain":
            # Prometheus text (GET /metrics): its format is checked by tests/metrics.rs with
            # prometheus_client's parser; here only that it is text.
            if not isinstance(call["body"], str) or not call["body"]:
                failures.append(f"{where}: an empty text answer")
            continue
        root = dict(schema)
        root["components"] = components
        validator = jsonschema.Draft202012Validator(root)
        if media == "application/x-ndjson":
            bodies = [line for line in call["body"].splitlines() if line.strip()]
            if not bodies:
                failures.append(f"{where}: an empty stream")
        else:
            bodies = [call["body"]]
        for text in bodies:
            try:
                value = json.loads(text)
            except ValueError as e:
                failures.append(f"{where}: not JSON ({e}): {text[:200]}")
                continue
            for error in validator.iter_errors(value):
                failures.append(f"{where}: {error.message} at {list(error.absolute_path)}: {text[:300]}")
    for path, ops in doc["paths"].items():
        for method in ops:
            if (method, path) not in seen:
                failures.append(f"{method.upper()} {path}: never called by the test")
    for f in failures:
        print(f)
    print(f"{len(calls)} answers checked, {len(failures)} failures")
    sys.exit(1 if failures else 0)


main()
