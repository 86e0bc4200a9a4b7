"""Fails when a function's role may reach table items it must not.

The table holds everything (balances, orders, jobs, serials, API-key hashes,
webhook secrets), so a role's access is bounded by item key prefix
(`dynamodb:LeadingKeys`), not only by action. This holds the bounds that
matter most: the anonymous verifier reads serial records only, the
authorizer reads API-key records only, and no function deletes anything but
the short-lived items it owns: unfinished-job markers (the worker and the
dead-letter reconciler), idempotency claims (orders, stamps, resellers),
pending-order markers (settlements) and mail claims (the mailer). The resellers' webhook
secrets are sealed by the secrets key: only the deliverer and the inbound
webhook may open them, and only under the webhook-secret purpose. The table,
the bucket and both keys are retained when the stack goes or a resource would
be replaced, and the table refuses deletion and recovers to any second on AWS.
IAM is not enforced by the emulator, so the template itself is what is checked.
The API's access log (which the emulator stores and does not write) is checked
here too: one JSON line with what an operator needs, and never a token or a body.

Usage: infra/.venv/bin/python infra/check_policies.py
"""
import json
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

# The kinds of item a job's end writes: the job, its serial, the payer's
# balance and ledger, the reseller event, the drain count, a dead letter.
JOB_WRITES = {"JOB#*", "SERIAL#*", "ACCT#*", "LEDGER#*", "EVENT#*", "DRAIN#*", "DEADLETTER#*"}
WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"}
DELETE = {"dynamodb:DeleteItem"}

# role -> [(actions that must be bounded, the key prefixes they may reach)]
BOUNDS = {
    "VerifyRole": [({"*"}, {"SERIAL#*"})],
    "AuthorizerRole": [({"*"}, {"APIKEY#*"})],
    "WorkerRole": [(DELETE, {"UNFINISHED#*"}), (WRITES, JOB_WRITES)],
    "ReconcilerRole": [(DELETE, {"UNFINISHED#*"}), (WRITES, JOB_WRITES)],
    "OrdersRole": [(DELETE, {"IDEM#*"})],
    "StampsRole": [(DELETE, {"IDEM#*"})],
    "ResellersRole": [(DELETE, {"IDEM#*"})],
    "SettlementsRole": [(DELETE, {"PENDING#*"})],
    "MailerRole": [(DELETE, {"MAIL#*"})],
    "AuditRole": [({"*"}, {"ACCT#*", "LEDGER#*"})],
}


# Roles that may kms:Decrypt with the secrets key (the purpose is required).
OPENERS = {"ResellersRole", "WebhooksRole"}


def statements(resources, role):
    for policy in resources[role]["Properties"].get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]


def secret_openers(template):
    found = []
    resources = template["Resources"]
    for role, resource in resources.items():
        if resource.get("Type") != "AWS::IAM::Role":
            continue
        for statement in statements(resources, role):
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            resource_ = statement.get("Resource")
            targets = resource_ if isinstance(resource_, list) else [resource_]
            on_key = any(names(t, "SecretsKey") for t in targets)
            opens = any(a in ("kms:Decrypt", "kms:*", "*") for a in actions)
            if statement.get("Effect") != "Allow" or not on_key or not opens:
                continue
            if role not in OPENERS:
                found.append(f"{role}: may open the resellers' webhook secrets")
                continue
            purpose = statement.get("Condition", {}).get("StringEquals", {}).get("kms:EncryptionContext:purpose")
            if purpose != "webhook-secret":
                found.append(f"{role}: opens sealed secrets without the webhook-secret purpose")
    return found


def names(resource, logical_id):
    """Whether a policy resource can name `logical_id`'s ARN: "*", !GetAtt in
    either form, or a !Sub that mentions it."""
    if resource == "*":
        return True
    if isinstance(resource, dict):
        if "GetAtt" in resource:
            target = resource["GetAtt"]
            target = target if isinstance(target, str) else ".".join(target)
            return target == f"{logical_id}.Arn"
        if "Sub" in resource:
            text = resource["Sub"] if isinstance(resource["Sub"], str) else resource["Sub"][0]
            return f"{logical_id}.Arn" in text
    return False


def on_table(statement):
    resource = statement.get("Resource")
    resources = resource if isinstance(resource, list) else [resource]
    return any(names(r, "Table") and not (isinstance(r, dict) and "index" in str(r)) for r in resources)


def problems(template):
    found = []
    resources = template["Resources"]
    for role, bounds in BOUNDS.items():
        if role not in resources:
            found.append(f"{role}: not in the template")
            continue
        for statement in statements(resources, role):
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            table_actions = [a for a in actions if a.startswith("dynamodb:")]
            if not table_actions or not on_table(statement) or statement.get("Effect") != "Allow":
                continue
            for bounded, allowed in bounds:
                wildcard = "dynamodb:*" in table_actions
                if "*" not in bounded and not wildcard and not set(table_actions) & bounded:
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


