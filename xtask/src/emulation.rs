//! Foreign platforms: which Debian architecture a buildx platform is, whether this machine runs
//! its binaries (natively, or through a binfmt_misc handler such as QEMU's), and the one-line fix
//! when it does not.
//!
//! The kernel's binfmt_misc table (`/proc/sys/fs/binfmt_misc`) is read and matched against the
//! ELF header of the platform's binaries, as the kernel itself matches: an enabled entry whose
//! magic, under its mask, equals the header. `arch-test` (Debian), when installed, has the last
//! word, since it runs a real binary of the architecture.

use anyhow::{bail, Result};
use camino::Utf8Path;

use crate::process::Cmd;

/// What mmdebstrap, the ELF header and QEMU call one buildx platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arch {
    /// `linux/arm64`, as buildx writes it.
    pub(crate) platform: &'static str,
    /// Debian's architecture name (`dpkg --print-architecture`), e.g. `arm64`.
    pub(crate) debian: &'static str,
    /// QEMU's name, as in `/usr/lib/binfmt.d/qemu-<name>.conf`, e.g. `aarch64`.
    pub(crate) qemu: &'static str,
    /// ELF class: 1 = 32-bit, 2 = 64-bit.
    class: u8,
    /// ELF data: 1 = little-endian, 2 = big-endian.
    data: u8,
    /// ELF `e_machine`.
    machine: u16,
}

/// The platforms Debian builds for (trixie's release and ports architectures buildx names).
const ARCHES: &[Arch] = &[
    arch("linux/amd64", "amd64", "x86_64", 2, 1, 62),
    arch("linux/arm64", "arm64", "aarch64", 2, 1, 183),
    arch("linux/arm/v7", "armhf", "arm", 1, 1, 40),
    arch("linux/arm/v5", "armel", "arm", 1, 1, 40),
    arch("linux/386", "i386", "i386", 1, 1, 3),
    arch("linux/ppc64le", "ppc64el", "ppc64le", 2, 1, 21),
    arch("linux/s390x", "s390x", "s390x", 2, 2, 22),
    arch("linux/riscv64", "riscv64", "riscv64", 2, 1, 243),
    arch("linux/mips64le", "mips64el", "mips64el", 2, 1, 8),
    arch("linux/loong64", "loong64", "loongarch64", 2, 1, 258),
];

const fn arch(
    platform: &'static str,
    debian: &'static str,
    qemu: &'static str,
    class: u8,
    data: u8,
    machine: u16,
) -> Arch {
    Arch {
        platform,
        debian,
        qemu,
        class,
        data,
        machine,
    }
}

/// The Debian architecture of a buildx platform; an error naming the ones Debian has.
pub(crate) fn debian_arch(platform: &str) -> Result<Arch> {
    match ARCHES.iter().find(|a| a.platform == platform) {
        Some(a) => Ok(*a),
        None => {
            let known: Vec<&str> = ARCHES.iter().map(|a| a.platform).collect();
            bail!(
                "`{platform}` has no Debian architecture; Debian builds for {}",
                known.join(", ")
            )
        }
    }
}

/// The platform this program runs on natively, e.g. `linux/amd64`.
pub(crate) fn host_platform() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "linux/amd64",
        "aarch64" => "linux/arm64",
        "x86" => "linux/386",
        "arm" => "linux/arm/v7",
        "powerpc64" => "linux/ppc64le",
        "s390x" => "linux/s390x",
        "riscv64" => "linux/riscv64",
        "loongarch64" => "linux/loong64",
        _ => "unknown",
    }
}

/// Whether `platform` runs on a CPU of `host` without emulation (x86-64 runs i386).
pub(crate) fn is_native(platform: &str, host: &str) -> bool {
    platform == host || (host == "linux/amd64" && platform == "linux/386")
}

/// The first 20 bytes of an executable of this architecture: what binfmt_misc matches.
fn elf_header(a: &Arch) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = a.class;
    h[5] = a.data;
    h[6] = 1; // EV_CURRENT
    let (e_type, machine) = if a.data == 2 {
        (2u16.to_be_bytes(), a.machine.to_be_bytes())
    } else {
        (2u16.to_le_bytes(), a.machine.to_le_bytes())
    };
    h[16..18].copy_from_slice(&e_type); // ET_EXEC
    h[18..20].copy_from_slice(&machine);
    h
}

