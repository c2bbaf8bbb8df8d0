//! The OpenAPI 3.0 document served at `/v1/openapi.json`, written by hand
//! next to the handlers it describes; the integration tests check that
//! every route the router serves is in it, and schemathesis checks the
//! responses against it.

use serde_json::{Value, json};

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn body(name: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": r(name) } } })
}

fn ok(status: &str, name: &str, errors: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(status.into(), json!({ "description": "success", "content": { "application/json": { "schema": r(name) } } }));
    for e in errors {
        m.insert(
            (*e).into(),
            json!({ "$ref": format!("#/components/responses/{e}") }),
        );
    }
    Value::Object(m)
}

const AUTH: &[&str] = &["400", "401", "403", "429"];
const AUTH_BODY: &[&str] = &["400", "401", "403", "408", "413", "415", "422", "429"];

fn with(base: &[&str], extra: &[&str]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for s in base.iter().chain(extra) {
        let s: &'static str = match *s {
            "400" => "400",
            "401" => "401",
            "403" => "403",
            "404" => "404",
            "408" => "408",
            "409" => "409",
            "413" => "413",
            "415" => "415",
            "422" => "422",
            "429" => "429",
            _ => "503",
        };
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

fn path_param(name: &str, what: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": what, "schema": { "type": "string" } })
}

fn query_param(name: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema })
}

fn page_params(extra: &[(&str, Value)]) -> Value {
    let mut v = vec![
        query_param(
            "cursor",
            json!({ "type": "string", "description": "a next_cursor from the previous page, unchanged (anything else is a 400)" }),
        ),
        query_param(
            "limit",
            json!({ "type": "integer", "minimum": 1, "maximum": 500 }),
        ),
    ];
    for (n, s) in extra {
        v.push(query_param(n, s.clone()));
    }
    Value::Array(v)
}

fn nullable(t: &str) -> Value {
    json!({ "type": t, "nullable": true })
}

