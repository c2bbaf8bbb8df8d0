//! Batch files: CSV with a header row, or JSONL (one JSON object a line),
//! with the field names of [`crate::request::FIELDS`].
//!
//! Rows count data records from 1: the CSV header is not a row, and blank
//! JSONL lines are skipped without counting.
//!
//! * `entitlements`: in CSV a list separated by spaces, commas or
//!   semicolons; in JSONL that or an array of strings.
//! * `ext`: in CSV `key=value` pairs separated by semicolons, or one column
//!   per key named `ext.KEY`; in JSONL an object or the CSV form.

use std::io::{BufRead, Read};
use std::path::Path;

use crate::error::RequestError;
use crate::error::{Error, Result};
use crate::request::{FIELDS, RequestFields, parse_ext, split_list};

/// The format of a batch file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    /// The format of a file by its extension (`.csv`, `.jsonl`, `.ndjson`).
    #[must_use]
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// Rows of a batch file, each with its row number.
pub type Rows<'r> = Box<dyn Iterator<Item = Result<(u64, RequestFields)>> + Send + 'r>;

fn set(f: &mut RequestFields, name: &str, value: String) -> Result<()> {
    let v = Some(value);
    match name {
        "product" => f.product = v,
        "customer" => f.customer = v,
        "plan" => f.plan = v,
        "expires" => f.expires = v,
        "not_before" => f.not_before = v,
        "grace" => f.grace = v,
        "device" => f.device = v,
        "device_match" => f.device_match = v,
        "max_version" => f.max_version = v,
        "external_id" => f.external_id = v,
        "entitlements" => f.entitlements = split_list(v.as_deref().unwrap_or("")),
        "ext" => {
            for item in v
                .as_deref()
                .unwrap_or("")
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                f.ext.push(parse_ext(item)?);
            }
        }
        other => {
            if let Some(key) = other.strip_prefix("ext.") {
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    f.ext.push((key.to_owned(), v));
                }
            } else {
                return Err(unknown_field(other));
            }
        }
    }
    Ok(())
}

fn unknown_field(name: &str) -> Error {
    Error::invalid(
        name,
        format!(
            "unknown field (known fields: {}, ext.KEY)",
            FIELDS.join(", ")
        ),
    )
}

/// Reads CSV rows. A bad header is reported as row 0.
pub fn csv_rows<'r, R: Read + Send + 'r>(reader: R) -> Rows<'r> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = match rdr.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect::<Vec<_>>(),
        Err(e) => {
            return Box::new(std::iter::once(Err(Error::Request(RequestError::BadRow {
                row: 0,
                source: Box::new(csv_error(e)),
            }))));
        }
    };
    for h in &headers {
        if !FIELDS.contains(&h.as_str()) && !h.starts_with("ext.") {
            return Box::new(std::iter::once(Err(Error::Request(RequestError::BadRow {
                row: 0,
                source: Box::new(Error::invalid(
                    "header",
                    format!(
                        "unknown column `{h}` (known columns: {}, ext.KEY)",
                        FIELDS.join(", ")
                    ),
                )),
            }))));
        }
    }
    let mut row = 0u64;
    let mut failed = false;
    Box::new(rdr.into_records().map_while(move |rec| {
        if failed {
            return None;
        }
        row += 1;
        let out = rec.map_err(csv_error).and_then(|rec| {
            let mut f = RequestFields::default();
            for (name, value) in headers.iter().zip(rec.iter()) {
                if !value.is_empty() {
                    set(&mut f, name, value.to_owned())?;
                }
            }
            Ok((row, f))
        });
        failed = out.is_err();
        Some(out.map_err(|e| {
            Error::Request(RequestError::BadRow {
                row,
                source: Box::new(e),
            })
        }))
    }))
}

fn csv_error(e: csv::Error) -> Error {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => Error::invalid(
            "csv",
            format!(
                "{len} fields where the header has {expected_len} (quote values that contain commas)"
            ),
        ),
        csv::ErrorKind::Utf8 { .. } => {
            Error::invalid("csv", "not valid UTF-8 (save the file as UTF-8)")
        }
        _ => Error::invalid("csv", e.to_string()),
    }
}

