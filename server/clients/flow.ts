// The mint / get / list / revoke / keyring flow through a TypeScript client:
// types that openapi-typescript generated from the service's
// /v1/openapi.json (./schema.d.ts) and openapi-fetch.
//
// Run by server/clients/test.sh, which generates the types, type-checks this
// file with `tsc --strict`, and runs it against a service it started:
//
//     node flow.js BASE_URL TOKEN ORG_ID
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type License = components["schemas"]["License"];

function check(cond: boolean, what: string): asserts cond {
  if (!cond) {
    throw new Error(`typescript client: ${what}`);
  }
}

async function main(base: string, token: string, orgId: string): Promise<void> {
  const api = createClient<paths>({ baseUrl: base, headers: { Authorization: `Bearer ${token}` } });
  const anonymous = createClient<paths>({ baseUrl: base });
  const product = `ts-${Math.random().toString(16).slice(2, 10)}`;

  const p = await api.POST("/v1/products", { body: { product, name: "TypeScript flow" } });
  check(p.data !== undefined && p.data.product === product, `create product: ${JSON.stringify(p.error)}`);

  const c = await api.POST("/v1/customers", { body: { name: "Ada Lovelace" } });
  check(c.data !== undefined, `create customer: ${JSON.stringify(c.error)}`);
  const customerId: string = c.data.customer_id;

  const order = `order-${Math.random().toString(16).slice(2, 14)}`;
  const body: components["schemas"]["MintRequest"] = {
    product,
    customer_id: customerId,
    plan: "pro",
    expires: "30d",
    entitlements: ["export"],
    external_id: order,
  };
  const first = await api.POST("/v1/licenses", { body, params: { header: { "Idempotency-Key": order } } });
  check(first.data !== undefined && first.response.status === 201, `mint: ${JSON.stringify(first.error)}`);
  const lic: License = first.data;
  check(lic.status === "active" && lic.license_key !== null && lic.license_key.startsWith("ks1."), "minted");
  // The same Idempotency-Key and body: the first answer again, no second license.
  const again = await api.POST("/v1/licenses", { body, params: { header: { "Idempotency-Key": order } } });
  check(again.response.headers.get("idempotent-replayed") === "true", "replay: not marked replayed");
  check(again.data !== undefined && again.data.license_id === lic.license_id, "replay: another license");

  const got = await api.GET("/v1/licenses/{id}", { params: { path: { id: lic.license_id } } });
  check(got.data !== undefined && got.data.license_key === lic.license_key, "get");

  const page = await api.GET("/v1/licenses", { params: { query: { customer_id: customerId, limit: 10 } } });
  check(page.data !== undefined, "list");
  check(page.data.items.length === 1 && page.data.items[0]?.license_id === lic.license_id, "list: items");
  check(page.data.next_cursor === null, "list: a next page");

  const missing = await api.GET("/v1/licenses/{id}", { params: { path: { id: "0".repeat(32) } } });
  check(missing.error !== undefined && missing.error.status === 404 && missing.error.type.endsWith(":not-found"),
    "a missing license");

  const ring = await anonymous.GET("/v1/public/orgs/{org_id}/keyring", { params: { path: { org_id: orgId } } });
  check(ring.data !== undefined, "keyring");
  const keyIds: string[] = ring.data.keys.map((k) => k.key_id);
  check(keyIds.includes(lic.key_id), "the license's key is not in the keyring");
  const etag = ring.response.headers.get("etag");
  check(etag !== null, "keyring: no ETag");
  const unchanged = await anonymous.GET("/v1/public/orgs/{org_id}/keyring", {
    params: { path: { org_id: orgId }, header: { "If-None-Match": etag } },
  });
  check(unchanged.response.status === 304, `keyring with If-None-Match: ${unchanged.response.status}`);

  const revoked = await api.POST("/v1/licenses/{id}/revoke", {
    params: { path: { id: lic.license_id } },
    body: { reason: "refund" },
  });
  check(revoked.data !== undefined && revoked.data.status === "revoked" && revoked.data.revoke_reason === "refund",
    "revoke");
  const twice = await api.POST("/v1/licenses/{id}/revoke", {
    params: { path: { id: lic.license_id } },
    body: { reason: "refund" },
  });
  check(twice.error !== undefined && twice.error.status === 409, "revoking twice");

  const listed = await anonymous.GET("/v1/public/orgs/{org_id}/revocations", {
    params: { path: { org_id: orgId } },
    parseAs: "text",
  });
  check(typeof listed.data === "string" && listed.data.includes("KEYSEAL REVOCATION LIST"), "revocation list");
  console.log(`typescript client: mint, replay, get, list, 404, keyring, 304, revoke, 409, list: ok (${lic.license_id})`);
}

const [base, token, orgId] = process.argv.slice(2);
if (base === undefined || token === undefined || orgId === undefined) {
  throw new Error("usage: node flow.js BASE_URL TOKEN ORG_ID");
}
await main(base, token, orgId);
