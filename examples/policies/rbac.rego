# The classic permission model, as Rego: subjects have roles, roles grant permissions,
# permissions grant activities (methods + a full-match `url_regex`), and a permission may name
# the fields its holders may see, returned upstream as `x-allowed-fields` ("authorized
# fields"). The model itself is OPA data (rbac-data.json: `data.rbac`), not code.
#
# Query: POST /v1/data/bouncer/rbac/result. It reads either of Bouncer's callout bodies
# (`authz.input_format` "bouncer" or "opa-envoy") and answers in OPA-Envoy's result shape.
package bouncer.rbac

import rego.v1

# The request and the identity, whichever input format the filter sends.
opa_envoy if input.attributes.request.http

method := input.attributes.request.http.method if opa_envoy
method := input.method if not opa_envoy

# The path without its query (the opa-envoy `path` carries the query, as Envoy's does).
path := split(input.attributes.request.http.path, "?")[0] if opa_envoy
path := input.path if not opa_envoy

identity := input.bouncer if opa_envoy
identity := input if not opa_envoy

# Permission names: those of the subject's roles, and those the token carried.
names contains name if {
	some role in data.rbac.subjects[identity.subject]
	some name in data.rbac.roles[role]
}

names contains name if some name in identity.permissions

method_matches(methods) if count(methods) == 0
method_matches(methods) if "*" in methods
method_matches(methods) if upper(method) in {upper(m) | some m in methods}

# The permissions that grant this request: one of their activities matches.
granting contains name if {
	some name in names
	some activity in data.rbac.permissions[name].activities
	method_matches(object.get(activity, "methods", []))
	regex.match(concat("", ["^(?:", activity.url_regex, ")$"]), path)
}

allow if count(granting) > 0

fields contains field if {
	some name in granting
	some field in object.get(data.rbac.permissions[name], "fields", [])
}

result := {"allowed": true, "headers": {"x-allowed-fields": concat(",", sort(fields))}} if {
	allow
	count(fields) > 0
}

result := {"allowed": true} if {
	allow
	count(fields) == 0
}

result := {"allowed": false} if not allow
