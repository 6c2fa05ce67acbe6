//! What `.dockerignore` sends of a build context, by the rules of BuildKit's pattern matcher
//! (moby's `patternmatcher`): each line a pattern relative to the context root, `#` comments, `!`
//! exceptions, the last matching line deciding; a pattern that matches a directory matches
//! everything below it; `*` and `?` stop at `/`, `**` crosses it, `[...]` is a class.
//! Hand-written: no small crate implements these rules (gitignore's differ: a pattern without a
//! `/` matches at any depth there, and only at the root here).

use anyhow::{bail, Context, Result};
use camino::Utf8Path;

use crate::util::shown;

/// The rules of a `.dockerignore`.
#[derive(Debug, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    /// A `!` line: what it matches is sent after all.
    exception: bool,
    /// The cleaned pattern, as written (for what an exception may reach).
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    /// `?`: one character but `/`.
    One,
    /// `*`: any run of characters without `/`.
    Star,
    /// `**` not followed by `/`: anything.
    Any,
    /// `**/`: any number of directories, none included.
    Dirs,
    /// `[...]`: ranges (a single character is a range of one), negated by a leading `^` or `!`.
    Class(bool, Vec<(char, char)>),
}

impl Ignore {
    /// The rules of `<context>/.dockerignore` (none when there is no such file).
    pub fn of(context: &Utf8Path) -> Result<Ignore> {
        let path = context.join(".dockerignore");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ignore::parse(&text).with_context(|| format!("reading {}", shown(&path))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ignore::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", shown(&path))),
        }
    }

    pub fn parse(text: &str) -> Result<Ignore> {
        let mut rules = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if pattern.is_empty() {
                bail!("`{line}`: an exception names no pattern");
            }
            let text = clean(pattern);
            let tokens = tokens(&text).with_context(|| format!("`{line}`"))?;
            rules.push(Rule {
                exception,
                text,
                tokens,
            });
        }
        Ok(Ignore { rules })
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            if rule.exception == excluded && rule_matches(&rule.tokens, path) {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// Whether an exception could send something below the excluded directory `dir`.
    pub fn may_reach_below(&self, dir: &str) -> bool {
        self.rules.iter().filter(|r| r.exception).any(|r| {
            let literal: String = r
                .text
                .chars()
                .take_while(|c| !"*?[\\".contains(*c))
                .collect();
            literal.starts_with(&format!("{dir}/")) || dir.starts_with(literal.as_str())
        })
    }
}

/// A pattern matches a path, or one of the directories above it.
fn rule_matches(tokens: &[Token], path: &str) -> bool {
    let chars: Vec<char> = path.chars().collect();
    let ends = chars
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == '/')
        .map(|(i, _)| i);
    ends.chain([chars.len()])
        .any(|end| glob(tokens, &chars[..end]))
}

fn glob(tokens: &[Token], s: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return s.is_empty();
    };
    match first {
        Token::Char(c) => s.first() == Some(c) && glob(rest, &s[1..]),
        Token::One => s.first().is_some_and(|c| *c != '/') && glob(rest, &s[1..]),
        Token::Class(negated, ranges) => {
            s.first().is_some_and(|c| {
                let inside = ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&c));
                *c != '/' && inside != *negated
            }) && glob(rest, &s[1..])
        }
        Token::Star => {
            let run = s.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|i| glob(rest, &s[i..]))
        }
        Token::Any => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Token::Dirs => {
            glob(rest, s) || (1..=s.len()).any(|i| s[i - 1] == '/' && glob(rest, &s[i..]))
        }
    }
}

/// Go's `filepath.Clean` of a pattern, without a leading `/`: `./a//b/` is `a/b`.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

fn tokens(pattern: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (token, used) = match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') && chars.get(i + 2) == Some(&'/') => {
                (Token::Dirs, 3)
            }
            '*' if chars.get(i + 1) == Some(&'*') => (Token::Any, 2),
            '*' => (Token::Star, 1),
            '?' => (Token::One, 1),
            '\\' => match chars.get(i + 1) {
                Some(c) => (Token::Char(*c), 2),
                None => bail!("ends in an escape with nothing to escape"),
            },
            '[' => class(&chars[i + 1..]).map(|(t, n)| (t, n + 1))?,
            c => (Token::Char(c), 1),
        };
        out.push(token);
        i += used;
    }
    Ok(out)
}

/// A class after its `[`: the token and the characters it took, `]` included.
fn class(chars: &[char]) -> Result<(Token, usize)> {
    let negated = matches!(chars.first(), Some('^' | '!'));
    let mut i = usize::from(negated);
    let mut ranges = Vec::new();
    while let Some(&c) = chars.get(i) {
        if c == ']' && (!ranges.is_empty() || i > usize::from(negated)) {
            return Ok((Token::Class(negated, ranges), i + 1));
        }
        let lo = if c == '\\' {
            i += 1;
            *chars.get(i).context("an unterminated class")?
        } else {
            c
        };
        let hi = match (chars.get(i + 1), chars.get(i + 2)) {
            (Some('-'), Some(&hi)) if hi != ']' => {
                i += 2;
                hi
            }
            _ => lo,
        };
        if hi < lo {
            bail!("the class range {lo}-{hi} runs backwards");
        }
        ranges.push((lo, hi));
        i += 1;
    }
    bail!("an unterminated class")
}

