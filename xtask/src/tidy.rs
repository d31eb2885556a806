//! `#[test] fn tidy()`: repository rules checked by plain `cargo test` (rust-analyzer's tidy).
//!
//! - every `.rs` file of the workspace (crates, bins, xtask, fuzz) opens with a `//!` comment
//!   saying what it is;
//! - every crate's `Cargo.toml` inherits the workspace lints (`[lints] workspace = true`).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !matches!(
                name.as_ref(),
                "target" | "corpus" | "artifacts" | "node_modules"
            ) && !name.starts_with('.')
            {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn crate_manifests(root: &Path) -> Vec<PathBuf> {
    let mut manifests = vec![root.join("xtask/Cargo.toml")];
    for group in ["crates", "bins"] {
        for entry in std::fs::read_dir(root.join(group))
            .into_iter()
            .flatten()
            .flatten()
        {
            let manifest = entry.path().join("Cargo.toml");
            if manifest.is_file() {
                manifests.push(manifest);
            }
        }
    }
    manifests
}

#[test]
fn tidy() {
    let root = crate::ci::project_root();
    let mut problems = Vec::new();

    let mut files = Vec::new();
    for dir in ["crates", "bins", "xtask", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 10,
        "found only {} .rs files under {}",
        files.len(),
        root.display()
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if !text.trim_start().starts_with("//!") {
            problems.push(format!(
                "{}: does not open with a `//!` comment",
                file.display()
            ));
        }
    }
    for manifest in crate_manifests(&root) {
        let text = std::fs::read_to_string(&manifest).unwrap_or_default();
        let inherits = text
            .split("\n[")
            .any(|section| section.starts_with("lints]") && section.contains("workspace = true"));
        if !inherits {
            problems.push(format!(
                "{}: missing `[lints] workspace = true`",
                manifest.display()
            ));
        }
    }
    assert!(problems.is_empty(), "tidy:\n{}", problems.join("\n"));
}
