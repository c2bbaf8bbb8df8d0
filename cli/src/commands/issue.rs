//! `keyseal issue`: one license, or a batch.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use keyseal_issuer::batch::{self, Format};
use keyseal_issuer::request::{RequestFields, parse_ext, split_list};
use keyseal_issuer::time::format;
use keyseal_issuer::{Access, BatchOptions, Error as IssuerError, Issued};
use keyseal_issuer::{LedgerError, RequestError};
use serde_json::json;

use crate::cli::{BatchFormat, IssueArgs};
use crate::env;
use crate::error::CliError;
use crate::show::{claims_json, claims_text, print_json};

pub(crate) async fn issue(dir: &Path, a: IssueArgs, json: bool) -> Result<ExitCode, CliError> {
    if a.batch.is_some() {
        return issue_batch(dir, a, json).await;
    }
    let ctx = env::context()?;
    let mut ext = Vec::new();
    for e in &a.ext {
        ext.push(parse_ext(e)?);
    }
    let fields = RequestFields {
        product: a.product,
        customer: a.customer,
        plan: a.plan,
        expires: a.expires,
        not_before: a.not_before,
        grace: a.grace,
        device: a.device,
        device_match: a.device_match,
        entitlements: a.entitlements.iter().flat_map(|e| split_list(e)).collect(),
        max_version: a.max_version,
        ext,
        external_id: a.external_id,
    };
    if let Some(out) = a.out.as_deref().filter(|p| p.exists()) {
        return Err(CliError::input(
            format!("{} already exists", out.display()),
            "choose another --out file, or remove the old one first",
        ));
    }
    let vault = super::open_vault(dir, Access::Write).await?;
    let result = async {
        // Every check that needs no passphrase comes before the prompt.
        let req = fields.resolve(ctx.now)?;
        let org = super::org_of(vault.store()).await?;
        vault.store().require_product(&org, &req.product).await?;
        let pass = env::passphrase(false)?;
        let signer = vault.unlock_org(&org, &pass).await?;
        Ok::<_, CliError>(vault.store().issue(&org, &signer, req, &ctx).await?)
    }
    .await;
    vault.close().await;
    let issued = result?;
    if let Some(out) = &a.out {
        write_license_file(out, &issued)?;
    }
    print_issued(&issued, a.out.as_deref(), json);
    Ok(ExitCode::SUCCESS)
}

fn write_license_file(out: &Path, issued: &Issued) -> Result<(), CliError> {
    let armored = issued.armored();
    let mut f = OpenOptions::new().write(true).create_new(true).open(out).map_err(|e| {
        CliError::input(
            format!(
                "cannot create {}: {e}; license {} IS issued and recorded",
                out.display(),
                issued.license_id
            ),
            format!(
                "write it elsewhere with `keyseal licenses show {} --json`, or remove the file and reissue",
                issued.license_id
            ),
        )
    })?;
    f.write_all(armored.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| {
            CliError::system(
                format!(
                    "cannot write {}: {e}; license {} IS issued and recorded",
                    out.display(),
                    issued.license_id
                ),
                format!(
                    "free space, then get the key again with `keyseal licenses show {}`",
                    issued.license_id
                ),
            )
        })
}

fn print_issued(issued: &Issued, out: Option<&Path>, json: bool) {
    // The claims just signed, from the signed bytes.
    let claims = issued.claims().ok();
    if json {
        let mut v = json!({
            "license_id": issued.license_id.to_string(),
            "key_id": issued.key_id.to_string(),
            "license_key": issued.license_key,
            "out": out.map(|p| p.display().to_string()),
        });
        if let Some(c) = &claims {
            v["claims"] = claims_json(c.dangerous_unverified_claims(), c.key_id());
        }
        print_json(&v);
        return;
    }
    println!("{}", issued.license_key);
    eprintln!(
        "issued license {} (recorded in the ledger)",
        issued.license_id
    );
    if let Some(c) = &claims {
        // These are the claims we just signed, decoded back for display.
        eprint!(
            "{}",
            claims_text(c.dangerous_unverified_claims(), c.key_id())
        );
    }
    if let Some(p) = out {
        eprintln!("wrote the license file {}", p.display());
    }
}

/// Where batch results go: appended, synced after every committed chunk.
struct ResultsFile {
    file: File,
    csv: bool,
}

