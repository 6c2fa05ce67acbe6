//! Names docker and buildx take, checked before either runs: image references (the distribution
//! reference grammar) and platforms (`os/arch[/variant]`, the names buildx and containerd know).

use anyhow::{bail, Result};

/// What a reference may carry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reference {
    /// A repository name only (`voxserve`, `registry.example:5000/team/voxserve`): a tag is added.
    Repository,
    /// A name with an optional tag: what `docker build --tag` takes.
    Tagged,
}

const NAME_HELP: &str = "use lowercase letters, digits and the separators `.`, `_`, `__`, `-` \
     in `/`-separated parts, after an optional registry host[:port]/, e.g. \
     `registry.example:5000/team/voxserve`";
const TAG_HELP: &str =
    "a tag is 1 to 128 letters, digits, `_`, `.` and `-`, and does not start with `.` or `-`";

/// Checks an image reference against the distribution reference grammar:
/// `[host[:port]/]path[:tag]`, `path` made of lowercase components.
pub(crate) fn check_reference(s: &str, kind: Reference) -> Result<()> {
    if s.is_empty() {
        bail!("the image name is empty; {NAME_HELP}");
    }
    if s.contains('@') {
        bail!("`{s}` has a digest: name an image to tag, without `@…`");
    }
    // The tag follows the last `:` after the last `/` (a `:` before it is the registry's port).
    let slash = s.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match s[slash..].rfind(':') {
        Some(i) => (&s[..slash + i], Some(&s[slash + i + 1..])),
        None => (s, None),
    };
    if let Some(tag) = tag {
        if kind == Reference::Repository {
            bail!(
                "`{s}` has a tag (`:{tag}`): give the repository name alone, e.g. `{name}`; \
                 the tags are made from the variant name and the version"
            );
        }
        check_tag(tag).map_err(|e| anyhow::anyhow!("`{s}`: {e}"))?;
    }
    if let Err(why) = check_name(name) {
        bail!("`{s}` is not a valid image name: {why}; {NAME_HELP}");
    }
    Ok(())
}

/// Checks a tag: `[\w][\w.-]{0,127}`.
pub(crate) fn check_tag(tag: &str) -> Result<()> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let valid = (1..=128).contains(&tag.len())
        && tag.starts_with(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if !valid {
        bail!("`{tag}` is not a valid tag: {TAG_HELP}");
    }
    Ok(())
}

/// Why `name` (no tag) is not a repository name, or Ok.
fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.len() > 255 {
        return Err(format!("it is {} characters long, 255 at most", name.len()));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // As docker splits it: a registry has a `.`, a `:`, an uppercase letter or is `localhost`.
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains(['.', ':'])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase())
        {
            check_host(first)?;
            parts.remove(0);
        }
    }
    for part in parts {
        check_path_component(part)?;
    }
    Ok(())
}

fn check_host(host: &str) -> std::result::Result<(), String> {
    let (host_name, port) = if let Some(v6) = host.strip_prefix('[') {
        // An IPv6 address: `[::1]:5000`.
        let bad = || format!("registry `{host}` is not a valid IPv6 address[:port]");
        let (addr, rest) = v6.split_once(']').ok_or_else(bad)?;
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(bad());
        }
        let port = match rest {
            "" => None,
            rest => Some(rest.strip_prefix(':').ok_or_else(bad)?),
        };
        (None, port)
    } else {
        match host.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("registry `{host}` has a port that is not a number"));
        }
    }
    if let Some(h) = host_name {
        let component = |c: &str| {
            !c.is_empty()
                && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        };
        if !h.split('.').all(component) {
            return Err(format!(
                "registry host `{h}` is not a host name (letters, digits and inner `-`, \
                 in `.`-separated parts)"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+(([_.]|__|-+)[a-z0-9]+)*`
fn check_path_component(part: &str) -> std::result::Result<(), String> {
    if part.is_empty() {
        return Err("it has an empty part (`//`, or `/` at an end)".into());
    }
    if let Some(c) = part.chars().find(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "`{c}` is uppercase (repository names are lowercase)"
        ));
    }
    if let Some(c) = part
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return Err(if c == ' ' {
            "it has a space".to_string()
        } else {
            format!("`{c}` is not allowed")
        });
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !part.starts_with(alnum) || !part.ends_with(alnum) {
        return Err(format!("`{part}` starts or ends with a separator"));
    }
    // Runs of separators: `.`, `_`, `__` or any number of `-`.
    for run in part.split(alnum).filter(|r| !r.is_empty()) {
        if !matches!(run, "." | "_" | "__") && !run.chars().all(|c| c == '-') {
            return Err(format!("`{part}` has the separator `{run}`"));
        }
    }
    Ok(())
}

/// Operating systems of `os/arch` (Go's GOOS, as containerd and buildx name them).
const OSES: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
];

/// Architectures (Go's GOARCH) and the variants containerd knows for them.
const ARCHES: &[(&str, &[&str])] = &[
    ("386", &[]),
    ("amd64", &["v1", "v2", "v3", "v4"]),
    ("arm", &["v5", "v6", "v7", "v8"]),
    (
        "arm64",
        &[
            "v8", "v8.0", "v8.1", "v8.2", "v8.3", "v8.4", "v8.5", "v8.6", "v8.7", "v8.8", "v8.9",
            "v9", "v9.0", "v9.1", "v9.2", "v9.3", "v9.4", "v9.5",
        ],
    ),
    ("loong64", &[]),
    ("mips", &[]),
    ("mipsle", &[]),
    ("mips64", &[]),
    ("mips64le", &[]),
    ("ppc64", &[]),
    ("ppc64le", &["power8", "power9", "power10"]),
    ("riscv64", &[]),
    ("s390x", &[]),
    ("wasm", &[]),
];

