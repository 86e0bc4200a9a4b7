#!/usr/bin/env bash
# Builds the functions, packages each as a provided.al2023 `bootstrap` zip, uploads
# them and creates or updates the stack. The same template serves both targets:
#
#   infra/deploy.sh                  # local emulator at $AWS_ENDPOINT_URL (default http://127.0.0.1:4566)
#   METERAI_TARGET=aws STAGE=prod infra/deploy.sh   # real AWS, with your usual AWS credentials
#
# Writes the stack outputs to .build/<stack>.env for the tests and scripts.
# SKIP_BUILD=1 reuses binaries already in target/ (the test command builds them once).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

target=${METERAI_TARGET:-local}
stage=${STAGE:-local}
stack=${STACK_NAME:-meterai-$stage}
functions=(portal audit authorizer settlements mailer health worker orders quota payments stamps reconciler resellers verify webhooks)
build="$root/.build"
mkdir -p "$build"

# ---- AWS CLI and cfn-lint in their own venv (MiniStack pins botocore exactly).
tools="$root/infra/.venv"
want=$(sha256sum "$root/infra/requirements.txt" | cut -d' ' -f1)
if [[ "$(cat "$tools/.requirements.sha256" 2>/dev/null || true)" != "$want" ]]; then
  echo "installing deploy tools into $tools"
  rm -rf "$tools"
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check -r "$root/infra/requirements.txt"
  echo "$want" >"$tools/.requirements.sha256"
fi

# openssl issues the local stage's development signing certificate.
# shellcheck source=scripts/lib/tools.sh
source "$root/scripts/lib/tools.sh"
ensure_commands openssl:openssl

endpoint_args=()
function_endpoint=""
if [[ "$target" == local ]]; then
  endpoint=${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}
  # The emulator accepts any credentials; do not send real ones there.
  export AWS_ACCESS_KEY_ID=${LOCAL_AWS_ACCESS_KEY_ID:-test}
  export AWS_SECRET_ACCESS_KEY=${LOCAL_AWS_SECRET_ACCESS_KEY:-test}
  unset AWS_SESSION_TOKEN AWS_PROFILE
  export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
  endpoint_args=(--endpoint-url "$endpoint")
  # Also for the clients the CLI makes itself (the template's upload to S3 by
  # `cloudformation deploy --s3-bucket`).
  export AWS_ENDPOINT_URL=$endpoint
  # What the functions themselves call (LocalStack in Docker wants its container-side name).
  function_endpoint=${METERAI_FUNCTION_ENDPOINT_URL:-$endpoint}
  arch=${ARCHITECTURE:-x86_64}
  # Development secrets of the local stage only (tests and scripts read them from .build/).
  midtrans_server_key=${MIDTRANS_SERVER_KEY:-SB-Mid-server-meterai-local}
elif [[ "$target" == aws ]]; then
  arch=${ARCHITECTURE:-arm64}
  midtrans_secret=${MIDTRANS_SERVER_KEY_SECRET:?set MIDTRANS_SERVER_KEY_SECRET to the name of the Secrets Manager secret holding your Midtrans server key}
else
  echo "METERAI_TARGET must be local or aws" >&2
  exit 2
fi
export AWS_PAGER=""
awscli() { "$tools/bin/aws" "${endpoint_args[@]}" "$@"; }

"$tools/bin/cfn-lint" infra/template.yaml infra/edge.yaml
"$tools/bin/python" infra/check_openapi.py
"$tools/bin/python" infra/check_policies.py

# ---- build: one cargo invocation for every function (the test command uses the same one).
# The portal function builds the portal's files (and pdf.js, from npm) into its binary.
[[ "${SKIP_BUILD:-0}" == 1 ]] || (cd "$root" && ensure_portal_deps)
if [[ "$target" == aws ]]; then
  if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    command -v cargo-lambda >/dev/null || { echo "install cargo-lambda (cargo install cargo-lambda) to cross-build for $arch" >&2; exit 2; }
    if [[ "$arch" == arm64 ]]; then cargo lambda build --release --arm64; else cargo lambda build --release --x86-64; fi
  fi
  bin_dir() { echo "$root/target/lambda/$1"; }