impl ResultsFile {
    fn open(path: &Path) -> Result<Self, CliError> {
        let cannot = |e: std::io::Error| {
            CliError::input(
                format!("cannot open {} for writing: {e}", path.display()),
                "check the path and its permissions",
            )
        };
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(cannot)?;
        let len = f.metadata().map_err(cannot)?.len();
        if len > 0 {
            // A process killed mid-append can leave half a line: its license is
            // in the ledger (a chunk is written only after it committed), so the
            // fragment is dropped and the keys stay recoverable from the ledger.
            use std::io::{Read, Seek, SeekFrom};
            let mut tail = Vec::new();
            let start = len.saturating_sub(64 * 1024);
            f.seek(SeekFrom::Start(start)).map_err(cannot)?;
            f.read_to_end(&mut tail).map_err(cannot)?;
            if tail.last() != Some(&b'\n') {
                let keep = tail
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(start, |i| start + i as u64 + 1);
                f.set_len(keep).map_err(cannot)?;
                eprintln!(
                    "note: dropped a partial last line from {} (left by an interrupted run; \
                     `keyseal licenses list --batch ID` has every minted key)",
                    path.display()
                );
            }
        }
        let empty = f.metadata().map(|m| m.len() == 0).unwrap_or(true);
        let csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let mut r = ResultsFile { file: f, csv };
        if csv && empty {
            r.file
                .write_all(b"row,license_id,product,customer,plan,expires_at,license_key\n")
                .map_err(|e| {
                    CliError::system(
                        format!("cannot write {}: {e}", path.display()),
                        "check the disk",
                    )
                })?;
        }
        Ok(r)
    }

    /// Hands the file to a writer thread: each committed chunk is written in
    /// one write and synced there while the next chunk commits.
    fn start(self) -> ResultsWriter {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Vec<u8>)>(2);
        let mut file = self.file;
        let handle = std::thread::spawn(move || {
            for (first_row, buf) in rx {
                file.write_all(&buf)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| (e, first_row))?;
            }
            Ok(())
        });
        ResultsWriter {
            csv: self.csv,
            tx: Some(tx),
            handle: Some(handle),
        }
    }
}

/// The writer thread of a [`ResultsFile`].
struct ResultsWriter {
    csv: bool,
    tx: Option<std::sync::mpsc::SyncSender<(u64, Vec<u8>)>>,
    handle: Option<std::thread::JoinHandle<Result<(), (std::io::Error, u64)>>>,
}

impl ResultsWriter {
    /// Queues a committed chunk; `false` once the writer has failed.
    fn send(&mut self, chunk: &[Issued]) -> bool {
        let first = chunk.first().and_then(|x| x.row).unwrap_or(0);
        let buf = format_chunk(self.csv, chunk);
        self.tx
            .as_ref()
            .is_some_and(|tx| tx.send((first, buf)).is_ok())
    }

    /// Waits for every queued chunk to be on disk; the error and the first
    /// row of the chunk that could not be written.
    fn finish(mut self) -> Result<(), (std::io::Error, u64)> {
        drop(self.tx.take());
        match self.handle.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err((std::io::Error::other("the writer thread panicked"), 0)),
            None => Ok(()),
        }
    }
}

/// The result lines of a committed chunk.
fn format_chunk(csv: bool, chunk: &[Issued]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(chunk.len() * 320);
    for x in chunk {
        let r = &x.request;
        let expires = r.expires_at.map(format);
        // Writing to a Vec cannot fail.
        if csv {
            let _ = writeln!(
                buf,
                "{},{},{},{},{},{},{}",
                x.row.unwrap_or(0),
                x.license_id,
                r.product,
                r.customer,
                r.plan,
                expires.as_deref().unwrap_or(""),
                x.license_key
            );
        } else {
            let line = json!({
                "row": x.row,
                "license_id": x.license_id.to_string(),
                "product": r.product,
                "customer": r.customer,
                "plan": r.plan,
                "expires_at": expires,
                "license_key": x.license_key,
            });
            let _ = writeln!(buf, "{line}");
        }
    }
    buf
}

/// Data rows in the file, for the progress bar (an estimate for CSV with
/// quoted line breaks).
fn count_rows(path: &Path, format: Format) -> Option<u64> {
    let f = File::open(path).ok()?;
    let mut n = 0u64;
    for line in BufReader::with_capacity(1 << 16, f).lines() {
        if !line.ok()?.trim().is_empty() {
            n += 1;
        }
    }
    Some(if format == Format::Csv {
        n.saturating_sub(1)
    } else {
        n
    })
}

