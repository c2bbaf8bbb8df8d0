//! `/v1/customers`: who licenses are for. Their personal fields are sealed
//! at rest and shown only to `admin` and `read:pii` tokens.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use keyseal_issuer::service::Scope;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{Body, Caller, object_id, page_args, path, query};
use super::licenses::UniqueMap;
use super::views::{Activation, AuditEntry, Customer, CustomerExport, CustomerPage, License};
use super::{ApiResult, S, json_response};
use crate::problem::Problem;

/// A new customer. Every field is personal data, sealed at rest (AES-256-GCM
/// under a key per customer).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCustomer {
    #[schema(max_length = 200, example = "Ada Lovelace")]
    pub(crate) name: Option<String>,
    #[schema(max_length = 254, example = "ada@example.com")]
    pub(crate) email: Option<String>,
    /// Your key-value references about the customer: at most 20, keys of 1
    /// to 40 letters, digits or `. _ -`, values of at most 500 bytes.
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    pub(crate) metadata: Option<UniqueMap>,
}

/// The customer list's parameters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct CustomerQuery {
    /// A `next_cursor` from the previous page, unchanged (anything else is
    /// a 400); none or empty: the first page.
    cursor: Option<String>,
    /// Items on the page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
    /// Only customers with this email (found by a keyed hash; needs `admin`
    /// or `read:pii`).
    email: Option<String>,
}

/// Create a customer
#[utoipa::path(post, path = "/v1/customers", tag = "customers",
    description = "A new customer of the organisation; the response shows the fields sent, whatever the token's scopes. Needs `issue`.",
    request_body = NewCustomer,
    responses((status = 201, description = "the customer", body = Customer)),
    security(("bearer" = [])))]
pub(crate) async fn create_customer(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    Body(b): Body<NewCustomer>,
) -> ApiResult {
    let fields = keyseal_issuer::privacy::PersonalFields {
        name: b.name,
        email: b.email,
        metadata: b.metadata.map(|m| m.0).unwrap_or_default(),
    };
    let cus = s
        .store
        .org_add_customer(c.org(), fields, &c.ctx(&s))
        .await?;
    // The creator gets back what it sent, whatever its scopes.
    Ok(json_response(
        StatusCode::CREATED,
        &Customer::new(cus, true),
    ))
}

/// List customers
#[utoipa::path(get, path = "/v1/customers", tag = "customers",
    description = "The organisation's customers in pages, by id; personal fields redacted unless the token has `admin` or `read:pii`. Needs `read` (`read:pii` with `email`).",
    params(CustomerQuery),
    responses((status = 200, description = "a page of customers", body = CustomerPage)),
    security(("bearer" = [])))]
pub(crate) async fn list_customers(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    q: Result<Query<CustomerQuery>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    if q.email.is_some() {
        // Whether an address is a customer's is personal data too.
        c.need(Scope::ReadPii)?;
    }
    let (after, limit) = page_args(q.cursor, q.limit, object_id("cus_"))?;
    let rows = s
        .store
        .org_customers(c.org(), after.as_deref(), q.email.as_deref(), limit)
        .await?;
    Ok(CustomerPage::answer(
        rows,
        limit,
        |c| c.customer_id.clone(),
        |r| Customer::seen_by(r, &c),
    ))
}

/// Get a customer
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    description = "One customer; personal fields redacted unless the token has `admin` or `read:pii`. Needs `read`.",
    params(("id" = String, Path, description = "customer id (`cus_...`)")),
    responses((status = 200, description = "the customer", body = Customer)),
    security(("bearer" = [])))]
pub(crate) async fn get_customer(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let cus = s
        .store
        .org_customer(c.org(), &id)
        .await?
        .ok_or_else(|| Problem::not_found("customer"))?;
    Ok(json_response(StatusCode::OK, &Customer::seen_by(cus, &c)))
}

/// Export everything held about a customer
#[utoipa::path(get, path = "/v1/customers/{id}/export", tag = "customers",
    description = "The customer, its licenses, their activations and the audit entries that name it (a data subject's access request). Needs `read:pii`.",
    params(("id" = String, Path, description = "customer id (`cus_...`)")),
    responses((status = 200, description = "everything held about the customer", body = CustomerExport)),
    security(("bearer" = [])))]
pub(crate) async fn export_customer(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let e = s
        .store
        .org_export_customer(c.org(), &id)
        .await?
        .ok_or_else(|| Problem::not_found("customer"))?;
    let export = CustomerExport {
        customer: Customer::seen_by(e.customer, &c),
        licenses: e
            .licenses
            .into_iter()
            .map(|l| License::seen_by(l, &c))
            .collect(),
        activations: e
            .activations
            .into_iter()
            .map(|a| Activation::seen_by(a, &c))
            .collect(),
        audit: e.audit.into_iter().map(AuditEntry::from).collect(),
    };
    Ok(json_response(StatusCode::OK, &export))
}

/// Erase a customer's personal fields
#[utoipa::path(post, path = "/v1/customers/{id}/erase", tag = "customers",
    description = "Erases the customer's personal data: its sealed fields and their key (copies of the ciphertext anywhere then open under no key), its email hash, and its activations' device fingerprints (replaced by `erased`). The customer id, its licenses and the audit chain stay. Needs `issue`.",
    params(("id" = String, Path, description = "customer id (`cus_...`)")),
    responses((status = 200, description = "the erased customer", body = Customer)),
    security(("bearer" = [])))]
pub(crate) async fn erase_customer(
    axum::extract::State(s): axum::extract::State<S>,
    c: Caller,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path(p)?;
    let cus = s
        .store
        .org_erase_customer(c.org(), &id, &c.ctx(&s))
        .await?
        .ok_or_else(|| Problem::not_found("customer"))?;
    Ok(json_response(StatusCode::OK, &Customer::seen_by(cus, &c)))
}