/// The document.
#[must_use]
pub fn document() -> Value {
    let lic_id = path_param("id", "license id (32 hex digits)");
    let cus_id = path_param("id", "customer id (cus_...)");
    let org_id = path_param("org_id", "organisation id (org_...)");
    let secured = json!([{ "bearer": [] }]);
    let mut doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "keyseal issuing service",
            "version": "1",
            "description": "Mint, revoke and suspend offline-verifiable license keys. Errors are RFC 9457 problem details."
        },
        "paths": {
            "/healthz": { "get": { "operationId": "healthz", "summary": "Liveness", "responses": ok("200", "Status", &[]) } },
            "/readyz": { "get": { "operationId": "readyz", "summary": "Readiness (the ledger answers)", "responses": ok("200", "Status", &["503"]) } },
            "/metrics": { "get": { "operationId": "metrics", "summary": "Prometheus metrics",
                "responses": { "200": { "description": "text exposition", "content": { "text/plain": { "schema": { "type": "string" } } } } } } },
            "/v1/openapi.json": { "get": { "operationId": "openapi", "summary": "This document",
                "responses": { "200": { "description": "OpenAPI 3.0", "content": { "application/json": { "schema": { "type": "object" } } } },
                               "304": { "description": "not modified" } } } },
            "/v1/public/keyring": { "get": { "operationId": "getKeyring", "summary": "The default (first) organisation's public keyring (ETag, If-None-Match); kept for clients from before keys were per organisation",
                "responses": { "200": { "description": "keyring", "content": { "application/json": { "schema": r("Keyring") } } },
                               "304": { "description": "not modified" },
                               "404": { "$ref": "#/components/responses/404" },
                               "429": { "$ref": "#/components/responses/429" } } } },
            "/v1/public/revocations": { "get": { "operationId": "getRevocations", "summary": "The default (first) organisation's current signed revocation list, armored, after the key certificates of its keys that an offline root certified (ETag, If-None-Match)",
                "responses": { "200": { "description": "revocation list", "content": { "text/plain": { "schema": { "type": "string" } } } },
                               "304": { "description": "not modified" },
                               "404": { "$ref": "#/components/responses/404" },
                               "429": { "$ref": "#/components/responses/429" } } } },
            "/v1/public/orgs/{org_id}/keyring": { "get": { "operationId": "getOrgKeyring", "summary": "The public keyring an organisation's apps embed: its keys only (ETag, If-None-Match)",
                "parameters": [org_id.clone()],
                "responses": { "200": { "description": "keyring", "content": { "application/json": { "schema": r("Keyring") } } },
                               "304": { "description": "not modified" },
                               "400": { "$ref": "#/components/responses/400" },
                               "404": { "$ref": "#/components/responses/404" },
                               "429": { "$ref": "#/components/responses/429" } } } },
            "/v1/public/orgs/{org_id}/revocations": { "get": { "operationId": "getOrgRevocations", "summary": "An organisation's current revocation list, signed by its key, armored, after the key certificates of its keys that an offline root certified (ETag, If-None-Match)",
                "parameters": [org_id],
                "responses": { "200": { "description": "revocation list", "content": { "text/plain": { "schema": { "type": "string" } } } },
                               "304": { "description": "not modified" },
                               "400": { "$ref": "#/components/responses/400" },
                               "404": { "$ref": "#/components/responses/404" },
                               "429": { "$ref": "#/components/responses/429" } } } },
            "/v1/products": {
                "get": { "operationId": "listProducts", "security": secured, "parameters": page_params(&[]),
                         "responses": ok("200", "ProductPage", &with(AUTH, &["422"])) },
                "post": { "operationId": "createProduct", "security": secured, "requestBody": body("NewProduct"),
                          "summary": "Register a product (at most 10,000 per organisation: 409 limit-reached)",
                          "responses": ok("201", "Product", &with(AUTH_BODY, &["409"])) }
            },
            "/v1/products/{product}": {
                "get": { "operationId": "getProduct", "security": secured, "parameters": [path_param("product", "product id")],
                         "responses": ok("200", "Product", &with(AUTH, &["404"])) }
            },
            "/v1/customers": {
                "get": { "operationId": "listCustomers", "security": secured,
                         "parameters": page_params(&[("email", json!({ "type": "string", "description": "only customers with this email (found by a keyed hash; needs admin or read:pii)" }))]),
                         "responses": ok("200", "CustomerPage", &with(AUTH, &["422"])) },
                "post": { "operationId": "createCustomer", "security": secured, "requestBody": body("NewCustomer"),
                          "responses": ok("201", "Customer", AUTH_BODY) }
            },
            "/v1/customers/{id}": {
                "get": { "operationId": "getCustomer", "security": secured, "parameters": [cus_id.clone()],
                         "responses": ok("200", "Customer", &with(AUTH, &["404"])) }
            },
            "/v1/customers/{id}/export": {
                "get": { "operationId": "exportCustomer", "summary": "Everything held about one customer", "security": secured,
                         "parameters": [cus_id.clone()], "responses": ok("200", "CustomerExport", &with(AUTH, &["404"])) }
            },
            "/v1/customers/{id}/erase": {
                "post": { "operationId": "eraseCustomer", "summary": "Erase the customer's personal fields", "security": secured,
                          "parameters": [cus_id], "responses": ok("200", "Customer", &with(AUTH, &["404"])) }
            },
            "/v1/licenses": {
                "get": { "operationId": "listLicenses", "security": secured,
                         "parameters": page_params(&[("product", json!({ "type": "string" })), ("customer_id", json!({ "type": "string" }))]),
                         "responses": ok("200", "LicensePage", &with(AUTH, &["422"])) },
                "post": { "operationId": "mintLicense", "security": secured, "requestBody": body("MintRequest"),
                          "responses": ok("201", "License", &with(AUTH_BODY, &["409"])) }
            },
            "/v1/licenses/{id}": {
                "get": { "operationId": "getLicense", "security": secured, "parameters": [lic_id.clone()],
                         "responses": ok("200", "License", &with(AUTH, &["404"])) }
            },
            "/v1/licenses/{id}/revoke": {
                "post": { "operationId": "revokeLicense", "security": secured, "parameters": [lic_id.clone()], "requestBody": body("RevokeRequest"),
                          "responses": ok("200", "License", &with(AUTH_BODY, &["404", "409"])) }
            },
            "/v1/licenses/{id}/suspend": {
                "post": { "operationId": "suspendLicense", "security": secured, "parameters": [lic_id.clone()],
                          "responses": ok("200", "License", &with(AUTH, &["404", "409"])) }
            },
            "/v1/licenses/{id}/resume": {
                "post": { "operationId": "resumeLicense", "security": secured, "parameters": [lic_id],
                          "responses": ok("200", "License", &with(AUTH, &["404", "409"])) }
            },
            "/v1/licenses/{id}/activations": {
                "get": { "operationId": "listActivations", "security": secured, "parameters": [path_param("id", "license id (32 hex digits)")],
                         "responses": ok("200", "ActivationPage", &with(AUTH, &["404"])) },
                "post": { "operationId": "activate", "summary": "Take a device seat; returns a device-bound key (200 if the device already has one)",
                          "security": secured, "parameters": [path_param("id", "license id (32 hex digits)")], "requestBody": body("ActivateRequest"),
                          "responses": {
                              "200": { "description": "the device's existing activation", "content": { "application/json": { "schema": r("Activation") } } },
                              "201": { "description": "a new activation", "content": { "application/json": { "schema": r("Activation") } } },
                              "400": { "$ref": "#/components/responses/400" }, "401": { "$ref": "#/components/responses/401" },
                              "403": { "$ref": "#/components/responses/403" }, "404": { "$ref": "#/components/responses/404" },
                              "408": { "$ref": "#/components/responses/408" },
                              "409": { "$ref": "#/components/responses/409" }, "413": { "$ref": "#/components/responses/413" },
                              "415": { "$ref": "#/components/responses/415" }, "422": { "$ref": "#/components/responses/422" },
                              "429": { "$ref": "#/components/responses/429" }
                          } }
            },
            "/v1/licenses/{id}/activations/{activation_id}/deactivate": {
                "post": { "operationId": "deactivate", "summary": "Free the device's seat", "security": secured,
                          "parameters": [path_param("id", "license id (32 hex digits)"), path_param("activation_id", "act_...")],
                          "responses": ok("200", "Activation", &with(AUTH, &["404"])) }
            },
            "/v1/keys": {
                "get": { "operationId": "listKeys", "summary": "The organisation's signing keys, oldest first, revoked ones included (public halves; admin)", "security": secured,
                         "parameters": page_params(&[]),
                         "responses": ok("200", "KeyPage", &with(AUTH, &["422"])) }
            },
            "/v1/keys/rotate": {
                "post": { "operationId": "rotateKey", "summary": "A new active signing key for the organisation; its old one retires; other organisations' keys are untouched (admin)", "security": secured,
                          "description": "Refused with 409 `keyring-full` when the organisation already has 16 keys that are not revoked (all of them are in its public keyring, which holds at most 16): revoke a retired key it no longer needs first (POST /v1/keys/{key_id}/revoke).",
                          "responses": ok("201", "Key", &with(AUTH, &["409"])) }
            },
            "/v1/keys/{key_id}/retire": {
                "post": { "operationId": "retireKey", "summary": "One of the organisation's keys signs nothing issued from now on; another organisation's key is a 404 (admin)", "security": secured,
                          "parameters": [path_param("key_id", "16 hex digits")], "responses": ok("200", "Key", &with(AUTH, &["404", "409"])) }
            },
            "/v1/keys/{key_id}/revoke": {
                "post": { "operationId": "revokeKey", "summary": "Revoke one of the organisation's retired keys: its revocation list, published at once, revokes the key and every license it signed; its public keyring leaves it out (admin)",
                          "description": "The active key is refused (409 `key-active`): rotate first. Another organisation's key is a 404.",
                          "security": secured, "parameters": [path_param("key_id", "16 hex digits")], "requestBody": body("RevokeRequest"),
                          "responses": ok("200", "Key", &with(AUTH_BODY, &["404", "409"])) }
            },
            "/v1/tokens": {
                "get": { "operationId": "listTokens", "summary": "The organisation's API tokens, revoked ones included; no secrets (admin)",
                         "security": secured, "parameters": page_params(&[]),
                         "responses": ok("200", "TokenPage", &with(AUTH, &["422"])) },
                "post": { "operationId": "createToken", "summary": "A new API token; its secret is in this response only (admin)",
                          "security": secured, "requestBody": body("NewToken"), "responses": ok("201", "NewTokenResult", AUTH_BODY) }
            },
            "/v1/tokens/{token_id}/revoke": {
                "post": { "operationId": "revokeToken",
                          "summary": "Revoke a token: refused at once by this replica, by others within 5 s; not the organisation's last admin token (409) (admin)",
                          "security": secured, "parameters": [path_param("token_id", "tok_...")],
                          "responses": ok("200", "Token", &with(AUTH, &["404", "409"])) }
            },
            "/v1/audit": {
                "get": { "operationId": "listAudit", "security": secured, "parameters": page_params(&[]),
                         "responses": ok("200", "AuditPage", &with(AUTH, &["422"])) }
            }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "ksk_ followed by 43 base64url characters" } },
            "responses": responses(),
            "schemas": schemas()
        }
    });
    idempotency_keys(&mut doc);
    doc
}

