//! Git facts for a build's labels and tags: the revision, the public source URL, the commit time.

use crate::ctx::Ctx;
use crate::process::Cmd;

/// Facts from git for labels and tags.
#[derive(Clone, Debug, Default)]
pub(crate) struct GitInfo {
    pub(crate) revision: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) commit_time: Option<u64>,
}

/// What git knows of the checkout; each fact is None when git cannot tell.
pub(crate) fn git_info(ctx: &Ctx) -> GitInfo {
    let read = |args: &[&str]| {
        Cmd::new("git")
            .args(args)
            .dir(&ctx.root)
            .read()
            .ok()
            .filter(|s| !s.is_empty())
    };
    GitInfo {
        revision: read(&["rev-parse", "HEAD"]),
        source: read(&["remote", "get-url", "origin"]).map(|url| public_url(&url)),
        commit_time: read(&["log", "-1", "--format=%ct"]).and_then(|t| t.parse().ok()),
    }
}

/// A remote URL without credentials, in https form where it was an scp-like ssh address.
pub(crate) fn public_url(url: &str) -> String {
    let url = match url.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{rest}")
        }
        None => match url.split_once(':') {
            // git@host:owner/repo.git
            Some((user_host, path)) if user_host.contains('@') => {
                format!(
                    "https://{}/{path}",
                    user_host.rsplit_once('@').map_or(user_host, |(_, h)| h)
                )
            }
            _ => url.to_string(),
        },
    };
    url.trim_end_matches(".git").to_string()
}

/// `--build-arg SOURCE_DATE_EPOCH=…`, else SOURCE_DATE_EPOCH of the environment, else the time
/// of the HEAD commit (so a rebuild of the same commit gives the same image), else now. The
/// build passes it to BuildKit (the config's `created` and history times) and the `created`
/// label says the same time.
pub(crate) fn source_date_epoch(git: &GitInfo, overrides: &[(String, String)]) -> u64 {
    let given = overrides
        .iter()
        .rfind(|(k, _)| k == "SOURCE_DATE_EPOCH")
        .map(|(_, v)| v.clone());
    given
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .or(git.commit_time)
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_arg_epoch_wins_over_the_commit_time() {
        let git = GitInfo {
            commit_time: Some(5),
            ..GitInfo::default()
        };
        let given = [("SOURCE_DATE_EPOCH".to_string(), "7".to_string())];
        assert_eq!(source_date_epoch(&git, &given), 7);
        if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
            assert_eq!(source_date_epoch(&git, &[]), 5);
        }
    }

    #[test]
    fn remote_urls_lose_credentials() {
        assert_eq!(
            public_url("git@example.org:team/voxserve.git"),
            "https://example.org/team/voxserve"
        );
        assert_eq!(
            public_url("https://user:token@example.org/team/voxserve.git"),
            "https://example.org/team/voxserve"
        );
        assert_eq!(
            public_url("https://example.org/team/voxserve"),
            "https://example.org/team/voxserve"
        );
    }
}
