"""The mint / get / list / revoke / keyring flow through a Python client that
openapi-python-client generated from the service's /v1/openapi.json.

Run by server/clients/test.sh, which generates the client (`keyseal_client`),
type-checks this file and the client with `mypy --strict`, and runs it
against a service it started:

    python flow.py BASE_URL TOKEN ORG_ID
"""

from __future__ import annotations

import sys
import uuid
from http import HTTPStatus

from keyseal_client import AuthenticatedClient, Client
from keyseal_client.api.customers import create_customer
from keyseal_client.api.licenses import get_license, list_licenses, mint_license, revoke_license
from keyseal_client.api.products import create_product
from keyseal_client.api.public import get_org_keyring, get_org_revocations
from keyseal_client.models import (
    Customer,
    Keyring,
    License,
    LicensePage,
    LicenseStatus,
    MintRequest,
    NewCustomer,
    NewProduct,
    Problem,
    Product,
    RevokeRequest,
)


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"python client: {what}")


def main(base: str, token: str, org_id: str) -> None:
    api = AuthenticatedClient(base_url=base, token=token)
    anonymous = Client(base_url=base)
    product = f"py-{uuid.uuid4().hex[:8]}"

    p = create_product.sync(client=api, body=NewProduct(product=product, name="Python flow"))
    check(isinstance(p, Product) and p.product == product, f"create product: {p!r}")

    c = create_customer.sync(client=api, body=NewCustomer(name="Ada Lovelace"))
    check(isinstance(c, Customer), f"create customer: {c!r}")
    assert isinstance(c, Customer)

    order = f"order-{uuid.uuid4().hex[:12]}"
    req = MintRequest(product=product, customer_id=c.customer_id, plan="pro", expires="30d",
                      entitlements=["export"], external_id=order)
    first = mint_license.sync_detailed(client=api, body=req, idempotency_key=order)
    check(first.status_code == HTTPStatus.CREATED, f"mint: {first.status_code} {first.content!r}")
    lic = first.parsed
    assert isinstance(lic, License)
    check(lic.status == LicenseStatus.ACTIVE and isinstance(lic.license_key, str)
          and lic.license_key.startswith("ks1."), f"minted: {lic!r}")
    # The same Idempotency-Key and body: the first answer again, no second license.
    again = mint_license.sync_detailed(client=api, body=req, idempotency_key=order)
    check(again.status_code == HTTPStatus.CREATED and again.headers.get("idempotent-replayed") == "true",
          f"replay: {again.status_code} {dict(again.headers)}")
    check(isinstance(again.parsed, License) and again.parsed.license_id == lic.license_id, "replay: another license")

    got = get_license.sync(lic.license_id, client=api)
    check(isinstance(got, License) and got.license_key == lic.license_key, f"get: {got!r}")

    page = list_licenses.sync(client=api, customer_id=c.customer_id, limit=10)
    check(isinstance(page, LicensePage) and [x.license_id for x in page.items] == [lic.license_id]
          and page.next_cursor is None, f"list: {page!r}")

    missing = get_license.sync("0" * 32, client=api)
    check(isinstance(missing, Problem) and missing.status == 404 and missing.type_.endswith(":not-found"),
          f"a missing license: {missing!r}")

    ring = get_org_keyring.sync_detailed(org_id, client=anonymous)
    check(ring.status_code == HTTPStatus.OK and isinstance(ring.parsed, Keyring), f"keyring: {ring.status_code}")
    assert isinstance(ring.parsed, Keyring)
    check(any(k.key_id == lic.key_id for k in ring.parsed.keys), "the license's key is not in the keyring")
    etag = ring.headers.get("etag")
    check(etag is not None, "keyring: no ETag")
    assert etag is not None
    unchanged = get_org_keyring.sync_detailed(org_id, client=anonymous, if_none_match=etag)
    check(unchanged.status_code == HTTPStatus.NOT_MODIFIED, f"keyring with If-None-Match: {unchanged.status_code}")

    revoked = revoke_license.sync(lic.license_id, client=api, body=RevokeRequest(reason="refund"))
    check(isinstance(revoked, License) and revoked.status == LicenseStatus.REVOKED
          and revoked.revoke_reason == "refund", f"revoke: {revoked!r}")
    twice = revoke_license.sync(lic.license_id, client=api, body=RevokeRequest(reason="refund"))
    check(isinstance(twice, Problem) and twice.status == 409, f"revoking twice: {twice!r}")

    listed = get_org_revocations.sync(org_id, client=anonymous)
    check(isinstance(listed, str) and "KEYSEAL REVOCATION LIST" in listed.upper(), f"revocation list: {listed!r}")
    print(f"python client: mint, replay, get, list, 404, keyring, 304, revoke, 409, list: ok ({lic.license_id})")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