else
  # The binaries only (functions, meterai-admin, the demo's tools), not the test
  # targets nor the load and benchmark tools (meterai-tools): scripts/test and
  # scripts/spike build those. Same workspace and profile, so they reuse
  # everything built here.
  [[ "${SKIP_BUILD:-0}" == 1 ]] || cargo build --release --workspace --bins --exclude meterai-tools --locked
  bin_dir() { echo "$root/target/release"; }
fi

# ---- package: bootstrap zips with fixed timestamps, keyed by content so a new build updates the code.
account=$(awscli sts get-caller-identity --query Account --output text)
region=$(awscli configure get region 2>/dev/null || echo "$AWS_DEFAULT_REGION")
region=${region:-$AWS_DEFAULT_REGION}
artifacts=${ARTIFACT_BUCKET:-meterai-artifacts-$account-$region}
if ! awscli s3api head-bucket --bucket "$artifacts" >/dev/null 2>&1; then
  if [[ "$region" == us-east-1 ]]; then
    awscli s3api create-bucket --bucket "$artifacts" >/dev/null
  else
    awscli s3api create-bucket --bucket "$artifacts" --create-bucket-configuration "LocationConstraint=$region" >/dev/null
  fi
fi

declare -A keys
for fn in "${functions[@]}"; do
  dir=$(bin_dir "$fn")
  if [[ -f "$dir/bootstrap" ]]; then binary="$dir/bootstrap"; else binary="$dir/$fn"; fi
  [[ -x "$binary" ]] || { echo "no binary for $fn at $binary" >&2; exit 1; }
  zip="$build/$fn.zip"
  python3 - "$binary" "$zip" <<'PY'
import sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
info.external_attr = 0o100755 << 16
info.compress_type = zipfile.ZIP_DEFLATED
with open(src, "rb") as f, zipfile.ZipFile(dst, "w") as z:
    z.writestr(info, f.read(), compresslevel=9)
PY
  sha=$(sha256sum "$zip" | cut -c1-16)
  key="functions/$fn-$sha.zip"
  if ! awscli s3api head-object --bucket "$artifacts" --key "$key" >/dev/null 2>&1; then
    awscli s3api put-object --bucket "$artifacts" --key "$key" --body "$zip" >/dev/null
  fi
  keys[$fn]=$key
  printf '%-8s %s (%s bytes)\n' "$fn" "$key" "$(stat -c %s "$zip")"
done

# ---- the gateway's server key: a Secrets Manager secret the functions read at cold
# start. The local stage keeps its development key in one; on AWS it exists already.
if [[ "$target" == local ]]; then
  midtrans_secret="$stack/midtrans-server-key"
  if awscli secretsmanager describe-secret --secret-id "$midtrans_secret" >/dev/null 2>&1; then
    awscli secretsmanager put-secret-value --secret-id "$midtrans_secret" --secret-string "$midtrans_server_key" >/dev/null
  else
    awscli secretsmanager create-secret --name "$midtrans_secret" --secret-string "$midtrans_server_key" >/dev/null
  fi
fi

# ---- deploy: a stack left failed by an earlier run is removed first on the local
# stage only, with the table and bucket it keeps (DeletionPolicy: Retain), so the
# next creation can take their names. Anywhere else a failed stack is the
# operator's to look at: nothing is deleted without a person deciding it.
status=$(awscli cloudformation describe-stacks --stack-name "$stack" --query 'Stacks[0].StackStatus' --output text 2>/dev/null || echo NONE)
case "$status" in
  ROLLBACK_COMPLETE | ROLLBACK_FAILED | CREATE_FAILED | DELETE_FAILED)
    if [[ "$target" != local ]]; then
      echo "stack $stack is in $status: not deleted automatically on $target." >&2
      echo "Read its events (aws cloudformation describe-stack-events --stack-name $stack)," >&2
      echo "then delete it yourself. A failed first creation takes its table and bucket with it;" >&2
      echo "after any other failure the table, bucket and keys are retained (delete them by hand" >&2
      echo "only if they hold nothing: the table is the money ledger)." >&2
      exit 1
    fi
    echo "removing stack $stack left in $status, and the table and bucket it retained"
    physical() {
      awscli cloudformation describe-stack-resource --stack-name "$stack" --logical-resource-id "$1" \
        --query 'StackResourceDetail.PhysicalResourceId' --output text 2>/dev/null || true
    }
    retained_table=$(physical Table)
    retained_bucket=$(physical Bucket)
    awscli cloudformation delete-stack --stack-name "$stack"
    awscli cloudformation wait stack-delete-complete --stack-name "$stack"
    if [[ -n "$retained_table" && "$retained_table" != None ]] &&
      awscli dynamodb describe-table --table-name "$retained_table" >/dev/null 2>&1; then
      awscli dynamodb update-table --table-name "$retained_table" --no-deletion-protection-enabled >/dev/null
      awscli dynamodb delete-table --table-name "$retained_table" >/dev/null
      awscli dynamodb wait table-not-exists --table-name "$retained_table"
    fi
    if [[ -n "$retained_bucket" && "$retained_bucket" != None ]] &&
      awscli s3api head-bucket --bucket "$retained_bucket" >/dev/null 2>&1; then
      awscli s3 rb "s3://$retained_bucket" --force >/dev/null
    fi
    ;;
