"""Fails when the template's routes and the OpenAPI document disagree.

Usage: infra/.venv/bin/python infra/check_openapi.py
"""
import pathlib
import sys

import yaml


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as plain values."""


CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)

here = pathlib.Path(__file__).parent
template = yaml.load((here / "template.yaml").read_text(), Loader=CfnLoader)
openapi = yaml.safe_load((here / "openapi.yaml").read_text())

routes = {
    resource["Properties"]["RouteKey"]
    for resource in template["Resources"].values()
    if resource["Type"] == "AWS::ApiGatewayV2::Route"
}
documented = {
    f"{method.upper()} {path}"
    for path, operations in openapi["paths"].items()
    for method in operations
    if method in {"get", "post", "put", "patch", "delete"}
}
missing, extra = routes - documented, documented - routes
for route in sorted(missing):
    print(f"route {route} is deployed but not in infra/openapi.yaml")
for route in sorted(extra):
    print(f"route {route} is in infra/openapi.yaml but not deployed")
if missing or extra:
    sys.exit(1)
print(f"{len(routes)} routes: template and OpenAPI agree")
