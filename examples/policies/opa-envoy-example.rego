# A policy written for the OPA-Envoy plugin, in the spirit of its documentation's primer
# (https://www.openpolicyagent.org/docs/envoy/primer): method + path + a JWT claim, with the
# output document's `allowed`, `headers`, `http_status` and `body`.
#
# Query: POST /v1/data/envoy/authz/result, with `authz.input_format: "opa-envoy"`.
#
# One change from the primer: Bouncer has verified the token already and leaves credentials
# out of the input, so the claims are `input.bouncer.claims`, not decoded here from
# `http.headers.authorization` with io.jwt.decode_verify.
package envoy.authz

import rego.v1

import input.attributes.request.http

default allow := false

claims := input.bouncer.claims

allow if action_allowed

action_allowed if {
	http.method == "GET"
	claims.role == "guest"
	glob.match("/people/*", ["/"], http.path)
}

action_allowed if {
	http.method == "GET"
	claims.role == "admin"
	glob.match("/people/*", ["/"], http.path)
}

action_allowed if {
	http.method == "POST"
	claims.role == "admin"
	input.parsed_path == ["people"]
}

headers["x-ext-auth-allow"] := "yes"

http_status := 200 if {
	allow
} else := 401 if {
	not claims.role
} else := 403

body := "Authentication Failed" if http_status == 401

body := "Unauthorized Request" if http_status == 403

result["allowed"] := allow

result["headers"] := headers

result["http_status"] := http_status

result["body"] := body