/// One binfmt_misc entry, as `/proc/sys/fs/binfmt_misc/<name>` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handler {
    pub(crate) name: String,
    pub(crate) enabled: bool,
    pub(crate) interpreter: String,
    pub(crate) flags: String,
    offset: usize,
    magic: Vec<u8>,
    mask: Vec<u8>,
}

impl Handler {
    /// Parses an entry file (`enabled`, `interpreter …`, `flags: …`, `offset …`, `magic …`,
    /// `mask …`); None for extension-matching entries or text it does not understand.
    pub(crate) fn parse(name: &str, text: &str) -> Option<Handler> {
        let mut h = Handler {
            name: name.to_string(),
            enabled: false,
            interpreter: String::new(),
            flags: String::new(),
            offset: 0,
            magic: Vec::new(),
            mask: Vec::new(),
        };
        for line in text.lines() {
            let line = line.trim();
            if line == "enabled" {
                h.enabled = true;
            } else if let Some(v) = line.strip_prefix("interpreter ") {
                h.interpreter = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("flags:") {
                h.flags = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("offset ") {
                h.offset = v.trim().parse().ok()?;
            } else if let Some(v) = line.strip_prefix("magic ") {
                h.magic = hex(v.trim())?;
            } else if let Some(v) = line.strip_prefix("mask ") {
                h.mask = hex(v.trim())?;
            }
        }
        (!h.magic.is_empty()).then_some(h)
    }

    /// True when the kernel would hand `header` (a file's first bytes) to this entry.
    pub(crate) fn matches(&self, header: &[u8]) -> bool {
        let Some(bytes) = header.get(self.offset..self.offset + self.magic.len()) else {
            return false;
        };
        bytes
            .iter()
            .zip(&self.magic)
            .enumerate()
            .all(|(i, (b, m))| {
                let mask = self.mask.get(i).copied().unwrap_or(0xff);
                b & mask == m & mask
            })
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Where the kernel's binfmt_misc table is mounted.
pub(crate) const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// The state of binfmt_misc on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Table {
    /// `/proc/sys/fs/binfmt_misc` is not mounted (or not Linux).
    NotMounted,
    /// Mounted; `enabled` is the global switch (`status`).
    Mounted {
        enabled: bool,
        handlers: Vec<Handler>,
    },
}

/// Reads binfmt_misc from `dir` (normally [`BINFMT_DIR`]).
pub(crate) fn read_table(dir: &Utf8Path) -> Table {
    let Ok(status) = std::fs::read_to_string(dir.join("status")) else {
        return Table::NotMounted;
    };
    let mut handlers = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "status" || name == "register" {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                handlers.extend(Handler::parse(&name, &text));
            }
        }
    }
    handlers.sort_by(|a, b| a.name.cmp(&b.name));
    Table::Mounted {
        enabled: status.trim() == "enabled",
        handlers,
    }
}

/// How this machine runs binaries of a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Support {
    Native,
    /// Through this binfmt_misc entry (its interpreter, e.g. qemu-aarch64-static).
    Emulated {
        handler: String,
        interpreter: String,
    },
    /// Not at all; the reason, for the error.
    Missing(String),
}

/// Judges a platform against a binfmt_misc table (pure).
pub(crate) fn support(a: &Arch, host: &str, table: &Table) -> Support {
    if is_native(a.platform, host) {
        return Support::Native;
    }
    let header = elf_header(a);
    match table {
        Table::NotMounted => Support::Missing(format!(
            "binfmt_misc is not mounted at {BINFMT_DIR}, so the kernel runs no {} binaries",
            a.qemu
        )),
        Table::Mounted { enabled: false, .. } => Support::Missing(format!(
            "binfmt_misc is disabled ({BINFMT_DIR}/status says so)"
        )),
        Table::Mounted { handlers, .. } => {
            let matching: Vec<&Handler> = handlers.iter().filter(|h| h.matches(&header)).collect();
            let usable = matching.iter().find(|h| {
                h.enabled && (h.flags.contains('F') || Utf8Path::new(&h.interpreter).exists())
            });
            match (usable, matching.first()) {
                (Some(h), _) => Support::Emulated {
                    handler: h.name.clone(),
                    interpreter: h.interpreter.clone(),
                },
                (None, Some(h)) if !h.enabled => {
                    Support::Missing(format!("its binfmt_misc entry `{}` is disabled", h.name))
                }
                (None, Some(h)) => Support::Missing(format!(
                    "the interpreter of binfmt_misc entry `{}` ({}) is missing",
                    h.name, h.interpreter
                )),
                (None, None) => Support::Missing(format!(
                    "no binfmt_misc handler is registered for {} binaries",
                    a.qemu
                )),
            }
        }
    }
}

