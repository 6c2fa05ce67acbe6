//! Platforms: a build for a platform its base image does not provide fails before buildx starts,
//! and BuildKit's warnings that a build used a base of another platform fail it before any tag
//! moves.
//!
//! BuildKit only warns (`InvalidBaseImagePlatform`) when a `FROM` resolves to an image of another
//! platform — a local image, or a single-platform one in a registry — and builds on: the result
//! is labelled with the requested platform but holds the base's files (an "arm64" image whose
//! `uname -m` says x86_64). The base a variant builds from (`BASE_IMAGE`) is checked against the
//! local store first; any other `FROM` is caught by BuildKit's warning, read from the build's
//! metadata file, while the image is still under its staging tag (see `run`).

use anyhow::{bail, Result};

use crate::config::{Base, Variant};
use crate::docker::{self, BuildWarning, LocalPlatform};

/// BuildKit's rules that say a build mixed platforms.
const PLATFORM_RULES: &[&str] = &["InvalidBaseImagePlatform"];

/// Fails, naming the platform and the fix, when the local image `base` lacks one of `platforms`.
/// A base that is not local is left to BuildKit (a registry index without the platform is an
/// error there; a single-platform image, a warning that fails the build after it ran).
pub(crate) fn check_base(
    variant: &Variant,
    base: &str,
    offline_base: &Base,
    platforms: &[String],
) -> Result<()> {
    let mut missing = Vec::new();
    let mut has = None;
    for platform in platforms {
        match docker::local_platform(base, platform)? {
            LocalPlatform::Provided | LocalPlatform::NotLocal => {}
            LocalPlatform::Missing { default } => {
                missing.push(platform.as_str());
                has = Some(default);
            }
        }
    }
    let Some(has) = has else {
        return Ok(());
    };
    bail!(
        "{}",
        missing_platform_message(
            &variant.name,
            base,
            (base == offline_base.image).then_some(offline_base.platforms.as_slice()),
            &missing,
            &has
        )
    )
}

/// True when the Dockerfile declares the build argument `name` (`ARG NAME`, `ARG NAME=default`,
/// one of several names on an ARG line): only then does passing it choose the base.
pub(crate) fn declares_arg(dockerfile: &str, name: &str) -> bool {
    dockerfile.lines().any(|line| {
        let mut words = line.split_whitespace();
        words.next().is_some_and(|w| w.eq_ignore_ascii_case("ARG"))
            && words.any(|w| w.split('=').next() == Some(name))
    })
}

/// The error for a base image that lacks target platforms (pure). `offline_platforms`: when the
/// base is the offline base of `cargo xtask base`, the platforms `[base].platforms` lists.
pub(crate) fn missing_platform_message(
    variant: &str,
    base: &str,
    offline_platforms: Option<&[String]>,
    missing: &[&str],
    has: &str,
) -> String {
    let wanted = missing.join(", ");
    let how = match offline_platforms {
        // Listed, but the base in the store predates the list (or was built with --platform).
        Some(listed) if missing.iter().all(|m| listed.iter().any(|l| l == m)) => format!(
            "rebuild the offline base: `[base].platforms` in images.toml lists {wanted}, but the \
             {base} in the store was built without it (`cargo xtask base`, as root)"
        ),
        Some(listed) => {
            let unlisted: Vec<&str> = missing
                .iter()
                .copied()
                .filter(|m| !listed.iter().any(|l| l == m))
                .collect();
            let mut all: Vec<&str> = listed.iter().map(String::as_str).collect();
            all.extend(&unlisted);
            format!(
                "add {} to `[base].platforms` in images.toml and rebuild the offline base \
                 (`cargo xtask base`, as root), or build it once for these platforms \
                 (`cargo xtask base --platform {}`)",
                unlisted.join(", "),
                all.join(",")
            )
        }
        None => format!("pull or build {base} for {wanted}"),
    };
    format!(
        "cannot build `{variant}` for {wanted}: its base image {base} is {has} and has no {wanted} \
         variant, so the image would hold {has} files under a {wanted} label. Fix: {how}, or build \
         from a base in a registry that has {wanted} (`--build-arg BASE_IMAGE=debian:trixie-slim`), \
         or leave out --platform"
    )
}

/// BuildKit's warnings that the build used a base image of another platform.
pub(crate) fn platform_warnings(warnings: &[BuildWarning]) -> Vec<&BuildWarning> {
    warnings
        .iter()
        .filter(|w| {
            let rule = w.short.split(':').next().unwrap_or_default().trim();
            PLATFORM_RULES.contains(&rule)
        })
        .collect()
}

