//! Seats held by leases: the seat invariant under concurrent activations
//! and releases from two handles on one ledger (two replicas), on SQLite and
//! (with `KEYSEAL_TEST_POSTGRES_URL`) on PostgreSQL; leases lapsing with an
//! injected clock; check-in and release proofs; the device's privacy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keyseal_core::lease::{LEASE_BUF_LEN, UnverifiedLease};
use keyseal_core::license::{self as core_license, MAX_LICENSE_LEN, UnverifiedLicense};
use keyseal_core::{Expectations, Fingerprint, Keyring, SeatId, SigningKey, TrustedKey};
use keyseal_issuer::privacy::PersonalFields;
use keyseal_issuer::seats::{
    DEFAULT_LEASE_GRACE_SECS, DEFAULT_LEASE_SECS, SEAT_MARGIN_SECS, SeatLease, SeatRefused,
    check_in_message, release_message,
};
use keyseal_issuer::service::{MintJob, SignedMint, sign_mint};
use keyseal_issuer::{Context, RequestFields, Signed, Signer, Store};
use sqlx::Connection;

const T0: u64 = 1_800_000_000;
const SEATS: u64 = 5;

fn ctx(now: u64) -> Context {
    Context {
        now,
        actor: "app".into(),
    }
}

fn sealed(k: &SigningKey) -> keyseal_issuer::keyfile::KeyFile {
    let pass = keyseal_issuer::Passphrase::new(zeroize::Zeroizing::new("test".into())).unwrap();
    let cheap = keyseal_issuer::KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };
    keyseal_issuer::keyfile::KeyFile::seal(k, &pass, cheap).unwrap()
}

fn device(n: u32) -> Fingerprint {
    Fingerprint::from_components(&[
        Fingerprint::component("acme-cad", "machine-id", &n.to_be_bytes()),
        Fingerprint::component("acme-cad", "dmi-product-uuid", &n.to_le_bytes()),
    ])
    .unwrap()
}

fn instance(n: u32) -> SigningKey {
    let mut seed = [7u8; 32];
    seed[..4].copy_from_slice(&n.to_be_bytes());
    SigningKey::from_seed(&seed).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A ledger with one key, product `acme-cad` and a license of `SEATS` seats.
async fn ledger(store: &Store) -> (Signer, String, String) {
    let k = SigningKey::from_seed(&[1; 32]).unwrap();
    store
        .initialize(
            &sealed(&k),
            &["acme-cad".into()],
            serde_json::Value::Null,
            &ctx(T0),
        )
        .await
        .unwrap();
    let org = store.default_org().await.unwrap().unwrap();
    let signer = Signer::new(k);
    let pass = keyseal_issuer::Passphrase::new(zeroize::Zeroizing::new("test".into())).unwrap();
    let cheap = keyseal_issuer::KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };
    store.unlock_personal_data(&pass, cheap).await.unwrap();
    let key = another_license(store, &signer, &org).await;
    (signer, org, key)
}

fn done<T: std::fmt::Debug>(s: Signed<T>) -> T {
    match s {
        Signed::Done(t) => t,
        other => panic!("{other:?}"),
    }
}

async fn activate(
    store: &Store,
    s: &Signer,
    key: &str,
    n: u32,
    now: u64,
) -> Result<SeatLease, SeatRefused> {
    done(
        store
            .lease_activate(
                s,
                key,
                &device(n).to_string(),
                &instance(n).public_key().to_string(),
                &ctx(now),
            )
            .await
            .unwrap(),
    )
}

async fn release(
    store: &Store,
    key: &str,
    n: u32,
    seat: &str,
    at: u64,
    now: u64,
) -> Result<(), SeatRefused> {
    let sig = instance(n).sign_raw(&release_message(seat.parse::<SeatId>().unwrap(), at));
    store
        .lease_release(key, seat, at, &hex(&sig), &ctx(now))
        .await
        .unwrap()
        .map(|_| ())
}

