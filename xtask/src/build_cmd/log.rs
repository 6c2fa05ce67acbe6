//! BuildKit's plain progress log: the Dockerfile steps a build ran and which came from the cache,
//! and the failing step with BuildKit's error.

/// Dockerfile steps of a build and how many of them came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StepCounts {
    pub(crate) total: u64,
    pub(crate) cached: u64,
}

/// One Dockerfile instruction of a build, from its plain progress log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// The stage name (`app` in `[app 2/4]`); None for an unnamed stage (`[3/3]`).
    pub(crate) stage: Option<String>,
    /// BuildKit's name of the step: `[app 2/4] COPY …`.
    pub(crate) name: String,
    pub(crate) cached: bool,
}

/// The Dockerfile instructions (`#7 [app 1/2] RUN …`; FROM and BuildKit's internal vertices
/// excluded) in a plain progress log, in the order they first appear, each with whether it came
/// from the cache: reported `#7 CACHED`, or — a hit in an imported (registry) cache, whose record
/// BuildKit logs as the download of the step's layers — a step whose only lines are blob
/// transfers (`#7 sha256:… 136B / 136B done`) before its `DONE`.
pub(crate) fn list_steps(log: &str) -> Vec<Step> {
    let mut steps: Vec<(String, Step)> = Vec::new();
    let mut cached = std::collections::BTreeSet::new();
    // Per vertex: (blob transfers seen, anything else seen: output, errors).
    let mut detail: std::collections::BTreeMap<String, (bool, bool)> = Default::default();
    for line in log.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((vertex, text)) = rest.split_once(' ') else {
            continue;
        };
        if text == "CACHED" {
            cached.insert(vertex.to_string());
        } else if text.starts_with("sha256:") {
            detail.entry(vertex.to_string()).or_default().0 = true;
        } else if !text.starts_with("DONE ") && !text.starts_with('[') {
            detail.entry(vertex.to_string()).or_default().1 = true;
        } else if let Some(name) = text.strip_prefix('[') {
            if let Some((label, instr)) = name.split_once("] ") {
                // `app 1/2`, `1/2`, or with a platform: `linux/amd64 app 1/2`.
                let mut words = label.split_whitespace().rev();
                let is_step = words.next().is_some_and(|n| n.contains('/'));
                if is_step && !instr.starts_with("FROM ") && !steps.iter().any(|(v, _)| v == vertex)
                {
                    let stage = words.next().map(str::to_owned);
                    steps.push((
                        vertex.to_string(),
                        Step {
                            stage,
                            name: text.to_string(),
                            cached: false,
                        },
                    ));
                }
            }
        }
    }
    steps
        .into_iter()
        .map(|(vertex, mut step)| {
            let fetched = detail.get(&vertex) == Some(&(true, false));
            step.cached = cached.contains(&vertex) || fetched;
            step
        })
        .collect()
}

/// Counts the Dockerfile instructions of a build and those that came from the cache.
pub(crate) fn count_steps(log: &str) -> StepCounts {
    let steps = list_steps(log);
    StepCounts {
        total: steps.len() as u64,
        cached: steps.iter().filter(|s| s.cached).count() as u64,
    }
}

/// Finds the failing step and BuildKit's error in plain progress output.
#[derive(Default)]
pub(crate) struct FailureScan {
    last_step: Option<String>,
    error: Option<String>,
}

impl FailureScan {
    pub(crate) fn feed(&mut self, line: &str) {
        // ` > [deps 3/7] RUN uv pip install …:` opens BuildKit's error block for the failing step.
        if let Some(step) = line.strip_prefix(" > [") {
            self.last_step = Some(format!("[{}", step.trim_end_matches(':')));
        } else if let Some(err) = line.strip_prefix("ERROR: ") {
            self.error = Some(err.to_string());
        }
    }

    pub(crate) fn describe(&self) -> String {
        match (&self.last_step, &self.error) {
            // BuildKit repeats the step's command in its error; keep only the outcome.
            (Some(step), Some(err)) => match err.split_once("did not complete successfully: ") {
                Some((_, outcome)) => format!("step {step}: {outcome}"),
                None => format!("step {step}: {err}"),
            },
            (None, Some(err)) => err.clone(),
            (Some(step), None) => format!("step {step}"),
            (None, None) => "docker buildx failed (its output is above)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_scan_quotes_step_and_error() {
        let mut scan = FailureScan::default();
        for line in [
            "#7 [3/3] RUN exit 3",
            " > [3/3] RUN echo failing && exit 3:",
            "0.147 failing",
            "ERROR: failed to build: failed to solve: process \"/bin/sh -c echo failing && exit 3\" did not complete successfully: exit code: 3",
        ] {
            scan.feed(line);
        }
        let d = scan.describe();
        assert_eq!(d, "step [3/3] RUN echo failing && exit 3: exit code: 3");
    }

    #[test]
    fn counts_dockerfile_steps_and_cached_ones() {
        let log = "#1 [internal] load build definition from Dockerfile\n#1 DONE 0.0s\n\n\
                   #6 [base 1/2] FROM localhost/debian:trixie-slim@sha256:54de\n#6 DONE 0.0s\n\
                   #7 [app 1/2] RUN echo hi\n#7 CACHED\n\
                   #8 [base 2/2] RUN --mount=type=cache,target=/c true\n#8 CACHED\n\
                   #9 [app 2/2] COPY payload.txt /payload.txt\n#9 DONE 0.1s\n\
                   #10 [3/3] RUN true\n#10 CACHED\n#11 exporting to image\n#11 DONE 0.0s\n";
        assert_eq!(
            count_steps(log),
            StepCounts {
                total: 4,
                cached: 3
            }
        );
        let steps = list_steps(log);
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[2].stage.as_deref(), Some("app"));
        assert_eq!(steps[2].name, "[app 2/2] COPY payload.txt /payload.txt");
        assert!(!steps[2].cached);
        assert_eq!(steps[3].stage, None);
        assert!(steps[3].cached);
    }

    #[test]
    fn step_stage_with_a_platform_prefix() {
        let log = "#9 [linux/amd64 app 2/2] COPY a /a\n#9 DONE 0.1s\n";
        let steps = list_steps(log);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].stage.as_deref(), Some("app"));
    }
    #[test]
    fn a_step_fetched_from_an_imported_cache_counts_as_cached() {
        let log = "#7 [2/4] COPY a /a\n#7 CACHED\n\n\
                   #8 [3/4] RUN true\n#8 DONE 0.1s\n\n\
                   #9 [4/4] RUN echo 0 > /p\n\
                   #9 sha256:6504 136B / 136B 0.1s done\n#9 sha256:11e3 523B / 523B 0.0s done\n#9 DONE 0.4s\n\n\
                   #10 [5/5] RUN make\n#10 sha256:aa 1B / 1B done\n#10 0.2 compiling\n#10 DONE 1.0s\n";
        let steps = list_steps(log);
        let cached: Vec<bool> = steps.iter().map(|s| s.cached).collect();
        // A step that ran with no output is not cached; one with output besides blobs ran too.
        assert_eq!(cached, [true, false, true, false]);
    }
}
