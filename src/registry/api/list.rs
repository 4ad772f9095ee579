//! The listing calls: a repository's tags (every page, following `Link`) and the referrers of
//! a digest (the distribution-spec 1.1 API, `None` where the registry lacks it).
use super::super::failure::Failure;
use super::super::transport::{Action, Body, Request};
use super::super::Registry;
use super::MANIFEST_MAX;
use crate::error::Result;
use crate::oci::image::{media, Doc};
use crate::oci::reference::RegistryRef;
use reqwest::header::{HeaderMap, CONTENT_TYPE, LINK};
use reqwest::{Method, StatusCode};

/// Tags asked for per page; registries may answer with fewer and a `Link` to the next page.
const TAGS_PAGE: usize = 1000;

/// The most referrers pages read: 100 pages of a registry's usual page is far beyond what one
/// image carries, and a registry linking on forever must not keep us.
const REFERRERS_PAGES: usize = 100;

/// The largest tag list page read (distribution 2.8 ignores the page size and sends them all).
const TAGS_MAX: u64 = 64 << 20;

impl Registry {
    /// `GET /v2/NAME/tags/list`, every page: the registry's `Link` header names the next one.
    pub async fn tags_list(&self, repo: &RegistryRef) -> Result<Vec<String>> {
        let op = format!("listing tags of {}", repo.repo_name());
        let scopes = super::super::scopes_for(repo, Action::Pull);
        let name = repo.repo_name();
        let mut next = Some(format!("/v2/{}/tags/list?n={TAGS_PAGE}", repo.repository));
        let mut tags = Vec::new();
        // A registry whose `Link` points back at a page already read must not loop us forever.
        let mut seen = std::collections::HashSet::new();
        while let Some(path) = next.take() {
            if !seen.insert(path.clone()) {
                break;
            }
            let (page, link) = self
                .retry(&op, || async {
                    let req = Request {
                        action: Action::Pull,
                        repo: &name,
                        op: &op,
                        scopes: &scopes,
                        method: Method::GET,
                        path: &path,
                        headers: HeaderMap::new(),
                        body: Body::Empty,
                    };
                    let ask = req.ask();
                    let res = self.send(req).await?;
                    if res.status() != StatusCode::OK {
                        return Err(self.answer_error(ask, res).await);
                    }
                    let link = res
                        .headers()
                        .get(LINK)
                        .and_then(|v| v.to_str().ok())
                        .and_then(next_link)
                        .map(|l| res.url().join(&l).map(|u| u.to_string()));
                    let body = self.read_capped(ask, res, TAGS_MAX, "tag list").await?;
                    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                        self.failed(
                            &op,
                            None,
                            Failure::default(),
                            format!("not a tag list: {e}"),
                        )
                    })?;
                    let page: Vec<String> = v["tags"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect();
                    let link = link
                        .transpose()
                        .map_err(|e| self.invalid_answer(&op, &e.to_string()))?;
                    Ok((page, link))
                })
                .await?;
            tags.extend(page);
            next = link;
        }
        Ok(tags)
    }

    /// `GET /v2/NAME/referrers/DIGEST`: the index of what refers to `digest` (signatures,
    /// SBOMs), every page (the registry's `Link` names the next; at most 100 pages,
    /// a page already read ends it), their entries in one index. `None` where the registry has
    /// no referrers API: a 404, or a 200 that is not an OCI index (a registry or proxy answering
    /// an unknown path with a page of its own, as oras-go reads it too).
    pub async fn referrers(&self, repo: &RegistryRef, digest: &str) -> Result<Option<Doc>> {
        let op = format!("listing referrers of {digest} in {}", repo.repo_name());
        let scopes = super::super::scopes_for(repo, Action::Pull);
        let name = repo.repo_name();
        let mut next = Some(format!("/v2/{}/referrers/{digest}", repo.repository));
        let mut entries: Vec<serde_json::Value> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut first = true;
        while let Some(path) = next.take() {
            if !seen.insert(path.clone()) || seen.len() > REFERRERS_PAGES {
                break;
            }
            let page = self
                .retry(&op, || async {
                    let req = Request {
                        action: Action::Pull,
                        repo: &name,
                        op: &op,
                        scopes: &scopes,
                        method: Method::GET,
                        path: &path,
                        headers: HeaderMap::new(),
                        body: Body::Empty,
                    };
                    let ask = req.ask();
                    let res = self.send(req).await?;
                    match res.status() {
                        StatusCode::OK => {
                            let is_index = res
                                .headers()
                                .get(CONTENT_TYPE)
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.split(';').next())
                                .is_some_and(|v| v.trim() == media::OCI_INDEX);
                            if !is_index {
                                return Ok(None);
                            }
                            let link = res
                                .headers()
                                .get(LINK)
                                .and_then(|v| v.to_str().ok())
                                .and_then(next_link)
                                .map(|l| res.url().join(&l).map(|u| u.to_string()));
                            let body = self
                                .read_capped(ask, res, MANIFEST_MAX, "referrers index")
                                .await?;
                            let v: serde_json::Value =
                                serde_json::from_slice(&body).map_err(|e| {
                                    self.invalid_answer(&op, &format!("not a referrers index: {e}"))
                                })?;
                            let link = link
                                .transpose()
                                .map_err(|e| self.invalid_answer(&op, &e.to_string()))?;
                            let page = v["manifests"].as_array().cloned().unwrap_or_default();
                            Ok(Some((page, link)))
                        }
                        StatusCode::NOT_FOUND => Ok(None),
                        _ => Err(self.answer_error(ask, res).await),
                    }
                })
                .await?;
            match page {
                Some((page, link)) => {
                    entries.extend(page);
                    next = link;
                }
                // The first answer says whether there is an API; a later page that is gone
                // ends the list.
                None if first => return Ok(None),
                None => break,
            }
            first = false;
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": entries,
        });
        Ok(Some(Doc::new(
            media::OCI_INDEX,
            serde_json::to_vec(&index).expect("JSON values serialise"),
        )))
    }
}

