//! Device fingerprints: stability, the Linux sources on a fake root (tests
//! never depend on the host having a machine-id), app-supplied sources, and
//! k-of-n matching through the Validator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{NOW, Scratch, Vendor};
use keyseal::fingerprint::{self, FileSource, Fingerprinter, Linux};
use keyseal::keyseal_core::DeviceRule;
use keyseal::{BindingKind, Fingerprint, Problem};

const MACHINE_ID: &str = "4f1c2d3e5a6b47c88d9e0f1a2b3c4d5e\n";

/// A fake Linux machine: machine-id, DMI uuid, two physical NICs (one with a
/// randomized address), a virtual one, two fixed disks, a USB stick, a loop
/// device.
fn fake_machine(dir: &Scratch) {
    dir.write("etc/machine-id", MACHINE_ID);
    dir.write(
        "sys/class/dmi/id/product_uuid",
        "4C4C4544-0042-3010-8048-B4C04F4E3332\n",
    );
    for (nic, addr, assign) in [
        ("eth0", "00:1c:42:aa:bb:cc", "0"),
        ("wlan0", "a4:83:e7:01:02:03", "0"),
        ("wlan1", "ee:11:22:33:44:55", "3"),
    ] {
        dir.write(&format!("sys/class/net/{nic}/address"), format!("{addr}\n"));
        dir.write(
            &format!("sys/class/net/{nic}/addr_assign_type"),
            format!("{assign}\n"),
        );
        dir.write(&format!("sys/class/net/{nic}/device/vendor"), "0x8086\n");
    }
    dir.write("sys/class/net/docker0/address", "02:42:ac:11:00:02\n");
    dir.write("sys/class/net/lo/address", "00:00:00:00:00:00\n");
    dir.write("sys/block/nvme0n1/wwid", "eui.0025388b91b2c4e1\n");
    dir.write("sys/block/nvme0n1/removable", "0\n");
    dir.write("sys/block/sda/device/serial", "WD-WCC4N1234567\n");
    dir.write("sys/block/sda/removable", "0\n");
    dir.write("sys/block/sdb/device/serial", "USB-STICK-1\n");
    dir.write("sys/block/sdb/removable", "1\n");
    dir.write("sys/block/loop0/device/serial", "LOOP\n");
}

fn kinds(f: &Fingerprinter) -> Vec<String> {
    f.raw_ids().iter().map(|r| r.kind().to_owned()).collect()
}

#[test]
fn linux_sources_on_a_fake_root() {
    let dir = Scratch::new("fp-linux");
    fake_machine(&dir);
    let ids = Fingerprinter::new("acme-cad").source(Linux::ids_at(&dir.0));
    assert_eq!(kinds(&ids), ["machine-id", "dmi-product-uuid"]);
    // Physical NICs with permanent addresses, fixed real disks; no docker0,
    // lo, randomized wlan1, USB stick or loop device.
    let hw = Fingerprinter::new("acme-cad").source(Linux::hardware_at(&dir.0));
    assert_eq!(kinds(&hw), ["mac", "mac", "disk", "disk"]);
    let fp = ids
        .source(Linux::hardware_at(&dir.0))
        .fingerprint()
        .unwrap();
    assert_eq!(fp.components().len(), 6);
    assert_eq!(
        fp.components()[0],
        Fingerprint::component("acme-cad", "machine-id", MACHINE_ID.trim().as_bytes())
    );
}

#[test]
fn fingerprint_is_stable_across_calls_and_salted_per_product() {
    let dir = Scratch::new("fp-stable");
    fake_machine(&dir);
    let make = |p: &str| {
        Fingerprinter::new(p)
            .source(Linux::ids_at(&dir.0))
            .source(Linux::hardware_at(&dir.0))
    };
    let a = make("acme-cad").fingerprint().unwrap();
    for _ in 0..3 {
        assert_eq!(make("acme-cad").fingerprint().unwrap(), a);
    }
    // Text round trip: the `ksfp1.` code the customer sends the vendor.
    assert_eq!(a.to_string().parse::<Fingerprint>().unwrap(), a);
    // No raw id in it, and another product sees an unrelated fingerprint.
    assert!(!a.to_string().contains("4f1c2d3e"));
    let b = make("acme-viewer").fingerprint().unwrap();
    assert!(a.components().iter().all(|c| !b.components().contains(c)));
}

#[cfg(target_os = "linux")]
#[test]
fn this_machine_is_stable_where_it_has_an_id() {
    // The host may have no machine-id (a minimal container): then both
    // calls agree on the error.
    let first = fingerprint::this_machine("acme-cad");
    let second = fingerprint::this_machine("acme-cad");
    assert_eq!(first, second);
    if let Err(e) = first {
        assert_eq!(e.code(), "device_unavailable");
    }
}