/// How this machine runs binaries of `platform`: the kernel's table, then `arch-test` (which
/// runs a real binary) when the table has no handler and arch-test is installed.
pub(crate) fn host_support(platform: &str) -> Result<Support> {
    let a = debian_arch(platform)?;
    let found = support(&a, host_platform(), &read_table(Utf8Path::new(BINFMT_DIR)));
    if let Support::Missing(_) = &found {
        if which::which("arch-test").is_ok() {
            let probe = Cmd::new("arch-test").arg(a.debian).output();
            let ok = probe.is_ok_and(|o| o.status.success());
            if ok {
                return Ok(Support::Native);
            }
        }
    }
    Ok(found)
}

/// The system the xtask runs on, as far as advice differs: on macOS and Windows the engine is
/// Docker Desktop's VM, which emulates other platforms itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Host {
    Linux,
    MacOs,
    Windows,
}

impl Host {
    pub(crate) fn current() -> Host {
        if cfg!(target_os = "macos") {
            Host::MacOs
        } else if cfg!(windows) {
            Host::Windows
        } else {
            Host::Linux
        }
    }
}

/// What to do when `platform` cannot run here (one sentence, for `error:` lines).
pub(crate) fn fix(platform: &str) -> String {
    fix_on(Host::current(), platform)
}