/// Copies the entries of `<root>/<rel>` that `ignore` lets through into `<dest>/<rel>`.
pub fn copy_tree(root: &Utf8Path, rel: &str, ignore: &Ignore, dest: &Utf8Path) -> Result<()> {
    let dir = root.join(rel);
    for entry in dir
        .read_dir_utf8()
        .with_context(|| format!("listing {}", shown(&dir)))?
    {
        let entry = entry.with_context(|| format!("listing {}", shown(&dir)))?;
        let path = match rel {
            "" => entry.file_name().to_owned(),
            _ => format!("{rel}/{}", entry.file_name()),
        };
        let source = entry.path();
        if source == dest {
            continue;
        }
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", shown(source)))?;
        let excluded = ignore.excludes(&path);
        if kind.is_dir() {
            if !excluded {
                std::fs::create_dir_all(dest.join(&path))
                    .with_context(|| format!("creating {}", shown(dest.join(&path))))?;
            }
            if !excluded || ignore.may_reach_below(&path) {
                copy_tree(root, &path, ignore, dest)?;
            }
        } else if !excluded {
            copy_entry(source, &dest.join(&path), kind.is_symlink())?;
        }
    }
    Ok(())
}

fn copy_entry(source: &Utf8Path, target: &Utf8Path, symlink: bool) -> Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", shown(parent)))?;
    }
    if symlink {
        let link =
            std::fs::read_link(source).with_context(|| format!("reading {}", shown(source)))?;
        #[cfg(unix)]
        std::os::unix::fs::symlink(&link, target)
            .with_context(|| format!("linking {}", shown(target)))?;
        #[cfg(not(unix))]
        bail!(
            "{} is a symbolic link ({}): copy it by hand",
            shown(source),
            link.display()
        );
    } else {
        std::fs::copy(source, target).with_context(|| format!("copying {}", shown(source)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "# comment\n*\n!app/requirements.lock\n!app/docker/*.py\n\
                        !app/src/voxserve/\n**/__pycache__\n**/*.py[cod]\n";

    #[test]
    fn the_repository_allow_list_sends_what_the_dockerfiles_copy() {
        let ignore = Ignore::parse(REPO).unwrap();
        for sent in [
            "app/requirements.lock",
            "app/docker/smoke.py",
            "app/src/voxserve/__init__.py",
            "app/src/voxserve/api/routes.py",
        ] {
            assert!(!ignore.excludes(sent), "{sent}");
        }
        for left in [
            "Dockerfile.cpu",
            ".dockerignore",
            "app/pyproject.toml",
            "app/docker/run.sh",
            "app/docker/sub/x.py",
            "app/src/voxserve/__pycache__/a.cpython-313.pyc",
            "app/src/voxserve/a.pyc",
            "target/debug/xtask",
        ] {
            assert!(ignore.excludes(left), "{left}");
        }
        assert!(ignore.may_reach_below("app"));
        assert!(ignore.may_reach_below("app/src"));
        assert!(!ignore.may_reach_below("target"));
    }

    #[test]
    fn patterns_follow_the_engine_s_rules() {
        let excludes = |rules: &str, path: &str| Ignore::parse(rules).unwrap().excludes(path);
        // At the root only, unless `**` says otherwise; a directory takes its contents along.
        assert!(excludes("node_modules", "node_modules/a/b.js"));
        assert!(!excludes("node_modules", "web/node_modules/a.js"));
        assert!(excludes("**/node_modules", "web/node_modules/a.js"));
        assert!(excludes("**/node_modules", "node_modules"));
        // Cleaned like a path: a leading `/` or `./`, a trailing `/`.
        assert!(excludes("/docs/", "docs/a.md"));
        assert!(excludes("./docs", "docs/a.md"));
        // `*` and `?` stop at `/`; classes, ranges and negation; escapes.
        assert!(!excludes("*.md", "docs/a.md"));
        assert!(excludes("docs/?.md", "docs/a.md"));
        assert!(excludes("file[0-9].txt", "file7.txt"));
        assert!(!excludes("file[^0-9].txt", "file7.txt"));
        assert!(excludes("a\\*b", "a*b") && !excludes("a\\*b", "axb"));
        // The last matching line decides.
        assert!(!excludes("*.md\n!README.md", "README.md"));
        assert!(excludes("*.md\n!README.md\nREADME.md", "README.md"));
        // Lines Docker refuses.
        assert!(Ignore::parse("!").is_err());
        assert!(Ignore::parse("a[b").is_err());
        assert!(Ignore::parse("[z-a]").is_err());
    }
}