async fn check_in(
    store: &Store,
    s: &Signer,
    key: &str,
    n: u32,
    seat: &str,
    at: u64,
    now: u64,
) -> Result<SeatLease, SeatRefused> {
    let sig = instance(n).sign_raw(&check_in_message(seat.parse::<SeatId>().unwrap(), at));
    done(
        store
            .lease_check_in(
                s,
                key,
                &device(n).to_string(),
                seat,
                at,
                &hex(&sig),
                &ctx(now),
            )
            .await
            .unwrap(),
    )
}

/// 50 devices activate at once through two handles, and each that got a
/// seat releases it at random; the audit log (one writer at a time, in
/// commit order) never shows more seats held than the license has.
async fn storm(a: Store, b: Store, signer: Signer, key: String) {
    let stores = [Arc::new(a), Arc::new(b)];
    let signer = Arc::new(signer);
    let mut tasks = Vec::new();
    let grants = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for n in 0..50u32 {
        let store = Arc::clone(&stores[(n % 2) as usize]);
        let (signer, key, grants) = (Arc::clone(&signer), key.clone(), Arc::clone(&grants));
        tasks.push(tokio::spawn(async move {
            // A refused device tries again a few times, so seats released
            // meanwhile are taken again.
            let mut got = activate(&store, &signer, &key, n, T0 + 10).await;
            for _ in 0..10 {
                if got.is_ok() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1 + u64::from(n % 3))).await;
                got = activate(&store, &signer, &key, n, T0 + 10).await;
            }
            if let Ok(l) = &got {
                // Two grants in three release their seat, the third keeps it.
                if grants.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 3 != 2 {
                    release(&store, &key, n, &l.seat_id, T0 + 11, T0 + 11)
                        .await
                        .unwrap();
                    return (n, got, true);
                }
            }
            (n, got, false)
        }));
    }
    let mut granted = 0;
    let mut released = 0;
    for t in tasks {
        let (n, got, rel) = t.await.unwrap();
        match got {
            Ok(_) => {
                granted += 1;
                released += u64::from(rel);
            }
            Err(SeatRefused::SeatLimit { seats, .. }) => assert_eq!(seats, SEATS),
            Err(other) => panic!("device {n}: {other:?}"),
        }
    }
    assert!(granted > SEATS, "only {granted} seats granted");
    assert!(released > 0);
    let mut held: i64 = 0;
    let mut most = 0;
    for e in stores[0].audit_entries().await.unwrap() {
        match e.action.as_str() {
            "seat.activate" if !e.details.contains("\"again\":true") => held += 1,
            "seat.release" => held -= 1,
            _ => {}
        }
        most = most.max(held);
        assert!(
            held <= SEATS as i64,
            "{held} seats held at audit entry {}",
            e.seq
        );
    }
    assert_eq!(held as u64, granted - released);
    let lid = lease_license_id(&key);
    assert_eq!(
        stores[1]
            .org_seats_in_force(
                &stores[1].default_org().await.unwrap().unwrap(),
                &lid,
                T0 + 12
            )
            .await
            .unwrap(),
        granted - released
    );
    eprintln!("storm: {granted} granted, {released} released, at most {most} held at once");
}

fn lease_license_id(key: &str) -> String {
    let mut buf = [0u8; MAX_LICENSE_LEN];
    let bytes = core_license::decode_text(key, &mut buf).unwrap();
    UnverifiedLicense::from_bytes(bytes)
        .unwrap()
        .dangerous_unverified_claims()
        .license_id
        .to_string()
}

#[tokio::test]
async fn fifty_concurrent_activations_never_exceed_the_seats_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ledger.db");
    let a = Store::open_sqlite(&path, true).await.unwrap();
    a.migrate().await.unwrap();
    let (signer, _, key) = ledger(&a).await;
    let b = Store::open_sqlite(&path, false).await.unwrap();
    storm(a, b, signer, key).await;
}

