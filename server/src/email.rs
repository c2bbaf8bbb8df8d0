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

/// The certificates of a PEM text (`-----BEGIN CERTIFICATE-----` blocks;
/// other blocks are skipped), for [`crate::WebhookOptions::smtp_roots`]. An
/// error if the text has none, or one does not decode.
pub fn smtp_roots(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let certs = CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM file of certificates: {e}"))?;
    if certs.is_empty() {
        return Err("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    check_smtp_roots(&certs)?;
    Ok(certs)
}

/// Checks that each certificate makes a trust anchor, as the first email
/// sent over TLS would otherwise find out ([`crate::Service::open`] calls it
/// on [`crate::WebhookOptions::smtp_roots`]).
pub(crate) fn check_smtp_roots(roots: &[Vec<u8>]) -> Result<(), String> {
    for (n, der) in roots.iter().enumerate() {
        tls_parameters("localhost", std::slice::from_ref(der)).map_err(|_| {
            format!(
                "certificate {} is not one TLS can trust (it does not parse)",
                n + 1
            )
        })?;
    }
    Ok(())
}

/// TLS with `host`, its certificate checked against the public roots and
/// `roots` (DER; one that does not parse is an error).
fn tls_parameters(
    host: &str,
    roots: &[Vec<u8>],
) -> Result<TlsParameters, lettre::transport::smtp::Error> {
    let mut params = TlsParameters::builder(host.to_owned());
    for der in roots {
        params = params.add_root_certificate(Certificate::from_der(der.clone())?);
    }
    params.build_rustls()
}

/// Builds and sends one email (blocking). It connects to addresses it
/// resolved and checked itself (without `private_networks`, public ones
/// only), so a name that resolves elsewhere later reaches nothing; TLS
/// still verifies the certificate for the host's name, against the public
/// roots and `roots`. The error is [`describe`]'s.
fn send(job: &Job, private_networks: bool, roots: &[Vec<u8>]) -> Result<(), String> {
    use std::net::ToSocketAddrs as _;
    let s = &job.settings;
    let addrs: Vec<std::net::SocketAddr> = (s.host.as_str(), s.port)
        .to_socket_addrs()
        .map_err(|_| format!("{} does not resolve", s.host))?
        .collect();
    if !private_networks
        && addrs
            .iter()
            .any(|a| !crate::webhooks::public_address(a.ip()))
    {
        return Err(format!(
            "{} resolves to a local or private address; SMTP servers must be public (or start the service with --webhooks-to-private-networks)",
            s.host
        ));
    }
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
            // The roots were checked when the service opened (check_smtp_roots).
            let params = tls_parameters(&s.host, roots)
                .map_err(|_| "the TLS settings do not build".to_owned())?;
            if s.security == Security::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    // Each checked address in turn while none can be reached (a host with
    // IPv6 and IPv4 addresses, on a machine without IPv6). Once connected,
    // the answer is final, so nothing is sent twice: the errors that move
    // on ([`not_reached`]) come from connecting (on an open connection, a
    // lost route shows as a timeout, after TIMEOUT at the most). An address
    // that drops packets unanswered is not skipped: its timeout is the
    // attempt's answer.
    let mut unreached = None;
    for addr in &addrs {
        let mut builder = SmtpTransport::builder_dangerous(addr.ip().to_string())
            .port(addr.port())
            .tls(tls.clone())
            .timeout(Some(TIMEOUT));
        if let (Some(u), Some(p)) = (&s.username, &job.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.to_string()));
        }
        match builder.build().send(&email) {
            Ok(_) => return Ok(()),
            Err(e) if not_reached(&e) => unreached = Some(e),
            Err(e) => return Err(describe(&e, &s.host)),
        }
    }
    Err(unreached.map_or_else(
        || format!("{} resolves to no address", s.host),
        |e| describe(&e, &s.host),
    ))
}

/// Whether `e` is a connection that could not be made (refused, no route):
/// the next address may be tried.
fn not_reached(e: &lettre::transport::smtp::Error) -> bool {
    use std::io::ErrorKind::{
        AddrNotAvailable, ConnectionRefused, HostUnreachable, NetworkUnreachable,
    };
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable
            );
        }
        next = err.source();
    }
    false
}

