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
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use crate::State;

/// How long one SMTP operation may take (lettre's timeout is per read or
/// write).
const TIMEOUT: Duration = Duration::from_secs(30);

/// How long a replica's claim on an email lasts: far past what a send
/// takes (each SMTP step within [`TIMEOUT`]), so no two replicas send one.
const CLAIM: u64 = 600;

/// Checks an SMTP host at registration, on a service that keeps to public
/// networks: not `localhost`, a bare name or a private address literal.
pub(crate) fn check_host(host: &str) -> Result<(), String> {
    let url = format!("https://{host}/");
    crate::webhooks::check_target(&url, &crate::WebhookOptions::default())
        .map_err(|e| e.replacen("url:", "host:", 1))
}

/// Builds and sends one email (blocking). It connects to an address it
/// resolved and checked itself (without `private_networks`, public ones
/// only), so a name that resolves elsewhere later reaches nothing; TLS
/// still verifies the certificate for the host's name. The error says what
/// kind of failure it was and the SMTP code, never the server's text (it
/// may quote the recipient's address).
fn send(job: &Job, private_networks: bool, roots: &[Vec<u8>]) -> Result<(), String> {
    use std::net::ToSocketAddrs as _;
    let s = &job.settings;
    let addrs: Vec<std::net::SocketAddr> = (s.host.as_str(), s.port)
        .to_socket_addrs()
        .map_err(|_| format!("{} does not resolve", s.host))?
        .collect();
    let addr = if private_networks {
        addrs.first().copied()
    } else {
        if addrs.iter().any(|a| !crate::webhooks::public_address(a.ip())) {
            return Err(format!(
                "{} resolves to a local or private address; SMTP servers must be public (or start the service with --webhooks-to-private-networks)",
                s.host
            ));
        }
        addrs.first().copied()
    }
    .ok_or_else(|| format!("{} resolves to no address", s.host))?;
    let mut b = Message::builder()
        .from(
            s.from
                .parse()
                .map_err(|_| "the sender address does not parse".to_owned())?,
        )
        .to(job
            .to
            .parse()
            .map_err(|_| "the recipient's address does not parse".to_owned())?)
        .subject(job.message.subject.clone());
    if let Some(r) = &s.reply_to {
        b = b.reply_to(
            r.parse()
                .map_err(|_| "reply_to does not parse".to_owned())?,
        );
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
    let email = b
        .multipart(body)
        .map_err(|_| "the message does not build".to_owned())?;
    let tls = match s.security {
        Security::None => Tls::None,
        Security::Tls | Security::Starttls => {
            let mut params = TlsParameters::builder(s.host.clone());
            for der in roots {
                params = params.add_root_certificate(
                    Certificate::from_der(der.clone())
                        .map_err(|_| "a --smtp-ca-file certificate does not decode".to_owned())?,
                );
            }
            let params = params
                .build_rustls()
                .map_err(|_| "the TLS settings do not build".to_owned())?;
            if s.security == Security::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder = SmtpTransport::builder_dangerous(addr.ip().to_string())
        .port(addr.port())
        .tls(tls)
        .timeout(Some(TIMEOUT));
    if let (Some(u), Some(p)) = (&s.username, &job.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.to_string()));
    }
    builder.build().send(&email).map(|_| ()).map_err(|e| {
        let code = e.status().map(|c| format!(" {c}")).unwrap_or_default();
        if e.is_permanent() {
            format!("the SMTP server refused the email permanently{code}")
        } else if e.is_transient() {
            format!("the SMTP server refused the email for now{code}")
        } else if e.is_timeout() {
            "the SMTP server did not answer in time".into()
        } else if let Some(why) = tls_failure(&e) {
            format!("TLS with the SMTP server failed: {why}")
        } else if e.is_tls() {
            "TLS with the SMTP server failed".into()
        } else if e.is_client() {
            // lettre's own words ("STARTTLS is not supported on this server").
            match std::error::Error::source(&e) {
                Some(why) => format!("the SMTP exchange failed: {why}"),
                None => format!("the SMTP exchange failed{code}"),
            }
        } else {
            format!("the SMTP exchange failed{code}")
        }
    })
}

/// What rustls said, if a TLS error is behind `e` (a handshake that failed:
/// a certificate not trusted or not for the host's name). lettre reports it
/// as a connection or network error, with rustls' error inside an I/O
/// error (whose `source()` skips it, hence `get_ref`). Never the server's
/// text: rustls' own words.
fn tls_failure(e: &lettre::transport::smtp::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t.to_string());
        }
        if let Some(t) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(t.to_string());
        }
        next = err.source();
    }
    None
}

/// Sends due emails until `stop` fires.
pub(crate) async fn worker(
    state: Arc<State>,
    poll: Duration,
    private_networks: bool,
    roots: Arc<Vec<Vec<u8>>>,
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
            let job = match state.store.claim_email(&id, &me, now, now + CLAIM).await {
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
                let roots = roots.clone();
                match tokio::task::spawn_blocking(move || {
                    (send(&job, private_networks, &roots), job)
                })
                .await
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