#[tokio::test]
async fn fifty_concurrent_activations_never_exceed_the_seats_postgres() {
    let Ok(url) = std::env::var("KEYSEAL_TEST_POSTGRES_URL") else {
        eprintln!("skipped: KEYSEAL_TEST_POSTGRES_URL is not set");
        return;
    };
    let url = fresh_database(&url, "keyseal_seats").await;
    let a = Store::connect(&url).await.unwrap();
    a.migrate().await.unwrap();
    let (signer, _, key) = ledger(&a).await;
    let b = Store::connect(&url).await.unwrap();
    storm(a, b, signer, key).await;
}

/// A database of its own on the server `url` names, so tests run in parallel.
async fn fresh_database(url: &str, name: &str) -> String {
    use sqlx::Executor;
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    c.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    c.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    c.close().await.unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// Leases verify for their license and device; a seat whose lease lapsed
/// is free for another device; a lapsed seat checks in again only while a
/// seat is free; proofs are the seat's own and fresh.
#[tokio::test]
async fn leases_lapse_and_free_their_seats() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&tmp.path().join("l.db"), true)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (signer, org, key) = ledger(&store).await;
    let s = &signer;

    // The lease verifies for the license on its device, with the default policy.
    let first = activate(&store, s, &key, 1, T0).await.unwrap();
    assert_eq!(first.renew_at, T0 + DEFAULT_LEASE_SECS);
    assert_eq!(
        first.expires_at,
        T0 + DEFAULT_LEASE_SECS + DEFAULT_LEASE_GRACE_SECS
    );
    let mut ring = Keyring::new();
    ring.add(TrustedKey::new(
        SigningKey::from_seed(&[1; 32]).unwrap().public_key(),
    ))
    .unwrap();
    let mut buf = [0u8; MAX_LICENSE_LEN];
    let lic =
        UnverifiedLicense::from_bytes(core_license::decode_text(&key, &mut buf).unwrap()).unwrap();
    let fp = device(1);
    let exp = Expectations::new("acme-cad", T0 + 5).device(&fp);
    let lic = lic.verify(&ring, &exp).unwrap();
    let mut lbuf = [0u8; LEASE_BUF_LEN];
    let lease = UnverifiedLease::from_text(&first.lease, &mut lbuf).unwrap();
    let v = lease.verify(&ring, lic.claims().license_id, &exp).unwrap();
    assert_eq!(v.terms().seat_id.to_string(), first.seat_id);
    let other = device(2);
    assert!(
        lease
            .verify(
                &ring,
                lic.claims().license_id,
                &Expectations::new("acme-cad", T0 + 5).device(&other)
            )
            .is_err()
    );

    // The same device again: the same seat, no second one.
    let again = activate(&store, s, &key, 1, T0 + 1).await.unwrap();
    assert_eq!(again.seat_id, first.seat_id);
    assert_eq!(
        store
            .org_seats_in_force(&org, &first.license_id, T0 + 1)
            .await
            .unwrap(),
        1
    );

    // Fill the seats; the next device waits for the first lease to end.
    let mut seats = vec![first.seat_id.clone()];
    for n in 2..=SEATS as u32 {
        seats.push(activate(&store, s, &key, n, T0 + 1).await.unwrap().seat_id);
    }
    let full = activate(&store, s, &key, 99, T0 + 3).await.unwrap_err();
    let SeatRefused::SeatLimit { seats: n, free_at } = full else {
        panic!("{full:?}")
    };
    assert_eq!(n, SEATS);
    assert_eq!(free_at, again.expires_at + SEAT_MARGIN_SECS);

    // Device 2 checks in (renewing); nobody else does. When the others'
    // leases end (plus the margin), their seats are free.
    let end = again.expires_at + SEAT_MARGIN_SECS;
    let renewed = check_in(&store, s, &key, 2, &seats[1], T0 + 100, T0 + 100)
        .await
        .unwrap();
    assert_eq!(renewed.seat_id, seats[1]);
    assert_eq!(renewed.renew_at, T0 + 100 + DEFAULT_LEASE_SECS);
    assert!(matches!(
        activate(&store, s, &key, 99, end).await,
        Err(SeatRefused::SeatLimit { .. })
    ));
    let late = end + 1;
    let taken = activate(&store, s, &key, 99, late).await.unwrap();
    assert_ne!(taken.seat_id, seats[0]);
    assert_eq!(
        store
            .org_seats_in_force(&org, &first.license_id, late)
            .await
            .unwrap(),
        2
    );
    // Device 1's lease lapsed; it checks in again while seats are free...
    let back = check_in(&store, s, &key, 1, &seats[0], late + 1, late + 1)
        .await
        .unwrap();
    assert_eq!(back.seat_id, seats[0]);
    // ...but not once the others took them.
    for n in 100..102 {
        activate(&store, s, &key, n, late + 2).await.unwrap();
    }
    assert_eq!(
        store
            .org_seats_in_force(&org, &first.license_id, late + 2)
            .await
            .unwrap(),
        SEATS
    );
    assert_eq!(
        check_in(&store, s, &key, 3, &seats[2], late + 3, late + 3)
            .await
            .unwrap_err(),
        SeatRefused::SeatLapsed { seats: SEATS }
    );

    // Proofs: another installation's signature, a replay, a stale time, another device.
    let at = late + 10;
    let sig = instance(7).sign_raw(&check_in_message(seats[1].parse().unwrap(), at));
    let forged = store
        .lease_check_in(
            s,
            &key,
            &device(2).to_string(),
            &seats[1],
            at,
            &hex(&sig),
            &ctx(at),
        )
        .await
        .unwrap();
    assert!(
        matches!(forged, Signed::Done(Err(SeatRefused::BadProof(_)))),
        "{forged:?}"
    );
    check_in(&store, s, &key, 2, &seats[1], at, at)
        .await
        .unwrap();
    assert!(matches!(
        check_in(&store, s, &key, 2, &seats[1], at, at + 1).await,
        Err(SeatRefused::BadProof(_))
    ));
    assert!(matches!(
        check_in(&store, s, &key, 2, &seats[1], at + 1, at + 400).await,
        Err(SeatRefused::BadProof(_))
    ));
    let sig = instance(2).sign_raw(&check_in_message(seats[1].parse().unwrap(), at + 2));
    let moved = store
        .lease_check_in(
            s,
            &key,
            &device(5).to_string(),
            &seats[1],
            at + 2,
            &hex(&sig),
            &ctx(at + 2),
        )
        .await
        .unwrap();
    assert_eq!(done(moved), Err(SeatRefused::WrongDevice));

    // A release frees the seat at once; a second answers the same; a
    // released seat does not check in.
    let before = store
        .org_seats_in_force(&org, &first.license_id, at + 3)
        .await
        .unwrap();
    release(&store, &key, 2, &seats[1], at + 3, at + 3)
        .await
        .unwrap();
    release(&store, &key, 2, &seats[1], at + 4, at + 4)
        .await
        .unwrap();
    assert_eq!(
        store
            .org_seats_in_force(&org, &first.license_id, at + 4)
            .await
            .unwrap(),
        before - 1
    );
    assert_eq!(
        check_in(&store, s, &key, 2, &seats[1], at + 5, at + 5)
            .await
            .unwrap_err(),
        SeatRefused::SeatReleased
    );

    // Only the exact key of a license this ledger issued takes a seat.
    let mut tampered = key.clone();
    tampered.pop();
    tampered.push(if key.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        activate(&store, s, &tampered, 1, at).await.unwrap_err(),
        SeatRefused::UnknownLicense
    );
    // An expired license takes no seat.
    assert!(matches!(
        activate(&store, s, &key, 1, T0 + 366 * 86_400).await,
        Err(SeatRefused::Expired { .. })
    ));
}

