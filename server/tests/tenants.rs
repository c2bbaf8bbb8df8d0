//! Per-tenant bounds over real HTTP: products come in pages, an
//! organisation holds at most `MAX_PRODUCTS`, and a mint for an unknown
//! product is refused without listing the tenant's catalogue.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{get, post};
use keyseal_issuer::service::MAX_PRODUCTS;
use serde_json::json;

#[test]
fn products_come_in_pages() {
    for s in common::backends() {
        for i in 0..7 {
            let r = post(
                s.addr,
                "/v1/products",
                &s.admin,
                // Quotes, a backslash and non-ASCII: pages are encoded by
                // the database (one JSON text a page) and decoded here.
                &json!({ "product": format!("p{i}"), "name": format!("P \"{i}\" \\ é") }),
            );
            assert_eq!(r.status, 201, "{}", r.text());
        }
        let mut seen = Vec::new();
        let mut path = "/v1/products?limit=3".to_owned();
        loop {
            let r = get(s.addr, &path, &s.read);
            assert_eq!(r.status, 200, "{}", r.text());
            let j = r.json();
            let items = j["items"].as_array().unwrap();
            assert!(items.len() <= 3);
            for p in items {
                let i = &p["product"].as_str().unwrap()[1..];
                assert_eq!(p["name"], format!("P \"{i}\" \\ é"), "{p}");
                assert!(p["created_at"].as_u64().unwrap() > 1_700_000_000, "{p}");
            }
            seen.extend(
                items
                    .iter()
                    .map(|p| p["product"].as_str().unwrap().to_owned()),
            );
            match j["next_cursor"].as_str() {
                Some(c) => path = format!("/v1/products?limit=3&cursor={c}"),
                None => break,
            }
        }
        let want: Vec<String> = (0..7).map(|i| format!("p{i}")).collect();
        assert_eq!(seen, want);
        // Another organisation sees none of them.
        let r = get(s.addr, "/v1/products", &s.other);
        assert_eq!(r.json()["items"], json!([]));
        get(s.addr, "/v1/products?cursor=a%20b", &s.read).problem(400, "bad-request");
        get(s.addr, "/v1/products?limit=501", &s.read).problem(422, "invalid-value");

        // An unknown product: a 422 that says where the list is.
        let r = post(s.addr, "/v1/customers", &s.admin, &json!({}));
        let cus = r.json()["customer_id"].as_str().unwrap().to_owned();
        let r = post(
            s.addr,
            "/v1/licenses",
            &s.admin,
            &json!({ "product": "p9", "customer_id": cus, "plan": "pro", "expires": "30d" }),
        );
        r.problem(422, "invalid-value");
        assert!(r.text().contains("GET /v1/products"), "{}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_holds_at_most_max_products() {
    let s = common::start();
    // Fill the catalogue to one below the limit straight in the ledger
    // (10,000 requests would only make the test slow).
    let db = s.dir.path().join("vault").join("ledger.sqlite");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    for i in 0..MAX_PRODUCTS - 1 {
        sqlx::query(
            "INSERT INTO org_products (org_id, product, name, created_at) VALUES ($1, $2, 'P', 0)",
        )
        .bind(&s.org_a)
        .bind(format!("bulk-{i:05}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    pool.close().await;

    let addr = s.addr;
    let (admin, other) = (s.admin.clone(), s.other.clone());
    tokio::task::spawn_blocking(move || {
        let add = |token: &str, p: &str| {
            post(
                addr,
                "/v1/products",
                token,
                &json!({ "product": p, "name": "P" }),
            )
        };
        assert_eq!(add(&admin, "last-one").status, 201);
        let r = add(&admin, "one-too-many");
        r.problem(409, "limit-reached");
        assert!(r.text().contains("10000 products"), "{}", r.text());
        // The limit is the organisation's, not the service's.
        assert_eq!(add(&other, "acme-cad").status, 201);
        // The full catalogue still lists in pages of at most 500.
        let r = get(addr, "/v1/products?limit=500", &admin);
        assert_eq!(r.json()["items"].as_array().unwrap().len(), 500);
    })
    .await
    .unwrap();
}
