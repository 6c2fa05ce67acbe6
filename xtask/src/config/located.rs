//! Errors at a place in images.toml: `file:line:col: variant `NAME`: message`, and TOML type
//! errors said as the shape the key expects instead of serde's internal type names.

use camino::Utf8Path;
use std::ops::Range;

/// A string value with its place in the file.
pub(crate) type Str = toml::Spanned<String>;

/// A config file's path and text, to place errors in.
pub(crate) struct Located<'a> {
    pub(crate) path: &'a Utf8Path,
    pub(crate) text: &'a str,
}

impl Located<'_> {
    pub(crate) fn at(
        &self,
        span: Option<Range<usize>>,
        variant: Option<&str>,
        msg: impl std::fmt::Display,
    ) -> anyhow::Error {
        // A value from [defaults] names the variant that inherited it.
        let variant = match span.clone().map(|s| self.table_at(s.start)) {
            Some(Table::Variant(v)) => Some(format!("variant `{v}`")),
            Some(Table::Defaults) => variant.map(|v| format!("variant `{v}` (from [defaults])")),
            Some(Table::Other) => None,
            None | Some(Table::None) => variant.map(|v| format!("variant `{v}`")),
        };
        let place = match span {
            Some(span) => {
                let (line, col) = line_col(self.text, span.start);
                format!("{}:{line}:{col}", crate::util::shown(self.path))
            }
            None => crate::util::shown(self.path),
        };
        match variant {
            Some(v) => anyhow::anyhow!("{place}: {v}: {msg}"),
            None => anyhow::anyhow!("{place}: {msg}"),
        }
    }

    /// A TOML parse or type error, with serde's type names replaced by the shape the key takes.
    pub(crate) fn toml_error(&self, err: &toml::de::Error) -> anyhow::Error {
        let key = err.span().and_then(|s| key_before(self.text, s.start));
        let mut msg = explain(err.message().trim_end(), key.as_deref());
        if msg == "duplicate key" {
            // The span is the key itself.
            let repeated = err
                .span()
                .and_then(|s| self.text.get(s))
                .map(|k| k.trim().trim_matches('"'))
                .filter(|k| !k.is_empty());
            if let Some(k) = repeated {
                msg = format!("`{k}` is set twice in this table; keep one");
            }
        }
        self.at(err.span(), None, msg)
    }

    /// The table that encloses a byte offset: the last `[…]` header before it.
    fn table_at(&self, offset: usize) -> Table {
        // Up to the end of the line: a header names its own table.
        let end = self.text[offset.min(self.text.len())..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        let before = &self.text[..end];
        let header = before.lines().rev().find_map(|line| {
            let line = line.trim_start();
            line.starts_with('[')
                .then(|| line.trim_start_matches('[').trim_start().to_string())
        });
        let Some(header) = header else {
            return Table::None;
        };
        if let Some(rest) = header.strip_prefix("variants.") {
            let name: String = rest
                .trim_start_matches('"')
                .chars()
                .take_while(|c| !matches!(c, '.' | ']' | '"'))
                .collect();
            Table::Variant(name.trim().to_owned())
        } else if header.starts_with("defaults") {
            Table::Defaults
        } else {
            Table::Other
        }
    }
}

/// Places the errors of one variant.
pub(crate) struct At<'a> {
    pub(super) loc: &'a Located<'a>,
    pub(super) variant: &'a str,
}

impl At<'_> {
    /// The error at `span` (the file alone without one), naming the variant.
    pub(crate) fn err(
        &self,
        span: Option<Range<usize>>,
        msg: impl std::fmt::Display,
    ) -> anyhow::Error {
        self.loc.at(span, Some(self.variant), msg)
    }

    /// `key: message` at the value.
    pub(crate) fn bad(&self, value: &Str, key: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        self.err(Some(value.span()), format!("{key}: {msg}"))
    }
}

enum Table {
    /// Before the first header.
    None,
    Variant(String),
    Defaults,
    Other,
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The key a value at `offset` is assigned to (`key = value`, also inside inline tables), or
/// None for an array element or a table header.
fn key_before(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset)?.trim_end_matches([' ', '\t']);
    let before = before.strip_suffix('=')?.trim_end_matches([' ', '\t']);
    let start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '"' | '.')))
        .map_or(0, |i| i + 1);
    let key = before[start..].trim_matches('"');
    // A dotted key (`smoke.memory = …`) is named by its last part.
    let key = key.rsplit('.').next().unwrap_or(key).trim_matches('"');
    (!key.is_empty()).then(|| key.to_string())
}