/// What to do when `platform` cannot run on `host` (pure).
pub(crate) fn fix_on(host: Host, platform: &str) -> String {
    let qemu = debian_arch(platform).map_or("ARCH", |a| a.qemu);
    let short = platform.rsplit('/').next().unwrap_or(platform);
    if host != Host::Linux {
        return format!(
            "Docker Desktop's VM emulates the common platforms; for {platform}, where Docker Hub \
             is reachable, `docker run --privileged --rm tonistiigi/binfmt --install {short}`"
        );
    }
    format!(
        "enable emulation for {platform}: as root, install QEMU's static user-mode emulators \
         (Debian/Ubuntu: `qemu-user-static`; `qemu-user` from Debian 13 on), mount binfmt_misc \
         if needed (`mount -t binfmt_misc binfmt_misc {BINFMT_DIR}`) and register the handler \
         (`cat /usr/lib/binfmt.d/qemu-{qemu}.conf > {BINFMT_DIR}/register`) — this \
         repository's `.ci/enable-emulation {short}` does all three — or, where Docker Hub is \
         reachable, `docker run --privileged --rm tonistiigi/binfmt --install {short}`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_AARCH64: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n\
        flags: POF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\n\
        mask ffffffffffffff00fffffffffffffffffeffffff\n";
    const PYTHON: &str =
        "enabled\ninterpreter /usr/bin/python3.11\nflags: \noffset 0\nmagic a70d0d0a\n";

    fn table(entries: &[(&str, &str)]) -> Table {
        Table::Mounted {
            enabled: true,
            handlers: entries
                .iter()
                .filter_map(|(n, t)| Handler::parse(n, t))
                .collect(),
        }
    }

    #[test]
    fn platforms_map_to_debian_and_qemu_names() {
        let a = debian_arch("linux/arm64").unwrap();
        assert_eq!((a.debian, a.qemu), ("arm64", "aarch64"));
        assert_eq!(debian_arch("linux/arm/v7").unwrap().debian, "armhf");
        assert_eq!(debian_arch("linux/ppc64le").unwrap().debian, "ppc64el");
        let err = debian_arch("linux/wasm").unwrap_err().to_string();
        assert!(
            err.contains("no Debian architecture") && err.contains("linux/arm64"),
            "{err}"
        );
    }

    #[test]
    fn qemus_aarch64_entry_matches_arm64_binaries_only() {
        let h = Handler::parse("qemu-aarch64", QEMU_AARCH64).unwrap();
        assert!(h.enabled && h.flags.contains('F'));
        let arm64 = debian_arch("linux/arm64").unwrap();
        assert!(h.matches(&elf_header(&arm64)));
        // ET_DYN (3) is covered by the mask's 0xfe on e_type.
        let mut pie = elf_header(&arm64);
        pie[16] = 3;
        assert!(h.matches(&pie));
        for other in [
            "linux/amd64",
            "linux/s390x",
            "linux/arm/v7",
            "linux/riscv64",
        ] {
            assert!(
                !h.matches(&elf_header(&debian_arch(other).unwrap())),
                "{other}"
            );
        }
        assert_eq!(Handler::parse("python3.11", PYTHON).unwrap().magic.len(), 4);
        assert_eq!(Handler::parse("x", "enabled\nextension .exe\n"), None);
    }

    #[test]
    fn support_is_native_emulated_or_missing_with_the_reason() {
        let host = "linux/amd64";
        let arm64 = debian_arch("linux/arm64").unwrap();
        let s390x = debian_arch("linux/s390x").unwrap();
        let t = table(&[("qemu-aarch64", QEMU_AARCH64), ("python3.11", PYTHON)]);
        assert_eq!(
            support(&debian_arch("linux/amd64").unwrap(), host, &t),
            Support::Native
        );
        assert_eq!(
            support(&debian_arch("linux/386").unwrap(), host, &t),
            Support::Native
        );
        assert!(
            matches!(support(&arm64, host, &t), Support::Emulated { handler, .. } if handler == "qemu-aarch64")
        );
        let Support::Missing(why) = support(&s390x, host, &t) else {
            panic!("s390x is not registered")
        };
        assert!(
            why.contains("no binfmt_misc handler") && why.contains("s390x"),
            "{why}"
        );
        let Support::Missing(why) = support(&arm64, host, &Table::NotMounted) else {
            panic!()
        };
        assert!(why.contains("not mounted"), "{why}");
        let disabled = QEMU_AARCH64.replace("enabled\n", "disabled\n");
        let Support::Missing(why) = support(&arm64, host, &table(&[("qemu-aarch64", &disabled)]))
        else {
            panic!()
        };
        assert!(why.contains("`qemu-aarch64` is disabled"), "{why}");
        // Without the F flag the interpreter must exist in this mount namespace.
        let gone = QEMU_AARCH64.replace("POF", "P").replace(
            "/usr/libexec/qemu-binfmt/aarch64-binfmt-P",
            "/nonexistent/qemu",
        );
        let Support::Missing(why) = support(&arm64, host, &table(&[("qemu-aarch64", &gone)]))
        else {
            panic!()
        };
        assert!(
            why.contains("/nonexistent/qemu") && why.contains("missing"),
            "{why}"
        );
    }

    #[test]
    fn the_fix_names_the_package_the_handler_and_the_script() {
        let f = fix_on(Host::Linux, "linux/s390x");
        assert!(f.contains("qemu-user-static"), "{f}");
        assert!(f.contains("/usr/lib/binfmt.d/qemu-s390x.conf"), "{f}");
        assert!(f.contains(".ci/enable-emulation s390x"), "{f}");
        assert!(f.contains("tonistiigi/binfmt --install s390x"), "{f}");
    }

    #[test]
    fn the_fix_is_the_one_for_the_host() {
        let linux = fix_on(Host::Linux, "linux/arm64");
        assert!(
            linux.contains("qemu-user-static") && linux.contains(".ci/enable-emulation arm64"),
            "{linux}"
        );
        for host in [Host::MacOs, Host::Windows] {
            let desktop = fix_on(host, "linux/s390x");
            assert!(desktop.contains("Docker Desktop") && desktop.contains("--install s390x"));
            for linux_only in ["binfmt_misc", "qemu-user-static", "enable-emulation"] {
                assert!(!desktop.contains(linux_only), "{host:?}: {desktop}");
            }
        }
    }
}
