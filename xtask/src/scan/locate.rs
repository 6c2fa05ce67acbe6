//! Where in this repository a finding comes from, for SARIF locations GitHub can show: the
//! Dockerfile line that made the layer a package is in (the `FROM` of the base for the base
//! image's layers, the `RUN … apt-get install` line for what a build step installed), and for a
//! Python package the lockfile line that pins it. Pure: texts in, line numbers out.
//!
//! Layers are traced to instructions through the image history Trivy copies into its report
//! (`created_by` of each history entry that made a layer), matched from the last layer
//! backwards against the layer-making instructions of the target's stages, so that layers
//! left over at the start are the base image's.

use camino::{Utf8Path, Utf8PathBuf};
use std::collections::{BTreeMap, HashMap};

use crate::util::pep503_name;

/// One Dockerfile instruction with the lines it spans.
#[derive(Debug, Clone)]
pub(crate) struct Instruction {
    /// Upper case: `RUN`, `COPY`, `FROM`, …
    pub(crate) keyword: String,
    /// 1-based line of the keyword.
    pub(crate) line: usize,
    /// Every line of the instruction (continuations, heredoc bodies), comments left out.
    pub(crate) lines: Vec<(usize, String)>,
    /// The arguments as one string: continuations joined, the escape character removed.
    pub(crate) args: String,
    /// The body of a heredoc it opens (`RUN <<EOF` … `EOF`), which history records instead.
    pub(crate) heredoc: Option<String>,
}