/// The error for a build BuildKit warned about (pure); `pushed`: the tags went to the registry.
pub(crate) fn warned_message(variant: &str, warnings: &[&BuildWarning], pushed: bool) -> String {
    let said: Vec<&str> = warnings.iter().map(|w| w.short.as_str()).collect();
    let tags = if pushed {
        "the pushed tags already point at it: push a fixed build over them"
    } else {
        "nothing was tagged"
    };
    format!(
        "the build of `{variant}` mixed platforms, BuildKit warned: {}; {tags}. Fix: build from a \
         base image that provides the target platform (build one, or take it from a registry that \
         has it), or leave out --platform",
        said.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(short: &str) -> BuildWarning {
        BuildWarning {
            short: short.into(),
            detail: vec![],
        }
    }

    #[test]
    fn the_missing_platform_error_names_the_platform_and_the_fix() {
        let amd64 = ["linux/amd64".to_string()];
        let m = missing_platform_message(
            "cpu-minimal",
            "localhost/debian:trixie-slim",
            Some(&amd64),
            &["linux/arm64"],
            "linux/amd64",
        );
        assert!(
            m.starts_with("cannot build `cpu-minimal` for linux/arm64: its base image localhost/debian:trixie-slim is linux/amd64"),
            "{m}"
        );
        assert!(
            m.contains("add linux/arm64 to `[base].platforms` in images.toml")
                && m.contains("`cargo xtask base --platform linux/amd64,linux/arm64`"),
            "{m}"
        );
        assert!(m.contains("--build-arg BASE_IMAGE="), "{m}");
        // Listed but not built into the base in the store: rebuild it.
        let both = ["linux/amd64".to_string(), "linux/arm64".into()];
        let m = missing_platform_message(
            "cpu-minimal",
            "localhost/debian:trixie-slim",
            Some(&both),
            &["linux/arm64"],
            "linux/amd64",
        );
        assert!(
            m.contains(
                "rebuild the offline base: `[base].platforms` in images.toml lists linux/arm64"
            ) && m.contains("(`cargo xtask base`, as root)")
                && !m.contains("--platform linux/"),
            "{m}"
        );
        // Only what is not listed is to be added.
        let m = missing_platform_message(
            "cpu",
            "localhost/debian:trixie-slim",
            Some(&both),
            &["linux/arm64", "linux/s390x"],
            "linux/amd64",
        );
        assert!(
            m.contains("add linux/s390x to `[base].platforms`")
                && m.contains("`cargo xtask base --platform linux/amd64,linux/arm64,linux/s390x`"),
            "{m}"
        );
        let m = missing_platform_message(
            "cpu",
            "my/base:1",
            None,
            &["linux/arm64", "linux/ppc64le"],
            "linux/amd64",
        );
        assert!(
            m.contains("for linux/arm64, linux/ppc64le")
                && m.contains("pull or build my/base:1")
                && !m.contains("cargo xtask base"),
            "{m}"
        );
    }

    #[test]
    fn only_a_declared_base_image_argument_chooses_the_base() {
        assert!(declares_arg(
            "ARG BASE_IMAGE=debian\nFROM ${BASE_IMAGE}\n",
            "BASE_IMAGE"
        ));
        assert!(declares_arg("  arg X=1 BASE_IMAGE\nFROM x\n", "BASE_IMAGE"));
        assert!(!declares_arg(
            "FROM localhost/debian:trixie-slim\n",
            "BASE_IMAGE"
        ));
        assert!(!declares_arg(
            "ARG BASE_IMAGE_TAG=1\n# ARG BASE_IMAGE\n",
            "BASE_IMAGE"
        ));
    }

    #[test]
    fn only_platform_warnings_fail_the_build() {
        let ws = [
            warning("InvalidBaseImagePlatform: Base image b was pulled with platform \"linux/amd64\", expected \"linux/arm64\" for current build (line 1)"),
            warning("FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 3)"),
        ];
        let found = platform_warnings(&ws);
        assert_eq!(found.len(), 1);
        let m = warned_message("app", &found, false);
        assert!(
            m.contains("InvalidBaseImagePlatform") && m.contains("nothing was tagged"),
            "{m}"
        );
        assert!(warned_message("app", &found, true).contains("pushed tags"));
        assert!(platform_warnings(&ws[1..]).is_empty());
    }
}