/// Check-ins committed in one group see each other: the same signed request
/// twice renews once (the second is a replay), and a seat activated again
/// meanwhile (a new installation key) refuses the old key's check-in.
#[tokio::test]
async fn a_group_of_check_ins_sees_its_own_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&tmp.path().join("g.db"), true)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (signer, _, key) = ledger(&store).await;
    let seat = activate(&store, &signer, &key, 1, T0).await.unwrap();
    let at = T0 + 10;
    let sig = hex(&instance(1).sign_raw(&check_in_message(seat.seat_id.parse().unwrap(), at)));
    let job = || async {
        store
            .check_in_prepare(
                &signer,
                &key,
                &device(1).to_string(),
                &seat.seat_id,
                at,
                &sig,
                at,
            )
            .await
            .unwrap()
            .unwrap()
    };
    let (a, b) = (job().await, job().await);
    let out = store
        .check_in_group(vec![(signer.clone(), a), (signer.clone(), b)], at)
        .await
        .unwrap();
    assert!(
        matches!(&out[0], Signed::Done(Ok(l)) if l.renew_at == at + DEFAULT_LEASE_SECS),
        "{out:?}"
    );
    assert!(
        matches!(&out[1], Signed::Done(Err(SeatRefused::BadProof(_)))),
        "{out:?}"
    );
    // Prepared with the first installation key, committed after the device
    // activated again with another.
    let at = at + 1;
    let sig = hex(&instance(1).sign_raw(&check_in_message(seat.seat_id.parse().unwrap(), at)));
    let stale = store
        .check_in_prepare(
            &signer,
            &key,
            &device(1).to_string(),
            &seat.seat_id,
            at,
            &sig,
            at,
        )
        .await
        .unwrap()
        .unwrap();
    let again = store
        .lease_activate(
            &signer,
            &key,
            &device(1).to_string(),
            &instance(2).public_key().to_string(),
            &ctx(at),
        )
        .await
        .unwrap();
    assert!(matches!(again, Signed::Done(Ok(_))));
    let out = store
        .check_in_group(vec![(signer.clone(), stale)], at)
        .await
        .unwrap();
    assert!(
        matches!(&out[0], Signed::Done(Err(SeatRefused::BadProof(_)))),
        "{out:?}"
    );
}

