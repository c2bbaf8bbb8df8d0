//! Products (`org_products`): what licenses are minted for.
use serde_json::json;

use super::*;
use crate::error::RequestError;
use crate::request::check_product;
use crate::seats::{
    DEFAULT_LEASE_GRACE_SECS, DEFAULT_LEASE_SECS, MAX_LEASE_TOTAL_SECS, MIN_LEASE_SECS,
};
use crate::service::{MAX_PAGE, MAX_PRODUCTS, Product};

impl Store {
    /// Every product of the organisation, sorted (at most
    /// [`crate::service::MAX_PRODUCTS`]), read page by page.
    pub async fn all_products(&self, org_id: &str) -> Result<Vec<String>> {
        let mut all = Vec::new();
        loop {
            let page = self
                .org_products(
                    org_id,
                    all.last().map(String::as_str),
                    crate::service::MAX_PAGE,
                )
                .await?;
            let full = page.len() as u64 == crate::service::MAX_PAGE;
            all.extend(page.into_iter().map(|p| p.product));
            if !full {
                return Ok(all);
            }
        }
    }

    /// Fails with [`RequestError::UnknownProduct`] unless the organisation has
    /// registered `product` (naming up to 20 of the products it has).
    pub async fn require_product(&self, org_id: &str, product: &str) -> Result<()> {
        if self.org_product(org_id, product).await?.is_some() {
            return Ok(());
        }
        let known = self.org_products(org_id, None, 20).await?;
        Err(Error::Request(RequestError::UnknownProduct {
            product: product.to_owned(),
            known: known.into_iter().map(|p| p.product).collect(),
        }))
    }

