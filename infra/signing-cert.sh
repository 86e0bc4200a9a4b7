#!/usr/bin/env bash
# The signing key's certificate chain, kept in the stack's bucket at
# signing/chain.pem (the worker and the verify function read it there).
#
#   infra/signing-cert.sh dev             # local stage: issue one from the development CA
#   infra/signing-cert.sh public-key      # the KMS public key (PEM), for a CA
#   infra/signing-cert.sh install FILE    # a CA-issued chain (PEM, signer first)
#   infra/signing-cert.sh check           # is the stored chain the key's?
#
# The private key never leaves KMS: a certificate is issued for its public key.
# The development CA lives in .build/dev-ca/ (created on first use, never
# deployed); tests trust its certificate, .build/dev-ca/ca.pem.
# Reads the stack's outputs from .build/<stack>.env (written by deploy.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
stack=${STACK_NAME:-meterai-${STAGE:-local}}
env_file="$root/.build/$stack.env"
[[ -f "$env_file" ]] || { echo "no $env_file: deploy the stack first (infra/deploy.sh)" >&2; exit 2; }
# shellcheck disable=SC1090
source "$env_file"
export AWS_PAGER=""
endpoint_args=()
if [[ -n "${METERAI_ENDPOINT_URL:-}" ]]; then
  endpoint_args=(--endpoint-url "$METERAI_ENDPOINT_URL")
  export AWS_ACCESS_KEY_ID=${LOCAL_AWS_ACCESS_KEY_ID:-test}
  export AWS_SECRET_ACCESS_KEY=${LOCAL_AWS_SECRET_ACCESS_KEY:-test}
  export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
  unset AWS_SESSION_TOKEN AWS_PROFILE
fi
awscli() { "$root/infra/.venv/bin/aws" "${endpoint_args[@]}" "$@"; }
key_id=${METERAI_SIGNING_KEY_ID:?the stack has no SigningKeyId output}
bucket=${METERAI_BUCKET_NAME:?the stack has no BucketName output}
object=signing/chain.pem
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

public_key() {
  awscli kms get-public-key --key-id "$key_id" --query PublicKey --output text | base64 -d >"$work/public.der"
  openssl pkey -pubin -inform DER -in "$work/public.der" -out "$1"
}

# Fails unless the first certificate of $1 holds the KMS key's public key.
matches_key() {
  public_key "$work/kms.pem"
  openssl x509 -in "$1" -noout -pubkey >"$work/cert.pem"
  cmp -s <(openssl pkey -pubin -in "$work/kms.pem" -outform DER) <(openssl pkey -pubin -in "$work/cert.pem" -outform DER)
}

upload() {
  matches_key "$1" || { echo "the first certificate in $1 is not for KMS key $key_id" >&2; exit 1; }
  awscli s3api put-object --bucket "$bucket" --key "$object" --body "$1" --content-type application/x-pem-file >/dev/null
  echo "signing chain stored at s3://$bucket/$object"
  openssl x509 -in "$1" -noout -subject -issuer -enddate
}

case "${1:-}" in
  public-key)
    public_key /dev/stdout
    ;;
  dev)
    ca="$root/.build/dev-ca"
    mkdir -p "$ca"
    if [[ ! -f "$ca/ca.key" || ! -f "$ca/ca.pem" ]]; then
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -keyout "$ca/ca.key" -out "$ca/ca.pem" \
        -subj "/O=meterai development/CN=meterai development CA (not trusted anywhere)" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
      chmod 600 "$ca/ca.key"
    fi
    # Reissue only when the stored chain is missing or not for this key (a new stack).
    if awscli s3api get-object --bucket "$bucket" --key "$object" "$work/stored.pem" >/dev/null 2>&1 &&
      matches_key "$work/stored.pem" &&
      openssl verify -CAfile "$ca/ca.pem" "$work/stored.pem" >/dev/null 2>&1; then
      echo "signing chain at s3://$bucket/$object is current"
      exit 0
    fi
    public_key "$work/kms.pem"
    cat >"$work/leaf.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,nonRepudiation
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
    openssl x509 -new -force_pubkey "$work/kms.pem" \
      -subj "/O=meterai development/CN=meterai e-Meterai signer ($stack)" \
      -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -days 825 -extfile "$work/leaf.ext" -out "$work/leaf.pem" 2>/dev/null
    cat "$work/leaf.pem" "$ca/ca.pem" >"$work/chain.pem"
    upload "$work/chain.pem"
    ;;
  install)
    [[ -f "${2:-}" ]] || { echo "usage: $0 install CHAIN.pem" >&2; exit 2; }
    upload "$2"
    ;;
  check)
    if awscli s3api get-object --bucket "$bucket" --key "$object" "$work/stored.pem" >/dev/null 2>&1 && matches_key "$work/stored.pem"; then
      echo "signing chain at s3://$bucket/$object matches $key_id"
    else
      echo "WARNING: no certificate chain for signing key $key_id at s3://$bucket/$object;" >&2
      echo "stamp jobs wait (and end in the DLQ with their quota returned) until one is installed: see infra/README.md" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 dev | public-key | install CHAIN.pem | check" >&2
    exit 2
    ;;
esac
