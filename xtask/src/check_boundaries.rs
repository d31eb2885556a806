//! `cargo xtask check-boundaries`: the crate boundaries of ARCHITECTURE.md, from `cargo metadata`.
//!
//! Fails when
//! - `live-gateway` depends on `position-writer`, or `position-writer` on `live-gateway`,
//!   directly or through anything under them (normal, build and dev dependencies alike);
//! - a library crate (a workspace member without a `bin` target) depends on a bin crate (a
//!   workspace member with one, e.g. `bins/processor`), through any kind of dependency.
//!
//! The check reads the resolved dependency graph (`resolve.nodes[].deps[].dep_kinds`), so
//! renamed dependencies and target-specific ones are seen too.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::process::Command;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// Pairs of crates that must never depend on each other, in either direction.
pub(crate) const SEPARATED: &[(&str, &str)] = &[("live-gateway", "position-writer")];

/// Entry point from `main.rs`.
pub(crate) fn run(_args: &[String]) -> anyhow::Result<()> {
    let output = Command::new(crate::ci::cargo())
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(crate::ci::project_root())
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("parsing cargo metadata's JSON")?;
    let violations = violations(&metadata)?;
    if violations.is_empty() {
        println!(
            "check-boundaries: ok (live-gateway ⟂ position-writer; no library depends on a bin)"
        );
        return Ok(());
    }
    for violation in &violations {
        eprintln!("check-boundaries: {violation}");
    }
    bail!("{} crate-boundary violation(s)", violations.len())
}

/// A workspace member as the check sees it.
#[derive(Debug)]
struct Package {
    name: String,
    is_bin: bool,
    member: bool,
}

/// Every rule broken by the graph in `metadata` (`cargo metadata --format-version 1` output),
/// one human-readable line each, with the dependency path that breaks it.
pub(crate) fn violations(metadata: &Value) -> anyhow::Result<Vec<String>> {
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .context("metadata has no workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut packages = BTreeMap::new();
    for package in metadata["packages"]
        .as_array()
        .context("metadata has no packages")?
    {
        let id = package["id"].as_str().context("package without id")?;
        let is_bin = package["targets"].as_array().is_some_and(|targets| {
            targets.iter().any(|target| {
                target["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"))
            })
        });
        packages.insert(
            id.to_owned(),
            Package {
                name: package["name"].as_str().unwrap_or("?").to_owned(),
                is_bin,
                member: members.contains(id),
            },
        );
    }
    // id -> [(dependency id, kinds)]
    let mut edges: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .context("metadata has no resolve graph (was it run with --no-deps?)")?;
    for node in nodes {
        let id = node["id"]
            .as_str()
            .context("resolve node without id")?
            .to_owned();
        let mut deps = Vec::new();
        for dep in node["deps"].as_array().into_iter().flatten() {
            let Some(dep_id) = dep["pkg"].as_str() else {
                continue;
            };
            let kinds: Vec<&str> = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| k["kind"].as_str().unwrap_or("normal"))
                .collect();
            let kinds = if kinds.is_empty() {
                "normal".to_owned()
            } else {
                kinds.join("+")
            };
            deps.push((dep_id.to_owned(), kinds));
        }
        edges.insert(id, deps);
    }
    let id_of = |name: &str| {
        packages
            .iter()
            .find(|(_, p)| p.member && p.name == name)
            .map(|(id, _)| id.clone())
    };
    let name_of = |id: &str| packages.get(id).map_or(id.to_owned(), |p| p.name.clone());

    let mut found = Vec::new();
    for (a, b) in SEPARATED {
        for (from, to) in [(a, b), (b, a)] {
            let (Some(from_id), Some(to_id)) = (id_of(from), id_of(to)) else {
                continue;
            };
            if let Some(path) = path_between(&edges, &from_id, &to_id) {
                found.push(format!(
                    "{from} must not depend on {to}, but does: {}",
                    render_path(&path, &name_of)
                ));
            }
        }
    }
    for (id, package) in &packages {
        if !package.member || package.is_bin {
            continue;
        }
        for (dep_id, kinds) in edges.get(id).into_iter().flatten() {
            if packages
                .get(dep_id)
                .is_some_and(|dep| dep.member && dep.is_bin)
            {
                found.push(format!(
                    "library crate {} depends on bin crate {} ({kinds})",
                    package.name,
                    name_of(dep_id)
                ));
            }
        }
    }
    Ok(found)
}

/// The shortest dependency path from `from` to `to` as (id, kind of the edge into it).
fn path_between(
    edges: &BTreeMap<String, Vec<(String, String)>>,
    from: &str,
    to: &str,
) -> Option<Vec<(String, String)>> {
    let mut parent: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = BTreeSet::from([from]);
    while let Some(current) = queue.pop_front() {
        for (dep, kind) in edges.get(current).into_iter().flatten() {
            // A dependency's own dev-dependencies are not built for its dependents.
            if current != from && kind.split('+').all(|k| k == "dev") {
                continue;
            }
            if !seen.insert(dep.as_str()) {
                continue;
            }
            parent.insert(dep.as_str(), (current, kind.as_str()));
            if dep == to {
                let mut path = vec![(to.to_owned(), kind.clone())];
                let mut at = current;
                while at != from {
                    let (up, kind) = parent[at];
                    path.push((at.to_owned(), kind.to_owned()));
                    at = up;
                }
                path.push((from.to_owned(), String::new()));
                path.reverse();
                return Some(path);
            }
            queue.push_back(dep.as_str());
        }
    }
    None
}

