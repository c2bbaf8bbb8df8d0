//! The email worker (see [`keyseal_issuer::email`]): every replica runs
//! one. It claims due emails in the ledger (one replica each), sends them
//! over the organisation's SMTP server with lettre on a blocking thread,
//! and records the outcome (retried on the webhooks' schedule).

use std::sync::Arc;
use std::time::Duration;

use keyseal_issuer::email::{Job, Security};
use keyseal_issuer::store::Sent;
use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

use crate::State;

/// How long one email may take to send.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Checks an SMTP host at registration, on a service that keeps to public
/// networks: not `localhost`, a bare name or a private address literal.
pub(crate) fn check_host(host: &str) -> Result<(), String> {
    let url = format!("https://{host}/");
    crate::webhooks::check_target(&url, &crate::WebhookOptions::default())
        .map_err(|e| e.replacen("url:", "host:", 1))
}

/// Builds and sends one email (blocking). Without `private_networks`, the
/// SMTP host must resolve to public addresses only.
fn send(job: &Job, private_networks: bool) -> Result<(), String> {
    let s = &job.settings;
    if !private_networks {
        use std::net::ToSocketAddrs as _;
        let addrs: Vec<_> = (s.host.as_str(), s.port)
            .to_socket_addrs()
            .map_err(|e| format!("resolving {}: {e}", s.host))?
            .collect();
        if addrs.is_empty()
            || addrs
                .iter()
                .any(|a| !crate::webhooks::public_address(a.ip()))
        {
            return Err(format!(
                "{} resolves to a local or private address; SMTP servers must be public (or start the service with --webhooks-to-private-networks)",
                s.host
            ));
        }
    }
    let mut b = Message::builder()
        .from(s.from.parse().map_err(|e| format!("from: {e}"))?)
        .to(job.to.parse().map_err(|e| format!("the recipient: {e}"))?)
        .subject(job.message.subject.clone());
    if let Some(r) = &s.reply_to {
        b = b.reply_to(r.parse().map_err(|e| format!("reply_to: {e}"))?);
    }
    let m = &job.message;
    let body = MultiPart::mixed()
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::plain(m.text.clone()))
                .singlepart(SinglePart::html(m.html.clone())),
        )
        .singlepart(Attachment::new(m.file_name.clone()).body(
            m.file.clone(),
            ContentType::parse("application/x-keyseal-license").unwrap_or(ContentType::TEXT_PLAIN),
        ));
    let email = b.multipart(body).map_err(|e| e.to_string())?;
    let builder = match s.security {
        Security::Tls => SmtpTransport::relay(&s.host).map_err(|e| e.to_string())?,
        Security::Starttls => SmtpTransport::starttls_relay(&s.host).map_err(|e| e.to_string())?,
        Security::None => SmtpTransport::builder_dangerous(&s.host),
    };
    let mut builder = builder.port(s.port).timeout(Some(TIMEOUT));
    if let (Some(u), Some(p)) = (&s.username, &job.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.to_string()));
    }
    builder
        .build()
        .send(&email)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Sends due emails until `stop` fires.
pub(crate) async fn worker(
    state: Arc<State>,
    poll: Duration,
    private_networks: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let me = {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        keyseal_core::hex::encode(&b)
    };
    let mut tick = tokio::time::interval(poll.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        let now = state.now();
        let due = match state.store.due_emails(now, 16).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %crate::problem::chain(&e), "reading due emails");
                continue;
            }
        };
        for id in due {
            if *stop.borrow() {
                break;
            }
            let now = state.now();
            let job = match state
                .store
                .claim_email(&id, &me, now, now + TIMEOUT.as_secs() + 30)
                .await
            {
                Ok(Some(j)) => j,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(email_id = %id, error = %crate::problem::chain(&e), "reading an email");
                    continue;
                }
            };
            let outcome = if job.settings.security == Security::None && !private_networks {
                Sent::Failed(
                    "SMTP without TLS needs a service started with --webhooks-to-private-networks"
                        .into(),
                )
            } else {
                match tokio::task::spawn_blocking(move || (send(&job, private_networks), job)).await
                {
                    Ok((Ok(()), j)) => {
                        record(&state, &j, &Sent::Sent, &me).await;
                        continue;
                    }
                    Ok((Err(e), j)) => {
                        tracing::warn!(email_id = %j.email_id, error = %e, "an email failed; it will be tried again");
                        record(&state, &j, &Sent::Failed(e), &me).await;
                        continue;
                    }
                    Err(_) => continue,
                }
            };
            record(&state, &job, &outcome, &me).await;
        }
    }
}

async fn record(state: &State, job: &Job, outcome: &Sent, me: &str) {
    if let Err(e) = state
        .store
        .record_email(job, outcome, me, state.now())
        .await
    {
        tracing::error!(email_id = %job.email_id, error = %crate::problem::chain(&e), "recording an email");
    }
}