#[test]
fn container_without_ids_uses_the_app_source() {
    let dir = Scratch::new("fp-container");
    // A minimal image: no machine-id, no readable DMI. `uninitialized` is
    // what systemd leaves before first boot.
    dir.write("etc/machine-id", "uninitialized\n");
    let secret = dir.write("run/secrets/device-id", "instance-7f3a\n");
    let f = Fingerprinter::new("acme-cad")
        .source(Linux::ids_at(&dir.0))
        .fallback(FileSource::new(&secret));
    assert_eq!(kinds(&f), ["app"]);
    assert_eq!(
        f.fingerprint().unwrap().components(),
        [Fingerprint::component(
            "acme-cad",
            fingerprint::APP_KIND,
            b"instance-7f3a"
        )]
    );
    // With an id present, the fallback is not read.
    fake_machine(&dir);
    let f = Fingerprinter::new("acme-cad")
        .source(Linux::ids_at(&dir.0))
        .fallback(FileSource::new(&secret));
    assert_eq!(kinds(&f), ["machine-id", "dmi-product-uuid"]);
    let nothing = Fingerprinter::new("acme-cad").source(FileSource::new(dir.path("missing")));
    assert_eq!(
        nothing.fingerprint().unwrap_err().code(),
        "device_unavailable"
    );
}

/// A machine's fingerprint from the fake root (ids and hardware).
fn machine_fp(dir: &Scratch) -> Fingerprint {
    Fingerprinter::new("acme-cad")
        .source(Linux::ids_at(&dir.0))
        .source(Linux::hardware_at(&dir.0))
        .fingerprint()
        .unwrap()
}

#[test]
fn k_of_n_survives_one_replaced_part_not_too_many() {
    let dir = Scratch::new("fp-kofn");
    fake_machine(&dir);
    let v = Vendor::new();
    let at_issue = machine_fp(&dir); // 6 components
    let key = v.issue_bound(&v.claims(40), &at_issue, DeviceRule::AtLeast(4));
    let validate = |dir: &Scratch| {
        let f = Fingerprinter::new("acme-cad")
            .source(Linux::ids_at(&dir.0))
            .source(Linux::hardware_at(&dir.0));
        v.builder(NOW)
            .fingerprinter(f)
            .build()
            .unwrap()
            .validate(&key)
    };
    let l = validate(&dir).unwrap();
    assert_eq!(
        l.binding(),
        Some(BindingKind::Tolerant {
            required: 4,
            components: 6
        })
    );

    // The customer replaces a disk: 5 of 6 still match.
    dir.write("sys/block/sda/device/serial", "WD-NEWDISK9999\n");
    assert!(validate(&dir).is_ok());
    // ...and a network card: 4 of 6, still enough.
    dir.write("sys/class/net/eth0/address", "00:1c:42:00:00:01\n");
    assert!(validate(&dir).is_ok());
    // ...and the mainboard (DMI uuid): 3 of 6, too few.
    dir.write(
        "sys/class/dmi/id/product_uuid",
        "9d1e0c2b-1111-4222-8333-444455556666\n",
    );
    assert_eq!(validate(&dir).unwrap_err().code(), "wrong_device");
}

#[test]
fn exact_binding_needs_every_component() {
    let dir = Scratch::new("fp-exact");
    fake_machine(&dir);
    let v = Vendor::new();
    let ids = || Fingerprinter::new("acme-cad").source(Linux::ids_at(&dir.0));
    let key = v.issue_bound(
        &v.claims(41),
        &ids().fingerprint().unwrap(),
        DeviceRule::Exact,
    );
    assert!(
        v.builder(NOW)
            .fingerprinter(ids())
            .build()
            .unwrap()
            .validate(&key)
            .is_ok()
    );
    assert_eq!(
        v.builder(NOW)
            .fingerprinter(ids())
            .build()
            .unwrap()
            .fingerprint()
            .unwrap(),
        ids().fingerprint().unwrap()
    );
    // A cloned VM with a regenerated DMI uuid but the same machine-id.
    dir.write(
        "sys/class/dmi/id/product_uuid",
        "9d1e0c2b-1111-4222-8333-444455556666\n",
    );
    assert_eq!(
        v.builder(NOW)
            .fingerprinter(ids())
            .build()
            .unwrap()
            .validate(&key)
            .unwrap_err()
            .code(),
        "wrong_device"
    );
}

#[test]
fn bound_license_on_an_unidentifiable_device() {
    let dir = Scratch::new("fp-none");
    let v = Vendor::new();
    let fp = Fingerprint::from_components(&[[5; 16], [6; 16]]).unwrap();
    let exact = v.issue_bound(&v.claims(42), &fp, DeviceRule::Exact);
    let tolerant = v.issue_bound(&v.claims(43), &fp, DeviceRule::AtLeast(1));
    let blind = v
        .builder(NOW)
        .fingerprinter(Fingerprinter::new("acme-cad").source(Linux::ids_at(&dir.0)))
        .build()
        .unwrap();
    for key in [&exact, &tolerant] {
        let r = blind.validate(key).unwrap_err();
        assert_eq!(r.code(), "device_unavailable");
        assert!(matches!(r.problem(), Problem::DeviceUnavailable { .. }));
    }
    // An unbound license never reads the device.
    assert!(blind.validate(&v.issue(&v.claims(44))).is_ok());
    // With no device source configured at all, it is plainly the wrong device.
    assert_eq!(
        v.builder(NOW)
            .build()
            .unwrap()
            .validate(&exact)
            .unwrap_err()
            .code(),
        "wrong_device"
    );
}