/// Every `POST` under `/v1` but `createToken` takes `Idempotency-Key`
/// (see the server's README), and may answer 409 for it.
fn idempotency_keys(doc: &mut Value) {
    let param = json!({
        "name": "Idempotency-Key", "in": "header", "required": false,
        "description": "Any unique string (a UUID, an order number): a retry with the same key and the same request within 24 hours gets the first response again, with `Idempotent-Replayed: true`, and has no second effect. The same key with another request is a 409 `idempotency-key-reused`; while the first request runs, a duplicate waits for its answer (up to 10 s, then 409 `idempotency-key-in-use`).",
        "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]*[!-~][ -~]*$" },
        "example": "order-2026-0042"
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if !path.starts_with("/v1/") {
            continue;
        }
        let Some(op) = item.get_mut("post") else {
            continue;
        };
        if op["operationId"] == "createToken" {
            continue;
        }
        match op.get_mut("parameters").and_then(Value::as_array_mut) {
            Some(ps) => ps.push(param.clone()),
            None => op["parameters"] = json!([param.clone()]),
        }
        if op["responses"].get("409").is_none() {
            op["responses"]["409"] = json!({ "$ref": "#/components/responses/409" });
        }
        // The key's request is read whole (400 for a bad key; 408 and 413
        // for a body too slow or too large, even where none is expected).
        for code in ["400", "408", "413"] {
            if op["responses"].get(code).is_none() {
                op["responses"][code] = json!({ "$ref": format!("#/components/responses/{code}") });
            }
        }
    }
}