fn render_path(path: &[(String, String)], name_of: &dyn Fn(&str) -> String) -> String {
    path.iter()
        .map(|(id, kind)| {
            if kind.is_empty() {
                name_of(id)
            } else {
                format!("-({kind})-> {}", name_of(id))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `(name, is_bin, member, [(dependency, kind)])`.
    type Spec = (
        &'static str,
        bool,
        bool,
        &'static [(&'static str, Option<&'static str>)],
    );

    /// A synthetic `cargo metadata` graph.
    fn metadata(crates: &[Spec]) -> Value {
        let id = |name: &str| format!("path+file:///ws/{name}#0.1.0");
        let packages: Vec<Value> = crates
            .iter()
            .map(|(name, is_bin, _, _)| {
                let kind = if *is_bin { "bin" } else { "lib" };
                json!({"id": id(name), "name": name, "targets": [{"kind": [kind], "name": name}]})
            })
            .collect();
        let nodes: Vec<Value> = crates
            .iter()
            .map(|(name, _, _, deps)| {
                let deps: Vec<Value> = deps
                    .iter()
                    .map(|(dep, kind)| {
                        json!({"name": dep, "pkg": id(dep),
                               "dep_kinds": [{"kind": kind, "target": null}]})
                    })
                    .collect();
                json!({"id": id(name), "deps": deps})
            })
            .collect();
        let members: Vec<String> = crates
            .iter()
            .filter(|c| c.2)
            .map(|(name, ..)| id(name))
            .collect();
        json!({"packages": packages, "workspace_members": members, "resolve": {"nodes": nodes}})
    }

    const HEALTHY: &[Spec] = &[
        ("teltonika-codec", false, true, &[]),
        (
            "position-writer",
            false,
            true,
            &[("teltonika-codec", None), ("test-support", Some("dev"))],
        ),
        (
            "live-gateway",
            false,
            true,
            &[("teltonika-codec", None), ("test-support", Some("dev"))],
        ),
        ("test-support", false, true, &[("tokio", None)]),
        ("tokio", false, false, &[]),
        (
            "processor",
            true,
            true,
            &[("position-writer", None), ("live-gateway", None)],
        ),
    ];

    #[test]
    fn the_intended_graph_passes() {
        assert_eq!(
            violations(&metadata(HEALTHY)).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_direct_dependency_between_the_paths_fails() {
        let mut crates = HEALTHY.to_vec();
        crates[2] = ("live-gateway", false, true, &[("position-writer", None)]);
        let found = violations(&metadata(&crates)).unwrap();
        assert_eq!(
            found,
            [
                "live-gateway must not depend on position-writer, but does: \
              live-gateway -(normal)-> position-writer"
            ]
        );
    }

    #[test]
    fn a_transitive_dev_dependency_fails_in_the_other_direction_too() {
        let mut crates = HEALTHY.to_vec();
        // position-writer's tests use test-support, which (wrongly) uses live-gateway.
        crates[3] = (
            "test-support",
            false,
            true,
            &[("tokio", None), ("live-gateway", None)],
        );
        let found = violations(&metadata(&crates)).unwrap();
        assert_eq!(
            found,
            [
                "position-writer must not depend on live-gateway, but does: \
              position-writer -(dev)-> test-support -(normal)-> live-gateway"
            ]
        );
    }

    #[test]
    fn a_dependency_s_own_dev_dependencies_do_not_count() {
        let mut crates = HEALTHY.to_vec();
        // test-support's own tests use live-gateway: not part of position-writer's build.
        crates[3] = (
            "test-support",
            false,
            true,
            &[("live-gateway", Some("dev"))],
        );
        assert_eq!(
            violations(&metadata(&crates)).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_build_dependency_counts() {
        let mut crates = HEALTHY.to_vec();
        crates[1] = (
            "position-writer",
            false,
            true,
            &[("live-gateway", Some("build"))],
        );
        let found = violations(&metadata(&crates)).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("-(build)-> live-gateway"), "{found:?}");
    }

    #[test]
    fn a_library_depending_on_a_bin_fails() {
        let mut crates = HEALTHY.to_vec();
        crates[3] = ("test-support", false, true, &[("processor", Some("dev"))]);
        let found = violations(&metadata(&crates)).unwrap();
        assert_eq!(
            found,
            ["library crate test-support depends on bin crate processor (dev)"]
        );
    }

    #[test]
    fn metadata_without_a_resolve_graph_is_an_error() {
        let mut value = metadata(HEALTHY);
        value["resolve"] = Value::Null;
        assert!(violations(&value).is_err());
    }
}