/// A check-in its handler prepared before the license was suspended or
/// revoked is refused when its group commits: the state is read again
/// under the ledger's write lock, so no lease outlives a revocation that
/// committed first.
#[tokio::test]
async fn a_check_in_prepared_before_a_revocation_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&tmp.path().join("r.db"), true)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (signer, org, key) = ledger(&store).await;
    let lid = lease_license_id(&key);
    let seat = activate(&store, &signer, &key, 1, T0).await.unwrap();
    let prepare = |at: u64| {
        let (store, signer, key, seat) = (&store, &signer, &key, &seat);
        async move {
            let sig =
                hex(&instance(1).sign_raw(&check_in_message(seat.seat_id.parse().unwrap(), at)));
            store
                .check_in_prepare(
                    signer,
                    key,
                    &device(1).to_string(),
                    &seat.seat_id,
                    at,
                    &sig,
                    at,
                )
                .await
                .unwrap()
                .unwrap()
        }
    };
    let job = prepare(T0 + 10).await;
    store
        .org_set_suspended(&org, &lid, true, &ctx(T0 + 10))
        .await
        .unwrap()
        .unwrap();
    let out = store
        .check_in_group(vec![(signer.clone(), job)], T0 + 10)
        .await
        .unwrap();
    assert!(
        matches!(&out[0], Signed::Done(Err(SeatRefused::Suspended))),
        "{out:?}"
    );
    store
        .org_set_suspended(&org, &lid, false, &ctx(T0 + 11))
        .await
        .unwrap()
        .unwrap();
    // Two in one group: the batched statement and the one-by-one path
    // (the same seat twice) both see the revocation.
    let (a, b) = (prepare(T0 + 20).await, prepare(T0 + 21).await);
    store
        .revoke_license(&org, &lid, "refund", &ctx(T0 + 20))
        .await
        .unwrap();
    let out = store
        .check_in_group(vec![(signer.clone(), a), (signer.clone(), b)], T0 + 21)
        .await
        .unwrap();
    for o in &out {
        assert!(
            matches!(o, Signed::Done(Err(SeatRefused::Revoked))),
            "{out:?}"
        );
    }
}