/// What a failed send is logged and recorded as: the kind of failure and
/// the SMTP code, in words of our own or lettre's fixed ones, never the
/// server's text (it may quote the recipient's address).
fn describe(e: &lettre::transport::smtp::Error, host: &str) -> String {
    let code = e.status().map(|c| format!(" {c}")).unwrap_or_default();
    if e.is_permanent() {
        format!("the SMTP server refused the email permanently{code}")
    } else if e.is_transient() {
        format!("the SMTP server refused the email for now{code}")
    } else if e.is_timeout() {
        "the SMTP server did not answer in time".into()
    } else if let Some(why) = tls_failure(e, host) {
        format!("TLS with the SMTP server failed: {why}")
    } else if e.is_tls() {
        "TLS with the SMTP server failed".into()
    } else if e.is_client() {
        // lettre's own fixed words ("STARTTLS is not supported on this server").
        match std::error::Error::source(e) {
            Some(why) => format!("the SMTP exchange failed: {why}"),
            None => format!("the SMTP exchange failed{code}"),
        }
    } else if not_reached(e) {
        format!("{host} could not be reached")
    } else {
        format!("the SMTP exchange failed{code}")
    }
}

/// Why the TLS handshake failed, if it did (a certificate not trusted or
/// not for `host`), in fixed words: rustls' own message would quote the
/// names in the server's certificate. lettre reports the failure as a
/// connection or network error, with rustls' error inside an I/O error
/// (whose `source()` skips it, hence `get_ref`).
fn tls_failure(e: &lettre::transport::smtp::Error, host: &str) -> Option<String> {
    use rustls::{CertificateError as C, Error as R};
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut found = None;
    while let Some(err) = next {
        found = err.downcast_ref::<R>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .and_then(|inner| inner.downcast_ref::<R>())
        });
        if found.is_some() {
            break;
        }
        next = err.source();
    }
    Some(match found? {
        R::InvalidCertificate(C::UnknownIssuer) => {
            "its certificate's issuer is not trusted (a private CA needs keyseal serve --smtp-ca-file)"
                .into()
        }
        R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            format!("its certificate is not for {host}")
        }
        R::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "its certificate has expired".into()
        }
        R::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "its certificate is not valid yet".into()
        }
        R::InvalidCertificate(C::Revoked) => "its certificate is revoked".into(),
        R::InvalidCertificate(_) => "its certificate was refused".into(),
        R::AlertReceived(a) => format!("it sent the alert {a:?}"),
        R::PeerIncompatible(_) => "it has no TLS version or cipher suite in common with us".into(),
        _ => "the handshake failed".into(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_roots_take_certificates_only() {
        // A self-signed CA certificate (openssl req -x509, P-256).
        const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBizCCATGgAwIBAgIUeOTZGb977/MEaCHDyaBa4q5a6cswCgYIKoZIzj0EAwIw\nGjEYMBYGA1UEAwwPa2V5c2VhbCB0ZXN0IENBMCAXDTI2MTIwNTA3NTc0MFoYDzIx\nMjYxMTExMDc1NzQwWjAaMRgwFgYDVQQDDA9rZXlzZWFsIHRlc3QgQ0EwWTATBgcq\nhkjOPQIBBggqhkjOPQMBBwNCAASUdTSk1VS41QIf27wFOK8nj/W/Op4kJakCFE1q\n9uW9CvfyNWdwNTjsraUWtH6h7ugbev5Dy7cW/gbukUIFShXEo1MwUTAdBgNVHQ4E\nFgQUziS+4GC4O+5KbjyhIxjRCwGBjNkwHwYDVR0jBBgwFoAUziS+4GC4O+5Kbjyh\nIxjRCwGBjNkwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA6AnR\nV/AzIfjD45f2Mc9+fM/LGXX/BvfdGGEQW8XuITACIAWFTeFh9KQMEOGgnokEARHS\n+ysa8NVRLNzwKGecyr0b\n-----END CERTIFICATE-----\n";
        let roots = smtp_roots(CA.as_bytes()).unwrap();
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0][0], 0x30, "DER");
        // Two, with other blocks and text between them.
        let two = format!(
            "a comment\n{CA}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{CA}"
        );
        assert_eq!(smtp_roots(two.as_bytes()).unwrap().len(), 2);
        // None, or a block that is not base64.
        for bad in [
            "".as_bytes(),
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            // Base64, but not a certificate.
            b"-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n",
            b"\xff\xfe",
        ] {
            assert!(
                smtp_roots(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_refused_connection_is_not_reached_and_said_so() {
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let email = Message::builder()
            .from("a@example.com".parse().unwrap())
            .to("b@example.com".parse().unwrap())
            .body(String::from("x"))
            .unwrap();
        let e = SmtpTransport::builder_dangerous("127.0.0.1")
            .port(port)
            .tls(Tls::None)
            .timeout(Some(Duration::from_secs(5)))
            .build()
            .send(&email)
            .unwrap_err();
        assert!(not_reached(&e), "{e:?}");
        assert_eq!(
            describe(&e, "smtp.example.com"),
            "smtp.example.com could not be reached"
        );
        assert_eq!(tls_failure(&e, "smtp.example.com"), None);
    }
}
