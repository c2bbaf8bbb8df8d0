//! Products (`org_products`): what licenses are minted for.
use serde_json::json;

use super::*;
use crate::error::RequestError;
use crate::request::check_product;
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
            "product, name, created_at",
            "product",
            &format!(
                "SELECT product, name, created_at FROM org_products \
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
            unpack_page::<(String, String, i64)>(&row, "reading products")?
                .into_iter()
                .map(|(product, name, created_at)| Product {
                    product,
                    name,
                    created_at: u(created_at),
                })
                .collect(),
        )
    }

    /// One product of the organisation.
    pub async fn org_product(&self, org_id: &str, product: &str) -> Result<Option<Product>> {
        let row = sqlx::query(
            "SELECT product, name, created_at FROM org_products WHERE org_id = $1 AND product = $2",
        )
        .bind(org_id.to_owned())
        .bind(product.to_owned())
        .fetch_optional(self.pool())
        .await
        .map_err(db_err("reading products"))?;
        row.as_ref().map(product_from_row).transpose()
    }

    /// Registers a product for the organisation.
    pub async fn org_add_product(
        &self,
        org_id: &str,
        product: &str,
        name: &str,
        ctx: &Context,
    ) -> Result<Product> {
        check_product(product)?;
        check_text("name", name, 200)?;
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
            sqlx::query("INSERT INTO org_products (org_id, product, name, created_at) VALUES ($1, $2, $3, $4)")
                .bind(org_id.to_owned())
                .bind(product.to_owned())
                .bind(name.to_owned())
                .bind(i(ctx.now)),
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
        })
    }
}

pub(crate) fn product_from_row(r: &AnyRow) -> Result<Product> {
    #[derive(sqlx::FromRow)]
    struct Row {
        product: String,
        name: String,
        created_at: i64,
    }
    let r: Row = read_row(r, "reading products")?;
    Ok(Product {
        product: r.product,
        name: r.name,
        created_at: u(r.created_at),
    })
}
