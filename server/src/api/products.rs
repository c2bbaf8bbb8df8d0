//! `/v1/products`: the products licenses are minted for.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use keyseal_issuer::LeasePolicy;
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{Body, Caller, PageQuery, page_args, path, query};
use super::views::{Product, ProductPage};
use super::{ApiResult, S, json_response};
use crate::problem::Problem;

/// A product to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewProduct {
    /// Its id, written into keys: 1 to 32 letters, digits and `. _ : -`.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,32}$", example = "acme-cad")]
    pub(crate) product: String,
    /// A name for people (default: the id).
    #[schema(example = "Acme CAD")]
    pub(crate) name: Option<String>,
    /// Seconds from a lease's signing to its renew time (at least 60;
    /// default 86,400, a day): minutes for floating seats, days or weeks
    /// for node-locked ones.
    #[schema(minimum = 60)]
    pub(crate) lease_secs: Option<u64>,
    /// Seconds from a lease's renew time to its end, for failed check-ins
    /// (default 259,200, three days; with `lease_secs` at most a year).
    #[schema(minimum = 0)]
    pub(crate) lease_grace_secs: Option<u64>,
}

/// A product's lease policy.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LeasePolicyBody {
    /// Seconds from a lease's signing to its renew time (at least 60).
    #[schema(minimum = 60, example = 600)]
    pub(crate) lease_secs: u64,
    /// Seconds from its renew time to its end (with `lease_secs` at most a year).
    #[schema(minimum = 0, example = 300)]
    pub(crate) lease_grace_secs: u64,
}

fn policy(secs: Option<u64>, grace: Option<u64>) -> Option<LeasePolicy> {
    (secs.is_some() || grace.is_some()).then(|| LeasePolicy {
        lease_secs: secs.unwrap_or(keyseal_issuer::seats::DEFAULT_LEASE_SECS),
        lease_grace_secs: grace.unwrap_or(keyseal_issuer::seats::DEFAULT_LEASE_GRACE_SECS),
    })
}

/// Set a product's lease policy
#[utoipa::path(post, path = "/v1/products/{product}/lease-policy", tag = "products",
    description = "Sets how long the product's leases last: leases signed from now on are renewed after `lease_secs` and end `lease_grace_secs` later; leases in force keep their terms. Needs `issue`.",
    params(("product" = String, Path, description = "the product's id", example = "acme-cad")),
    request_body = LeasePolicyBody,
    responses((status = 200, description = "the product", body = Product)),
    security(("bearer" = [])))]
pub(crate) async fn set_lease_policy(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
    Body(b): Body<LeasePolicyBody>,
) -> ApiResult {
    let id = path(p)?;
    let policy = LeasePolicy {
        lease_secs: b.lease_secs,
        lease_grace_secs: b.lease_grace_secs,
    };
    let p = s
        .store
        .org_set_lease_policy(c.org(), &id, policy, &c.ctx(&s))
        .await?
        .ok_or_else(|| Problem::not_found("product"))?;
    Ok(json_response(StatusCode::OK, &Product::from(p)))
}

/// Register a product
#[utoipa::path(post, path = "/v1/products", tag = "products",
    description = "Registers a product of the caller's organisation; licenses are minted for registered products only. At most 10,000 per organisation (409 `limit-reached`); an id registered already is a 409 `conflict`. Needs `issue`.",
    request_body = NewProduct,
    responses(
        (status = 201, description = "the product", body = Product),
        (status = 409, description = "`conflict` (registered already) or `limit-reached`", body = crate::openapi::ProblemSchema, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn create_product(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    Body(b): Body<NewProduct>,
) -> ApiResult {
    let name = b.name.unwrap_or_else(|| b.product.clone());
    let p = s
        .store
        .org_add_product(
            c.org(),
            &b.product,
            &name,
            policy(b.lease_secs, b.lease_grace_secs),
            &c.ctx(&s),
        )
        .await?;
    Ok(json_response(StatusCode::CREATED, &Product::from(p)))
}

/// List products
#[utoipa::path(get, path = "/v1/products", tag = "products",
    description = "The organisation's products in pages, by id. Needs `read`.",
    params(PageQuery),
    responses((status = 200, description = "a page of products", body = ProductPage)),
    security(("bearer" = [])))]
pub(crate) async fn list_products(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let (after, limit) = page_args(q.cursor, q.limit, |c| {
        keyseal_issuer::request::check_product(c)
            .is_ok()
            .then(|| c.to_owned())
    })?;
    let rows = s
        .store
        .org_products(c.org(), after.as_deref(), limit)
        .await?;
    Ok(ProductPage::answer(
        rows,
        limit,
        |p| p.product.clone(),
        Product::from,
    ))
}

/// Get a product
#[utoipa::path(get, path = "/v1/products/{product}", tag = "products",
    description = "One of the organisation's products. Needs `read`.",
    params(("product" = String, Path, description = "the product's id", example = "acme-cad")),
    responses((status = 200, description = "the product", body = Product)),
    security(("bearer" = [])))]
pub(crate) async fn get_product(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let p = s
        .store
        .org_product(c.org(), &id)
        .await?
        .ok_or_else(|| Problem::not_found("product"))?;
    Ok(json_response(StatusCode::OK, &Product::from(p)))
}
