//! Linux ids, read from files under a root directory (`/` for the real
//! machine, a fake tree in tests). Compiled on every OS target so the tests
//! run anywhere.

use std::path::{Path, PathBuf};

use super::{RawId, Source, read_small, real_id};

/// Kind of `/etc/machine-id`.
pub const MACHINE_ID: &str = "machine-id";
/// Kind of the DMI product UUID.
pub const DMI_PRODUCT_UUID: &str = "dmi-product-uuid";
/// Kind of a network card's permanent address.
pub const MAC: &str = "mac";
/// Kind of a fixed disk's serial number or WWID.
pub const DISK: &str = "disk";

/// Linux ids under a root directory.
///
/// - ids: `etc/machine-id` (else `var/lib/dbus/machine-id`), then
///   `sys/class/dmi/id/product_uuid` where readable (root only on most
///   distributions, so a program run with and without `sudo` sees
///   different fingerprints unless it leaves this out or binds tolerantly).
/// - hardware: each physical network card (`sys/class/net/*` with a
///   `device` link and a permanent address, `addr_assign_type` 0: not
///   virtual, not a randomized Wi-Fi address), then each fixed disk
///   (`sys/block/*` that is not removable, loop, ram, zram, device-mapper,
///   md, optical or network block device) by `device/serial`, `wwid` or
///   `device/wwid`. Each sorted by value.
#[derive(Debug, Clone)]
pub struct Linux {
    root: PathBuf,
    hardware: bool,
}

impl Linux {
    /// Machine ids of this machine.
    #[must_use]
    pub fn ids() -> Self {
        Self::ids_at("/")
    }

    /// Network and disk ids of this machine.
    #[must_use]
    pub fn hardware() -> Self {
        Self::hardware_at("/")
    }

    /// Machine ids under `root` instead of `/`.
    #[must_use]
    pub fn ids_at(root: impl Into<PathBuf>) -> Self {
        Linux {
            root: root.into(),
            hardware: false,
        }
    }

    /// Network and disk ids under `root` instead of `/`.
    #[must_use]
    pub fn hardware_at(root: impl Into<PathBuf>) -> Self {
        Linux {
            root: root.into(),
            hardware: true,
        }
    }

    fn text(&self, rel: &str) -> Option<String> {
        read_small(&self.root.join(rel)).and_then(|b| String::from_utf8(b).ok())
    }

    fn read_ids(&self, out: &mut Vec<RawId>) {
        let machine_id = ["etc/machine-id", "var/lib/dbus/machine-id"]
            .iter()
            .filter_map(|p| self.text(p))
            .map(|s| s.trim().to_ascii_lowercase())
            // systemd writes "uninitialized" until first boot completes.
            .find(|s| {
                s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) && real_id(s).is_some()
            });
        if let Some(id) = machine_id {
            out.push(RawId::new(MACHINE_ID, id));
        }
        if let Some(uuid) = self
            .text("sys/class/dmi/id/product_uuid")
            .and_then(|s| real_id(&s))
        {
            out.push(RawId::new(DMI_PRODUCT_UUID, uuid));
        }
    }

    fn read_hardware(&self, out: &mut Vec<RawId>) {
        let mut macs: Vec<String> = entries(&self.root.join("sys/class/net"))
            .into_iter()
            .filter(|dir| dir.join("device").exists())
            .filter(|dir| read_trimmed(&dir.join("addr_assign_type")).is_none_or(|t| t == "0"))
            .filter_map(|dir| read_trimmed(&dir.join("address")).and_then(|a| real_id(&a)))
            .collect();
        macs.sort();
        macs.dedup();
        out.extend(macs.into_iter().map(|m| RawId::new(MAC, m)));

        const VIRTUAL: [&str; 9] = [
            "loop",
            "ram",
            "zram",
            "dm-",
            "md",
            "sr",
            "fd",
            "nbd",
            "mmcblk0boot",
        ];
        let mut disks: Vec<String> = entries(&self.root.join("sys/block"))
            .into_iter()
            .filter(|dir| {
                let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
                !VIRTUAL.iter().any(|v| name.starts_with(v))
            })
            .filter(|dir| read_trimmed(&dir.join("removable")).as_deref() != Some("1"))
            .filter_map(|dir| {
                ["device/serial", "wwid", "device/wwid"]
                    .iter()
                    .find_map(|f| read_trimmed(&dir.join(f)).and_then(|s| real_id(&s)))
            })
            .collect();
        disks.sort();
        disks.dedup();
        out.extend(disks.into_iter().map(|d| RawId::new(DISK, d)));
    }
}

impl Source for Linux {
    fn read(&self, out: &mut Vec<RawId>) {
        if self.hardware {
            self.read_hardware(out);
        } else {
            self.read_ids(out);
        }
    }
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

fn read_trimmed(path: &Path) -> Option<String> {
    read_small(path)
        .and_then(|b| String::from_utf8(b).ok())
        .map(|s| s.trim().to_owned())
}
