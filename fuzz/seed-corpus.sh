#!/bin/sh
# Seed fuzz/corpus/<target> from the public vectors (tests/vectors) and the fuzz configs.
# Safe to run again: seeds are named by content, libFuzzer adds its own files beside them.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
vectors="$here/../tests/vectors"
if [ ! -f "$vectors/tokens.json" ]; then
    echo "seed-corpus: test vectors missing: expected $vectors/tokens.json" >&2
    exit 1
fi
python3 - "$here" "$vectors" <<'PY'
import hashlib, json, os, sys
here, vectors = sys.argv[1], sys.argv[2]

def seed(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

tokens = json.load(open(os.path.join(vectors, "tokens.json")))["tokens"]
for t in tokens:
    seed("token", t["token"])
for ex in json.load(open(os.path.join(vectors, "rfc_examples.json")))["examples"]:
    seed("token", ex["token"])
    seed("jwks", json.dumps({"keys": [ex["jwk"]]}))

keys = os.path.join(vectors, "keys")
jwks = [json.load(open(os.path.join(keys, f))) for f in sorted(os.listdir(keys)) if f.endswith(".jwk.json")]
for k in jwks:
    seed("jwks", json.dumps({"keys": [k]}))
seed("jwks", json.dumps({"keys": jwks}))

def pem(name):
    return open(os.path.join(keys, name)).read()

secret = open(os.path.join(keys, "hmac_secret.txt")).read().strip()
configs = [
    {},
    {"consumers": [{"username": "v", "jwt_secrets": [
        {"key": "bouncer-vectors", "algorithm": "HS256", "secret": secret},
        {"key": "r", "algorithm": "RS256", "rsa_public_key": pem("rsa2048_public.pem")},
        {"key": "e", "algorithm": "ES256", "public_key": pem("ec_p256_public.pem")},
        {"key": "j", "algorithm": "EdDSA", "jwk": jwks[-1] if jwks else {}}],
        "keyauth_credentials": [{"id": "k", "key_sha256": "0" * 64}],
        "routes": [{"methods": ["GET"], "path": "/api/.*"}]}],
     "acl": {"allow": ["a"]}, "group_routes": {"a": [{"methods": ["*"], "path": "/x"}]},
     "permissions": {"view": [{"methods": ["GET"], "path": "/r(/[^/]+)?"}]},
     "authz": {"upstream": "authz", "path": "/allow", "allowed_headers": ["x-f"]},
     "jwks_providers": [{"issuer": "i", "consumer": "v", "jwks": {"keys": jwks}},
                        {"issuer": "j", "consumer": "v", "upstream": "idp", "path": "/jwks"}],
     "claims_to_headers": [{"claim": "sub", "header": "x-sub"}],
     "forward_payload_header": "x-payload", "realm": "api", "anonymous": "v",
     "revocations": {"jti": ["a"], "subjects_issued_before": {"s": 1}}},
]
for c in configs:
    seed("config", json.dumps(c))
# The example configurations shipped with the repository, where they are JSON.
for rel in ("kong/bouncer.meta.json",):
    p = os.path.join(here, "..", rel)
    if os.path.exists(p):
        seed("config", open(p).read())

for body in ['{"result":true}', '{"result":{"allow":true,"headers":{"x-f":"a,b"}}}',
             '{"result":false}', '{}', 'not json']:
    seed("authz_answer", b"\x01\xc8\x00\x00" + body.encode())
print("seeded", ", ".join(sorted(os.listdir(os.path.join(here, "corpus")))))
PY