def unlisted_deleters(template):
    found = []
    resources = template["Resources"]
    for role, resource in resources.items():
        if resource.get("Type") != "AWS::IAM::Role" or role in BOUNDS:
            continue
        for statement in statements(resources, role):
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            if on_table(statement) and {"dynamodb:DeleteItem", "dynamodb:*", "*"} & set(actions):
                found.append(f"{role}: may delete table items and has no bound here")
    return found


# What a deleted stack or a replacing update must never take with it: the
# money ledger, the stamped documents and the keys that signed and sealed.
RETAINED = ["Table", "Bucket", "SigningKey", "SecretsKey"]


def unretained(template):
    found = []
    resources = template["Resources"]
    for name in RETAINED:
        resource = resources[name]
        # A failed first creation may take its own new resources away.
        if resource.get("DeletionPolicy") not in ("Retain", "RetainExceptOnCreate"):
            found.append(f"{name}: DeletionPolicy does not retain")
        if resource.get("UpdateReplacePolicy") != "Retain":
            found.append(f"{name}: UpdateReplacePolicy is not Retain")
    table = resources["Table"]["Properties"]
    if table.get("DeletionProtectionEnabled") is not True:
        found.append("Table: DeletionProtectionEnabled is not true")
    recovery = table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
    if recovery not in (True, {"If": ["OnEmulator", False, True]}):
        found.append("Table: point-in-time recovery is not on (on AWS)")
    return found


# What every access-log line must carry, and what it must never carry.
ACCESS_LOG_FIELDS = {"request_id", "route", "status", "latency_ms", "integration_ms", "ip"}
ACCESS_LOG_NEVER = ("$request.header", "$input", "$context.authorizer.claims", "$context.identity.apiKey", "body")


def access_log_problems(template):
    found = []
    stages = [r for r in template["Resources"].values() if r.get("Type") == "AWS::ApiGatewayV2::Stage"]
    for stage in stages:
        settings = stage["Properties"].get("AccessLogSettings")
        if not settings:
            found.append("a stage has no access log")
            continue
        fmt = settings.get("Format", "")
        try:
            # $context.error.messageString comes quoted by API Gateway itself.
            fields = json.loads(fmt.replace("$context.error.messageString", '"quoted"'))
        except ValueError:
            found.append("the access log format is not one JSON object")
            continue
        missing = ACCESS_LOG_FIELDS - set(fields)
        if missing:
            found.append(f"the access log lacks {sorted(missing)}")
        if fields.get("request_id") != "$context.requestId":
            found.append("the access log's request_id is not API Gateway's request id (the x-request-id we answer)")
        leaked = [n for n in ACCESS_LOG_NEVER if n in fmt]
        if leaked:
            found.append(f"the access log may write {leaked}")
    return found


def main():
    here = pathlib.Path(__file__).parent
    template = yaml.load((here / "template.yaml").read_text(), Loader=CfnLoader)
    found = (
        problems(template)
        + secret_openers(template)
        + unlisted_deleters(template)
        + unretained(template)
        + access_log_problems(template)
    )
    for problem in found:
        print(f"check_policies: {problem}", file=sys.stderr)
    if found:
        sys.exit(1)
    # The check itself must be able to fail: an unbounded read by the verifier.
    widened = yaml.load((here / "template.yaml").read_text(), Loader=CfnLoader)
    for statement in widened["Resources"]["VerifyRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]:
        statement.pop("Condition", None)
    assert problems(widened), "check_policies cannot see an unbounded verifier"
    widened["Resources"]["VerifyRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": {"GetAtt": "SecretsKey.Arn"}}
    )
    assert secret_openers(widened), "check_policies cannot see a verifier that opens secrets"
    widened["Resources"]["HealthRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}
    )
    assert unlisted_deleters(widened), "check_policies cannot see a role that may delete anything"
    widened["Resources"]["Table"].pop("DeletionPolicy")
    widened["Resources"]["Table"]["Properties"]["DeletionProtectionEnabled"] = False
    assert len(unretained(widened)) == 2, "check_policies cannot see a ledger left unprotected"
    stage = next(r for r in widened["Resources"].values() if r.get("Type") == "AWS::ApiGatewayV2::Stage")
    stage["Properties"]["AccessLogSettings"]["Format"] = '{"request_id":"$context.requestId","auth":"$request.header.Authorization"}'
    assert len(access_log_problems(widened)) == 2, "check_policies cannot see a token in the access log"
    print(f"check_policies: {', '.join(BOUNDS)} bounded by key prefix; only {', '.join(sorted(OPENERS))} open webhook secrets; {', '.join(RETAINED)} retained; the access log carries the request id and no token or body")


if __name__ == "__main__":
    main()
