"""Fails when a function's role may reach table items it must not.

The table holds everything (balances, orders, jobs, serials, API-key hashes,
webhook secrets), so a role's access is bounded by item key prefix
(`dynamodb:LeadingKeys`), not only by action. This holds the bounds that
matter most: the anonymous verifier reads serial records only, the
authorizer reads API-key records only, and the worker and the dead-letter
reconciler delete nothing but unfinished-job markers. IAM is not enforced by
the emulator, so the template itself is what is checked.

Usage: infra/.venv/bin/python infra/check_policies.py
"""
import pathlib
import sys

import yaml


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags as {tag: value}."""


def _tagged(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


CfnLoader.add_multi_constructor("!", _tagged)

# role -> (actions that must be bounded, the key prefixes they may reach)
BOUNDS = {
    "VerifyRole": ({"*"}, {"SERIAL#*"}),
    "AuthorizerRole": ({"*"}, {"APIKEY#*"}),
    "WorkerRole": ({"dynamodb:DeleteItem"}, {"UNFINISHED#*"}),
    "ReconcilerRole": ({"dynamodb:DeleteItem"}, {"UNFINISHED#*"}),
}


def on_table(statement):
    resource = statement.get("Resource")
    resources = resource if isinstance(resource, list) else [resource]
    return any(r == {"GetAtt": "Table.Arn"} for r in resources)


def problems(template):
    found = []
    resources = template["Resources"]
    for role, (bounded, allowed) in BOUNDS.items():
        if role not in resources:
            found.append(f"{role}: not in the template")
            continue
        for policy in resources[role]["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                actions = actions if isinstance(actions, list) else [actions]
                table_actions = [a for a in actions if a.startswith("dynamodb:")]
                if not table_actions or not on_table(statement):
                    continue
                if "*" not in bounded and not set(table_actions) & bounded:
                    continue
                if statement.get("Effect") != "Allow":
                    continue
                condition = statement.get("Condition", {}).get("ForAllValues:StringLike", {})
                prefixes = condition.get("dynamodb:LeadingKeys")
                prefixes = set(prefixes if isinstance(prefixes, list) else [prefixes] if prefixes else [])
                if not prefixes:
                    found.append(f"{role}: {table_actions} on the table is not bounded by key prefix")
                elif not prefixes <= allowed:
                    found.append(f"{role}: {table_actions} may reach {sorted(prefixes - allowed)}")
                if "*" not in bounded and set(table_actions) - bounded:
                    found.append(f"{role}: {sorted(set(table_actions) - bounded)} share a statement with a bounded action")
    return found


def main():
    here = pathlib.Path(__file__).parent
    template = yaml.load((here / "template.yaml").read_text(), Loader=CfnLoader)
    found = problems(template)
    for problem in found:
        print(f"check_policies: {problem}", file=sys.stderr)
    if found:
        sys.exit(1)
    # The check itself must be able to fail: an unbounded read by the verifier.
    widened = yaml.load((here / "template.yaml").read_text(), Loader=CfnLoader)
    for statement in widened["Resources"]["VerifyRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]:
        statement.pop("Condition", None)
    assert problems(widened), "check_policies cannot see an unbounded verifier"
    print(f"check_policies: {', '.join(BOUNDS)} bounded by key prefix")


main()