    /// A page of the organisation's products, by id after `after`.
    pub async fn org_products(
        &self,
        org_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Product>> {
        let sql = self.packed_page(
            "product, name, created_at, lease_secs, lease_grace_secs",
            "product",
            &format!(
                "SELECT product, name, created_at, lease_secs, lease_grace_secs FROM org_products \
                 WHERE org_id = $1 AND product > $2 ORDER BY product LIMIT {}",
                limit.clamp(1, MAX_PAGE)
            ),
        );
        let row = sqlx::query(&sql)
            .bind(org_id.to_owned())
            .bind(after.unwrap_or("").to_owned())
            .fetch_one(self.pool())
            .await
            .map_err(db_err("reading products"))?;
        Ok(
            unpack_page::<(String, String, i64, Option<i64>, Option<i64>)>(
                &row,
                "reading products",
            )?
            .into_iter()
            .map(|(product, name, created_at, secs, grace)| Product {
                product,
                name,
                created_at: u(created_at),
                lease_secs: secs.map_or(DEFAULT_LEASE_SECS, u),
                lease_grace_secs: grace.map_or(DEFAULT_LEASE_GRACE_SECS, u),
            })
            .collect(),
        )
    }

    /// One product of the organisation.
    pub async fn org_product(&self, org_id: &str, product: &str) -> Result<Option<Product>> {
        let row = sqlx::query(
            "SELECT product, name, created_at, lease_secs, lease_grace_secs FROM org_products WHERE org_id = $1 AND product = $2",
        )
        .bind(org_id.to_owned())
        .bind(product.to_owned())
        .fetch_optional(self.pool())
        .await
        .map_err(db_err("reading products"))?;
        row.as_ref().map(product_from_row).transpose()
    }

    /// Registers a product for the organisation, with its lease policy
    /// (the defaults if `None`; see [`LeasePolicy::check`]).
    pub async fn org_add_product(
        &self,
        org_id: &str,
        product: &str,
        name: &str,
        policy: Option<LeasePolicy>,
        ctx: &Context,
    ) -> Result<Product> {
        check_product(product)?;
        check_text("name", name, 200)?;
        if let Some(p) = policy {
            p.check()?;
        }
        let mut tx = self.begin_write().await?;
        let exists = tx
            .fetch(
                sqlx::query("SELECT 1 FROM org_products WHERE org_id = $1 AND product = $2")
                    .bind(org_id.to_owned())
                    .bind(product.to_owned()),
                "reading products",
            )
            .await?;
        if !exists.is_empty() {
            return Err(Error::Request(RequestError::ProductExists(
                product.to_owned(),
            )));
        }
        let count = tx
            .fetch(
                sqlx::query("SELECT COUNT(*) FROM org_products WHERE org_id = $1")
                    .bind(org_id.to_owned()),
                "counting products",
            )
            .await?;
        let count: i64 = count
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db_err("counting products"))?
            .unwrap_or(0);
        if u64::try_from(count).unwrap_or(0) >= MAX_PRODUCTS {
            return Err(Error::Request(RequestError::LimitReached {
                what: "products",
                max: MAX_PRODUCTS,
            }));
        }
        tx.exec(
            sqlx::query("INSERT INTO org_products (org_id, product, name, created_at, lease_secs, lease_grace_secs) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(org_id.to_owned())
                .bind(product.to_owned())
                .bind(name.to_owned())
                .bind(i(ctx.now))
                .bind(policy.map(|p| i(p.lease_secs)))
                .bind(policy.map(|p| i(p.lease_grace_secs))),
            "registering the product",
        )
        .await?;
        tx.audit(
            ctx,
            "product.add",
            &json!({ "org_id": org_id, "product": product }),
        )
        .await?;
        tx.commit().await?;
        Ok(Product {
            product: product.to_owned(),
            name: name.to_owned(),
            created_at: ctx.now,
            lease_secs: policy.map_or(DEFAULT_LEASE_SECS, |p| p.lease_secs),
            lease_grace_secs: policy.map_or(DEFAULT_LEASE_GRACE_SECS, |p| p.lease_grace_secs),
        })
    }

    /// Sets a product's lease policy; leases signed from then on follow
    /// it (those in force keep their terms). `None` if there is no such
    /// product.
    pub async fn org_set_lease_policy(
        &self,
        org_id: &str,
        product: &str,
        policy: LeasePolicy,
        ctx: &Context,
    ) -> Result<Option<Product>> {
        policy.check()?;
        let mut tx = self.begin_write().await?;
        let n = tx
            .exec(
                sqlx::query(
                    "UPDATE org_products SET lease_secs = $1, lease_grace_secs = $2 WHERE org_id = $3 AND product = $4",
                )
                .bind(i(policy.lease_secs))
                .bind(i(policy.lease_grace_secs))
                .bind(org_id.to_owned())
                .bind(product.to_owned()),
                "setting the lease policy",
            )
            .await?;
        if n == 0 {
            return Ok(None);
        }
        tx.audit(
            ctx,
            "product.lease_policy",
            &json!({ "org_id": org_id, "product": product, "lease_secs": policy.lease_secs, "lease_grace_secs": policy.lease_grace_secs }),
        )
        .await?;
        tx.commit().await?;
        self.org_product(org_id, product).await
    }
}

/// How long a product's leases last: renewed every `lease_secs`, with
/// `lease_grace_secs` more for failed check-ins. Minutes for floating
/// seats, days or weeks for node-locked ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeasePolicy {
    /// Seconds from a lease's signing to its renew time.
    pub lease_secs: u64,
    /// Seconds from its renew time to its end.
    pub lease_grace_secs: u64,
}

impl LeasePolicy {
    /// At least [`MIN_LEASE_SECS`] to renew, at most [`MAX_LEASE_TOTAL_SECS`] in all.
    pub fn check(&self) -> Result<()> {
        if self.lease_secs < MIN_LEASE_SECS {
            return Err(Error::invalid(
                "lease_secs",
                format!("must be at least {MIN_LEASE_SECS}"),
            ));
        }
        if self.lease_secs.saturating_add(self.lease_grace_secs) > MAX_LEASE_TOTAL_SECS {
            return Err(Error::invalid(
                "lease_grace_secs",
                format!(
                    "lease_secs plus lease_grace_secs must be at most {MAX_LEASE_TOTAL_SECS} (a year)"
                ),
            ));
        }
        Ok(())
    }
}

pub(crate) fn product_from_row(r: &AnyRow) -> Result<Product> {
    #[derive(sqlx::FromRow)]
    struct Row {
        product: String,
        name: String,
        created_at: i64,
        lease_secs: Option<i64>,
        lease_grace_secs: Option<i64>,
    }
    let r: Row = read_row(r, "reading products")?;
    Ok(Product {
        product: r.product,
        name: r.name,
        created_at: u(r.created_at),
        lease_secs: r.lease_secs.map_or(DEFAULT_LEASE_SECS, u),
        lease_grace_secs: r.lease_grace_secs.map_or(DEFAULT_LEASE_GRACE_SECS, u),
    })
}
