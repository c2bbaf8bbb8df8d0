//! A webhook receiver for `server/bench/webhooks.sh`: answers every POST
//! 204 (it reads the body, checks nothing: the bench measures the sender)
//! and `GET /count` with how many POSTs it answered. Small, so on a 2-core
//! machine it takes little from the service it measures.
//! Usage: `cargo run --release -p keyseal-server --example webhook_sink -- PORT_FILE`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::{get, post};

fn main() -> std::io::Result<()> {
    let port_file = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sink-port".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        let app = Router::new()
            .route(
                "/count",
                get(move || {
                    let c = count.clone();
                    async move { c.load(Ordering::Relaxed).to_string() }
                }),
            )
            .fallback(post(move |_body: Bytes| {
                let c = c.clone();
                async move {
                    c.fetch_add(1, Ordering::Relaxed);
                    StatusCode::NO_CONTENT
                }
            }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        std::fs::write(&port_file, listener.local_addr()?.port().to_string())?;
        axum::serve(listener, app).await
    })
}