/// What each key of images.toml takes, as written in the file.
fn shape_of(key: &str) -> Option<&'static str> {
    const STRINGS: &str = r#"an array of strings like ["…", "…"]"#;
    Some(match key {
        "project" => {
            r#"a table like { name = "voxserve", description = "…", licenses = "Apache-2.0" }"#
        }
        "base" => {
            r#"a table like { image = "localhost/debian:trixie-slim", suite = "trixie", source_date_epoch = 1764288000 }"#
        }
        "build" => r#"a table like { ca_bundle = "ca.crt", cache_dir = "target/cache" }"#,
        "defaults" => {
            r#"a table of variant settings like { dockerfile = "Dockerfile", image = "voxserve" }"#
        }
        "variants" => "tables `[variants.NAME]`, one for each variant",
        "budget" => r#"a table like { compressed = "2.5 GB", unpacked = "4 GB" }"#,
        "smoke" => r#"a table like { health_timeout = "120s", memory = "2g", cpus = "2" }"#,
        "scan" => r#"a table like { fail_on = ["CRITICAL", "HIGH"], ignore_unfixed = true }"#,
        "dive" => r#"a table like { lowest_efficiency = 0.99, highest_wasted_bytes = "5 MB" }"#,
        "lowest_efficiency" | "highest_user_wasted_percent" => "a ratio from 0 to 1, like 0.99",
        "build_args" => r#"a table of strings like { WITH_TORCH = "1" }"#,
        "json" => r#"a table of expected fields like { status = "ok" }"#,
        "exec" => {
            r#"an array of tables, each like { name = "imports", cmd = ["python3", "-c", "import voxserve"] } (or `[[….smoke.exec]]` sections)"#
        }
        "http" => {
            r#"an array of tables, each like { name = "health", path = "/health" } (or `[[….smoke.http]]` sections)"#
        }
        "cmd" => r#"an array of strings like ["python3", "-c", "print('ok')"]"#,
        "tags" | "platforms" | "env" | "labels" | "forbidden_paths" | "forbidden_packages"
        | "host_libraries" | "include" | "path_exclude" | "path_include" | "remove" | "fail_on"
        | "ignore" => STRINGS,
        "port" => "a port number from 1 to 65535",
        "status" => "an HTTP status from 100 to 599",
        "exit_code" => "an exit code from 0 to 255",
        "source_date_epoch" => "seconds since 1970-01-01 as a whole number, like 1764288000",
        "wav_seconds" => "a number of seconds like 2.0",
        "ignore_unfixed" | "torch_libraries" => "true or false",
        "cpus" => r#"a string like "1.5""#,
        "memory" => r#"a string like "2g""#,
        "health_timeout" => r#"a duration like "120s""#,
        "compressed" | "unpacked" | "highest_wasted_bytes" => r#"a size like "2.5 GB""#,
        "dockerfile" => r#"a path like "Dockerfile.cpu""#,
        "context" => r#"a directory like ".""#,
        "push_compression" => r#""gzip" or "zstd""#,
        _ => return None,
    })
}

/// serde's name of a type, as TOML calls it.
fn generic_shape(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" => "a whole number ≥ 0".into(),
        "i8" | "i16" | "i32" | "i64" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "an array".into(),
        "a map" => "a table".into(),
        other => match other.strip_prefix("struct ") {
            Some(_) => "a table".into(),
            None => other.into(),
        },
    }
}

/// `invalid type: string "x", expected struct RawBudget` → `budget must be a table like …, not
/// string "x"`; other messages pass unchanged.
fn explain(msg: &str, key: Option<&str>) -> String {
    let rest = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "));
    let Some((found, expected)) = rest.and_then(|r| r.split_once(", expected ")) else {
        // serde says "field" where TOML says "key".
        if let Some(rest) = msg.strip_prefix("missing field ") {
            return format!("missing key {rest}: add it to this table");
        }
        if let Some(rest) = msg.strip_prefix("unknown field ") {
            return match rest.split_once(", expected ") {
                Some((key, known)) => format!(
                    "unknown key {key}; the keys here are {}",
                    known.trim_start_matches("one of ")
                ),
                None => format!("unknown key {rest}"),
            };
        }
        return msg.to_string();
    };
    let shape = key
        .and_then(shape_of)
        .map(str::to_string)
        .unwrap_or_else(|| generic_shape(expected));
    match key {
        Some(key) => format!("`{key}` must be {shape}, not {found}"),
        None => format!("expected {shape}, not {found}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_is_one_based() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn keys_are_found_before_values() {
        let text = "budget = \"3 GB\"\nx = { a.b = 1, port= 2 }\ntags = [\"a\", 3]";
        assert_eq!(key_before(text, 9).as_deref(), Some("budget"));
        assert_eq!(key_before(text, 28).as_deref(), Some("b"));
        assert_eq!(key_before(text, 37).as_deref(), Some("port"));
        assert_eq!(key_before(text, text.len() - 2), None);
    }

    #[test]
    fn type_errors_say_the_shape_not_the_type() {
        assert_eq!(
            explain(
                "invalid type: string \"3 GB\", expected struct RawBudget",
                Some("budget")
            ),
            "`budget` must be a table like { compressed = \"2.5 GB\", unpacked = \"4 GB\" }, not string \"3 GB\""
        );
        assert_eq!(
            explain("invalid value: integer `70000`, expected u16", Some("port")),
            "`port` must be a port number from 1 to 65535, not integer `70000`"
        );
        assert_eq!(
            explain("invalid type: integer `3`, expected a string", None),
            "expected a string, not integer `3`"
        );
        assert_eq!(
            explain(
                "invalid type: string \"x\", expected struct Foo",
                Some("odd")
            ),
            "`odd` must be a table, not string \"x\""
        );
        assert_eq!(
            explain("missing field `image`", None),
            "missing key `image`: add it to this table"
        );
        assert_eq!(
            explain(
                "unknown field `big`, expected `compressed` or `unpacked`",
                None
            ),
            "unknown key `big`; the keys here are `compressed` or `unpacked`"
        );
    }
}