/// Reads JSONL rows.
pub fn jsonl_rows<'r, R: BufRead + Send + 'r>(reader: R) -> Rows<'r> {
    let mut row = 0u64;
    let mut failed = false;
    Box::new(
        reader
            .lines()
            .filter(|l| l.as_ref().map_or(true, |s| !s.trim().is_empty()))
            .map_while(move |line| {
                if failed {
                    return None;
                }
                row += 1;
                let out = line
                    .map_err(|e| Error::invalid("jsonl", format!("cannot read the line: {e}")))
                    .and_then(|l| parse_json_row(&l))
                    .map(|f| (row, f));
                failed = out.is_err();
                Some(out.map_err(|e| {
                    Error::Request(RequestError::BadRow {
                        row,
                        source: Box::new(e),
                    })
                }))
            }),
    )
}

fn parse_json_row(line: &str) -> Result<RequestFields> {
    use serde_json::Value;
    let v: Value = serde_json::from_str(line)
        .map_err(|e| Error::invalid("jsonl", format!("not a JSON object: {e}")))?;
    let Value::Object(map) = v else {
        return Err(Error::invalid("jsonl", "each line must be a JSON object"));
    };
    let mut f = RequestFields::default();
    for (k, v) in map {
        let text = |v: &Value| -> Result<String> {
            match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(Error::invalid(k.as_str(), "must be a string")),
            }
        };
        match (k.as_str(), &v) {
            (_, Value::Null) => {}
            ("entitlements", Value::Array(items)) => {
                for it in items {
                    f.entitlements.push(match it {
                        Value::String(s) => s.clone(),
                        _ => {
                            return Err(Error::invalid(
                                "entitlements",
                                "must be a list of strings",
                            ));
                        }
                    });
                }
            }
            ("ext", Value::Object(obj)) => {
                for (ek, ev) in obj {
                    f.ext.push((
                        ek.clone(),
                        text(ev).map_err(|_| {
                            Error::invalid("ext", format!("value of `{ek}` must be a string"))
                        })?,
                    ));
                }
            }
            (name, other) => set(&mut f, name, text(other)?)?,
        }
    }
    Ok(f)
}

/// Opens a batch file of either format; `-` is standard input (give the format).
pub fn open(path: &Path, format: Format) -> Result<Rows<'static>> {
    let reader: Box<dyn BufRead + Send> = if path == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
        Box::new(std::io::BufReader::with_capacity(1 << 16, f))
    };
    Ok(match format {
        Format::Csv => csv_rows(reader),
        Format::Jsonl => jsonl_rows(reader),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_jsonl_agree() {
        let csv = "product,customer,plan,expires,entitlements,ext,ext.seats\n\
                   acme,cus_1,pro,365d,\"sso, export\",region=eu,10\n";
        let jsonl = "{\"product\":\"acme\",\"customer\":\"cus_1\",\"plan\":\"pro\",\"expires\":\"365d\",\
                     \"entitlements\":[\"sso\",\"export\"],\"ext\":{\"region\":\"eu\",\"seats\":10}}\n\n";
        let a: Vec<_> = csv_rows(csv.as_bytes()).collect::<Result<_>>().unwrap();
        let b: Vec<_> = jsonl_rows(jsonl.as_bytes()).collect::<Result<_>>().unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].0, 1);
        assert_eq!(a[0].1.resolve(0).unwrap(), b[0].1.resolve(0).unwrap());
    }

    #[test]
    fn bad_rows_are_numbered_and_stop_the_stream() {
        let csv = "product,customer,plan,expires\nacme,c1,pro,1d\nacme,c2\nacme,c3,pro,1d\n";
        let rows: Vec<_> = csv_rows(csv.as_bytes()).collect();
        assert_eq!(rows.len(), 2);
        assert!(matches!(
            rows[1],
            Err(Error::Request(RequestError::BadRow { row: 2, .. }))
        ));
        let rows: Vec<_> = csv_rows("product,expiry\n".as_bytes()).collect();
        assert!(matches!(
            rows[0],
            Err(Error::Request(RequestError::BadRow { row: 0, .. }))
        ));
        let rows: Vec<_> = jsonl_rows("{\"product\":\"a\"}\n[1]\n".as_bytes()).collect();
        assert!(matches!(
            rows[1],
            Err(Error::Request(RequestError::BadRow { row: 2, .. }))
        ));
    }
}
