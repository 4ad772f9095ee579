//! `org.opencontainers.image.*` annotations from the CI system running the build (GitHub
//! Actions, GitLab CI), so an image points back at the commit it was built from.
use std::collections::BTreeMap;

const SOURCE: &str = "org.opencontainers.image.source";
const REVISION: &str = "org.opencontainers.image.revision";
const CREATED: &str = "org.opencontainers.image.created";

/// The CI run `var` reads (source, revision, run URL), for the provenance; `None` outside
/// GitHub Actions and GitLab CI.
pub(crate) fn ci_run(var: impl Fn(&str) -> Option<String>) -> Option<crate::attest::CiRun> {
    if var("GITHUB_ACTIONS").is_some() {
        let server = var("GITHUB_SERVER_URL");
        let repo = var("GITHUB_REPOSITORY");
        let repository = server
            .as_ref()
            .zip(repo.as_ref())
            .map(|(s, r)| format!("{s}/{r}"));
        let run_url = repository
            .as_ref()
            .zip(var("GITHUB_RUN_ID"))
            .map(|(u, id)| match var("GITHUB_RUN_ATTEMPT") {
                Some(n) => format!("{u}/actions/runs/{id}/attempts/{n}"),
                None => format!("{u}/actions/runs/{id}"),
            });
        Some(crate::attest::CiRun {
            repository,
            revision: var("GITHUB_SHA"),
            run_url,
        })
    } else if var("GITLAB_CI").is_some() {
        Some(crate::attest::CiRun {
            repository: var("CI_PROJECT_URL"),
            revision: var("CI_COMMIT_SHA"),
            run_url: var("CI_JOB_URL").or_else(|| var("CI_PIPELINE_URL")),
        })
    } else {
        None
    }
}

/// The annotations for the CI environment `var` reads (the process's, read by the caller;
/// a variable unset or empty is `None`); empty outside CI.
///
/// `created` is the commit's time (or `SOURCE_DATE_EPOCH`), never the build's, so a rebuild of
/// the same commit still gives the same digest.
pub(crate) fn ci_annotations(
    var: impl Fn(&str) -> Option<String>,
    source_date_epoch: Option<u64>,
) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let mut commit_time = None;
    if var("GITHUB_ACTIONS").is_some() {
        if let (Some(server), Some(repo)) = (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY")) {
            a.insert(SOURCE.into(), format!("{server}/{repo}"));
        }
        if let Some(sha) = var("GITHUB_SHA") {
            a.insert(REVISION.into(), sha);
        }
        // A push event's payload carries the head commit's timestamp.
        commit_time = var("GITHUB_EVENT_PATH")
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["head_commit"]["timestamp"].as_str().map(str::to_string));
    } else if var("GITLAB_CI").is_some() {
        if let Some(url) = var("CI_PROJECT_URL") {
            a.insert(SOURCE.into(), url);
        }
        if let Some(sha) = var("CI_COMMIT_SHA") {
            a.insert(REVISION.into(), sha);
        }
        commit_time = var("CI_COMMIT_TIMESTAMP");
    }
    if !a.is_empty() {
        let created = match source_date_epoch {
            Some(t) => Some(crate::build::rfc3339(t)),
            None => commit_time.and_then(|t| {
                chrono::DateTime::parse_from_rfc3339(&t)
                    .ok()
                    .map(|d| crate::build::rfc3339(d.timestamp().max(0) as u64))
            }),
        };
        if let Some(c) = created {
            a.insert(CREATED.into(), c);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(vars: &[(&str, &str)], epoch: Option<u64>) -> BTreeMap<String, String> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ci_annotations(|k| env.get(k).cloned(), epoch)
    }

    #[test]
    fn the_run_is_read_from_github_actions_and_gitlab_ci() {
        let env = |vars: &[(&str, &str)]| {
            let m: HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            ci_run(|k| m.get(k).cloned())
        };
        assert_eq!(env(&[("GITHUB_SHA", "abc")]), None);
        let gh = env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_SHA", "abc"),
            ("GITHUB_RUN_ID", "7"),
            ("GITHUB_RUN_ATTEMPT", "2"),
        ])
        .unwrap();
        assert_eq!(gh.repository.as_deref(), Some("https://github.com/o/r"));
        assert_eq!(gh.revision.as_deref(), Some("abc"));
        assert_eq!(
            gh.run_url.as_deref(),
            Some("https://github.com/o/r/actions/runs/7/attempts/2")
        );
        let gl = env(&[
            ("GITLAB_CI", "true"),
            ("CI_PROJECT_URL", "https://gitlab.com/o/r"),
            ("CI_COMMIT_SHA", "def"),
            ("CI_JOB_URL", "https://gitlab.com/o/r/-/jobs/9"),
        ])
        .unwrap();
        assert_eq!(
            gl.run_url.as_deref(),
            Some("https://gitlab.com/o/r/-/jobs/9")
        );
    }

    #[test]
    fn outside_ci_there_are_none() {
        assert!(run(&[("CI_COMMIT_SHA", "abc")], Some(1)).is_empty());
    }

    #[test]
    fn github_actions_source_revision_and_push_event_time() {
        let d = tempfile::tempdir().unwrap();
        let event = d.path().join("event.json");
        std::fs::write(
            &event,
            r#"{"head_commit": {"timestamp": "2024-05-06T09:08:07+02:00"}}"#,
        )
        .unwrap();
        let a = run(
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_SERVER_URL", "https://github.com"),
                ("GITHUB_REPOSITORY", "team/mocks"),
                ("GITHUB_SHA", "0123abc"),
                ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
            ],
            None,
        );
        assert_eq!(a[SOURCE], "https://github.com/team/mocks");
        assert_eq!(a[REVISION], "0123abc");
        assert_eq!(a[CREATED], "2024-05-06T07:08:07Z");
    }

    #[test]
    fn gitlab_ci_and_source_date_epoch_wins_over_commit_time() {
        let vars = [
            ("GITLAB_CI", "true"),
            ("CI_PROJECT_URL", "https://gitlab.example.com/team/mocks"),
            ("CI_COMMIT_SHA", "feed"),
            ("CI_COMMIT_TIMESTAMP", "2024-01-02T03:04:05Z"),
        ];
        let a = run(&vars, None);
        assert_eq!(a[SOURCE], "https://gitlab.example.com/team/mocks");
        assert_eq!(a[REVISION], "feed");
        assert_eq!(a[CREATED], "2024-01-02T03:04:05Z");
        assert_eq!(run(&vars, Some(0))[CREATED], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn an_unreadable_commit_time_leaves_created_out() {
        let a = run(
            &[
                ("GITLAB_CI", "true"),
                ("CI_COMMIT_SHA", "feed"),
                ("CI_COMMIT_TIMESTAMP", "yesterday"),
            ],
            None,
        );
        assert_eq!(a.len(), 1);
        assert_eq!(a[REVISION], "feed");
    }
}