fn responses() -> Value {
    let mut m = serde_json::Map::new();
    for (code, what) in [
        (
            "400",
            "malformed request (syntax, unknown field, wrong type)",
        ),
        ("401", "missing or unknown API token"),
        ("403", "the token lacks the scope"),
        ("404", "no such object in this organisation"),
        ("408", "the request body did not arrive within 10 s"),
        (
            "409",
            "conflicts with the current state (`type` says which: conflict, no-active-key, keyring-full, key-active, device-limit, ...)",
        ),
        ("413", "body too large"),
        ("415", "body is not application/json"),
        ("422", "invalid value"),
        (
            "429",
            "too many requests: failed authentications (`type` too-many-failures, Retry-After 60), or requests to the public endpoints past the client's rate, or full list downloads past the replica's byte budget, that a second's wait could not serve (`type` rate-limited, Retry-After 1)",
        ),
        ("503", "not ready: the ledger does not answer"),
    ] {
        let mut v = json!({ "description": what, "content": { "application/problem+json": { "schema": r("Problem") } } });
        match code {
            "401" => {
                v["headers"] = json!({ "WWW-Authenticate": { "description": "Bearer realm=\"keyseal\" (RFC 6750)", "schema": { "type": "string" } } })
            }
            "429" => {
                v["headers"] = json!({ "Retry-After": { "description": "seconds to wait before trying again", "schema": { "type": "integer" } } })
            }
            _ => {}
        }
        m.insert(code.into(), v);
    }
    Value::Object(m)
}

