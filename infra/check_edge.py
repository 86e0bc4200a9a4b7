"""Runs the edge's Lambda@Edge function (infra/edge.yaml) under Node on the
answers it must change and those it must leave alone, and checks that every
rate rule of the web ACL answers 429 with a Retry-After. The edge is not
deployable on the emulator (its CloudFront cannot front API Gateway), so the
code that would run there is exercised here.

Usage: infra/.venv/bin/python infra/check_edge.py   (needs node on PATH)
"""
import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from check_policies import CfnLoader  # noqa: E402  (the short-form tags)

CASES = [
    # (status, headers in, retry-after expected out)
    (429, {}, "2"),
    (503, {}, "2"),
    (429, {"retry-after": [{"key": "Retry-After", "value": "7"}]}, "7"),
    (503, {"retry-after": [{"key": "Retry-After", "value": "1"}]}, "1"),
    (200, {}, None),
    (500, {}, None),
    (404, {}, None),
]

HARNESS = """
%s
const cases = %s;
(async () => {
  const out = [];
  for (const [status, headers] of cases) {
    const event = { Records: [{ cf: { response: { status: String(status), headers: JSON.parse(JSON.stringify(headers)) } } }] };
    const response = await exports.handler(event);
    const header = response.headers['retry-after'];
    out.push(header ? header[0].value : null);
  }
  console.log(JSON.stringify(out));
})();
"""


def answers(code):
    """What the function does to each case's Retry-After."""
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
        f.write(HARNESS % (code, json.dumps([[s, h] for s, h, _ in CASES])))
    ran = subprocess.run(["node", f.name], capture_output=True, text=True, check=False)
    pathlib.Path(f.name).unlink()
    if ran.returncode != 0:
        sys.exit(f"check_edge: the function does not run: {ran.stderr}")
    got = json.loads(ran.stdout)
    return [
        f"status {status} with {headers}: Retry-After {seen!r}, want {want!r}"
        for (status, headers, want), seen in zip(CASES, got)
        if seen != want
    ]


def main():
    root = pathlib.Path(__file__).parent
    template = yaml.load((root / "edge.yaml").read_text(), Loader=CfnLoader)
    resources = template["Resources"]
    code = resources["RetryAfterFunction"]["Properties"]["Code"]["ZipFile"]
    version = resources["RetryAfterVersion"]["Properties"].get("Description", "")
    if version != f"code sha256 {hashlib.sha256(code.encode()).hexdigest()[:16]}":
        sys.exit("check_edge: RetryAfterVersion's description does not hold the code's hash: new code would not be published")
    association = resources["Distribution"]["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]["LambdaFunctionAssociations"][0]
    # Viewer-response functions do not run on answers of 400 and above.
    if association["EventType"] != "origin-response":
        sys.exit("check_edge: the Retry-After function must run on origin responses")
    headers = resources["Distribution"]["Properties"]["DistributionConfig"]["Origins"][0]["OriginCustomHeaders"]
    if not any(h["HeaderName"] == "x-meterai-edge" for h in headers):
        sys.exit("check_edge: the origin gets no x-meterai-edge: the WAF could be skipped")
    problems = answers(code)
    for rule in resources["WebAcl"]["Properties"]["Rules"]:
        block = rule.get("Action", {}).get("Block")
        if block is None:
            continue
        answer = block.get("CustomResponse", {})
        headers = {h["Name"].lower() for h in answer.get("ResponseHeaders", [])}
        if answer.get("ResponseCode") != 429 or "retry-after" not in headers:
            problems.append(f"rule {rule['Name']} does not answer 429 with Retry-After")
    if problems:
        sys.exit("check_edge:\n  " + "\n  ".join(problems))
    # The check can fail: a function that forgets the 503s is caught.
    assert answers(code.replace("status === 503", "false")), "check_edge cannot see a missing Retry-After"
    print(f"check_edge: the function gives {len(CASES)} answers the Retry-After they need; every rate rule answers 429 with one")


if __name__ == "__main__":
    main()
