//! Embeds the top-level `migrations/*.sql` into the crate at compile time.
//!
//! Generates `$OUT_DIR/migrations.rs`: a sorted `&[(&str, &str)]` of (version, SQL), where the
//! version is the file name without `.sql`. Embedding means `cargo run -p processor` works
//! from any working directory, and the binary carries exactly the schema it was built with.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = manifest_dir.join("../../migrations");
    // The directory's own mtime changes when a file is added or removed.
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) => panic!(
            "cannot read the migrations directory {}: {err}",
            dir.display()
        ),
    };
    for entry in entries {
        let path = match entry {
            Ok(entry) => entry.path(),
            Err(err) => panic!("cannot list {}: {err}", dir.display()),
        };
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(version) = name.strip_suffix(".sql") else {
            continue;
        };
        check_version(version, &path);
        println!("cargo:rerun-if-changed={}", path.display());
        files.push((version.to_owned(), path));
    }
    files.sort();
    for pair in files.windows(2) {
        if pair[0].0[..4] == pair[1].0[..4] {
            panic!(
                "two migrations share the number {}: {} and {}",
                &pair[0].0[..4],
                pair[0].0,
                pair[1].0
            );
        }
    }

    let mut out = String::from("/// (version, SQL) of every migration, in the order they apply.\n");
    out.push_str("pub(crate) static EMBEDDED: &[(&str, &str)] = &[\n");
    for (version, path) in &files {
        let abs =
            std::fs::canonicalize(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let _ = writeln!(
            out,
            "    ({version:?}, include_str!({:?})),",
            abs.display().to_string()
        );
    }
    out.push_str("];\n");

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(err) = std::fs::write(out_dir.join("migrations.rs"), out) {
        panic!("cannot write migrations.rs: {err}");
    }
}

/// `NNNN_name`: four digits, an underscore, then `[a-z0-9_]+`.
fn check_version(version: &str, path: &Path) {
    let bytes = version.as_bytes();
    let ok = bytes.len() > 5
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'_'
        && bytes[5..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
    if !ok {
        panic!(
            "migration file {} is not named NNNN_name.sql (name: [a-z0-9_])",
            path.display()
        );
    }
}