/// The target of a `Link: <URL>; rel="next"` header.
fn next_link(h: &str) -> Option<String> {
    h.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| url.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryOptions;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A registry edge the test registry does not show (distribution 2.8 ignores `n` on tag
    /// lists): pages linked by `Link`, the last page without one.
    #[tokio::test]
    async fn every_page_of_a_paged_tag_list_is_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    // A TLS ClientHello (the scheme probe): answered as a plain HTTP server
                    // answers one.
                    let Some(path) = req.strip_prefix("GET ").and_then(|r| r.split(' ').next())
                    else {
                        let _ = s
                            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                        return;
                    };
                    let (body, link) = match path {
                        "/v2/engine/tags/list?n=1000" => (
                            r#"{"tags":["4.9.2","4.9.3"]}"#,
                            "</v2/engine/tags/list?last=4.9.3&n=2>; rel=\"next\"\r\n",
                        ),
                        "/v2/engine/tags/list?last=4.9.3&n=2" => {
                            (r#"{"tags":["4.9.10","latest"]}"#, "")
                        }
                        _ => ("{}", ""),
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
                        body.len(),
                        link.replace("</", "Link: </")
                    );
                    let _ = s.write_all(format!("{head}{body}").as_bytes()).await;
                });
            }
        });
        let r = RegistryRef::parse(&format!("{addr}/engine:4.9.3")).unwrap();
        let reg = Registry::connect(&r.registry, &RegistryOptions::default()).unwrap();
        let tags = reg.tags_list(&r).await.unwrap();
        assert_eq!(tags, ["4.9.2", "4.9.3", "4.9.10", "latest"]);
    }

    #[test]
    fn the_next_page_is_read_from_link() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://x/prev>; rel="prev", <https://x/n>; rel=next"#).as_deref(),
            Some("https://x/n")
        );
        assert_eq!(next_link(r#"</v2/a/tags/list>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
