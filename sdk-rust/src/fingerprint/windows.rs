//! Windows ids, from `reg.exe` and `getmac.exe` (no FFI). The parsers are
//! compiled everywhere for tests; only running the tools is Windows-only.

#[cfg(windows)]
use super::RawId;
use super::real_id;

/// Kind of the MachineGuid.
pub(crate) const MACHINE_GUID: &str = "machine-guid";

/// The value of `MachineGuid    REG_SZ    <guid>` in `reg query` output.
pub(crate) fn reg_machine_guid(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next()? == "MachineGuid" && words.next()? == "REG_SZ").then_some(())?;
        real_id(words.next()?)
    })
}

/// The addresses in `getmac /fo csv /nh` output (`"AA-BB-...","\Device\..."`),
/// normalized to `aa:bb:...` and sorted; adapters without one are skipped.
pub(crate) fn getmac_addresses(output: &str) -> Vec<String> {
    let mut v: Vec<String> = output
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
        .filter(|a| a.len() == 17)
        .filter_map(|a| real_id(&a.replace('-', ":")))
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(windows)]
fn run(tool: &str, args: &[&str]) -> Option<String> {
    use std::os::windows::process::CommandExt;
    /// No console window flashes up in a GUI app.
    const CREATE_NO_WINDOW: u32 = 0x0800_0000;
    let root = std::env::var_os("SystemRoot").unwrap_or_else(|| "C:\\Windows".into());
    let program = std::path::Path::new(&root).join("System32").join(tool);
    let out = std::process::Command::new(program)
        .args(args)
        .creation_flags(CREATE_NO_WINDOW)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(windows)]
pub(crate) fn read(hardware: bool, out: &mut Vec<RawId>) {
    if hardware {
        if let Some(o) = run("getmac.exe", &["/fo", "csv", "/nh"]) {
            out.extend(
                getmac_addresses(&o)
                    .into_iter()
                    .map(|a| RawId::new(super::linux::MAC, a)),
            );
        }
        return;
    }
    // /reg:64: a 32-bit app would otherwise read the WOW6432Node view,
    // which has no MachineGuid.
    let query = [
        "query",
        r"HKLM\SOFTWARE\Microsoft\Cryptography",
        "/v",
        "MachineGuid",
        "/reg:64",
    ];
    if let Some(guid) = run("reg.exe", &query).as_deref().and_then(reg_machine_guid) {
        out.push(RawId::new(MACHINE_GUID, guid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reg_query() {
        let out = "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Cryptography\r\n    MachineGuid    REG_SZ    8f2c1b5a-3d4e-4f60-8a7b-9c0d1e2f3a4b\r\n\r\n";
        assert_eq!(
            reg_machine_guid(out).as_deref(),
            Some("8f2c1b5a-3d4e-4f60-8a7b-9c0d1e2f3a4b")
        );
        assert_eq!(
            reg_machine_guid(
                "ERROR: The system was unable to find the specified registry key or value."
            ),
            None
        );
        let _ = MACHINE_GUID;
    }

    #[test]
    fn parses_getmac() {
        let out = "\"00-1C-42-AA-BB-CC\",\"\\Device\\Tcpip_{1234}\"\r\n\"N/A\",\"Hardware not present\"\r\n\"A4-83-E7-01-02-03\",\"Media disconnected\"\r\n";
        assert_eq!(
            getmac_addresses(out),
            ["00:1c:42:aa:bb:cc", "a4:83:e7:01:02:03"]
        );
    }
}