/// Names other tools use, and the platform buildx calls them.
const ALIASES: &[(&str, &str)] = &[
    ("x86_64", "amd64"),
    ("x86-64", "amd64"),
    ("x64", "amd64"),
    ("aarch64", "arm64"),
    ("armhf", "arm/v7"),
    ("armel", "arm/v6"),
    ("i386", "386"),
    ("i686", "386"),
    ("x86", "386"),
];

/// Checks a platform `os/arch[/variant]` against the names buildx knows.
pub fn check_platform(s: &str) -> Result<()> {
    const HELP: &str = "write os/arch[/variant] as buildx does, e.g. linux/amd64, linux/arm64 or \
                        linux/arm/v7";
    let parts: Vec<&str> = s.split('/').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
        bail!("`{s}` is not a platform; {HELP}");
    }
    if s.chars().any(|c| c.is_ascii_uppercase()) {
        bail!(
            "`{s}` is not a platform: buildx names are lowercase, e.g. `{}`",
            s.to_ascii_lowercase()
        );
    }
    let (os, arch, variant) = (parts[0], parts[1], parts.get(2).copied());
    if !OSES.contains(&os) {
        bail!(
            "`{s}`: unknown operating system `{os}`; use one of {} ({HELP})",
            OSES.join(", ")
        );
    }
    if let Some((_, canonical)) = ALIASES.iter().find(|(alias, _)| *alias == arch) {
        bail!("`{s}`: buildx calls `{arch}` `{canonical}`; write `{os}/{canonical}`");
    }
    let Some((_, variants)) = ARCHES.iter().find(|(a, _)| *a == arch) else {
        let names: Vec<&str> = ARCHES.iter().map(|(a, _)| *a).collect();
        bail!(
            "`{s}`: unknown architecture `{arch}`; use one of {} ({HELP})",
            names.join(", ")
        );
    };
    if let Some(variant) = variant {
        if !variants.contains(&variant) {
            if variants.is_empty() {
                bail!("`{s}`: `{arch}` has no variants; write `{os}/{arch}`");
            }
            bail!(
                "`{s}`: unknown variant `{variant}` of `{arch}`; use one of {}",
                variants.join(", ")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Result<()>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn references_follow_the_distribution_grammar() {
        for ok in [
            "voxserve",
            "voxserve:cpu",
            "localhost/debian:trixie-slim",
            "registry.example:5000/team/vox-serve:1.0_rc.1",
            "a/b/c/d",
            "vox__serve",
            "vox---serve",
            "127.0.0.1:5000/x",
            "[::1]:5000/x:y",
            "Registry.Example/x",
            "localhost:5000/x",
        ] {
            check_reference(ok, Reference::Tagged).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, why) in [
            ("Vox Serve!", "`V` is uppercase"),
            ("vox serve", "has a space"),
            ("vox!", "`!` is not allowed"),
            ("team/Vox", "`V` is uppercase"),
            ("-vox", "starts or ends with a separator"),
            ("vox.", "starts or ends with a separator"),
            ("vox..serve", "the separator `..`"),
            ("vox___serve", "the separator `___`"),
            ("vox.-serve", "the separator `.-`"),
            ("team//vox", "empty part"),
            ("vox/", "empty part"),
            ("bad_host.example/x", "registry host"),
            ("host.example:port/x", "port that is not a number"),
            ("[zz]:5000/x", "IPv6"),
            ("", "empty"),
        ] {
            let e = err(check_reference(bad, Reference::Tagged));
            assert!(e.contains(why), "{bad}: {e}");
        }
        let long = "a".repeat(256);
        assert!(err(check_reference(&long, Reference::Tagged)).contains("255 at most"));
        assert!(err(check_reference("x@sha256:abc", Reference::Tagged)).contains("digest"));
        let e = err(check_reference("vox:-bad", Reference::Tagged));
        assert!(e.contains("not a valid tag"), "{e}");
        let e = err(check_reference("voxserve:latest", Reference::Repository));
        assert!(
            e.contains("has a tag (`:latest`)") && e.contains("`voxserve`"),
            "{e}"
        );
        check_reference("localhost:5000/voxserve", Reference::Repository).unwrap();
    }

    #[test]
    fn tags() {
        check_tag("cpu-minimal").unwrap();
        check_tag("0.1.0-cpu").unwrap();
        check_tag("_x").unwrap();
        check_tag(&"t".repeat(128)).unwrap();
        for bad in ["", ".x", "-x", "a+b", "a b", &"t".repeat(129)] {
            assert!(err(check_tag(bad)).contains("not a valid tag"), "{bad}");
        }
    }

    #[test]
    fn platforms_are_ones_buildx_knows() {
        for ok in [
            "linux/amd64",
            "linux/arm64",
            "linux/arm/v7",
            "linux/arm64/v8",
            "linux/amd64/v3",
            "linux/ppc64le",
            "linux/s390x",
            "linux/riscv64",
            "windows/amd64",
        ] {
            check_platform(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, why) in [
            ("linux", "not a platform"),
            ("linux/", "not a platform"),
            ("linux/amd64/v3/x", "not a platform"),
            ("Linux/AMD64", "lowercase, e.g. `linux/amd64`"),
            ("lunix/amd64", "unknown operating system `lunix`"),
            ("linux/amd46", "unknown architecture `amd46`"),
            ("linux/x86_64", "write `linux/amd64`"),
            ("linux/aarch64", "write `linux/arm64`"),
            ("linux/arm/v9", "unknown variant `v9` of `arm`"),
            ("linux/s390x/v1", "has no variants"),
        ] {
            let e = err(check_platform(bad));
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