esac

params=(
  "Stage=$stage"
  "Architecture=$arch"
  "ArtifactBucket=$artifacts"
  "EndpointUrl=$function_endpoint"
  "MidtransServerKeySecret=$midtrans_secret"
)
for fn in "${functions[@]}"; do params+=("${fn^}CodeKey=${keys[$fn]}"); done
# The local stage pays through the simulator (simulators/start.sh) and checks
# pending orders soon; AWS uses the Midtrans sandbox unless told otherwise.
if [[ "$target" == local ]]; then
  sim=${MIDTRANS_SIMULATOR_URL:-http://127.0.0.1:${MIDTRANS_SIMULATOR_PORT:-4590}}
  params+=("MidtransSnapUrl=${MIDTRANS_SNAP_URL:-$sim}" "MidtransApiUrl=${MIDTRANS_API_URL:-$sim}")
  params+=("SettleAfterSeconds=${SETTLE_AFTER_SECONDS:-20}")
  # The audit batches a few seconds locally (its test waits for it); a minute on AWS.
  params+=("AuditWindowSeconds=${AUDIT_WINDOW_SECONDS:-3}")
else
  [[ -n "${MIDTRANS_SNAP_URL:-}" ]] && params+=("MidtransSnapUrl=$MIDTRANS_SNAP_URL")
  [[ -n "${MIDTRANS_API_URL:-}" ]] && params+=("MidtransApiUrl=$MIDTRANS_API_URL")
  [[ -n "${SETTLE_AFTER_SECONDS:-}" ]] && params+=("SettleAfterSeconds=$SETTLE_AFTER_SECONDS")
fi
# A short TTL on the local stage keeps the revocation test quick; 60 s on AWS.
if [[ -n "${AUTHORIZER_CACHE_SECONDS:-}" ]]; then
  params+=("AuthorizerCacheSeconds=$AUTHORIZER_CACHE_SECONDS")
elif [[ "$target" == local ]]; then
  params+=("AuthorizerCacheSeconds=5")
fi
# Always passed: CloudFormation keeps a parameter's previous value when it is left out.
# Empty: the portal is served at the API's own address.
params+=("PortalUrl=${PORTAL_URL:-}")
# Behind the edge (infra/edge.yaml) on AWS: the secret it sends. Left out, the stack
# keeps the one it has; EDGE_SECRET=off clears it.
if [[ -n "${EDGE_SECRET:-}" ]]; then
  if [[ "$EDGE_SECRET" == off ]]; then
    params+=("EdgeSecret=")
  elif [[ -z "${PORTAL_URL:-}" ]]; then
    echo "EDGE_SECRET needs PORTAL_URL (the edge's address): the portal, e-mails and QR codes must name it" >&2
    exit 2
  else
    params+=("EdgeSecret=$EDGE_SECRET")
  fi
fi
# Declared capacity (infra/CAPACITY.md): ORDERS_CONCURRENCY, PAYMENTS_CONCURRENCY,
# STAMPS_CONCURRENCY, STAMP_STATUS_CONCURRENCY, VERIFY_CONCURRENCY (-1 = unreserved).
# Always passed, so a changed default reaches an existing stack: on the emulator the
# local stack's sizes (measured with meterai-spike on 2 cores), on AWS the
# template's (1 M stamps a day).
declare -A local_capacity=([Orders]=4 [Payments]=30 [Stamps]=4 [StampStatus]=3 [Verify]=2)
for name in Orders Payments Stamps StampStatus Verify; do
  var=$(echo "${name}Concurrency" | sed -E 's/([a-z])([A-Z])/\1_\2/g' | tr '[:lower:]' '[:upper:]')
  if [[ "$target" == local ]]; then
    default=${local_capacity[$name]}
  else
    default=$(awk -v p="  ${name}Concurrency:" '$0 == p {f = 1} f && /Default:/ {print $2; exit}' infra/template.yaml)
  fi
  params+=("${name}Concurrency=${!var:-$default}")
done
[[ -n "${MAX_RECEIVE_COUNT:-}" ]] && params+=("MaxReceiveCount=$MAX_RECEIVE_COUNT")
[[ -n "${SIGNING_KEY_SPEC:-}" ]] && params+=("SigningKeySpec=$SIGNING_KEY_SPEC")
[[ -n "${SIGNING_CHAIN_TTL_SECONDS:-}" ]] && params+=("SigningChainTtlSeconds=$SIGNING_CHAIN_TTL_SECONDS")
[[ -n "${RETRY_BASE_SECONDS:-}" ]] && params+=("RetryBaseSeconds=$RETRY_BASE_SECONDS")
[[ -n "${WEBHOOK_RETRY_BASE_SECONDS:-}" ]] && params+=("WebhookRetryBaseSeconds=$WEBHOOK_RETRY_BASE_SECONDS")
[[ -n "${WEBHOOK_MAX_ATTEMPTS:-}" ]] && params+=("WebhookMaxAttempts=$WEBHOOK_MAX_ATTEMPTS")

awscli cloudformation deploy \
  --stack-name "$stack" \
  --template-file infra/template.yaml \
  --s3-bucket "$artifacts" --s3-prefix templates \
  --capabilities CAPABILITY_IAM \
  --no-fail-on-empty-changeset \
  --parameter-overrides "${params[@]}"

# ---- declared capacity on the emulator: MiniStack's CloudFormation does not apply a
# function's ReservedConcurrentExecutions, so the stack's own parameter values are
# set through the Lambda API (on AWS the template applies them).
if [[ "$target" == local ]]; then
  declare -A reserved_by=([Orders]=orders [Payments]=payments [Stamps]=stamps [StampStatus]=stamp-status [Verify]=verify)
  declared=$(awscli cloudformation describe-stacks --stack-name "$stack" \
    --query 'Stacks[0].Parameters[?ends_with(ParameterKey, `Concurrency`)].[ParameterKey,ParameterValue]' --output text)
  while read -r name value; do
    fn=${reserved_by[${name%Concurrency}]:-}
    [[ -n "$fn" ]] || continue
    if [[ "$value" == -1 ]]; then
      awscli lambda delete-function-concurrency --function-name "$stack-$fn" >/dev/null
    else
      awscli lambda put-function-concurrency --function-name "$stack-$fn" \
        --reserved-concurrent-executions "$value" >/dev/null
    fi
  done <<<"$declared"
fi

# ---- outputs, as shell variables for the tests and scripts.
out="$build/$stack.env"
awscli cloudformation describe-stacks --stack-name "$stack" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text |
  while read -r k v; do
    name=$(echo "$k" | sed -E 's/([a-z])([A-Z])/\1_\2/g' | tr '[:lower:]' '[:upper:]')
    echo "METERAI_${name}=$v"
  done >"$out"
echo "METERAI_STACK=$stack" >>"$out"
echo "METERAI_STAGE=$stage" >>"$out"
echo "METERAI_ENDPOINT_URL=${endpoint:-}" >>"$out"
if [[ "$target" == local ]]; then
  {
    echo "METERAI_MIDTRANS_SERVER_KEY=$midtrans_server_key"
    echo "METERAI_MIDTRANS_SERVER_KEY_SECRET=$midtrans_secret"
    echo "METERAI_MIDTRANS_SIMULATOR_URL=$sim"
  } >>"$out"
fi
# ---- the signing key's certificate (the key itself is in the template).
if [[ "$target" == local ]]; then
  STACK_NAME=$stack infra/signing-cert.sh dev
  echo "METERAI_SIGNING_TRUST=$build/dev-ca/ca.pem" >>"$out"
  echo "METERAI_SIGNING_CHAIN_TTL_SECONDS=${SIGNING_CHAIN_TTL_SECONDS:-600}" >>"$out"
else
  STACK_NAME=$stack infra/signing-cert.sh check || true
fi
echo "stack $stack deployed; outputs in ${out#"$root/"}"
grep -v -E 'SECRET|SERVER_KEY' "$out"