/// A license of `SEATS` seats in organisation `org`: its key.
async fn another_license(store: &Store, signer: &Signer, org: &str) -> String {
    let cus = store
        .org_add_customer(org, PersonalFields::default(), &ctx(T0))
        .await
        .unwrap();
    let job = MintJob {
        org_id: org.to_owned(),
        fields: RequestFields {
            product: Some("acme-cad".into()),
            customer: Some(cus.customer_id),
            plan: Some("floating".into()),
            expires: Some("365d".into()),
            ..Default::default()
        },
        max_devices: SEATS,
        metadata: Default::default(),
        ctx: ctx(T0),
    };
    let license = sign_mint(signer, &job).unwrap();
    let key = license.record.license_key.clone();
    let verdicts = store
        .org_record_mints(&[SignedMint {
            job,
            license,
            record: None,
        }])
        .await;
    assert!(matches!(verdicts[0], Ok(Signed::Done(()))), "{verdicts:?}");
    key
}

/// Check-ins read in one statement get each their own license and seat:
/// in any order, over two licenses, with unknown seats, another device's
/// proof, a seat of one license asked with the other's key and the same
/// seat many times among them, in a group larger than one statement's rows.
#[tokio::test]
async fn check_ins_read_together_get_each_their_own_seat() {
    use keyseal_issuer::seats::check_in_finish;
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&tmp.path().join("l.db"), true)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (signer, org, first) = ledger(&store).await;
    let second = another_license(&store, &signer, &org).await;
    // Devices 0..SEATS on the first license, SEATS..2*SEATS on the second.
    let mut seats = Vec::new();
    for n in 0..2 * SEATS as u32 {
        let key = if n < SEATS as u32 { &first } else { &second };
        seats.push(activate(&store, &signer, key, n, T0).await.unwrap());
    }
    let at = T0 + 10;
    let key_of = |n: u32| {
        if n < SEATS as u32 {
            first.clone()
        } else {
            second.clone()
        }
    };
    let ask = |n: u32, seat: &str| {
        let sig = hex(&instance(n).sign_raw(&check_in_message(seat.parse().unwrap(), at)));
        let store = &store;
        let key = key_of(n);
        let seat = seat.to_owned();
        async move {
            store
                .check_in_parse(&key, &device(n).to_string(), &seat, at, &sig)
                .await
                .unwrap()
                .unwrap()
        }
    };
    // 300 asks (two statements): each seat in turn, backwards, with an
    // unknown seat, device 0 claiming seat 1, and device 0 naming a seat of
    // the second license with the first's key, every so often.
    let unknown = "00000000000000000000000000000001";
    let all = 2 * SEATS as u32;
    let mut asks = Vec::new();
    let mut expect = Vec::new();
    for k in 0..300u32 {
        match k % 7 {
            3 => {
                asks.push(ask(0, unknown).await);
                expect.push(Err(SeatRefused::UnknownSeat));
            }
            5 => {
                asks.push(ask(0, &seats[1].seat_id).await);
                expect.push(Err(SeatRefused::BadProof("")));
            }
            6 => {
                asks.push(ask(0, &seats[SEATS as usize].seat_id).await);
                expect.push(Err(SeatRefused::UnknownSeat));
            }
            _ => {
                let n = (all - 1) - (k % all);
                asks.push(ask(n, &seats[n as usize].seat_id).await);
                expect.push(Ok(seats[n as usize].seat_id.clone()));
            }
        }
    }
    let found = store.check_in_lookup(&asks).await.unwrap();
    assert_eq!(found.len(), asks.len());
    for ((ask, found), want) in asks.into_iter().zip(found).zip(expect) {
        let got = check_in_finish(&signer, ask, found, at)
            .unwrap()
            .map(|job| format!("{job:?}"));
        match (&got, &want) {
            (Ok(job), Ok(seat)) => {
                let id: SeatId = seat.parse().unwrap();
                assert!(job.contains(&format!("{id:?}")), "{job} for {seat}");
            }
            (Err(SeatRefused::BadProof(_)), Err(SeatRefused::BadProof(_))) => {}
            (g, w) => assert_eq!(g.as_ref().err(), w.as_ref().err(), "{got:?}"),
        }
    }
}