#[derive(Debug, Clone)]
struct Stage {
    /// Index of its FROM in `instructions`.
    from: usize,
    /// The image or stage it starts from.
    base: String,
    name: Option<String>,
    /// Indices of its other instructions.
    body: Vec<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct Dockerfile {
    pub(crate) instructions: Vec<Instruction>,
    stages: Vec<Stage>,
    /// The `ARG`s before the first `FROM` (the only ones a `FROM` can use), with defaults.
    global_args: Vec<(String, Option<String>)>,
}

/// Parses a Dockerfile's instructions: line continuations with its escape character (`\`, or
/// the one of an `# escape=` directive), comment lines, and heredocs (`<<EOF` … `EOF`).
pub(crate) fn parse(text: &str) -> Dockerfile {
    let instructions = instructions(text);
    let (stages, global_args) = stages(&instructions);
    Dockerfile {
        instructions,
        stages,
        global_args,
    }
}

fn instructions(text: &str) -> Vec<Instruction> {
    let escape = escape_char(text);
    let mut instructions: Vec<Instruction> = Vec::new();
    let mut current: Option<Instruction> = None;
    let mut heredoc: Option<(String, bool)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(open) = &heredoc {
            if heredoc_line(instructions.last_mut(), open, n, raw) {
                heredoc = None;
            }
            continue;
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (content, continues) = match raw.trim_end().strip_suffix(escape) {
            Some(rest) => (rest, true),
            None => (raw, false),
        };
        match current.as_mut() {
            Some(instr) => {
                instr.lines.push((n, raw.to_string()));
                instr.args.push_str(content);
            }
            None => current = Some(Instruction::start(n, raw, content)),
        }
        if !continues {
            let instr = current.take().expect("an instruction is open");
            heredoc = heredoc_word(&instr);
            instructions.push(instr);
        }
    }
    instructions.extend(current);
    instructions
}

impl Instruction {
    /// The instruction whose first line is `raw` (line `n`), `content` without its escape.
    fn start(n: usize, raw: &str, content: &str) -> Instruction {
        let content = content.trim_start();
        let (keyword, args) = content
            .split_once(char::is_whitespace)
            .unwrap_or((content, ""));
        Instruction {
            keyword: keyword.to_ascii_uppercase(),
            line: n,
            lines: vec![(n, raw.to_string())],
            args: args.to_string(),
            heredoc: None,
        }
    }
}

/// Adds line `n` of an open heredoc (`word`, whether tabs are stripped) to the instruction
/// that opened it; true on its terminator.
fn heredoc_line(
    instr: Option<&mut Instruction>,
    open: &(String, bool),
    n: usize,
    raw: &str,
) -> bool {
    let (word, strip_tabs) = open;
    let body = if *strip_tabs {
        raw.trim_start_matches('\t')
    } else {
        raw
    };
    let done = body == word;
    if let Some(instr) = instr {
        instr.lines.push((n, raw.to_string()));
        if !done {
            let text = instr.heredoc.get_or_insert_with(String::new);
            text.push_str(raw);
            text.push('\n');
        }
    }
    done
}

/// The stages, and the `ARG`s before the first `FROM` with their defaults.
fn stages(instructions: &[Instruction]) -> (Vec<Stage>, Vec<(String, Option<String>)>) {
    let mut stages: Vec<Stage> = Vec::new();
    let mut global_args = Vec::new();
    for (i, instr) in instructions.iter().enumerate() {
        if instr.keyword == "FROM" {
            stages.push(Stage::new(i, &instr.args));
        } else if let Some(stage) = stages.last_mut() {
            stage.body.push(i);
        } else if instr.keyword == "ARG" {
            global_args.extend(instr.args.split_whitespace().map(
                |word| match word.split_once('=') {
                    Some((name, default)) => (
                        name.to_string(),
                        Some(default.trim_matches('"').to_string()),
                    ),
                    None => (word.to_string(), None),
                },
            ));
        }
    }
    (stages, global_args)
}

impl Stage {
    /// The stage a `FROM` with `args` (instruction `from`) starts.
    fn new(from: usize, args: &str) -> Stage {
        let words: Vec<&str> = args
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        let name = match words.as_slice() {
            [_, as_, name, ..] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
            _ => None,
        };
        Stage {
            from,
            base: words.first().map(|w| w.to_string()).unwrap_or_default(),
            name,
            body: Vec::new(),
        }
    }
}

/// `FROM runtime-${WITH_TORCH}` with the build arguments (else the global `ARG` defaults)
/// substituted: `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME-default}`.
fn expand(word: &str, args: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = word;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, default, used) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => {
                    let body = &inner[..end];
                    let (name, default) =
                        match body.split_once(":-").or_else(|| body.split_once('-')) {
                            Some((n, d)) => (n, Some(d)),
                            None => (body, None),
                        };
                    (name, default, end + 2)
                }
                None => (after, None, after.len()),
            }
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..len], None, len)
        };
        if name.is_empty() {
            out.push('$');
        } else if let Some(value) = args(name).or(default.map(str::to_string)) {
            out.push_str(&value);
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

fn escape_char(text: &str) -> char {
    for line in text.lines() {
        let Some(directive) = line.trim().strip_prefix('#') else {
            break;
        };
        if let Some((key, value)) = directive.split_once('=') {
            if key.trim().eq_ignore_ascii_case("escape") {
                return value.trim().chars().next().unwrap_or('\\');
            }
        }
    }
    '\\'
}

/// The terminator of a heredoc an instruction opens (`<<EOF`, `<<-"EOF"`), and whether
/// leading tabs are stripped before comparing.
fn heredoc_word(instr: &Instruction) -> Option<(String, bool)> {
    if !matches!(instr.keyword.as_str(), "RUN" | "COPY" | "ADD") {
        return None;
    }
    let at = instr.args.find("<<")?;
    let rest = &instr.args[at + 2..];
    let (rest, strip_tabs) = match rest.strip_prefix('-') {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let word: String = rest
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some((word, strip_tabs))
}

impl Dockerfile {
    /// The stages `target` is built from, the first one (which starts from an image) first.
    /// None: the last stage. A `FROM` naming its stage through build arguments
    /// (`FROM runtime-${WITH_TORCH}`) is followed with `build_args` (else the `ARG` defaults).
    fn chain(&self, target: Option<&str>, build_args: &BTreeMap<String, String>) -> Vec<&Stage> {
        let arg = |name: &str| {
            build_args.get(name).cloned().or_else(|| {
                self.global_args
                    .iter()
                    .find(|(n, _)| n == name)
                    .and_then(|(_, d)| d.clone())
            })
        };
        let find = |name: &str| {
            self.stages
                .iter()
                .position(|s| {
                    s.name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .or_else(|| {
                    name.parse::<usize>()
                        .ok()
                        .filter(|i| *i < self.stages.len())
                })
        };
        let mut index = match target {
            Some(t) => find(t),
            None => self.stages.len().checked_sub(1),
        };
        let mut chain = Vec::new();
        while let Some(i) = index {
            if chain
                .iter()
                .any(|s: &&Stage| std::ptr::eq(*s, &self.stages[i]))
            {
                break;
            }
            let stage = &self.stages[i];
            chain.push(stage);
            // A stage can only build on an earlier one.
            index = find(&expand(&stage.base, &arg)).filter(|p| *p < i);
        }
        chain.reverse();
        chain
    }
}

/// A place in a file of the repository.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Place {
    pub(crate) file: Utf8PathBuf,
    /// 1-based.
    pub(crate) line: usize,
    /// Why this line: `base image`, `RUN`, `lockfile`, …
    pub(crate) why: &'static str,
}

/// Finds places for one image built from one Dockerfile.
pub(crate) struct Locator<'a> {
    dockerfile_path: Utf8PathBuf,
    dockerfile: &'a Dockerfile,
    /// The first stage's FROM: where the base image's layers come from.
    base_from: usize,
    /// The target stage's FROM: the fallback for layers not traced to an instruction.
    target_from: usize,
    /// Layer diff ID → the instruction that made it (None: a layer of the base image).
    layers: HashMap<String, Option<usize>>,
    lockfiles: &'a [(Utf8PathBuf, String)],
}

/// Instructions that make a layer (BuildKit: `RUN`, `COPY`, `ADD`, and `WORKDIR` when it
/// creates the directory).
const LAYER_MAKERS: [&str; 4] = ["RUN", "COPY", "ADD", "WORKDIR"];

/// Words on an install line, for a package not named on it.
const INSTALLERS: [&str; 8] = [
    "apt-get install",
    "apt install",
    "apk add",
    "dnf install",
    "microdnf install",
    "yum install",
    "zypper install",
    "tdnf install",
];

impl<'a> Locator<'a> {
    /// `layer_commands`: each layer's diff ID and `created_by`, oldest first; `build_args`: the
    /// variant's, which pick the stages a `FROM` names through arguments.
    pub(crate) fn new(
        dockerfile_path: &Utf8Path,
        dockerfile: &'a Dockerfile,
        target: Option<&str>,
        build_args: &BTreeMap<String, String>,
        layer_commands: &[(String, String)],
        lockfiles: &'a [(Utf8PathBuf, String)],
    ) -> Locator<'a> {
        let chain = dockerfile.chain(target, build_args);
        let base_from = chain.first().map_or(0, |s| s.from);
        let target_from = chain.last().map_or(0, |s| s.from);
        let makers: Vec<usize> = chain
            .iter()
            .flat_map(|s| s.body.iter().copied())
            .filter(|i| LAYER_MAKERS.contains(&dockerfile.instructions[*i].keyword.as_str()))
            .collect();
        // From the newest layer back: the image's last layers are the target's instructions.
        let mut traced: HashMap<usize, usize> = HashMap::new();
        let mut remaining = makers.len();
        for (at, (_, created_by)) in layer_commands.iter().enumerate().rev() {
            let found = (0..remaining)
                .rev()
                .find(|&k| made_by(&dockerfile.instructions[makers[k]], created_by));
            if let Some(k) = found {
                traced.insert(at, makers[k]);
                remaining = k;
            }
        }
        // Older than every traced layer (or no instruction of ours makes one): the base's.
        let oldest = traced.keys().min().copied();
        let mut layers = HashMap::new();
        for (at, (diff_id, _)) in layer_commands.iter().enumerate() {
            if let Some(i) = traced.get(&at) {
                layers.insert(diff_id.clone(), Some(*i));
            } else if makers.is_empty() || oldest.is_some_and(|o| at < o) {
                layers.insert(diff_id.clone(), None);
            }
        }
        Locator {
            dockerfile_path: dockerfile_path.to_path_buf(),
            dockerfile,
            base_from,
            target_from,
            layers,
            lockfiles,
        }
    }

    fn at(&self, line: usize, why: &'static str) -> Place {
        Place {
            file: self.dockerfile_path.clone(),
            line,
            why,
        }
    }

    /// The instruction that made a layer: (index, `base image` when it is the base's FROM).
    fn layer_instruction(&self, diff_id: &str) -> (usize, &'static str) {
        match self.layers.get(diff_id) {
            Some(Some(i)) => (*i, "instruction"),
            Some(None) => (self.base_from, "base image"),
            None => (self.target_from, "stage"),
        }
    }

    /// The line that made the layer `diff_id`.
    pub(crate) fn layer(&self, diff_id: &str) -> Place {
        let (i, why) = self.layer_instruction(diff_id);
        self.at(self.dockerfile.instructions[i].line, why)
    }

    /// An OS package: the base's FROM, or the line of the instruction that installed it —
    /// the one naming the package (or its source package), else its install command.
    pub(crate) fn os_package(&self, diff_id: &str, names: &[&str]) -> Place {
        let (i, why) = self.layer_instruction(diff_id);
        let instr = &self.dockerfile.instructions[i];
        if why != "instruction" {
            return self.at(instr.line, why);
        }
        for name in names.iter().filter(|n| !n.is_empty()) {
            if let Some((n, _)) = instr.lines.iter().find(|(_, l)| names_package(l, name)) {
                return self.at(*n, "install line");
            }
        }
        match instr
            .lines
            .iter()
            .find(|(_, l)| INSTALLERS.iter().any(|w| l.contains(w)))
        {
            Some((n, _)) => self.at(*n, "install line"),
            None => self.at(instr.line, why),
        }
    }

    /// A Python package: the lockfile line that pins it, else the layer's instruction.
    pub(crate) fn python_package(&self, diff_id: &str, name: &str) -> Place {
        let wanted = pep503_name(name);
        for (path, text) in self.lockfiles {
            for (i, line) in text.lines().enumerate() {
                if requirement_name(line).is_some_and(|n| pep503_name(n) == wanted) {
                    return Place {
                        file: path.clone(),
                        line: i + 1,
                        why: "lockfile",
                    };
                }
            }
        }
        self.layer(diff_id)
    }
}

/// Whether `created_by` (a history entry) is what `instr` records.
fn made_by(instr: &Instruction, created_by: &str) -> bool {
    let by = created_by.trim();
    let by = by.strip_suffix("# buildkit").unwrap_or(by).trim();
    let by = squash(by);
    let Some(rest) = by.strip_prefix(&format!("{} ", instr.keyword)) else {
        return false;
    };
    match instr.keyword.as_str() {
        // `RUN |2 A=1 B=2 /bin/sh -c <command>`: the command is the end, flags are dropped.
        // A heredoc's body stands in history where the command would.
        "RUN" => {
            let command = match &instr.heredoc {
                Some(body) => squash(body),
                None => squash(strip_flags(&instr.args)),
            };
            let command = exec_form(&command).unwrap_or(command);
            !command.is_empty() && rest.ends_with(&command)
        }
        // Flags differ (`--from` is dropped, `--chown` kept): compare sources and destination.
        "COPY" | "ADD" => {
            let words = |s: &str| -> Vec<String> {
                let s = exec_form(s).unwrap_or_else(|| s.to_string());
                s.split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .map(str::to_owned)
                    .collect()
            };
            let ours = words(&instr.args);
            !ours.is_empty() && ours == words(rest)
        }
        _ => squash(&instr.args) == rest,
    }
}

/// The arguments after leading `--flag` words (`RUN --mount=… cmd` → `cmd`).
fn strip_flags(args: &str) -> &str {
    let mut rest = args.trim_start();
    while rest.starts_with("--") {
        rest = rest
            .split_once(char::is_whitespace)
            .map_or("", |(_, r)| r)
            .trim_start();
    }
    rest
}

/// `["a", "b"]` → `a b`.
fn exec_form(args: &str) -> Option<String> {
    let words: Vec<String> = serde_json::from_str(args.trim()).ok()?;
    Some(words.join(" "))
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a Dockerfile line names `package` as a word (`python3`, `python3=3.13.5-1`,
/// `python3:amd64`, `"python3"`).
fn names_package(line: &str, package: &str) -> bool {
    line.split(|c: char| c.is_whitespace() || c == '\\')
        .map(|w| w.trim_matches(|c| matches!(c, '"' | '\'' | ';' | ',' | '(' | ')')))
        .map(|w| w.split(['=', ':']).next().unwrap_or(w))
        .any(|w| w == package)
}

/// The distribution name a requirements line pins (`starlette==1.10.0 \` → `starlette`).
fn requirement_name(line: &str) -> Option<&str> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with(['#', '-']) {
        return None;
    }
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(line.len());
    (end > 0).then(|| &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = r#"# syntax check: comments are skipped
ARG BASE_IMAGE=debian:trixie-slim

FROM ${BASE_IMAGE} AS base
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean \
 && apt-get update \
 # a comment inside the continuation
 && apt-get install -y --no-install-recommends python3 \
 && python3 --version

FROM base AS deps
RUN apt-get install -y binutils

FROM base AS app
COPY --from=deps --chown=0:0 /opt/venv /opt/venv
RUN <<EOF
echo heredoc
EOF
WORKDIR /opt/app
"#;

    /// The history BuildKit writes for the `app` target, base image first.
    fn history() -> Vec<(String, String)> {
        [
            ("sha256:base", "ADD rootfs.tar / # buildkit"),
            (
                "sha256:apt",
                "RUN /bin/bash -euo pipefail -c rm -f /etc/apt/apt.conf.d/docker-clean  && apt-get update  && apt-get install -y --no-install-recommends python3  && python3 --version # buildkit",
            ),
            ("sha256:venv", "COPY --chown=0:0 /opt/venv /opt/venv # buildkit"),
            ("sha256:heredoc", "RUN /bin/bash -euo pipefail -c echo heredoc\n # buildkit"),
            ("sha256:workdir", "WORKDIR /opt/app"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    #[test]
    fn instructions_span_their_continuation_lines() {
        let d = parse(DOCKERFILE);
        let run = &d.instructions[3];
        assert_eq!(run.keyword, "RUN");
        assert_eq!(run.line, 6);
        let lines: Vec<usize> = run.lines.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, [6, 7, 8, 10, 11]);
        assert!(run.args.contains("python3  && python3"), "{}", run.args);
        let heredoc = d.instructions.iter().find(|i| i.line == 18).unwrap();
        assert_eq!(heredoc.lines.len(), 3);
        assert_eq!(d.instructions.last().unwrap().keyword, "WORKDIR");
        assert_eq!(d.stages.len(), 3);
        assert_eq!(d.stages[2].name.as_deref(), Some("app"));
        let chain: Vec<usize> = d
            .chain(Some("app"), &BTreeMap::new())
            .iter()
            .map(|s| s.from)
            .collect();
        assert_eq!(chain.len(), 2, "app builds on base, not on deps");
        assert_eq!(d.instructions[chain[0]].line, 4);
    }

    #[test]
    fn stages_named_through_build_arguments_are_followed() {
        let d = parse(
            "ARG BASE_IMAGE=debian\nARG WITH_TORCH=1\nARG RUNTIME=debian\n\
             FROM ${BASE_IMAGE} AS base\n\
             FROM base AS runtime-debian\nRUN apt-get install -y python3\n\
             FROM scratch AS runtime-distroless\n\
             FROM runtime-${RUNTIME} AS runtime\n\
             FROM runtime AS runtime-0\nFROM runtime AS runtime-1\n\
             FROM runtime-${WITH_TORCH:-1} AS app\nCOPY a /a\n",
        );
        let froms = |args: &[(&str, &str)]| -> Vec<usize> {
            let args = args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            d.chain(Some("app"), &args)
                .iter()
                .map(|s| d.instructions[s.from].line)
                .collect()
        };
        // The defaults: app ← runtime-1 ← runtime ← runtime-debian ← base.
        assert_eq!(froms(&[]), [4, 5, 8, 10, 11]);
        assert_eq!(froms(&[("WITH_TORCH", "0")]), [4, 5, 8, 9, 11]);
        // distroless starts from scratch: its chain has no base image stage.
        assert_eq!(froms(&[("RUNTIME", "distroless")]), [7, 8, 10, 11]);
        assert_eq!(
            expand("$A-${B}-${C:-c}-$", &|n| (n != "C")
                .then(|| n.to_lowercase())),
            "a-b-c-$"
        );
    }

    #[test]
    fn packages_point_at_the_line_that_brought_them() {
        let d = parse(DOCKERFILE);
        let path = Utf8Path::new("/repo/Dockerfile");
        let lock = vec![(
            Utf8PathBuf::from("/repo/requirements.lock"),
            "# header\nannotated-doc==0.0.7 \\\n    --hash=sha256:00\nStarlette==1.10.0 \\\n"
                .to_string(),
        )];
        let l = Locator::new(path, &d, Some("app"), &BTreeMap::new(), &history(), &lock);
        let base = l.os_package("sha256:base", &["libc6", "glibc"]);
        assert_eq!((base.line, base.why), (4, "base image"));
        // Named on the line.
        assert_eq!(
            l.os_package("sha256:apt", &["python3", "python3-defaults"])
                .line,
            10
        );
        // A dependency: the install line.
        let dep = l.os_package("sha256:apt", &["libpython3.13-minimal", "python3.13"]);
        assert_eq!((dep.line, dep.why), (10, "install line"));
        assert_eq!(l.layer("sha256:venv").line, 17);
        assert_eq!(l.layer("sha256:heredoc").line, 18);
        assert_eq!(l.layer("sha256:workdir").line, 21);
        let pin = l.python_package("sha256:venv", "starlette");
        assert_eq!((pin.line, pin.why), (4, "lockfile"));
        assert_eq!(pin.file, "/repo/requirements.lock");
        assert_eq!(l.python_package("sha256:venv", "annotated_doc").line, 2);
        // Not pinned: the layer's instruction.
        assert_eq!(l.python_package("sha256:venv", "pip").line, 17);
        // Unknown layer: the target stage's FROM.
        assert_eq!(l.layer("sha256:other").line, 16);
    }

    #[test]
    fn a_package_named_on_its_own_line_is_found_there() {
        let d = parse(
            "FROM debian AS app\nRUN apt-get update \\\n && apt-get install -y \\\n      curl \\\n      python3=3.13.5-1\n",
        );
        let history = vec![
            ("sha256:base".to_string(), "ADD rootfs.tar / # buildkit".to_string()),
            (
                "sha256:apt".to_string(),
                "RUN /bin/sh -c apt-get update  && apt-get install -y       curl       python3=3.13.5-1 # buildkit".to_string(),
            ),
        ];
        let l = Locator::new(
            Utf8Path::new("/r/Dockerfile"),
            &d,
            None,
            &BTreeMap::new(),
            &history,
            &[],
        );
        assert_eq!(
            l.os_package("sha256:apt", &["python3", "python3-defaults"])
                .line,
            5
        );
        assert_eq!(l.os_package("sha256:apt", &["curl", "curl"]).line, 4);
        // Neither named: the install command's line.
        assert_eq!(
            l.os_package("sha256:apt", &["libcurl4", "curl-src"]).line,
            3
        );
        assert_eq!(l.os_package("sha256:base", &["libc6", "glibc"]).line, 1);
    }

    #[test]
    fn an_image_of_only_base_layers_points_at_the_from() {
        let d = parse("FROM localhost/debian:trixie-slim\nLABEL a=b\n");
        let history = vec![(
            "sha256:base".to_string(),
            "ADD rootfs.tar / # buildkit".to_string(),
        )];
        let l = Locator::new(
            Utf8Path::new("/r/Dockerfile"),
            &d,
            None,
            &BTreeMap::new(),
            &history,
            &[],
        );
        assert_eq!(l.layer("sha256:base").line, 1);
        assert_eq!(l.os_package("sha256:base", &["tar"]).why, "base image");
    }

    #[test]
    fn words_and_names() {
        assert!(names_package(
            " && apt-get install -y python3 \\",
            "python3"
        ));
        assert!(names_package("apt-get install python3=3.13.5-1", "python3"));
        assert!(!names_package("apt-get install python3.13", "python3"));
        assert_eq!(requirement_name("fastapi==0.165.0 \\"), Some("fastapi"));
        assert_eq!(requirement_name("    --hash=sha256:00"), None);
        assert_eq!(
            requirement_name("numpy==2.4.6 ; python_full_version < '3.12' \\"),
            Some("numpy")
        );
        assert_eq!(pep503_name("Typing__Extensions.x"), "typing-extensions-x");
        assert_eq!(strip_flags("--mount=a --network=none  echo hi"), "echo hi");
        // As BuildKit records them (seen with buildx 0.29): exec form, heredoc COPY.
        let d = parse(
            "FROM x\nRUN [\"sh\", \"-c\", \"echo exec > /e\"]\nCOPY <<EOF /x.txt\nhello\nEOF\n",
        );
        assert!(made_by(
            &d.instructions[1],
            "RUN sh -c echo exec > /e # buildkit"
        ));
        assert!(made_by(&d.instructions[2], "COPY <<EOF /x.txt # buildkit"));
        assert!(!made_by(&d.instructions[2], "COPY <<EOF /y.txt # buildkit"));
        assert_eq!(
            exec_form(r#"["python3", "-m", "x"]"#).as_deref(),
            Some("python3 -m x")
        );
    }
}