fn page(item: &str) -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": ["items", "next_cursor"],
            "properties": { "items": { "type": "array", "items": r(item) }, "next_cursor": nullable("string") } })
}

fn schemas() -> Value {
    json!({
        "Problem": { "type": "object", "required": ["type", "title", "status", "detail"],
            "properties": { "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" }, "detail": { "type": "string" } } },
        "Status": { "type": "object", "required": ["status"], "properties": { "status": { "type": "string" } } },
        "Keyring": { "type": "object", "additionalProperties": false, "required": ["format", "keyring", "keys", "left_out"],
            "properties": { "format": { "type": "string", "enum": ["keyseal-keyring/v1"] },
                            "keyring": { "type": "string", "description": "the keyring text every SDK parses (at most 16 keys)" },
                            "keys": { "type": "array", "maxItems": 16, "items": r("KeyringKey"), "description": "the keys in it, oldest first" },
                            "left_out": { "type": "array", "items": { "type": "string" },
                                          "description": "ids of keys that are not revoked but did not fit; empty unless the ledger predates the 16-key rule" } } },
        "KeyringKey": { "type": "object", "additionalProperties": false, "required": ["key_id", "public_key", "status", "valid_from", "valid_until"],
            "properties": { "key_id": { "type": "string" }, "public_key": { "type": "string" },
                            "status": { "type": "string", "enum": ["active", "retired"] },
                            "valid_from": { "type": "integer", "description": "unix seconds: it signs licenses issued from then" },
                            "valid_until": { "type": "integer", "nullable": true, "description": "unix seconds: it signs nothing issued after then; null while active" } } },
        "NewProduct": { "type": "object", "additionalProperties": false, "required": ["product"],
            "properties": { "product": { "type": "string", "pattern": "^[A-Za-z0-9._:-]{1,32}$", "description": "1 to 32 letters, digits and . _ : - (written into keys)" },
                            "name": { "type": "string" } } },
        "Product": { "type": "object", "additionalProperties": false, "required": ["product", "name", "created_at"],
            "properties": { "product": { "type": "string" }, "name": { "type": "string" }, "created_at": { "type": "integer" } } },
        "ProductPage": page("Product"),
        "NewCustomer": { "type": "object", "additionalProperties": false,
            "description": "Personal fields, sealed at rest (AES-256-GCM under a key per customer)",
            "properties": { "name": { "type": "string", "nullable": true, "maxLength": 200 },
                            "email": { "type": "string", "nullable": true, "maxLength": 254 },
                            "metadata": { "type": "object", "nullable": true, "maxProperties": 20,
                                          "additionalProperties": { "type": "string", "maxLength": 500 },
                                          "description": "keys: 1 to 40 letters, digits or . _ -" } } },
        "Customer": { "type": "object", "additionalProperties": false,
            "required": ["customer_id", "name", "email", "metadata", "created_at", "erased_at", "redacted"],
            "description": "name, email and metadata are null with redacted true unless the token has admin or read:pii",
            "properties": { "customer_id": { "type": "string" }, "name": nullable("string"), "email": nullable("string"),
                            "metadata": { "type": "object", "nullable": true, "additionalProperties": { "type": "string" } },
                            "created_at": { "type": "integer" }, "erased_at": nullable("integer"),
                            "redacted": { "type": "boolean" } } },
        "CustomerPage": page("Customer"),
        "CustomerExport": { "type": "object", "additionalProperties": false, "required": ["customer", "licenses", "activations", "audit"],
            "properties": { "customer": r("Customer"), "licenses": { "type": "array", "items": r("License") },
                            "activations": { "type": "array", "items": r("Activation") },
                            "audit": { "type": "array", "items": r("AuditEntry") } } },
        "MintRequest": { "type": "object", "additionalProperties": false, "required": ["product", "customer_id", "plan", "expires"],
            "properties": {
                "product": { "type": "string" }, "customer_id": { "type": "string" }, "plan": { "type": "string" },
                "expires": { "type": "string", "description": "RFC 3339, a date, a duration from now (365d) or `never`" },
                "not_before": nullable("string"), "grace": nullable("string"),
                "device": { "type": "string", "nullable": true, "description": "ksfp1. device fingerprint to bind to" },
                "device_match": { "type": "integer", "nullable": true, "minimum": 0, "maximum": 255 },
                "entitlements": { "type": "array", "nullable": true, "items": { "type": "string" } },
                "max_version": nullable("string"),
                "ext": { "type": "object", "nullable": true, "additionalProperties": { "type": "string" } },
                "max_devices": { "type": "integer", "nullable": true, "minimum": 0 },
                "metadata": { "type": "object", "nullable": true, "maxProperties": 20,
                              "additionalProperties": { "type": "string", "maxLength": 500 },
                              "description": "your key-value references about the license (keys of 1 to 40 letters, digits or . _ -); kept in the service, never in the key, erased with the customer; not for personal data (an email address is refused)" },
                "external_id": { "type": "string", "nullable": true, "pattern": "^[!-~]{1,128}$",
                                 "description": "your own id for the license (an order number), unique in the organisation: a second mint with it is a 409 external-id-exists naming the first license; kept in the ledger, never in the key" }
            } },
        "License": { "type": "object", "additionalProperties": false,
            "required": ["license_id", "product", "customer_id", "plan", "issued_at", "expires_at", "key_id", "license_key", "redacted",
                         "status", "max_devices", "suspended_at", "revoked_at", "revoke_reason", "external_id", "metadata"],
            "properties": {
                "license_id": { "type": "string" }, "product": { "type": "string" }, "customer_id": { "type": "string" },
                "plan": { "type": "string" }, "issued_at": { "type": "integer" }, "expires_at": nullable("integer"),
                "key_id": { "type": "string" },
                "license_key": { "type": "string", "nullable": true, "description": "null (redacted true) for tokens with read alone: a key is as good as the license" },
                "redacted": { "type": "boolean" },
                "status": { "type": "string", "enum": ["active", "suspended", "revoked"] },
                "max_devices": { "type": "integer" }, "suspended_at": nullable("integer"),
                "revoked_at": nullable("integer"), "revoke_reason": nullable("string"),
                "external_id": nullable("string"),
                "metadata": { "type": "object", "additionalProperties": { "type": "string" } }
            } },
        "LicensePage": page("License"),
        "RevokeRequest": { "type": "object", "additionalProperties": false, "required": ["reason"],
            "properties": { "reason": { "type": "string", "pattern": "^[A-Za-z0-9._:-]{1,32}$", "description": "a short slug such as refund (1 to 32 letters, digits and . _ : -)" } } },
        "ActivateRequest": { "type": "object", "additionalProperties": false, "required": ["fingerprint"],
            "properties": { "fingerprint": { "type": "string", "description": "ksfp1. device fingerprint" },
                            "device_match": { "type": "integer", "nullable": true, "minimum": 0, "maximum": 255 } } },
        "Activation": { "type": "object", "additionalProperties": false,
            "required": ["activation_id", "license_id", "fingerprint", "device_key", "redacted", "key_id", "created_at", "deactivated_at"],
            "properties": { "activation_id": { "type": "string" }, "license_id": { "type": "string" }, "fingerprint": { "type": "string" },
                            "device_key": { "type": "string", "nullable": true }, "redacted": { "type": "boolean" },
                            "key_id": { "type": "string" }, "created_at": { "type": "integer" },
                            "deactivated_at": nullable("integer") } },
        "ActivationPage": page("Activation"),
        "Key": { "type": "object", "additionalProperties": false,
            "required": ["key_id", "public_key", "status", "created_at", "valid_from", "valid_until", "revoked_at"],
            "properties": { "key_id": { "type": "string" }, "public_key": { "type": "string" },
                            "status": { "type": "string", "enum": ["active", "retired", "revoked"] },
                            "created_at": { "type": "integer" }, "valid_from": { "type": "integer" },
                            "valid_until": nullable("integer"), "revoked_at": nullable("integer") } },
        "KeyPage": page("Key"),
        "AuditEntry": { "type": "object", "additionalProperties": false,
            "description": "One entry of the organisation's own hash chain: seq counts from 1 per organisation; hash = SHA-256(\"keyseal/audit/v1\\0\" || seq || at (8-byte big-endian each) || len+actor || len+action || len+details || prev_hash (32 raw bytes)), details being the compact JSON of the details object, keys in the order given",
            "required": ["seq", "at", "actor", "action", "details", "prev_hash", "hash"],
            "properties": { "seq": { "type": "integer" }, "at": { "type": "integer" }, "actor": { "type": "string" },
                            "action": { "type": "string" }, "details": {}, "prev_hash": { "type": "string" }, "hash": { "type": "string" } } },
        "AuditPage": page("AuditEntry"),
        "NewToken": { "type": "object", "additionalProperties": false, "required": ["name", "scopes"],
            "properties": { "name": { "type": "string", "minLength": 1, "maxLength": 200, "description": "what the token is for (1 to 200 bytes, no control characters)" },
                            "scopes": { "type": "array", "minItems": 1, "items": { "type": "string", "enum": ["admin", "issue", "read", "read:pii"] },
                                        "description": "admin: everything; issue: mint, revoke, activate, products and customers; read: read only" } } },
        "Token": { "type": "object", "additionalProperties": false, "required": ["token_id", "org_id", "name", "scopes", "created_at", "revoked_at"],
            "properties": { "token_id": { "type": "string" }, "org_id": { "type": "string", "description": "the organisation (its public keyring: /v1/public/orgs/{org_id}/keyring)" }, "name": { "type": "string" },
                            "scopes": { "type": "array", "items": { "type": "string", "enum": ["admin", "issue", "read", "read:pii"] } },
                            "created_at": { "type": "integer" }, "revoked_at": nullable("integer") } },
        "NewTokenResult": { "type": "object", "additionalProperties": false, "required": ["token_id", "org_id", "name", "scopes", "created_at", "revoked_at", "token"],
            "properties": { "token_id": { "type": "string" }, "org_id": { "type": "string" }, "name": { "type": "string" },
                            "scopes": { "type": "array", "items": { "type": "string", "enum": ["admin", "issue", "read", "read:pii"] } },
                            "created_at": { "type": "integer" }, "revoked_at": nullable("integer"),
                            "token": { "type": "string", "description": "the secret (ksk_...), shown once" } } },
        "TokenPage": page("Token")
    })
}