async fn issue_batch(dir: &Path, a: IssueArgs, json: bool) -> Result<ExitCode, CliError> {
    let (Some(batch_path), Some(out_path)) = (a.batch.as_deref(), a.out.as_deref()) else {
        return Err(CliError::input(
            "--batch needs --out",
            "add --out results.jsonl",
        ));
    };
    let format = match a.format {
        Some(BatchFormat::Csv) => Format::Csv,
        Some(BatchFormat::Jsonl) => Format::Jsonl,
        None => Format::from_path(batch_path).ok_or_else(|| {
            CliError::input(
                format!(
                    "cannot tell the format of {} from its name",
                    batch_path.display()
                ),
                "name it .csv or .jsonl, or pass --format csv|jsonl",
            )
        })?,
    };
    let ctx = env::context()?;
    let vault = super::open_vault(dir, Access::Write).await?;
    let result = async {
        let rows = batch::open(batch_path, format)?;
        let org = super::org_of(vault.store()).await?;
        let pass = env::passphrase(false)?;
        let signer = vault.unlock_org(&org, &pass).await?;
        let mut results = ResultsFile::open(out_path)?.start();
        let show_progress = !a.no_progress && !json && std::io::stderr().is_terminal();
        let bar = if show_progress {
            let total = if batch_path == Path::new("-") {
                None
            } else {
                count_rows(batch_path, format)
            };
            let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows ({rate}, eta {eta})",
            ) {
                let style = style.with_key(
                    "rate",
                    |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0} keys/s", s.per_sec());
                    },
                );
                bar.set_style(style);
            }
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        let started = Instant::now();
        let opts = BatchOptions {
            chunk_size: a.chunk_size as usize,
            start_row: a.start_row,
        };
        let outcome = vault
            .store()
            .issue_batch(&org, &signer, &ctx, rows, &opts, |chunk| {
                if !results.send(chunk) {
                    return Err(IssuerError::Ledger(LedgerError::DiskFull {
                        doing: "writing the results".into(),
                    }));
                }
                bar.inc(chunk.len() as u64);
                Ok(())
            })
            .await;
        let write_error = results.finish().err();
        bar.finish_and_clear();
        Ok::<_, CliError>((outcome, write_error, started.elapsed()))
    }
    .await;
    vault.close().await;
    let (outcome, write_error, elapsed) = result?;

    let minted = outcome.minted;
    let rate = minted as f64 / elapsed.as_secs_f64().max(1e-9);
    let first_row = a.start_row;
    // With --json, one document: this summary, or the error with it as
    // `done`.
    let summary = json!({
        "batch_id": outcome.batch_id,
        "minted": minted,
        "skipped": outcome.skipped.len(),
        "first_row": first_row,
        "last_row": outcome.last_row,
        "out": out_path.display().to_string(),
        "complete": outcome.error.is_none() && write_error.is_none(),
    });
    let with_done = |mut e: CliError| {
        e.done = Some(summary.clone());
        e
    };
    if let Some((e, first)) = write_error {
        let last = outcome.last_row;
        return Err(with_done(CliError::system(
            format!(
                "cannot write {}: {e}; rows {first}-{last} ARE minted and in the ledger but not (all) in the file",
                out_path.display()
            ),
            format!(
                "free space, then get those keys with `keyseal licenses list --batch {} --json` and resume with --start-row {}",
                outcome.batch_id,
                last + 1
            ),
        )));
    }
    if json && outcome.error.is_none() {
        print_json(&summary);
    }
    if !outcome.skipped.is_empty() {
        let shown: Vec<String> = outcome
            .skipped
            .iter()
            .take(3)
            .map(|s| {
                format!(
                    "row {} ({} is license {})",
                    s.row, s.external_id, s.license_id
                )
            })
            .collect();
        eprintln!(
            "skipped {} whose external id was minted before: {}{}",
            crate::show::plural(outcome.skipped.len() as u64, "row"),
            shown.join(", "),
            if outcome.skipped.len() > 3 {
                ", ..."
            } else {
                ""
            }
        );
    }
    match outcome.error {
        None => {
            eprintln!(
                "minted {} in batch {} ({rate:.0} keys/s); results appended to {}",
                crate::show::plural(minted, "license"),
                outcome.batch_id,
                out_path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(IssuerError::Request(RequestError::BadRow { row, source })) => {
            // Batch fields are named as in the file, not as flags.
            let inner = match *source {
                e @ IssuerError::Request(RequestError::Invalid { .. }) => e.to_string(),
                e => CliError::from(e).what,
            };
            let done = minted_rows(minted, first_row, outcome.last_row, out_path);
            let what = if row == 0 {
                inner
            } else {
                format!("row {row}: {inner}")
            };
            let hint = if row == 0 {
                "fix the header row and run again".to_owned()
            } else if minted == 0 && row == first_row {
                format!("nothing was minted; fix row {row} and run the batch again")
            } else {
                format!(
                    "{done}; fix row {row} and resume with `keyseal issue --batch {} --out {} --start-row {row}`",
                    batch_path.display(),
                    out_path.display()
                )
            };
            Err(with_done(CliError::new(
                "bad_row",
                crate::error::exit::INPUT,
                what,
                hint,
            )))
        }
        Some(other) => {
            let mut e = CliError::from(other);
            let done = minted_rows(minted, first_row, outcome.last_row, out_path);
            e.hint = Some(format!(
                "{done}; {}then resume with --start-row {}",
                e.hint.map(|h| format!("{h}; ")).unwrap_or_default(),
                outcome.last_row.max(first_row - 1) + 1
            ));
            Err(with_done(e))
        }
    }
}

fn minted_rows(minted: u64, first: u64, last: u64, out: &Path) -> String {
    match minted {
        0 => "nothing was minted".to_owned(),
        _ if first == last => format!("row {first} is minted and in {}", out.display()),
        _ => format!("rows {first}-{last} are minted and in {}", out.display()),
    }
}
