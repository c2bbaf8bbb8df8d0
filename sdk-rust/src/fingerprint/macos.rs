//! macOS ids, from `ioreg` and `networksetup` (no FFI). The parsers are
//! compiled everywhere for tests; only running the tools is macOS-only.

#[cfg(target_os = "macos")]
use super::RawId;
use super::real_id;

/// Kind of the IOPlatformUUID.
pub(crate) const PLATFORM_UUID: &str = "platform-uuid";
/// Kind of the IOPlatformSerialNumber.
pub(crate) const PLATFORM_SERIAL: &str = "platform-serial";

/// The quoted value of `"key" = "value"` in `ioreg -rd1 -c IOPlatformExpertDevice` output.
pub(crate) fn ioreg_value(output: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\"");
    output.lines().find_map(|line| {
        let rest = line
            .trim()
            .strip_prefix(&needle)?
            .trim_start()
            .strip_prefix('=')?
            .trim();
        real_id(rest.strip_prefix('"')?.strip_suffix('"')?)
    })
}

/// The `Ethernet Address:` lines of `networksetup -listallhardwareports`, sorted.
pub(crate) fn hardware_port_addresses(output: &str) -> Vec<String> {
    let mut v: Vec<String> = output
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Ethernet Address:"))
        .filter_map(real_id)
        .filter(|a| a.len() == 17)
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(target_os = "macos")]
fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(target_os = "macos")]
pub(crate) fn read(hardware: bool, out: &mut Vec<RawId>) {
    // Absolute paths: a PATH entry must not be able to stand in for them.
    let ioreg = run("/usr/sbin/ioreg", &["-rd1", "-c", "IOPlatformExpertDevice"]);
    if !hardware {
        if let Some(uuid) = ioreg
            .as_deref()
            .and_then(|o| ioreg_value(o, "IOPlatformUUID"))
        {
            out.push(RawId::new(PLATFORM_UUID, uuid));
        }
        return;
    }
    if let Some(serial) = ioreg
        .as_deref()
        .and_then(|o| ioreg_value(o, "IOPlatformSerialNumber"))
    {
        out.push(RawId::new(PLATFORM_SERIAL, serial));
    }
    if let Some(ports) = run("/usr/sbin/networksetup", &["-listallhardwareports"]) {
        out.extend(
            hardware_port_addresses(&ports)
                .into_iter()
                .map(|a| RawId::new(super::linux::MAC, a)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IOREG: &str = r#"+-o MacBookPro18,3  <class IOPlatformExpertDevice, id 0x100000202, registered, matched, active, busy 0 (5 ms), retain 37>
    {
      "IOPlatformSystemSleepPolicy" = <534c505402000a00>
      "IOPlatformUUID" = "5A8F2C1B-3D4E-4F60-8A7B-9C0D1E2F3A4B"
      "IOPlatformSerialNumber" = "C02XK1ABCDEF"
      "model" = <"MacBookPro18,3">
    }
"#;

    #[test]
    fn parses_ioreg() {
        assert_eq!(
            ioreg_value(IOREG, "IOPlatformUUID").as_deref(),
            Some("5a8f2c1b-3d4e-4f60-8a7b-9c0d1e2f3a4b")
        );
        assert_eq!(
            ioreg_value(IOREG, "IOPlatformSerialNumber").as_deref(),
            Some("c02xk1abcdef")
        );
        assert_eq!(ioreg_value(IOREG, "model"), None);
        assert_eq!(ioreg_value("", "IOPlatformUUID"), None);
        assert_eq!(
            ioreg_value(
                r#""IOPlatformUUID" = "00000000-0000-0000-0000-000000000000""#,
                "IOPlatformUUID"
            ),
            None
        );
        let _ = (PLATFORM_UUID, PLATFORM_SERIAL);
    }

    #[test]
    fn parses_networksetup() {
        let out = "\nHardware Port: Wi-Fi\nDevice: en0\nEthernet Address: A4:83:E7:01:02:03\n\n\
                   Hardware Port: Thunderbolt Bridge\nDevice: bridge0\nEthernet Address: N/A\n\n\
                   Hardware Port: Ethernet\nDevice: en1\nEthernet Address: 00:1c:42:aa:bb:cc\n\nVLAN Configurations\n";
        assert_eq!(
            hardware_port_addresses(out),
            ["00:1c:42:aa:bb:cc", "a4:83:e7:01:02:03"]
        );
    }
}
